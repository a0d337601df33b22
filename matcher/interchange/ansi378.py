"""ANSI/INCITS 378 finger minutiae records (2004 and 2009 editions).

Read them with :func:`matcher.interchange.iso19794.read_template` (any edition, told apart
by the header) or :func:`read_ansi378`; write them with :func:`write_ansi378`.  The model,
units and direction convention are :mod:`.finger_view`'s.  How ANSI differs from ISO:
angles count 2 degrees (0-179) instead of 360/256, the header carries a CBEFF product
identifier, and the core/delta block flags angles in its count byte.

Layouts (big-endian)
--------------------
2004 (``FMR\\0`` `` 20\\0``): length u16, or 0 then u32 when the record is 65,536 bytes or
more; CBEFF product owner u16 and type u16; capture equipment u16 (compliance 4 bits + id
12 bits); image width, height, x and y resolution (px/cm) u16; view count u8; reserved u8;
then views as ISO 2005's (position, view number + impression type, quality, count,
6-byte minutiae, extended data).

2009 (``FMR\\0`` ``030\\0``): length u32; CBEFF product owner u16 and type u16; certification
u8 (bit 7: certified sensor); sensor id u16; view count u8; reserved u8; per view: position
u8, view number u8, impression type u8, quality u8, quality vendor u16, quality algorithm
u16, image width, height, x and y resolution u16 (per view), count u8, 6-byte minutiae
(quality 254: not reported, 255: failed), extended data.
"""

from __future__ import annotations

from typing import Sequence

from ..fingerprint.template import Template
from .finger_view import CaptureDevice, FingerView, QualityBlock
from .record_codec import (FMR_MAGIC, ByteReader, Edition, MinutiaeRecordError, check_minutiae_fit,
                           check_record_length, check_resolution, extended_bytes, minutiae_bytes, read_extended,
                           read_minutiae, u8, u16, u32)

VERSION_2004 = b" 20\x00"
VERSION_2009 = b"030\x00"
_HEADER_2009 = 21
_MIN_VIEW_2004 = 6
_MIN_VIEW_2009 = 19


def read_ansi378(data: bytes) -> list[FingerView]:
    """Finger views of an ANSI/INCITS 378 record (2004 or 2009): an ISO record is an error."""
    from .iso19794 import detect_edition, read_template

    edition = detect_edition(data)
    if edition.is_iso:
        raise MinutiaeRecordError(f"this is an {edition.value} record, not ANSI/INCITS 378")
    return read_template(data)


def write_ansi378(source: Template | FingerView | Sequence[FingerView], edition: int | Edition = 2004) -> bytes:
    """An ANSI/INCITS 378 record (2004 or 2009 edition) of a locard template or of finger views.

    A template becomes one view (finger position unknown, live-scan plain, 197 px/cm,
    CBEFF product identifier 0: unreported); views of another edition are converted.

    Raises
    ------
    MinutiaeRecordError
        Views that cannot share one 2004 record (different image sizes, resolutions or
        capture devices), or fields out of the edition's range.
    """
    from .iso19794 import as_edition, views_for

    ed = as_edition(edition, iso=False)
    views = views_for(source, ed)
    return _write_2004(views) if ed == Edition.ANSI_2004 else _write_2009(views)


# ---------------------------------------------------------------------- 2004


def parse_ansi_2004(data: bytes) -> list[FingerView]:
    """Views of an ANSI/INCITS 378-2004 record (header already told apart from ISO 2005)."""
    ed = Edition.ANSI_2004
    r = ByteReader(data, ed.value, 8)
    length = r.u16("record length")
    if length == 0:
        length = r.u32("6-byte record length")
    check_record_length(length, len(data), ed.value)
    owner, kind = r.u16("CBEFF product owner"), r.u16("CBEFF product type")
    equipment = r.u16("capture equipment")
    width, height = r.u16("image width"), r.u16("image height")
    xres, yres = r.u16("x resolution"), r.u16("y resolution")
    check_resolution(xres, yres, ed.value)
    n_views = r.u8("finger view count")
    r.u8("reserved byte")
    r.need(n_views * _MIN_VIEW_2004, f"{n_views} finger views of at least {_MIN_VIEW_2004} bytes")
    capture = CaptureDevice(compliance=equipment >> 12, device_id=equipment & 0x0FFF, product_owner=owner,
                            product_type=kind)
    return read_fixed_views(r, n_views, ed, width=width, height=height, x_resolution=xres, y_resolution=yres,
                            capture=capture)


def read_fixed_views(r: ByteReader, n_views: int, ed: Edition, **frame) -> list[FingerView]:
    """The finger views of a 2004-layout record to its end: ANSI 378-2004 and ISO/IEC 19794-2:2005
    (which took this layout from it) write each view as position, view/impression, quality,
    minutiae count, 6-byte minutiae, extended data; ``frame`` is the record's image size,
    resolution and capture device, shared by every view."""
    views = []
    for k in range(n_views):
        r.what = f"{ed.value}, finger view {k}"
        position, packed = r.u8("finger position"), r.u8("view number and impression type")
        quality, count = r.u8("finger quality"), r.u8("minutiae count")
        minutiae = read_minutiae(r, count, 6, ed)
        views.append(FingerView(edition=ed, minutiae=minutiae, position=position, view=packed >> 4,
                                impression=packed & 0x0F, quality=quality, extended=read_extended(r), **frame))
    r.what = ed.value
    r.done()
    return views


