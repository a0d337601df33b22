"""The shipped sample prints (``data/samples/fingerprints``) as request bytes, for the API tests."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples" / "fingerprints" / "images"
#: Module mark for tests that need the sample prints.
needs_samples = pytest.mark.skipif(not (SAMPLES / "0001_1.png").is_file(),
                                   reason="data/samples/fingerprints (shipped sample prints) is missing")


def fp(name: str) -> bytes:
    """PNG bytes of one sample print, e.g. ``fp("0001_1")``."""
    return (SAMPLES / f"{name}.png").read_bytes()


def png(arr: np.ndarray) -> bytes:
    """PNG bytes of a uint8 image array."""
    from PIL import Image

    b = io.BytesIO()
    Image.fromarray(arr).save(b, "PNG")
    return b.getvalue()
