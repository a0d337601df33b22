"""The byte-level vocabulary every finger minutiae record shares (ISO/IEC 19794-2 and
ANSI/INCITS 378): the editions, the errors, a bounds-checked reader, minutia records,
extended data blocks and the core/delta block (big-endian throughout, as the standards write).

Every read checks the bytes it needs against the bytes present before it slices or
allocates, so a damaged or hostile record (a count of 255 minutiae in 20 bytes, a block
length past the end) raises :class:`MinutiaeRecordError` and never reads or allocates from a
declared size alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np

from ..errors import TemplateError, TemplateVersionError

class MinutiaeRecordError(TemplateError):
    """Bytes that are not a well-formed finger minutiae record (wrong magic, truncated,
    lengths that disagree, counts beyond the bytes present, codes the standard forbids), or a
    view that cannot be written in the edition asked for."""


class RecordVersionError(MinutiaeRecordError, TemplateVersionError):
    """A finger minutiae record ("FMR") of an edition this build does not read."""


class Edition(str, Enum):
    """A standard and its edition; every :class:`FingerView` says which one it came from."""

    ISO_2005 = "ISO/IEC 19794-2:2005"
    ISO_2011 = "ISO/IEC 19794-2:2011"
    ANSI_2004 = "ANSI/INCITS 378-2004"
    ANSI_2009 = "ANSI/INCITS 378-2009"

    @property
    def is_iso(self) -> bool:
        return self in (Edition.ISO_2005, Edition.ISO_2011)

    @property
    def angle_unit(self) -> float:
        """Radians per angle code: 360/256 degrees (ISO), 2 degrees (ANSI)."""
        return 2 * math.pi / 256 if self.is_iso else math.pi / 90

    @property
    def angle_codes(self) -> int:
        """Number of angle codes in a full turn (256 ISO, 180 ANSI)."""
        return 256 if self.is_iso else 180

    @property
    def reports_unknown_quality(self) -> bool:
        """Whether quality 254/255 mean "not reported"/"failed" (2009 and 2011 editions)."""
        return self in (Edition.ISO_2011, Edition.ANSI_2009)


#: Minutiae as a record stores them: type code, position (record pixels), angle code, quality code.
RECORD_MINUTIA_DTYPE = np.dtype([("type", np.uint8), ("x", np.uint16), ("y", np.uint16),
                                 ("angle", np.uint8), ("quality", np.uint8)])
#: Largest coordinate a record holds (14 bits).
MAX_COORDINATE = (1 << 14) - 1
#: Extended data block type of ridge counts and of cores and deltas (all editions).
RIDGE_COUNT_BLOCK, CORE_DELTA_BLOCK = 1, 2


@dataclass(frozen=True)
class ExtendedBlock:
    """One extended data block, kept as raw bytes (type 1 ridge counts, 2 cores and deltas,
    3 zonal quality in the 2011 edition, 0x0100 and up vendor data)."""

    type: int
    data: bytes


FMR_MAGIC = b"FMR\x00"
_MINUTIA_6 = np.dtype([("xw", ">u2"), ("yw", ">u2"), ("angle", "u1"), ("quality", "u1")])
_MINUTIA_5 = np.dtype([("xw", ">u2"), ("yw", ">u2"), ("angle", "u1")])


class ByteReader:
    """Reads fields off ``data[start:end]``; every overrun is a :class:`MinutiaeRecordError`."""

    def __init__(self, data: bytes, what: str, start: int = 0, end: int | None = None):
        self.data = data
        self.what = what
        self.pos = start
        self.end = len(data) if end is None else end

    @property
    def remaining(self) -> int:
        return self.end - self.pos

    def need(self, n: int, field: str) -> None:
        """Raise unless ``n`` more bytes are present."""
        if n > self.remaining:
            raise MinutiaeRecordError(
                f"{self.what}: {field} needs {n} bytes at offset {self.pos}, only {self.remaining} left")

    def take(self, n: int, field: str) -> bytes:
        self.need(n, field)
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return bytes(out)

    def u8(self, field: str) -> int:
        return self.take(1, field)[0]

    def u16(self, field: str) -> int:
        return int.from_bytes(self.take(2, field), "big")

    def u32(self, field: str) -> int:
        return int.from_bytes(self.take(4, field), "big")

    def sub(self, n: int, what: str) -> "ByteReader":
        """A reader over the next ``n`` bytes (which this one skips), for the part ``what``."""
        self.need(n, what)
        out = ByteReader(self.data, f"{self.what}, {what}", self.pos, self.pos + n)
        self.pos += n
        return out

    def done(self) -> None:
        """Raise if bytes are left over: lengths that disagree with the content."""
        if self.remaining:
            raise MinutiaeRecordError(f"{self.what}: {self.remaining} bytes after its last field "
                                      "(a length field disagrees with the content)")


def check_record_length(declared: int, present: int, what: str) -> None:
    """A record's length field must equal the bytes given."""
    if declared != present:
        state = "truncated" if present < declared else "longer than it says"
        raise MinutiaeRecordError(f"{what}: {state}: the record declares {declared} bytes, {present} were given")