def fixed_views_body(views: Sequence[FingerView], ed: Edition, newer: str, more_shared=lambda v: ()) -> bytes:
    """The finger views of a 2004-layout record (see :func:`read_fixed_views`) as bytes.

    Such a record has one image size, resolution and capture device (``more_shared``: what
    else the edition keeps once per record) for all its views; a view that differs needs
    the ``newer`` edition.
    """
    def frame(v: FingerView):
        return (v.width, v.height, v.x_resolution, v.y_resolution, v.capture.compliance, v.capture.device_id,
                *more_shared(v))

    shared = frame(views[0])
    body = b""
    for k, v in enumerate(views):
        what = f"{ed.value}, finger view {k}"
        if frame(v) != shared:
            raise MinutiaeRecordError(f"{what}: a {ed.value} record has one image size, resolution and capture "
                                      f"device for all its views; write a {newer} record instead")
        check_minutiae_fit(v, what)
        if v.view > 15 or v.impression > 15:
            raise MinutiaeRecordError(f"{what}: view number and impression type must be 0-15")
        body += (u8(v.position, "finger position") + bytes([v.view << 4 | v.impression])
                 + u8(v.quality, "finger quality") + bytes([len(v.minutiae)]) + minutiae_bytes(v.minutiae)
                 + extended_bytes(v.extended, what))
    return body


def _write_2004(views: list[FingerView]) -> bytes:
    ed = Edition.ANSI_2004
    first = views[0]
    c = first.capture
    body = fixed_views_body(views, ed, "2009", lambda v: (v.capture.product_owner, v.capture.product_type))
    if c.compliance > 15 or c.device_id > 0x0FFF:
        raise MinutiaeRecordError(f"{ed.value}: capture equipment compliance is 4 bits, its id 12 bits")
    rest = (u16(c.product_owner, "CBEFF product owner") + u16(c.product_type, "CBEFF product type")
            + u16(c.compliance << 12 | c.device_id, "capture equipment")
            + u16(first.width, "image width") + u16(first.height, "image height")
            + u16(first.x_resolution, "x resolution") + u16(first.y_resolution, "y resolution")
            + u8(len(views), "finger view count") + b"\x00" + body)
    total = 8 + 2 + len(rest)  # magic, version, 2-byte length
    length = u16(total, "record length") if total < 0x10000 else b"\x00\x00" + u32(total + 4, "record length")
    return FMR_MAGIC + VERSION_2004 + length + rest


# ---------------------------------------------------------------------- 2009


def parse_ansi_2009(data: bytes) -> list[FingerView]:
    """Views of an ANSI/INCITS 378-2009 record (header already told apart from ISO 2011)."""
    ed = Edition.ANSI_2009
    r = ByteReader(data, ed.value, 8)
    check_record_length(r.u32("record length"), len(data), ed.value)
    owner, kind = r.u16("CBEFF product owner"), r.u16("CBEFF product type")
    certification = r.u8("sensor certification")
    sensor = r.u16("sensor id")
    n_views = r.u8("finger view count")
    r.u8("reserved byte")
    r.need(n_views * _MIN_VIEW_2009, f"{n_views} finger views of at least {_MIN_VIEW_2009} bytes")
    capture = CaptureDevice(device_id=sensor, product_owner=owner, product_type=kind,
                            certified=bool(certification & 0x80))
    views = []
    for k in range(n_views):
        r.what = f"{ed.value}, finger view {k}"
        position, number = r.u8("finger position"), r.u8("view number")
        impression, quality = r.u8("impression type"), r.u8("finger quality")
        block = QualityBlock(quality, r.u16("quality vendor"), r.u16("quality algorithm"))
        width, height = r.u16("image width"), r.u16("image height")
        xres, yres = r.u16("x resolution"), r.u16("y resolution")
        check_resolution(xres, yres, r.what)
        minutiae = read_minutiae(r, r.u8("minutiae count"), 6, ed)
        views.append(FingerView(edition=ed, width=width, height=height, minutiae=minutiae, x_resolution=xres,
                                y_resolution=yres, position=position, view=number, impression=impression,
                                quality=quality, extended=read_extended(r), quality_blocks=(block,),
                                capture=capture))
    r.what = ed.value
    r.done()
    return views


def _write_2009(views: list[FingerView]) -> bytes:
    ed = Edition.ANSI_2009
    c = views[0].capture
    if any((v.capture.product_owner, v.capture.product_type, v.capture.certified, v.capture.device_id)
           != (c.product_owner, c.product_type, c.certified, c.device_id) for v in views):
        raise MinutiaeRecordError(f"{ed.value}: a record has one CBEFF product identifier and sensor")
    body = b""
    for k, v in enumerate(views):
        what = f"{ed.value}, finger view {k}"
        check_minutiae_fit(v, what)
        q = v.quality_blocks[0] if v.quality_blocks else QualityBlock(v.quality)
        body += (u8(v.position, "finger position") + u8(v.view, "view number") + u8(v.impression, "impression type")
                 + u8(q.score, "finger quality") + u16(q.vendor, "quality vendor")
                 + u16(q.algorithm, "quality algorithm") + u16(v.width, "image width")
                 + u16(v.height, "image height") + u16(v.x_resolution, "x resolution")
                 + u16(v.y_resolution, "y resolution") + bytes([len(v.minutiae)]) + minutiae_bytes(v.minutiae)
                 + extended_bytes(v.extended, what))
    return (FMR_MAGIC + VERSION_2009 + u32(_HEADER_2009 + len(body), "record length")
            + u16(c.product_owner, "CBEFF product owner") + u16(c.product_type, "CBEFF product type")
            + bytes([0x80 if c.certified else 0]) + u16(c.device_id, "sensor id")
            + u8(len(views), "finger view count") + b"\x00" + body)
