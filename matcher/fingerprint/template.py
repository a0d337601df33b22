"""Fingerprint template: the minutiae and the print area, as versioned compact bytes.

Layout of format version 3 (little-endian)::

    magic  b"LCFP"                4 bytes
    version                       u16   (= 3)
    width, height                 u16, u16   pixels at 500 ppi
    quality                       u8    0-100
    mask block size               u8    pixels
    mask rows, mask cols          u16, u16
    minutiae count                u16
    extractor                     u8    0 fast (classical chain), 1 accurate (minutiae network)
    mask bits                     ceil(rows*cols/8) bytes, row-major, np.packbits order
    minutiae                      count x (x u16, y u16, direction u16, type u8, quality u8)
    cohort identifier length      u8    0 = no cohort statistics (then nothing follows)
    cohort identifier             that many ASCII bytes
    cohort mean, sd               f32, f32   raw scores against the cohort

Format 2 is format 3 without the cohort block (:mod:`~matcher.fingerprint.cohort`
measures the statistics again on first use).  Format 1 is format 2 without the
extractor byte; it was only ever written by the classical chain, so it reads as
``fast``.  The extractor matters because each mode has its own score calibration.
Direction is stored in units of 2*pi/65536 rad.  A template is about 8 bytes per
minutia plus ~120 bytes: some 500 bytes for a typical print.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..errors import TemplateError, TemplateVersionError
from .minutiae import MINUTIA_DTYPE

MAGIC = b"LCFP"
#: Template format version written by this build.
FORMAT_VERSION = 3
#: Extraction modes by their code in the template.
EXTRACTORS = ("fast", "accurate")
#: Side of one print-area mask cell, pixels at 500 ppi.
MASK_BLOCK = 8

_HEADER_V1 = struct.Struct("<4sHHHBBHHH")
_HEADER = struct.Struct("<4sHHHBBHHHB")
_MINUTIA = np.dtype([("x", "<u2"), ("y", "<u2"), ("direction", "<u2"), ("type", "u1"), ("quality", "u1")])
_ANGLE_UNIT = 2 * np.pi / 65536


def block_mask(mask: np.ndarray, block: int = MASK_BLOCK) -> np.ndarray:
    """Reduce a pixel mask to one cell per ``block`` x ``block`` pixels (cell = mostly foreground)."""
    h, w = mask.shape
    rows, cols = -(-h // block), -(-w // block)
    small = cv2.resize(mask.astype(np.float32), (cols, rows), interpolation=cv2.INTER_AREA)
    return small >= 0.5


@dataclass(frozen=True)
class CohortStats:
    """A template's raw scores against a cohort (see :mod:`matcher.fingerprint.cohort`)."""

    cohort: str
    """Identifier of the cohort and matcher version the scores were measured with."""
    mean: float
    sd: float


