"""The shared image decoder: formats sniffed from bytes, limits, typed errors."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from matcher.errors import (CorruptImageError, EmptyImageError, ImageTooLargeError, ImageTooSmallError,
                            UnsupportedFormatError)
from matcher.imageio import decode_image, sniff_format


def _encode(arr: np.ndarray, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **kw)
    return buf.getvalue()


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with a tiny (invalid) body."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


GRADIENT = (np.add.outer(np.arange(64), np.arange(80)) % 256).astype(np.uint8)


@pytest.mark.parametrize("fmt,expected", [("TIFF", "TIFF"), ("PNG", "PNG"), ("BMP", "BMP"), ("PPM", "PPM"),
                                          ("JPEG", "JPEG"), ("GIF", "GIF"), ("WEBP", "WEBP")])
def test_every_format_decodes_to_the_same_gray_pixels(fmt, expected):
    data = _encode(GRADIENT, fmt, **({"lossless": True} if fmt == "WEBP" else {}))
    assert sniff_format(data) == expected
    out = decode_image(data)
    assert out.format == expected
    assert out.pixels.dtype == np.uint8 and out.pixels.shape == GRADIENT.shape
    tolerance = 12 if fmt == "JPEG" else 0
    assert np.abs(out.pixels.astype(int) - GRADIENT).max() <= tolerance


def test_colour_request_returns_bgr():
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[..., 0] = 200  # red
    out = decode_image(_encode(rgb, "PNG"), color=True)
    assert out.pixels.shape == (32, 32, 3) and out.was_color
    assert out.pixels[0, 0].tolist() == [0, 0, 200]


def test_exif_orientation_is_applied():
    img = Image.fromarray(np.zeros((20, 40), np.uint8))
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif)
    assert decode_image(buf.getvalue()).pixels.shape == (40, 20)


def test_empty_input():
    with pytest.raises(EmptyImageError, match="0 bytes"):
        decode_image(b"")


def test_text_file_is_not_an_image():
    with pytest.raises(UnsupportedFormatError, match="not an image"):
        decode_image(b"subject,finger\n1,2\n")


def test_truncated_tiff_is_corrupt():
    data = _encode(np.full((200, 200), 128, np.uint8), "TIFF")
    with pytest.raises(CorruptImageError, match="TIFF"):
        decode_image(data[: len(data) // 3])


def test_huge_image_is_refused_before_decoding():
    with pytest.raises(ImageTooLargeError, match="20000x20000"):
        decode_image(png_header_only(20000, 20000))


def test_byte_limit():
    with pytest.raises(ImageTooLargeError, match="bytes"):
        decode_image(_encode(GRADIENT, "PNG"), max_bytes=100)


def test_tiny_image():
    with pytest.raises(ImageTooSmallError):
        decode_image(_encode(np.zeros((4, 4), np.uint8), "PNG"))
