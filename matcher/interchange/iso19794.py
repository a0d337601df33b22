"""ISO/IEC 19794-2 finger minutiae records (2005 and 2011 editions), and reading any
finger minutiae record by its header.

Public API (also exported by :mod:`matcher.interchange`)::

    views = read_template(data)          # bytes -> list[FingerView]; ISO 19794-2:2005/2011 or
                                         # ANSI/INCITS 378-2004/2009, told apart by the header
    view.edition                         # Edition.ISO_2005, ISO_2011, ANSI_2004 or ANSI_2009
    view.to_template()                   # -> matcher.fingerprint.Template (500 ppi, radians;
                                         #    print area = the minutiae's convex hull + 50 px)
    view.to_minutiae()                   # -> MINUTIA_DTYPE array in locard's convention
    view.singular_points(), view.ridge_counts()   # decoded extended data (raw: view.extended)
    write_iso19794_2(template_or_views, edition=2005 | 2011) -> bytes
    write_ansi378(template_or_views, edition=2004 | 2009) -> bytes       (matcher.interchange.ansi378)
    read_iso19794_2(data), read_ansi378(data)    # one standard only
    FingerView.from_template(t, Edition.ISO_2011, position=2)   # a view to write, with metadata

Bad bytes raise :class:`~.record_codec.MinutiaeRecordError` (a
:class:`matcher.errors.TemplateError`, so a :class:`matcher.errors.LocardError`), an edition
this build does not read :class:`~.record_codec.RecordVersionError`.  Units and the
direction convention are in :mod:`.finger_view`.  Card formats (compact, normal size)
are not read.

Layouts (big-endian)
--------------------
2005 (``FMR\\0`` `` 20\\0``): length u32, capture equipment u16 (compliance 4 bits + id 12
bits), image width, height, x and y resolution (px/cm) u16, view count u8, reserved u8; then
per view: position u8, view number (4 bits) + impression type (4 bits), quality u8,
minutiae count u8, 6-byte minutiae (type 2 bits + x 14 bits, reserved 2 bits + y 14 bits,
angle in 360/256 degrees, quality), extended data length u16 and blocks (type u16, length
u16 including these 4 bytes, data).

2011 (``FMR\\0`` ``030\\0``): length u32, representation count u16, certification flag u8;
per representation: length u32, capture date and time (9 bytes), device technology u8,
device vendor u16, device type u16, quality block count u8 and blocks (score u8, vendor
u16, algorithm u16), certification blocks if flagged (count u8; authority u16, scheme u8),
position u8, representation number u8, x and y resolution u16, impression type u8, image
width and height u16 (per view, unlike 2005), minutia record size (4 bits: 5 or 6) + ridge
ending type (4 bits), count u8, minutiae (the 5-byte form has no quality), extended data.
"""

from __future__ import annotations

from typing import Sequence

from ..fingerprint.template import Template
from .ansi378 import fixed_views_body, parse_ansi_2004, parse_ansi_2009, read_fixed_views
from .finger_view import CaptureDevice, FingerView, QualityBlock
from .record_codec import (FMR_MAGIC, ByteReader, Edition, MinutiaeRecordError, RecordVersionError,
                           check_minutiae_fit, check_record_length, check_resolution, extended_bytes, minutiae_bytes,
                           read_extended, read_minutiae, u8, u16, u32)

VERSION_2005 = b" 20\x00"
VERSION_2011 = b"030\x00"
_HEADER_2005 = 24
_HEADER_2011 = 15
#: Smallest 2011 representation: no quality or certification blocks, no minutiae, no extended data.
_MIN_REPRESENTATION_2011 = 34


