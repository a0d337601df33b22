"""One way to turn encoded bytes into a checked image array, for every modality.

The format is sniffed from the bytes (never from a file name), the size is checked
against limits *before* the pixels are decoded (a decompression bomb never
allocates), EXIF orientation is applied, and the result is a C-contiguous
``uint8`` array: ``(H, W)`` for gray, ``(H, W, 3)`` BGR for colour (OpenCV order).
Pillow decodes every format but WSQ, which :mod:`matcher.wsq` decodes (in a child
process: its C decoder is not safe on damaged input).
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps

from . import wsq
from .errors import (
    CorruptImageError,
    EmptyImageError,
    ImageTooLargeError,
    ImageTooSmallError,
    UnsupportedFormatError,
)

#: Largest encoded input accepted, in bytes.
MAX_BYTES = 64 * 1024 * 1024
#: Largest decoded image accepted, in pixels (about 7000 x 7000).
MAX_PIXELS = 50_000_000
#: Smallest side accepted, in pixels.
MIN_SIDE = 16

# Pillow's own bomb check would raise a warning, then an error at 2x; ours runs first.
Image.MAX_IMAGE_PIXELS = None

_SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG"),
    (b"BM", 0, "BMP"),
    (b"\xff\xd8\xff", 0, "JPEG"),
    (b"GIF87a", 0, "GIF"),
    (b"GIF89a", 0, "GIF"),
    (b"WEBP", 8, "WEBP"),
    (b"P5", 0, "PPM"),  # binary PGM
    (b"P2", 0, "PPM"),  # ASCII PGM
    (b"P6", 0, "PPM"),
    (b"P3", 0, "PPM"),
    (wsq.SOI + b"\xff", 0, "WSQ"),  # SOI, then the first segment's marker
)

#: Formats accepted by :func:`decode_image`.
FORMATS = frozenset(f for _, _, f in _SIGNATURES)


def sniff_format(data: bytes) -> str | None:
    """Return the image format named by the leading bytes, or ``None``.

    Parameters
    ----------
    data : bytes
        The first bytes of an encoded image (16 suffice).

    Returns
    -------
    str or None
        One of ``TIFF, PNG, BMP, JPEG, GIF, WEBP, PPM`` (Pillow's names) or ``WSQ``.
    """
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for magic, offset, name in _SIGNATURES:
        if name != "WEBP" and data[offset:offset + len(magic)] == magic:
            return name
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height (pixels) read from the header alone, nothing decoded.

    For budgets counted before decoding (pixels per request); ``None`` when the format
    is unknown or the header unreadable (:func:`decode_image` then says why).
    """
    fmt = sniff_format(bytes(data[:16]))
    if fmt is None:
        return None
    try:
        if fmt == "WSQ":  # Pillow has no WSQ reader here (the wsq plugin would decode in-process)
            return wsq.frame_size(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data), formats=[fmt]) as img:  # lazy: reads the header only
                return img.size
    except Exception:  # noqa: BLE001 - any unreadable header is the decoder's to report
        return None


@dataclass(frozen=True)
class DecodedImage:
    """A decoded image and what was learnt while decoding it."""

    pixels: np.ndarray
    """``uint8`` array, ``(H, W)`` gray or ``(H, W, 3)`` BGR."""
    format: str
    """Format sniffed from the bytes."""
    was_color: bool
    """Whether the encoded image carried colour."""


def decode_image(
    data: bytes,
    *,
    color: bool = False,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    min_side: int = MIN_SIDE,
) -> DecodedImage:
    """Decode image bytes into a checked ``uint8`` array.

    Parameters
    ----------
    data : bytes
        Encoded image: TIFF, PNG, BMP, JPEG, GIF (first frame), WebP, PGM/PPM or WSQ.
    color : bool
        Return ``(H, W, 3)`` BGR when true, ``(H, W)`` gray otherwise.
    max_bytes, max_pixels, min_side : int
        Limits checked before (bytes, pixels) and after (side) decoding.

    Raises
    ------
    EmptyImageError, UnsupportedFormatError, CorruptImageError,
    ImageTooLargeError, ImageTooSmallError
    """
    if not data:
        raise EmptyImageError("empty input: 0 bytes")
    if len(data) > max_bytes:
        raise ImageTooLargeError(f"input is {len(data)} bytes; the limit is {max_bytes}")
    fmt = sniff_format(bytes(data[:16]))
    if fmt is None:
        raise UnsupportedFormatError(
            "not an image this matcher reads (expected TIFF, PNG, BMP, JPEG, GIF, WebP, PGM or WSQ; "
            f"the data starts with {bytes(data[:8])!r})"
        )
    if fmt == "WSQ":
        return _decode_wsq(data, color=color, max_pixels=max_pixels, min_side=min_side)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(data), formats=[fmt])
            w, h = img.size
            if w * h > max_pixels:
                raise ImageTooLargeError(
                    f"{fmt} image is {w}x{h} = {w * h} pixels; the limit is {max_pixels}"
                )
            img.load()
            img = ImageOps.exif_transpose(img)
            mode = img.mode
            was_color = mode not in ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F") and not (
                mode == "P" and _palette_is_gray(img)
            )
            if mode in ("I", "I;16", "I;16B", "I;16L", "F"):
                arr = np.asarray(img, dtype=np.float64)
                lo, hi = float(arr.min()), float(arr.max())
                arr = ((arr - lo) * (255.0 / max(hi - lo, 1e-9))).astype(np.uint8)
                gray = Image.fromarray(arr, "L")
                img = gray
            if color:
                rgb = np.asarray(img.convert("RGB"))
                pixels = np.ascontiguousarray(rgb[:, :, ::-1])
            else:
                pixels = np.ascontiguousarray(np.asarray(img.convert("L")))
    except ImageTooLargeError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as exc:
        raise CorruptImageError(f"{fmt} data could not be decoded: {exc}") from None
    if min(pixels.shape[:2]) < min_side:
        raise ImageTooSmallError(
            f"image is {pixels.shape[1]}x{pixels.shape[0]} pixels; each side needs >= {min_side}"
        )
    return DecodedImage(pixels=pixels, format=fmt, was_color=was_color)


def _decode_wsq(data: bytes, *, color: bool, max_pixels: int, min_side: int) -> DecodedImage:
    w, h = wsq.frame_size(data)
    if w * h > max_pixels:
        raise ImageTooLargeError(f"WSQ image is {w}x{h} = {w * h} pixels; the limit is {max_pixels}")
    if min(w, h) < min_side:
        raise ImageTooSmallError(f"image is {w}x{h} pixels; each side needs >= {min_side}")
    gray = wsq.decode(data)
    if gray.shape != (h, w):
        raise CorruptImageError(f"WSQ frame header says {w}x{h}, the decoder gave {gray.shape[1]}x{gray.shape[0]}")
    pixels = np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2)) if color else gray
    return DecodedImage(pixels=pixels, format="WSQ", was_color=False)


def _palette_is_gray(img: Image.Image) -> bool:
    pal = img.getpalette() or []
    rgb = np.asarray(pal[: (len(pal) // 3) * 3], dtype=np.int16).reshape(-1, 3)
    return bool(len(rgb) == 0 or (np.all(rgb[:, 0] == rgb[:, 1]) and np.all(rgb[:, 1] == rgb[:, 2])))