def check_resolution(x: int, y: int, what: str) -> None:
    if x == 0 or y == 0:
        raise MinutiaeRecordError(f"{what}: resolution {x} x {y} px/cm: positions cannot be placed")


def read_minutiae(r: ByteReader, count: int, size: int, edition: Edition) -> np.ndarray:
    """``count`` minutia records of ``size`` bytes (6, or 5 without quality in ISO 2011)."""
    r.need(count * size, f"{count} minutiae of {size} bytes")
    raw = np.frombuffer(r.take(count * size, "minutiae"), _MINUTIA_6 if size == 6 else _MINUTIA_5)
    out = np.zeros(count, RECORD_MINUTIA_DTYPE)
    out["type"] = raw["xw"] >> 14
    out["x"] = raw["xw"] & 0x3FFF
    out["y"] = raw["yw"] & 0x3FFF  # the top two bits are reserved
    out["angle"] = raw["angle"]
    out["quality"] = raw["quality"] if size == 6 else 254  # 254: not reported
    bad = np.flatnonzero(out["type"] == 3)
    if len(bad):
        raise MinutiaeRecordError(f"{r.what}: minutia {bad[0]} has type code 3, which is reserved")
    if not edition.is_iso:
        bad = np.flatnonzero(out["angle"] >= 180)
        if len(bad):
            raise MinutiaeRecordError(f"{r.what}: minutia {bad[0]} has angle code {out['angle'][bad[0]]}; "
                                      "ANSI 378 angles are 0-179 (2-degree units)")
    return out


def read_extended(r: ByteReader) -> tuple[ExtendedBlock, ...]:
    """The extended data length and its blocks (type, length including the 4-byte block header, data)."""
    total = r.u16("extended data length")
    blocks = r.sub(total, "extended data")
    out = []
    while blocks.remaining:
        kind = blocks.u16("extended block type")
        length = blocks.u16("extended block length")
        if length < 4:
            raise MinutiaeRecordError(f"{r.what}: extended block of length {length} (at least its 4-byte header)")
        out.append(ExtendedBlock(kind, blocks.take(length - 4, f"extended block {kind:#06x}")))
    return tuple(out)


def minutiae_bytes(minutiae: np.ndarray, with_quality: bool = True) -> bytes:
    """Minutia records in the standard's layout (6 bytes, or 5 without quality)."""
    raw = np.zeros(len(minutiae), _MINUTIA_6 if with_quality else _MINUTIA_5)
    raw["xw"] = (minutiae["type"].astype(np.uint16) << 14) | (minutiae["x"] & 0x3FFF)
    raw["yw"] = minutiae["y"] & 0x3FFF
    raw["angle"] = minutiae["angle"]
    if with_quality:
        raw["quality"] = minutiae["quality"]
    return raw.tobytes()


def extended_bytes(blocks: tuple[ExtendedBlock, ...], what: str) -> bytes:
    """The extended data length followed by the blocks."""
    body = b"".join(b.type.to_bytes(2, "big") + u16(len(b.data) + 4, f"{what}: extended block") + b.data
                    for b in blocks)
    return u16(len(body), f"{what}: extended data") + body


def u8(value: int, field: str) -> bytes:
    return _uint(value, 1, field)