def read_template(data: bytes) -> list[FingerView]:
    """Every finger view of a finger minutiae record, whichever standard and edition wrote it
    (:func:`detect_edition`).

    Raises
    ------
    MinutiaeRecordError
        Not a finger minutiae record, or a damaged one.
    RecordVersionError
        An edition this build does not read (ANSI 378-2009/AM1 ``035``, others).
    """
    data = bytes(data)
    edition = detect_edition(data)
    try:
        return _PARSERS[edition](data)
    except MinutiaeRecordError as exc:
        if edition != Edition.ANSI_2009:
            raise
        # ANSI 2009 was chosen because the record is no consistent ISO 2011: say both
        raise MinutiaeRecordError(f"'030' record: its representation lengths do not add up as ISO/IEC "
                                  f"19794-2:2011's must, and read as ANSI/INCITS 378-2009: {exc}") from exc


def read_iso19794_2(data: bytes) -> list[FingerView]:
    """:func:`read_template` for ISO/IEC 19794-2 only: an ANSI 378 record is an error."""
    edition = detect_edition(data)
    if not edition.is_iso:
        raise MinutiaeRecordError(f"this is an {edition.value} record, not ISO/IEC 19794-2")
    return read_template(data)


def detect_edition(data: bytes) -> Edition:
    """The standard and edition of a finger minutiae record, from its header.

    ISO 2005 and ANSI 2004 share the version `` 20``; they are told apart by the length
    field (4 bytes in ISO, 2 or 6 in ANSI).  ISO 2011 and ANSI 2009 share ``030``; a record
    is ISO 2011 when its representation lengths add up to its length, else ANSI 2009.

    Raises
    ------
    MinutiaeRecordError, RecordVersionError
        As :func:`read_template`.
    """
    if len(data) < 8:
        raise MinutiaeRecordError(f"not a finger minutiae record: {len(data)} bytes, the header alone is 8")
    if data[:4] != FMR_MAGIC:
        raise MinutiaeRecordError(f"not a finger minutiae record: starts {bytes(data[:4])!r}, not 'FMR\\0'")
    version = bytes(data[4:8])
    if version == VERSION_2005:
        return Edition.ANSI_2004 if _looks_ansi_2004(data) else Edition.ISO_2005
    if version == VERSION_2011:
        if len(data) < 12:
            raise MinutiaeRecordError(f"'030' finger minutiae record truncated: {len(data)} bytes")
        check_record_length(int.from_bytes(data[8:12], "big"), len(data), "'030' finger minutiae record")
        return Edition.ISO_2011 if _looks_iso_2011(data) else Edition.ANSI_2009
    if version == b"035\x00":
        raise RecordVersionError("ANSI/INCITS 378-2009/AM1 ('035') records are not read by this build")
    raise RecordVersionError(f"finger minutiae record version {version!r} is not read by this build "
                             "(ISO/IEC 19794-2:2005 and ANSI/INCITS 378-2004 write ' 20', "
                             "ISO/IEC 19794-2:2011 and ANSI/INCITS 378-2009 '030')")


def write_iso19794_2(source: Template | FingerView | Sequence[FingerView], edition: int | Edition = 2005) -> bytes:
    """An ISO/IEC 19794-2 record (2005 or 2011 edition) of a locard template or of finger views.

    A template becomes one view (finger position unknown, live-scan plain, 197 px/cm);
    views of another edition are converted (:meth:`FingerView.converted`).

    Raises
    ------
    MinutiaeRecordError
        Views that cannot share one 2005 record (different image sizes or resolutions),
        or fields out of the edition's range.
    """
    ed = as_edition(edition, iso=True)
    views = views_for(source, ed)
    return _write_2005(views) if ed == Edition.ISO_2005 else _write_2011(views)


def as_edition(edition: int | Edition, iso: bool) -> Edition:
    """``2005``/``2011`` (ISO) or ``2004``/``2009`` (ANSI) as an :class:`Edition`."""
    years = ({2005: Edition.ISO_2005, 2011: Edition.ISO_2011} if iso else
             {2004: Edition.ANSI_2004, 2009: Edition.ANSI_2009})
    ed = years.get(edition, edition)
    if ed not in years.values():
        raise ValueError(f"edition must be one of {sorted(years)}, got {edition!r}")
    return ed


