"""Image data of ANSI/NIST-ITL records -> checked ``uint8`` arrays, by the record's compression code.

======  ==============================================================================
code    decoder
======  ==============================================================================
NONE    raw pixels at the record's depth: 8-bit gray, 16-bit gray (big-endian, scaled to
        8 bits), 1-bit (rows padded to whole bytes, 1 = black ink: the NIST Type-5/6
        reference cards come out white on black otherwise),
        24-bit colour (three planes R, G, B one after another, as NBIS's reference
        decoder reads uncompressed colour)
WSQ20   NBIS's WSQ decoder through :mod:`matcher.imageio` (a child process per image)
JPEGB   Pillow, through :mod:`matcher.imageio`
JPEGL   lossless JPEG (SOF3) by OpenCV's libjpeg-turbo 3.  NBIS's encoder declares its
        Huffman tables as class 1 (AC), which a lossless stream never uses and strict
        decoders reject ("Huffman table 0x00 was not defined"); the class is set to 0 (DC)
        before decoding.  Checked on the two JPEGL prints of the NIST reference set: the
        same pixels as imagecodecs' liblj92 decoder, which ignores the class.
JP2     JPEG 2000 (JP2 box or bare codestream) by Pillow's OpenJPEG
JP2L    the same (lossless JPEG 2000 is the same codestream)
PNG     Pillow, through :mod:`matcher.imageio`
======  ==============================================================================

Every decoder is handed its size limits before it allocates (:data:`matcher.imageio.MAX_PIXELS`).
Failures raise :class:`~matcher.errors.ImageError`; the record layer turns them into a
message on the record, never an exception out of the transaction reader.
"""

from __future__ import annotations

import io
import warnings

import cv2
import numpy as np
from PIL import Image

from ..errors import CorruptImageError, ImageError, ImageTooLargeError, UnsupportedFormatError
from ..imageio import MAX_PIXELS, decode_image
from .ansi_nist_encoding import is_digits

