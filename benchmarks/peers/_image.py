"""Image preparation shared by the peer adapters."""

from __future__ import annotations

import cv2
import numpy as np

from matcher.fingerprint.resolution import WORKING_PPI, rescale_to_working_ppi
from matcher.imageio import decode_image

#: Resolution the peers' matchers are tuned for (NBIS, SourceAFIS, LEADER, MCC).
PEER_PPI = WORKING_PPI


def gray_at_500ppi(data: bytes, ppi: float) -> np.ndarray:
    """Decode ``data`` to gray ``uint8`` and resample it from ``ppi`` to 500 ppi.

    Every peer's matcher measures distances in pixels tuned for 500 ppi (Bozorth3's
    tolerances, MCC's cylinder radius, SourceAFIS's edge lengths), and not all of
    them take a resolution argument, so the image itself is resampled (area
    interpolation when shrinking, cubic when enlarging), exactly as locard's own
    pipeline does.
    """
    return rescale_to_working_ppi(decode_image(data).pixels, ppi)


def png_bytes(gray: np.ndarray) -> bytes:
    """Lossless PNG encoding of a gray image (for peers that take encoded bytes)."""
    ok, buf = cv2.imencode(".png", gray)
    if not ok:  # pragma: no cover - OpenCV always encodes a valid uint8 array
        raise ValueError("PNG encoding failed")
    return buf.tobytes()