def views_for(source: Template | FingerView | Sequence[FingerView], edition: Edition) -> list[FingerView]:
    """The views to write: a template's one view, or the views given, in ``edition``'s units."""
    if isinstance(source, Template):
        return [FingerView.from_template(source, edition)]
    views = [source] if isinstance(source, FingerView) else list(source)
    if not views or not all(isinstance(v, FingerView) for v in views):
        raise ValueError("expected a Template, a FingerView or a non-empty sequence of FingerViews")
    return [v.converted(edition) for v in views]


# ---------------------------------------------------------------------- telling editions apart


def _looks_ansi_2004(data: bytes) -> bool:
    """`` 20`` records: ANSI 2004 has a 2-byte length (>= 26) or 0 and a 4-byte length; ISO 2005 a 4-byte one."""
    if len(data) < 12:
        return False
    first = int.from_bytes(data[8:10], "big")
    if first:
        return first >= 26  # an ISO record would need >= 1.7 MB for its top half to reach 26
    return int.from_bytes(data[10:12], "big") < _HEADER_2005  # ANSI's 6-byte length: its high half


def _looks_iso_2011(data: bytes) -> bool:
    """Whether the representation lengths of a ``030`` record add up to its length (as ISO 2011)."""
    if len(data) < _HEADER_2011:
        return False
    count, flag = int.from_bytes(data[12:14], "big"), data[14]
    if count == 0 or flag > 1:
        return False
    pos = _HEADER_2011
    for _ in range(count):
        if pos + 4 > len(data):
            return False
        length = int.from_bytes(data[pos:pos + 4], "big")
        if length < _MIN_REPRESENTATION_2011:
            return False
        pos += length
    return pos == len(data)


# ---------------------------------------------------------------------- 2005


def _parse_2005(data: bytes) -> list[FingerView]:
    ed = Edition.ISO_2005
    r = ByteReader(data, ed.value, 8)
    check_record_length(r.u32("record length"), len(data), ed.value)
    equipment = r.u16("capture equipment")
    width, height = r.u16("image width"), r.u16("image height")
    xres, yres = r.u16("x resolution"), r.u16("y resolution")
    check_resolution(xres, yres, ed.value)
    n_views = r.u8("finger view count")
    r.u8("reserved byte")
    r.need(n_views * 6, f"{n_views} finger views of at least 6 bytes")
    capture = CaptureDevice(compliance=equipment >> 12, device_id=equipment & 0x0FFF)
    return read_fixed_views(r, n_views, ed, width=width, height=height, x_resolution=xres, y_resolution=yres,
                            capture=capture)


def _write_2005(views: list[FingerView]) -> bytes:
    ed = Edition.ISO_2005
    first = views[0]
    body = fixed_views_body(views, ed, "2011")
    if first.capture.compliance > 15 or first.capture.device_id > 0x0FFF:
        raise MinutiaeRecordError(f"{ed.value}: capture equipment compliance is 4 bits, its id 12 bits")
    head = (FMR_MAGIC + VERSION_2005 + u32(_HEADER_2005 + len(body), "record length")
            + u16(first.capture.compliance << 12 | first.capture.device_id, "capture equipment")
            + u16(first.width, "image width") + u16(first.height, "image height")
            + u16(first.x_resolution, "x resolution") + u16(first.y_resolution, "y resolution")
            + u8(len(views), "finger view count") + b"\x00")
    return head + body


# ---------------------------------------------------------------------- 2011


