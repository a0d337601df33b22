"""Images in, templates out: limit checks, then the indexer's own extraction.

Runs in worker threads (never on the event loop).  Enrolled images are kept in the
store folder (``api-images/``) so that evidence PNGs can show them later; the stored
sample's ``source`` points at that file, and deleting the last sample that names it
deletes it (:mod:`indexer.store_files`).  Refused images leave no file.

The store refuses a second sample with the same ``sha256`` anywhere in the gallery.
Keyed on the image alone that would tell a bureau that another bureau holds the same
image, so samples enrolled here are stored under SHA-256 of ``subject:image hash``
(duplicates are caught within one subject) and the image's own hash is kept in the
sample's metadata (``image_sha256``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from indexer.ingest import Extracted, SourceItem, extract_item
from indexer.search import Probe, probe_from_image
from indexer.store import private_folder
from matcher.errors import ImageError, ImageTooLargeError
from matcher.imageio import decode_image

IMAGES_DIR = "api-images"
log = logging.getLogger("locard.api")


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the service (bytes, pixels, images, concurrency)."""

    max_request_bytes: int = 64 * 1024 * 1024
    max_image_bytes: int = 16 * 1024 * 1024
    max_image_pixels: int = 16_000_000
    max_images: int = 20
    max_request_pixels: int = 16_000_000
    """Pixels of all images of one request together (fingerprints counted at 500 ppi), read from
    the image headers before anything is decoded: extraction costs about 1 s of CPU per Mpx."""
    max_archive_bytes: int = 128 * 1024 * 1024
    """Uncompressed bytes of all entries of one batch-job ZIP archive."""
    max_archive_ratio: float = 50.0
    """Uncompressed / compressed size of a ZIP archive beyond which it is taken for a bomb (images
    are already compressed; even raw BMP fingerprints deflate less than ~10:1)."""
    max_concurrent_per_key: int = 2
    """Image requests (enrol, search, verify, evidence, jobs) one key may have in flight; more: 429."""


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
    """Check and extract one image; never raises for a bad image (see ``error``).

    The image is written to a pending file beside its place (``image_path``), and only
    an image that gave a template keeps it: on success ``item.path`` is that pending
    file, which :func:`keep_image` moves into place when its sample is committed; on
    failure nothing is left on disk.  A pending file that a crash leaves behind is an
    orphan for ``locard check --remove-orphans``.
    """
    from matcher.errors import LocardError

    sha = hashlib.sha256(data).hexdigest()
    item = SourceItem(image_path(store.resolve(), sha), subject, modality, finger_position, ppi)
    try:
        check_image(data, limits, ppi if modality == "finger" else None)
    except LocardError as exc:
        return Extracted(item, sha, error=type(exc).__name__, reason=str(exc))
    pending = _write_pending(item.path, data)
    try:
        out = extract_item(replace(item, path=pending), sha)
    except BaseException:
        pending.unlink(missing_ok=True)
        raise
    if out.error:
        pending.unlink(missing_ok=True)
        return replace(out, item=item)
    return out


def _write_pending(final: Path, data: bytes) -> Path:
    """``data`` in a new file (0600) beside ``final``, under a name no other request uses."""
    private_folder(final.parent)
    pending = final.with_name(f"{final.name}.part-{secrets.token_hex(6)}")
    fd = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return pending


def final_path(pending: Path) -> Path:
    """Where a pending image (from :func:`enrol_image`) goes once its sample is committed."""
    return pending.with_name(pending.name.partition(".part-")[0])


def keep_image(pending: Path) -> Path:
    """Move a pending image (from :func:`enrol_image`) to its place; returns that path.

    Run it right before the sample that names the image is committed, on the thread
    that commits (and deletes), so a deletion never judges the file in between.
    """
    final = final_path(pending)
    os.replace(pending, final)  # the same bytes when another subject holds the image too
    return final


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
    """Initializer of an extraction process: one thread per library (the processes are the parallelism),
    and the process ends when the server does, even when the server is killed."""
    import os

    from indexer.worker_lifetime import exit_with_parent

    exit_with_parent()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = "1"
    import cv2

    cv2.setNumThreads(1)