def u16(value: int, field: str) -> bytes:
    return _uint(value, 2, field)


def u32(value: int, field: str) -> bytes:
    return _uint(value, 4, field)


def _uint(value: int, size: int, field: str) -> bytes:
    value = int(value)
    if not 0 <= value < 1 << (8 * size):
        raise MinutiaeRecordError(f"{field} = {value} does not fit {size} byte(s)")
    return value.to_bytes(size, "big")


def check_minutiae_fit(view, what: str) -> None:
    """Checks common to every writer: at most 255 minutiae, codes the edition allows."""
    m = view.minutiae
    if len(m) > 255:
        raise MinutiaeRecordError(f"{what}: {len(m)} minutiae, a finger view holds at most 255")
    if len(m) and (m["type"].max() > 2 or m["x"].max() > 0x3FFF or m["y"].max() > 0x3FFF):
        raise MinutiaeRecordError(f"{what}: minutia type above 2 or position beyond 14 bits")
    if len(m) and m["angle"].max() >= view.edition.angle_codes:
        raise MinutiaeRecordError(f"{what}: angle code {m['angle'].max()} beyond {view.edition.value}'s range")


def angle_codes(standard: np.ndarray, edition: Edition) -> np.ndarray:
    """Angles counter-clockwise on screen (radians) -> the edition's codes."""
    n = edition.angle_codes
    return (np.round(np.mod(standard, 2 * np.pi) / edition.angle_unit).astype(np.int64) % n).astype(np.uint8)


# ---------------------------------------------------------------------- cores and deltas


def decode_core_delta(data: bytes, edition: Edition) -> tuple[list, list]:
    """Cores [(x, y, angle code or None)] and deltas [(x, y, (3 codes) or None)], record units.

    ISO marks "angle present" per point in the two top bits of x (01); ANSI marks it for
    all points in bit 0x40 of the count byte.  Counts are the count byte's low 4 bits.
    """
    pos = 0

    def take(n: int) -> bytes:
        nonlocal pos
        if pos + n > len(data):
            raise MinutiaeRecordError(f"core/delta block of {len(data)} bytes ends inside a point")
        out = data[pos:pos + n]
        pos += n
        return out

    result = []
    for n_angles in (1, 3):
        info = take(1)[0]
        points = []
        for _ in range(info & 0x0F):
            xw, yw = int.from_bytes(take(2), "big"), int.from_bytes(take(2), "big")
            has_angle = (xw >> 14) == 1 if edition.is_iso else bool(info & 0x40)
            angles = tuple(take(n_angles)) if has_angle else None
            points.append((xw & MAX_COORDINATE, yw & MAX_COORDINATE, angles))
        result.append(points)
    if pos != len(data):
        raise MinutiaeRecordError(f"core/delta block has {len(data) - pos} bytes after its last point")
    return result[0], result[1]


def encode_core_delta(cores: list, deltas: list, edition: Edition) -> bytes:
    """The block's bytes for points as :func:`decode_core_delta` gives them.  ANSI flags angles for
    a whole list, so a list where some points lack them is written without any."""
    out = bytearray()
    for points in (cores, deltas):
        all_angles = bool(points) and all(p[2] is not None for p in points)
        out.append(len(points) | (0x40 if all_angles and not edition.is_iso else 0))
        for x, y, angles in points:
            has = angles is not None and (edition.is_iso or all_angles)
            out += (((1 << 14) if has and edition.is_iso else 0) | x).to_bytes(2, "big") + y.to_bytes(2, "big")
            if has:
                out += bytes(angles)
    return bytes(out)


def recode_core_delta(block: ExtendedBlock, source: Edition, target: Edition) -> ExtendedBlock:
    """A core/delta block of one standard re-encoded for the other (layout and angle units)."""
    cores, deltas = decode_core_delta(block.data, source)

    def recode(points: list) -> list:
        return [(x, y, None if a is None else
                 tuple(int(c) for c in angle_codes(np.asarray(a, np.float64) * source.angle_unit, target)))
                for x, y, a in points]

    return ExtendedBlock(block.type, encode_core_delta(recode(cores), recode(deltas), target))
