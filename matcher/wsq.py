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
"""

from __future__ import annotations

import importlib.util
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np

from .errors import CorruptImageError, UnsupportedFormatError

#: Start of image; every WSQ file begins with it.
SOI = b"\xff\xa0"
_EOI, _SOF, _SOB = 0xFFA1, 0xFFA2, 0xFFA3
#: Markers of segments that carry a 16-bit length (tables, frame and block headers, comments).
_SEGMENTS = frozenset({0xFFA2, 0xFFA3, 0xFFA4, 0xFFA5, 0xFFA6, 0xFFA7, 0xFFA8})
#: Seconds a child decoder may take (a 4000 x 4000 print decodes in well under 2 s).
DECODE_TIMEOUT_S = 30.0

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