#: Compression names of tagged records (CGA) by the numeric codes binary records (GCA) use.
COMPRESSION_CODES = {0: "NONE", 1: "WSQ20", 2: "JPEGB", 3: "JPEGL", 4: "JP2", 5: "JP2L", 6: "PNG"}
#: Older spellings read as today's names.
_ALIASES = {"WSQ": "WSQ20", "JPEG": "JPEGB", "JPEG2K": "JP2", "JPEG2KL": "JP2L", "": "NONE"}
_JP2_SIGNATURES = (b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")


def compression_name(value: str | int) -> str:
    """Normalise a CGA/GCA value (``"WSQ"``, ``1``, ``"jpegb"``) to the 2011 names."""
    if isinstance(value, int) or (isinstance(value, str) and is_digits(value.strip())):
        code = int(value)
        return COMPRESSION_CODES.get(code, f"CODE {code}")
    name = value.strip().upper()
    return _ALIASES.get(name, name)


def _check_size(width: int, height: int, what: str) -> None:
    if width <= 0 or height <= 0:
        raise CorruptImageError(f"{what}: declared size {width}x{height} is not positive")
    if width * height > MAX_PIXELS:
        raise ImageTooLargeError(f"{what}: {width}x{height} = {width * height} pixels; the limit is {MAX_PIXELS}")


def decode_raw(data: bytes, width: int, height: int, bits_per_pixel: int) -> np.ndarray:
    """Uncompressed pixels -> ``(H, W)`` uint8 gray or ``(H, W, 3)`` uint8 BGR.

    Raises
    ------
    CorruptImageError
        Fewer bytes than the declared size and depth need.
    UnsupportedFormatError
        A depth other than 1, 8, 16 or 24 bits.
    """
    _check_size(width, height, "raw image")
    if bits_per_pixel == 1:
        row = (width + 7) // 8
        need = row * height
    elif bits_per_pixel in (8, 16, 24):
        need = width * height * bits_per_pixel // 8
    else:
        raise UnsupportedFormatError(f"raw image of {bits_per_pixel} bits per pixel is not read (1, 8, 16, 24 are)")
    if len(data) < need:
        raise CorruptImageError(f"raw {width}x{height} image at {bits_per_pixel} bits needs {need} bytes, "
                                f"the record holds {len(data)}")
    buf = np.frombuffer(data, np.uint8, count=need)
    if bits_per_pixel == 1:
        bits = np.unpackbits(buf.reshape(height, row), axis=1)[:, :width]
        return ((1 - bits) * 255).astype(np.uint8)
    if bits_per_pixel == 8:
        return buf.reshape(height, width).copy()
    if bits_per_pixel == 16:
        return (buf.view(">u2").reshape(height, width) >> 8).astype(np.uint8)
    planes = buf.reshape(3, height, width)
    return np.ascontiguousarray(planes[::-1].transpose(1, 2, 0))  # R, G, B planes -> BGR


def _lossless_jpeg(data: bytes, color: bool) -> np.ndarray:
    """Decode a lossless (SOF3) JPEG with OpenCV, after NBIS's table classes are corrected."""
    buf = bytearray(data)
    pos, size = 2, None
    while pos + 4 <= len(buf) and buf[pos] == 0xFF:
        marker, length = buf[pos + 1], int.from_bytes(buf[pos + 2:pos + 4], "big")
        if length < 2 or pos + 2 + length > len(buf):
            raise CorruptImageError(f"JPEGL segment 0xFF{marker:02X} at byte {pos} runs past the data")
        seg = pos + 4
        if marker == 0xC3 and length >= 7:
            size = (int.from_bytes(buf[seg + 3:seg + 5], "big"), int.from_bytes(buf[seg + 1:seg + 3], "big"))
        elif marker == 0xC4:  # DHT: one or more tables of (class/id, 16 counts, values)
            t, end = seg, pos + 2 + length
            while t + 17 <= end:
                buf[t] &= 0x0F
                t += 17 + sum(buf[t + 1:t + 17])
        elif marker == 0xDA:
            break
        pos += 2 + length
    if size is None:
        raise CorruptImageError("JPEGL data has no lossless frame header (SOF3, 0xFFC3) before its scan")
    _check_size(size[0], size[1], "JPEGL image")
    out = cv2.imdecode(np.frombuffer(bytes(buf), np.uint8), cv2.IMREAD_COLOR if color else cv2.IMREAD_GRAYSCALE)
    if out is None:
        raise CorruptImageError("JPEGL data could not be decoded")
    return out


def _jpeg2000(data: bytes, color: bool) -> np.ndarray:
    if not data.startswith(_JP2_SIGNATURES):
        raise CorruptImageError(f"JPEG 2000 data must start with a JP2 box or a codestream (SOC), not {data[:8]!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            img = Image.open(io.BytesIO(data), formats=["JPEG2000"])
            _check_size(img.size[0], img.size[1], "JPEG 2000 image")
            img.load()
            if img.mode not in ("L", "RGB"):
                arr = np.asarray(img)
                if arr.dtype != np.uint8:  # 16-bit gray: keep the top 8 bits of the stated depth
                    arr = (arr.astype(np.float64) * (255.0 / max(float(arr.max()), 1.0))).astype(np.uint8)
                    img = Image.fromarray(arr, "L")
            if color:
                return np.ascontiguousarray(np.asarray(img.convert("RGB"))[:, :, ::-1])
            return np.ascontiguousarray(np.asarray(img.convert("L")))
    except ImageError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptImageError(f"JPEG 2000 data could not be decoded: {exc}") from None


def decode_pixels(data: bytes, compression: str, width: int, height: int, bits_per_pixel: int = 8,
                  *, color: bool = False) -> np.ndarray:
    """Decode a record's image data.

    Parameters
    ----------
    data : bytes
        The record's image field (999) or binary image data.
    compression : str
        Normalised name (:func:`compression_name`).
    width, height, bits_per_pixel : int
        As the record declares them (used for raw data; compressed data states its own).
    color : bool
        ``(H, W, 3)`` BGR when true (photos), ``(H, W)`` gray otherwise (friction ridge images).

    Raises
    ------
    ImageError
        Unknown compression, damaged data, or an image beyond the pixel limit.
    """
    if not data:
        raise CorruptImageError("the record has no image data")
    if compression == "NONE":
        px = decode_raw(data, width, height, bits_per_pixel)
        if color and px.ndim == 2:
            return np.ascontiguousarray(np.repeat(px[:, :, None], 3, axis=2))
        if not color and px.ndim == 3:
            return cv2.cvtColor(px, cv2.COLOR_BGR2GRAY)
        return px
    if compression in ("WSQ20", "JPEGB", "PNG"):
        return decode_image(data, color=color, min_side=1).pixels
    if compression == "JPEGL":
        return _lossless_jpeg(data, color)
    if compression in ("JP2", "JP2L"):
        return _jpeg2000(data, color)
    raise UnsupportedFormatError(f"compression {compression!r} is not one this reader knows "
                                 "(NONE, WSQ20, JPEGB, JPEGL, JP2, JP2L, PNG)")