def _parse_2011(data: bytes) -> list[FingerView]:
    ed = Edition.ISO_2011
    r = ByteReader(data, ed.value, 8)
    check_record_length(r.u32("record length"), len(data), ed.value)
    count = r.u16("representation count")
    certified = r.u8("certification flag")
    if certified > 1:
        raise MinutiaeRecordError(f"{ed.value}: certification flag {certified}, must be 0 or 1")
    r.need(count * _MIN_REPRESENTATION_2011, f"{count} representations of at least {_MIN_REPRESENTATION_2011} bytes")
    views = []
    for k in range(count):
        what = f"{ed.value}, representation {k}"
        length = r.u32("representation length")
        if length < _MIN_REPRESENTATION_2011:
            raise MinutiaeRecordError(f"{what}: length {length}, at least {_MIN_REPRESENTATION_2011}")
        v = r.sub(length - 4, f"representation {k}")
        captured_at = v.take(9, "capture date and time")
        technology, vendor, device = v.u8("device technology"), v.u16("device vendor"), v.u16("device type")
        n_quality = v.u8("quality block count")
        v.need(5 * n_quality, f"{n_quality} quality blocks")
        blocks = tuple(QualityBlock(v.u8("quality score"), v.u16("quality vendor"), v.u16("quality algorithm"))
                       for _ in range(n_quality))
        certifications: tuple[tuple[int, int], ...] = ()
        if certified:
            n_cert = v.u8("certification block count")
            v.need(3 * n_cert, f"{n_cert} certification blocks")
            certifications = tuple((v.u16("certification authority"), v.u8("certification scheme"))
                                   for _ in range(n_cert))
        position, number = v.u8("finger position"), v.u8("representation number")
        xres, yres = v.u16("x resolution"), v.u16("y resolution")
        check_resolution(xres, yres, what)
        impression = v.u8("impression type")
        width, height = v.u16("image width"), v.u16("image height")
        packed = v.u8("minutia record size and ridge ending type")
        size = packed >> 4
        if size not in (5, 6):
            raise MinutiaeRecordError(f"{what}: minutia record size {size}, must be 5 or 6")
        minutiae = read_minutiae(v, v.u8("minutiae count"), size, ed)
        extended = read_extended(v)
        v.done()
        capture = CaptureDevice(device_id=device, technology=technology, vendor=vendor, captured_at=captured_at,
                                certifications=certifications)
        views.append(FingerView(edition=ed, width=width, height=height, minutiae=minutiae, x_resolution=xres,
                                y_resolution=yres, position=position, view=number, impression=impression,
                                quality=blocks[0].score if blocks else 254, extended=extended,
                                quality_blocks=blocks, capture=capture, ending_type=packed & 0x0F,
                                minutia_quality=size == 6))
    r.done()
    return views


def _write_2011(views: list[FingerView]) -> bytes:
    ed = Edition.ISO_2011
    certified = any(v.capture.certifications for v in views)
    body = b""
    for k, v in enumerate(views):
        what = f"{ed.value}, representation {k}"
        check_minutiae_fit(v, what)
        if len(v.capture.captured_at) != 9 or v.ending_type > 15:
            raise MinutiaeRecordError(f"{what}: capture date and time is 9 bytes, ridge ending type 4 bits")
        c = v.capture
        rep = (c.captured_at + u8(c.technology, "device technology") + u16(c.vendor, "device vendor")
               + u16(c.device_id, "device type") + u8(len(v.quality_blocks), "quality block count")
               + b"".join(u8(q.score, "quality score") + u16(q.vendor, "quality vendor")
                          + u16(q.algorithm, "quality algorithm") for q in v.quality_blocks))
        if certified:
            rep += u8(len(c.certifications), "certification block count") + b"".join(
                u16(a, "certification authority") + u8(s, "certification scheme") for a, s in c.certifications)
        rep += (u8(v.position, "finger position") + u8(v.view, "representation number")
                + u16(v.x_resolution, "x resolution") + u16(v.y_resolution, "y resolution")
                + u8(v.impression, "impression type") + u16(v.width, "image width") + u16(v.height, "image height")
                + bytes([(6 if v.minutia_quality else 5) << 4 | v.ending_type]) + bytes([len(v.minutiae)])
                + minutiae_bytes(v.minutiae, v.minutia_quality) + extended_bytes(v.extended, what))
        body += u32(len(rep) + 4, "representation length") + rep
    return (FMR_MAGIC + VERSION_2011 + u32(_HEADER_2011 + len(body), "record length")
            + u16(len(views), "representation count") + bytes([certified]) + body)


_PARSERS = {Edition.ISO_2005: _parse_2005, Edition.ISO_2011: _parse_2011,
            Edition.ANSI_2004: parse_ansi_2004, Edition.ANSI_2009: parse_ansi_2009}
