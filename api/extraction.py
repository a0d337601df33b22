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
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from indexer.ingest import Extracted, SourceItem, extract_item
from indexer.search import Probe, probe_from_image
from matcher.errors import ImageTooLargeError
from matcher.imageio import decode_image

IMAGES_DIR = "api-images"


@dataclass(frozen=True)
class Limits:
    max_request_bytes: int = 64 * 1024 * 1024
    max_image_bytes: int = 16 * 1024 * 1024
    max_image_pixels: int = 16_000_000
    max_images: int = 20


def check_image(data: bytes, limits: Limits) -> np.ndarray:
    """Decode with the service's limits (raises a typed ImageError)."""
    if len(data) > limits.max_image_bytes:
        raise ImageTooLargeError(f"image is {len(data)} bytes; the limit is {limits.max_image_bytes}")
    return decode_image(data, max_bytes=limits.max_image_bytes, max_pixels=limits.max_image_pixels).pixels


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
        check_image(data, limits)
    except LocardError as exc:
        return Extracted(item, sha, error=type(exc).__name__, reason=str(exc))
    path = item.path
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(path)
    return extract_item(item, sha)


def probe(data: bytes, modality: str, finger_position: int, ppi: float, limits: Limits, label: str = "") -> Probe:
    """A search probe from image bytes (raises typed locard errors)."""
    check_image(data, limits)
    return probe_from_image(data, modality, finger_position=finger_position, ppi=ppi, label=label)
