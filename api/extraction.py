"""Images in, templates out: limit checks, then the indexer's own extraction.

Runs in worker threads (never on the event loop).  Enrolled images are kept in the
store folder (``api-images/``) so that evidence PNGs can show them later; the stored
sample's ``source`` points at that file.

The store refuses a second sample with the same ``sha256`` anywhere in the gallery.
Keyed on the image alone that would tell a bureau that another bureau holds the same
image, so samples enrolled here are stored under SHA-256 of ``subject:image hash``
(duplicates are caught within one subject) and the image's own hash is kept in the
sample's metadata (``image_sha256``).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexer.ingest import Extracted, SourceItem, extract_item
from indexer.search import Probe, probe_from_image
from matcher.errors import ImageError, ImageTooLargeError
from matcher.imageio import decode_image

IMAGES_DIR = "api-images"
log = logging.getLogger("locard.api")


@dataclass(frozen=True)
class Limits:
    max_request_bytes: int = 64 * 1024 * 1024
    max_image_bytes: int = 16 * 1024 * 1024
    max_image_pixels: int = 16_000_000
    max_images: int = 20


def check_image(data: bytes, limits: Limits, ppi: float | None = None) -> np.ndarray:
    """Decode with the service's limits (raises a typed ImageError).

    With ``ppi`` (fingerprints) the limit also holds for the image rescaled to 500 ppi.
    """
    if len(data) > limits.max_image_bytes:
        raise ImageTooLargeError(f"image is {len(data)} bytes; the limit is {limits.max_image_bytes}")
    pixels = decode_image(data, max_bytes=limits.max_image_bytes, max_pixels=limits.max_image_pixels).pixels
    if ppi is not None:
        scaled = pixels.shape[0] * pixels.shape[1] * (500.0 / ppi) ** 2
        if scaled > limits.max_image_pixels:
            raise ImageTooLargeError(f"at {ppi:g} ppi the image is {scaled:.0f} pixels once rescaled to 500 ppi; "
                                     f"the limit is {limits.max_image_pixels}")
    return pixels


def image_path(store: Path, sha: str) -> Path:
    return store / IMAGES_DIR / sha[:2] / sha


def sample_hash(subject: str, image_sha: str) -> str:
    return hashlib.sha256(f"{subject}:{image_sha}".encode()).hexdigest()


def enrol_image(store: Path, data: bytes, subject: str, modality: str, finger_position: int, ppi: float,
                limits: Limits) -> Extracted:
    """Check, keep and extract one image; never raises for a bad image (see ``error``)."""
    from matcher.errors import LocardError

    sha = hashlib.sha256(data).hexdigest()
    item = SourceItem(image_path(store, sha), subject, modality, finger_position, ppi)
    try:
        check_image(data, limits, ppi if modality == "finger" else None)
    except LocardError as exc:
        return Extracted(item, sha, error=type(exc).__name__, reason=str(exc))
    path = item.path
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(path)
    return extract_item(item, sha)


class UnprocessableImage(ImageError):
    """The matcher failed on an image in a way it did not name (logged; answered as 422, never 5xx)."""


def probe(data: bytes, modality: str, finger_position: int, ppi: float, limits: Limits, label: str = "") -> Probe:
    """A search probe from image bytes (raises typed locard errors only)."""
    from matcher.errors import LocardError

    check_image(data, limits, ppi if modality == "finger" else None)
    try:
        return probe_from_image(data, modality, finger_position=finger_position, ppi=ppi, label=label)
    except LocardError:
        raise
    except Exception as exc:  # noqa: BLE001 - a bad input is never a 5xx
        log.exception("extraction failed on a %s probe (%d bytes)", modality, len(data))
        raise UnprocessableImage(f"the image could not be processed ({type(exc).__name__})") from None


def worker_init() -> None:
    """Initializer of an extraction process: one thread per library (the processes are the parallelism)."""
    import os

    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = "1"
    import cv2

    cv2.setNumThreads(1)
