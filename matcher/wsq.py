"""WSQ (FBI Wavelet Scalar Quantization, 8-bit gray fingerprints): frame size and pixels.

The pixels come from NIST's NBIS decoder as wrapped by the ``wsq`` package (IDEMIA,
CeCILL-C).  That decoder is C code that trusts its input: damaged bytes can make it
write out of bounds (a crash of the whole process was seen after ~200 randomly
damaged files, 1 in 400 crashed a fresh process outright).  So it never runs inside
the caller's process: each decode is a short-lived child Python (``-I -S``, importing
only the C extension), fed the bytes on stdin, answering ``width, height`` and the
raw pixels on stdout; a child that dies or fails is a :class:`CorruptImageError`.
That costs a process start per image (~40-70 ms here) on top of the decode itself.

The frame header (marker ``0xFFA2``) is read here in Python, so the caller can apply its
size limits before anything is decoded.

Encoding (:func:`encode`) runs the same package's NBIS encoder in this process: its input is
an array locard made, not bytes from outside.  Its bit rate is fixed inside the extension
(the ``wsq`` package passes no rate through): on the FVC2002 B sets it gives 0.50-0.55 bits
per pixel, a compression ratio of 14.6-15.9 : 1 (benchmarks/README.md, "WSQ"), about the
15 : 1 national archives keep prints at.
"""

from __future__ import annotations

import importlib.util
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np

from .errors import CorruptImageError, ImageError, ImageTooSmallError, UnsupportedFormatError

#: Start of image; every WSQ file begins with it.
SOI = b"\xff\xa0"
_EOI, _SOF, _SOB = 0xFFA1, 0xFFA2, 0xFFA3
#: Markers of segments that carry a 16-bit length (tables, frame and block headers, comments).
_SEGMENTS = frozenset({0xFFA2, 0xFFA3, 0xFFA4, 0xFFA5, 0xFFA6, 0xFFA7, 0xFFA8})
#: Seconds a child decoder may take (a 4000 x 4000 print decodes in well under 2 s).
DECODE_TIMEOUT_S = 30.0
#: Smallest side the encoder takes, pixels: below it NBIS's encoder overflows its own output
#: buffer and refuses (measured: 16 x 16 and 24 x 24 fail, 31 x 40 and 32 x 32 work).
MIN_ENCODE_SIDE = 32
#: Largest side a WSQ frame header can state (16 bits).
MAX_SIDE = 65535
#: Bit rate handed to the encoder; the extension ignores it (see the module docstring).
_BITRATE = 0.75

# Runs in the child: argv[1] is the folder holding the _wsq extension.
_CHILD = ("import sys; sys.path.insert(0, sys.argv[1]); import _wsq\n"
          "buf, w, h, ppi = _wsq.decompress(sys.stdin.buffer.read())\n"
          "out = sys.stdout.buffer; out.write(w.to_bytes(4, 'little') + h.to_bytes(4, 'little')); out.write(buf)\n")


def frame_size(data: bytes) -> tuple[int, int]:
    """Width and height (pixels) from the frame header, without decoding anything.

    Raises
    ------
    CorruptImageError
        Not a WSQ stream, or it ends (or reaches image data) before a frame header.
    """
    if data[:2] != SOI:
        raise CorruptImageError("WSQ data must start with the SOI marker 0xFFA0")
    pos = 2
    while pos + 4 <= len(data):
        marker, length = struct.unpack_from(">HH", data, pos)
        if marker == _SOF:
            if length < 6 or pos + 2 + 6 > len(data):
                break
            height, width = struct.unpack_from(">HH", data, pos + 6)
            return width, height
        if marker not in _SEGMENTS or marker == _SOB or length < 2:
            break
        pos += 2 + length
    raise CorruptImageError("WSQ data has no frame header (0xFFA2) before its image data or end")


def _extension_folder() -> str:
    spec = importlib.util.find_spec("_wsq")
    if spec is None or spec.origin is None:
        raise UnsupportedFormatError("WSQ needs the `wsq` package (pip install wsq), which is not installed")
    return str(Path(spec.origin).parent)


def decode(data: bytes, *, timeout_s: float = DECODE_TIMEOUT_S) -> np.ndarray:
    """Decode WSQ bytes in a child process.

    Returns
    -------
    (H, W) uint8 array

    Raises
    ------
    UnsupportedFormatError
        The ``wsq`` package is not installed.
    CorruptImageError
        The decoder refused the data, crashed on it, or ran past ``timeout_s``.
    """
    folder = _extension_folder()
    try:
        r = subprocess.run([sys.executable, "-I", "-S", "-c", _CHILD, folder], input=bytes(data),
                           capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise CorruptImageError(f"WSQ decoder ran past {timeout_s:.0f} s") from None
    if r.returncode < 0:
        raise CorruptImageError(f"WSQ decoder crashed on this data (signal {-r.returncode})")
    if r.returncode != 0:
        lines = [ln for ln in r.stderr.decode(errors="replace").splitlines() if ln.strip()]
        raise CorruptImageError(f"WSQ data could not be decoded: {lines[-1] if lines else 'decoder failed'}")
    out = r.stdout
    if len(out) < 8:
        raise CorruptImageError("WSQ decoder gave no image")
    w, h = int.from_bytes(out[:4], "little"), int.from_bytes(out[4:8], "little")
    if len(out) != 8 + w * h:
        raise CorruptImageError(f"WSQ decoder gave {len(out) - 8} bytes for a {w}x{h} image")
    return np.frombuffer(out, np.uint8, offset=8).reshape(h, w).copy()


def encode(pixels: np.ndarray) -> bytes:
    """Encode an 8-bit gray image as WSQ (NBIS encoder, fixed bit rate, ~15 : 1 on prints).

    Parameters
    ----------
    pixels : (H, W) uint8 array
        Each side :data:`MIN_ENCODE_SIDE` to :data:`MAX_SIDE` pixels.

    Returns
    -------
    bytes
        A WSQ stream starting with :data:`SOI`; it states no resolution (the container does).

    Raises
    ------
    ImageTooSmallError
        A side below :data:`MIN_ENCODE_SIDE`.
    UnsupportedFormatError
        The ``wsq`` package is not installed.
    ImageError
        Not a 2-D uint8 array, a side above :data:`MAX_SIDE`, or the encoder refused it.
    """
    if not isinstance(pixels, np.ndarray) or pixels.ndim != 2 or pixels.dtype != np.uint8:
        raise ImageError(f"WSQ encodes (H, W) uint8 gray arrays, not {getattr(pixels, 'shape', type(pixels))}")
    h, w = pixels.shape
    if min(h, w) < MIN_ENCODE_SIDE:
        raise ImageTooSmallError(f"image is {w}x{h} pixels; the WSQ encoder needs each side >= {MIN_ENCODE_SIDE}")
    if max(h, w) > MAX_SIDE:
        raise ImageError(f"image is {w}x{h} pixels; a WSQ frame holds at most {MAX_SIDE} per side")
    _extension_folder()
    import _wsq

    try:
        return bytes(_wsq.compress(np.ascontiguousarray(pixels).tobytes(), h, w, _BITRATE))
    except Exception as exc:  # noqa: BLE001 - the extension raises a bare Exception with its error code
        raise ImageError(f"the WSQ encoder refused this {w}x{h} image: {exc}") from None