@dataclass(eq=False)
class Template:
    """A fingerprint template.

    Attributes
    ----------
    minutiae : structured array of :data:`~matcher.fingerprint.minutiae.MINUTIA_DTYPE`
    width, height : int
        Size of the 500-ppi image the minutiae were found in, pixels.
    quality : int
        Image quality 0-100.
    mask : (rows, cols) bool
        Print area, one cell per :data:`MASK_BLOCK` pixels.
    extractor : {"accurate", "fast"}
        Extraction mode that found the minutiae (selects the score calibration).
    cohort : CohortStats or None
        Its scores against the cohort, for score normalisation (stored from format 3).
    """

    minutiae: np.ndarray
    width: int
    height: int
    quality: int
    mask: np.ndarray
    extractor: str = "accurate"
    cohort: CohortStats | None = None
    version: int = FORMAT_VERSION
    _derived: dict = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.minutiae)

    @property
    def nbytes(self) -> int:
        """Bytes of the arrays this template holds in memory, with what comparison and search
        cached on it (cylinders, the comparator's prepared arrays; an array shared by two of
        them counted once)."""
        arrays = {id(a): a for a in (self.minutiae, self.mask)}
        for d in self._derived.values():
            for a in (d if isinstance(d, tuple) else vars(d).values()):
                if isinstance(a, np.ndarray):
                    arrays[id(a)] = a
        return sum(a.nbytes for a in arrays.values())

    def in_print(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Whether points (pixels at 500 ppi) fall inside the print area."""
        r = np.floor(np.asarray(y) / MASK_BLOCK).astype(np.int64)
        c = np.floor(np.asarray(x) / MASK_BLOCK).astype(np.int64)
        ok = (r >= 0) & (c >= 0) & (r < self.mask.shape[0]) & (c < self.mask.shape[1])
        out = np.zeros(np.shape(r), bool)
        out[ok] = self.mask[r[ok], c[ok]]
        return out

    def to_bytes(self, *, with_cohort: bool = True) -> bytes:
        """Serialise to format :data:`FORMAT_VERSION` (the cohort block only when known and wanted)."""
        m = self.minutiae
        rec = np.zeros(len(m), _MINUTIA)
        rec["x"] = np.clip(np.round(m["x"]), 0, 65535)
        rec["y"] = np.clip(np.round(m["y"]), 0, 65535)
        rec["direction"] = np.round(np.mod(m["direction"], 2 * np.pi) / _ANGLE_UNIT).astype(np.int64) % 65536
        rec["type"] = m["type"]
        rec["quality"] = m["quality"]
        rows, cols = self.mask.shape
        head = _HEADER.pack(MAGIC, FORMAT_VERSION, self.width, self.height, self.quality, MASK_BLOCK,
                            rows, cols, len(m), EXTRACTORS.index(self.extractor))
        if with_cohort and self.cohort is not None:
            ident = self.cohort.cohort.encode("ascii")
            tail = struct.pack(f"<B{len(ident)}sff", len(ident), ident, self.cohort.mean, self.cohort.sd)
        else:
            tail = b"\0"
        return head + np.packbits(self.mask.ravel()).tobytes() + rec.tobytes() + tail

    @classmethod
    def from_bytes(cls, data: bytes) -> "Template":
        """Decode template bytes.

        Raises
        ------
        TemplateVersionError
            Bytes written by a format this build does not read, with what to do.
        TemplateError
            Bytes that are not a locard fingerprint template or are damaged.
        """
        if len(data) < 6 or data[:4] != MAGIC:
            raise TemplateError("not a locard fingerprint template (missing the LCFP magic)")
        (version,) = struct.unpack_from("<H", data, 4)
        if version > FORMAT_VERSION:
            raise TemplateVersionError(
                f"template format {version} was written by a newer locard; this build reads up to "
                f"format {FORMAT_VERSION}: upgrade locard")
        if version < 1:
            raise TemplateVersionError(
                f"template format {version} is no longer read; re-extract from the source images "
                "(`locard reindex` re-extracts a store's samples)")
        header = _HEADER if version >= 2 else _HEADER_V1
        if len(data) < header.size:
            raise TemplateError(f"template truncated: {len(data)} bytes, header needs {header.size}")
        _, _, width, height, quality, block, rows, cols, n, *code = header.unpack_from(data)
        extractor = EXTRACTORS[code[0]] if code and code[0] < len(EXTRACTORS) else ("fast" if not code else None)
        mask_len = (rows * cols + 7) // 8
        expected = header.size + mask_len + n * _MINUTIA.itemsize
        cohort = None
        if version >= 3:
            k = data[expected] if len(data) > expected else 0
            if k and len(data) == expected + 1 + k + 8:
                ident = data[expected + 1: expected + 1 + k]
                mean, sd = struct.unpack_from("<ff", data, expected + 1 + k)
                if not (ident.isascii() and np.isfinite(mean) and np.isfinite(sd) and sd > 0):
                    raise TemplateError("template damaged: invalid cohort statistics")
                cohort = CohortStats(ident.decode("ascii"), float(mean), float(sd))
            expected += 1 + (k + 8 if k else 0)
        if len(data) != expected or block != MASK_BLOCK or extractor is None:
            raise TemplateError(f"template damaged: {len(data)} bytes where {expected} were expected"
                                if len(data) != expected or block != MASK_BLOCK else
                                f"template damaged: unknown extractor code {code[0]}")
        off = header.size
        mask = np.unpackbits(np.frombuffer(data, np.uint8, mask_len, off))[: rows * cols].reshape(rows, cols)
        rec = np.frombuffer(data, _MINUTIA, n, off + mask_len)
        m = np.zeros(n, MINUTIA_DTYPE)
        m["x"], m["y"] = rec["x"], rec["y"]
        m["direction"] = rec["direction"] * _ANGLE_UNIT
        m["type"], m["quality"] = rec["type"], rec["quality"]
        return cls(minutiae=m, width=width, height=height, quality=quality, mask=mask.astype(bool),
                   extractor=extractor, cohort=cohort)
