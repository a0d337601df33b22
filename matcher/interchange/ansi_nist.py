"""ANSI/NIST-ITL transactions read into typed records: :func:`read_transaction`.

The byte layer is :mod:`.ansi_nist_encoding`; this module says what the fields mean.

============  ======================================  ==========================================
record type   read as                                 notes
============  ======================================  ==========================================
1             :class:`TransactionInfo`                CNT, NSR/NTR (native/transmitting ppi)
2             :class:`DescriptiveText`                every field kept (:meth:`Transaction.metadata`)
3, 4, 5, 6    :class:`FingerprintImage` (binary)      IMP, FGP, ISR, HLL/VLL, GCA 0 raw or 1 WSQ
9             :class:`~.ansi_nist_minutiae.MinutiaeRecord`   INCITS 378 and original blocks
10            :class:`PhotoImage`                     face or other photo by IMT
13, 14, 15    :class:`FingerprintImage` (tagged)      latent, exemplar, palm; FGP/PLP, SLC/THPS
other         :class:`UnreadRecord`                   kept (fields, data or binary body), skipped
============  ======================================  ==========================================

Resolution: tagged records state it (SLC 1 pixels per inch, 2 pixels per centimetre, 0 none);
binary records by ISR: 0 the minimum scanning resolution (19.69 px/mm = 500 ppi; half for
the low-resolution Types 3 and 5), 1 the transmitting resolution of 1.012 (NTR, else 1.011
NSR).  Values within 1 % of 250, 500, 1000 ... ppi are read as those (197 px/cm is 500 ppi,
as the standard means it), so a 500 ppi print is not resampled by 0.08 %.

Images are decoded while reading (``decode_images=False`` skips it); one that cannot be
decoded gets ``pixels=None`` and an ``error`` message, and the rest is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np

from ..errors import LocardError
from .ansi_nist_encoding import BinaryRecord, Field, TaggedRecord, decode_transaction
from .ansi_nist_images import compression_name, decode_pixels
from .ansi_nist_minutiae import MinutiaeRecord, read_minutiae_record
from .finger_view import ppi_from_ppcm

#: Decoded pixels one transaction may hold in all (later images get an error instead).
DECODED_PIXEL_BUDGET = 150_000_000
#: Finger positions (FGP) of one finger's image; 11 and 12 are plain thumbs (read as 1 and 6).
SINGLE_FINGER_POSITIONS = frozenset(range(0, 13))
#: Domain (1.013) of transactions written by locard: 2.003 holds the subject id.
LOCARD_DOMAIN = "LOCARD"
_STANDARD_PPI = (250.0, 500.0, 1000.0, 2000.0)
_BINARY_IMAGE_TYPES = frozenset({3, 4, 5, 6})
_TAGGED_RIDGE_TYPES = frozenset({13, 14, 15})


def snap_ppi(ppi: float) -> float:
    """A resolution within 1 % of 250, 500, 1000 or 2000 ppi read as that value."""
    for s in _STANDARD_PPI:
        if abs(ppi - s) <= 0.01 * s:
            return s
    return round(ppi, 2)


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None and text.strip() else None
    except ValueError:
        return None


@dataclass(frozen=True)
class TransactionInfo:
    """The Type-1 record.

    ``native_ppi`` (1.011 NSR) and ``transmitting_ppi`` (1.012 NTR) are pixels per inch
    (the fields are pixels per millimetre; ``None`` when absent or 0).  ``contents`` is CNT:
    (record type, IDC) of every record after Type-1.  ``fields`` holds every field as read.
    """

    version: str
    type_of_transaction: str
    date: str
    destination_agency: str
    originating_agency: str
    control_number: str
    control_reference: str | None
    priority: str | None
    native_ppi: float | None
    transmitting_ppi: float | None
    domain: tuple[str, ...]
    gmt: str | None
    character_set: tuple[str, ...]
    contents: tuple[tuple[int, int], ...]
    fields: tuple[Field, ...]

    @classmethod
    def from_record(cls, rec: TaggedRecord) -> "TransactionInfo":
        def ppi(tag: int) -> float | None:
            v = _number(rec.text(tag))
            return snap_ppi(v * 25.4) if v else None

        cnt = rec.get(3)
        contents = tuple((int(sf[0]), int(sf[1])) for sf in (cnt.subfields[1:] if cnt else ()))
        get = rec.get
        return cls(version=rec.text(2) or "", type_of_transaction=rec.text(4) or "", date=rec.text(5) or "",
                   destination_agency=rec.text(7) or "", originating_agency=rec.text(8) or "",
                   control_number=rec.text(9) or "", control_reference=rec.text(10), priority=rec.text(6),
                   native_ppi=ppi(11), transmitting_ppi=ppi(12),
                   domain=get(13).items if get(13) else (), gmt=rec.text(14),
                   character_set=get(15).items if get(15) else (), contents=contents, fields=rec.fields)


@dataclass(frozen=True)
class DescriptiveText:
    """A Type-2 record: every field as read (meaning set by the domain, 1.013)."""

    idc: int
    fields: tuple[Field, ...]

    def as_dict(self) -> dict[str, str | list[list[str]]]:
        """``{"2.018": "SMITH, TOM", "2.064": [["123", "..."], ...]}``: a field of one item as
        text, others as lists of subfields of items."""
        out: dict[str, str | list[list[str]]] = {}
        for f in self.fields:
            if f.tag == 2:
                continue
            single = len(f.subfields) == 1 and len(f.subfields[0]) == 1
            out[f"2.{f.tag:03d}"] = f.value if single else [list(sf) for sf in f.subfields]
        return out


@dataclass(frozen=True, eq=False)
class FingerprintImage:
    """A friction ridge image: Type-4/14 exemplar, Type-13 latent, Type-15 palm, Type-3/5/6 legacy.

    Attributes
    ----------
    record_type, idc : int
    position : int
        First finger position (FGP, 0 unknown, 1 right thumb ... 10 left little, 11/12 plain
        thumbs, 13/14 four-finger slaps, 15 both thumbs, 19 EJI or tip) or, in Type-15, palm
        position (PLP, 20-38).
    positions : tuple of int
        Every position the record lists.
    impression : int
        IMP code (0 live-scan plain, 1 live-scan rolled, 2 non-live plain, 3 non-live rolled,
        4-7 latent ...).
    width, height : int
        HLL and VLL as declared.
    ppi : float or None
        Resolution of the stored image (``None``: the record states none).
    compression : str
        NONE, WSQ20, JPEGB, JPEGL, JP2, JP2L, PNG (or "CODE n" for an unknown number).
    bits_per_pixel : int
    data : bytes
        The image data exactly as in the record (WSQ bytes stay WSQ bytes).
    fields : tuple of Field
        Every field of a tagged record; empty for binary records.
    pixels : (H, W) uint8 array or None
        Decoded gray pixels at ``ppi``; ``None`` when not decoded (see ``error``).
    error : str or None
        Why ``pixels`` is ``None``.
    """

    record_type: int
    idc: int
    position: int
    positions: tuple[int, ...]
    impression: int
    width: int
    height: int
    ppi: float | None
    compression: str
    bits_per_pixel: int
    data: bytes
    fields: tuple[Field, ...] = ()
    pixels: np.ndarray | None = None
    error: str | None = None

    @property
    def finger(self) -> int | None:
        """Finger position 0-10 of a one-finger image (plain thumbs 11/12 read as 1/6), ``None``
        for multi-finger slaps, tips, palms and latents of unknown extent."""
        if self.record_type in (13, 15) or self.position not in SINGLE_FINGER_POSITIONS:
            return None
        return {11: 1, 12: 6}.get(self.position, self.position)


@dataclass(frozen=True, eq=False)
class PhotoImage:
    """A Type-10 record: a face, or by ``image_type`` (IMT) a scar, mark or tattoo photo.

    ``pixels`` are ``(H, W, 3)`` uint8 BGR (OpenCV order, what :func:`matcher.face.extract`
    takes), ``None`` with ``error`` set when not decoded.  ``color_space`` is 10.012 CSP
    (GRAY, SRGB, YCC ...), ``acquisition_profile`` 10.013 SAP.
    """

    idc: int
    image_type: str
    width: int
    height: int
    ppi: float | None
    compression: str
    color_space: str
    acquisition_profile: str | None
    data: bytes
    fields: tuple[Field, ...]
    pixels: np.ndarray | None = None
    error: str | None = None


@dataclass(frozen=True)
class UnreadRecord:
    """A record kept but not interpreted (Types 7, 8, 11, 12, 16, 17, 18-99): the fields and
    data of a tagged record, or the body of a binary one."""

    record_type: int
    idc: int | None
    record: TaggedRecord | BinaryRecord


TypedRecord = Union[DescriptiveText, FingerprintImage, PhotoImage, MinutiaeRecord, UnreadRecord]


@dataclass(frozen=True, eq=False)
class Transaction:
    """A transaction read by :func:`read_transaction`: Type-1, then the other records in file order."""

    info: TransactionInfo
    records: tuple[TypedRecord, ...]
    warnings: tuple[str, ...] = ()

    def _images(self, types: frozenset[int] | set[int]) -> tuple[FingerprintImage, ...]:
        return tuple(r for r in self.records if isinstance(r, FingerprintImage) and r.record_type in types)

    def fingerprints(self) -> tuple[FingerprintImage, ...]:
        """Exemplar prints (Types 4 and 14), one finger or several (see :attr:`FingerprintImage.finger`)."""
        return self._images({4, 14})

    def latents(self) -> tuple[FingerprintImage, ...]:
        """Type-13 latent (variable-resolution) prints."""
        return self._images({13})

    def palms(self) -> tuple[FingerprintImage, ...]:
        """Type-15 palm prints (kept, not matched)."""
        return self._images({15})

    def legacy_prints(self) -> tuple[FingerprintImage, ...]:
        """Types 3, 5, 6: low-resolution gray and bi-level prints of older versions."""
        return self._images({3, 5, 6})

    def photos(self) -> tuple[PhotoImage, ...]:
        """Every Type-10 photo."""
        return tuple(r for r in self.records if isinstance(r, PhotoImage))

    def faces(self) -> tuple[PhotoImage, ...]:
        """Type-10 photos whose image type (IMT) is FACE."""
        return tuple(r for r in self.photos() if r.image_type.upper() == "FACE")

    def minutiae(self) -> tuple[MinutiaeRecord, ...]:
        """Type-9 records."""
        return tuple(r for r in self.records if isinstance(r, MinutiaeRecord))

    def descriptive_text(self) -> tuple[DescriptiveText, ...]:
        """Type-2 records."""
        return tuple(r for r in self.records if isinstance(r, DescriptiveText))

    def metadata(self) -> dict[str, str | list[list[str]]]:
        """Fields of the Type-2 records (:meth:`DescriptiveText.as_dict`), the first record's
        value kept where several repeat a field."""
        out: dict[str, str | list[list[str]]] = {}
        for t in reversed(self.descriptive_text()):
            out.update(t.as_dict())
        return out

    def image_for(self, minutiae: MinutiaeRecord) -> FingerprintImage | None:
        """The friction ridge image a Type-9 record describes (same IDC), if any."""
        return next((r for r in self.records if isinstance(r, FingerprintImage) and r.idc == minutiae.idc), None)

    def minutiae_for(self, image: FingerprintImage) -> MinutiaeRecord | None:
        """The Type-9 record of an image (same IDC), if any."""
        return next((r for r in self.minutiae() if r.idc == image.idc), None)

    @property
    def subject_id(self) -> str | None:
        """2.003 of a transaction of locard's domain (1.013 ``LOCARD``), else ``None``."""
        if not self.info.domain or self.info.domain[0].strip().upper() != LOCARD_DOMAIN:
            return None
        for text in self.descriptive_text():
            f = next((f for f in text.fields if f.tag == 3), None)
            if f is not None:
                return f.value
        return None

    def problems(self) -> tuple[str, ...]:
        """One line per record whose image or minutiae could not be read, then the warnings."""
        out = []
        for k, r in enumerate(self.records, 2):
            if isinstance(r, (FingerprintImage, PhotoImage, MinutiaeRecord)) and r.error:
                rtype = r.record_type if isinstance(r, FingerprintImage) else 10 if isinstance(r, PhotoImage) else 9
                out.append(f"record {k} (Type-{rtype}, IDC {r.idc}): {r.error}")
        return tuple(out) + self.warnings


# ---------------------------------------------------------------------- reading


class _PixelBudget:
    def __init__(self, limit: int):
        self.left = limit

    def decode(self, data: bytes, compression: str, w: int, h: int, bpx: int, color: bool):
        if not self.left > 0 or max(w, 0) * max(h, 0) > self.left:
            return None, (f"not decoded: the transaction's images exceed {DECODED_PIXEL_BUDGET} pixels in all")
        try:
            px = decode_pixels(data, compression, w, h, bpx, color=color)
        except LocardError as exc:
            return None, f"{compression} image could not be decoded: {exc}"
        self.left -= px.shape[0] * px.shape[1]
        return px, None


def _int_text(text: str | None, default: int = 0) -> int:
    return int(text) if text is not None and text.strip().isdigit() else default


def _tagged_ppi(rec: TaggedRecord) -> float | None:
    slc, hps = _int_text(rec.text(8), -1), _int_text(rec.text(9))
    if hps <= 0:
        return None
    if slc == 1:
        return snap_ppi(float(hps))
    if slc == 2:
        return ppi_from_ppcm(hps)
    return None


def _binary_image(rec: BinaryRecord, info: TransactionInfo, budget: _PixelBudget | None) -> FingerprintImage:
    body = rec.body
    if len(body) < 13:
        return FingerprintImage(rec.type, rec.idc, 0, (), 0, 0, 0, None, "NONE", 8, b"",
                                error=f"binary image record of {len(body) + 5} bytes is shorter than its 18-byte header")
    imp, fgp, isr = body[0], body[1:7], body[7]
    w, h, gca = int.from_bytes(body[8:10], "big"), int.from_bytes(body[10:12], "big"), body[12]
    positions = tuple(b for b in fgp if b != 255)
    low_res = rec.type in (3, 5)
    if isr == 0:
        ppi: float | None = 250.0 if low_res else 500.0
    else:
        ppi = info.transmitting_ppi or info.native_ppi
    bpx = 1 if rec.type in (5, 6) else 8
    comp = compression_name(gca) if rec.type == 4 else ("NONE" if gca == 0 else f"CODE {gca}")
    data = body[13:]
    pixels, error = (budget.decode(data, comp, w, h, bpx, False) if budget else (None, None))
    return FingerprintImage(rec.type, rec.idc, positions[0] if positions else 0, positions, imp, w, h, ppi,
                            comp, bpx, data, (), pixels, error)


def _tagged_image(rec: TaggedRecord, budget: _PixelBudget | None) -> FingerprintImage:
    fgp = rec.get(13)
    positions = tuple(int(v) for sf in (fgp.subfields if fgp else ()) for v in sf[:1] if v.strip().isdigit())
    w, h = _int_text(rec.text(6)), _int_text(rec.text(7))
    comp = compression_name(rec.text(11) or "NONE")
    bpx = _int_text(rec.text(12), 8)
    data = rec.data or b""
    pixels, error = (budget.decode(data, comp, w, h, bpx, False) if budget else (None, None))
    return FingerprintImage(rec.type, rec.idc if rec.idc is not None else -1, positions[0] if positions else 0,
                            positions, _int_text(rec.text(3)), w, h, _tagged_ppi(rec), comp, bpx, data,
                            rec.fields, pixels, error)


def _photo(rec: TaggedRecord, budget: _PixelBudget | None) -> PhotoImage:
    w, h = _int_text(rec.text(6)), _int_text(rec.text(7))
    comp = compression_name(rec.text(11) or "NONE")
    csp = (rec.text(12) or "").strip().upper()
    bpx = 8 if csp == "GRAY" else 24
    data = rec.data or b""
    pixels, error = (budget.decode(data, comp, w, h, bpx, True) if budget else (None, None))
    return PhotoImage(rec.idc if rec.idc is not None else -1, (rec.text(3) or "").strip(), w, h, _tagged_ppi(rec),
                      comp, csp, rec.text(13), data, rec.fields, pixels, error)


def read_transaction(data: bytes, *, decode_images: bool = True) -> Transaction:
    """Read an ANSI/NIST-ITL transaction (traditional encoding).

    Parameters
    ----------
    data : bytes
        The whole transaction (at most
        :data:`~matcher.interchange.ansi_nist_encoding.MAX_TRANSACTION_BYTES`).
    decode_images : bool
        Decode every image (WSQ in a child process each); false leaves ``pixels=None``
        and ``error=None`` (the encoded ``data`` is always there).

    Raises
    ------
    matcher.errors.TransactionError
        Malformed structure (truncated, wrong lengths or separators, non-numeric tags).
    matcher.errors.TransactionTooLargeError
        Beyond the byte, record or item limits.
    """
    type1, raw, warnings = decode_transaction(data)
    info = TransactionInfo.from_record(type1)
    budget = _PixelBudget(DECODED_PIXEL_BUDGET) if decode_images else None
    records: list[TypedRecord] = []
    for rec in raw:
        if isinstance(rec, BinaryRecord):
            records.append(_binary_image(rec, info, budget) if rec.type in _BINARY_IMAGE_TYPES
                           else UnreadRecord(rec.type, rec.idc, rec))
        elif rec.type == 2:
            records.append(DescriptiveText(rec.idc if rec.idc is not None else 0, rec.fields))
        elif rec.type == 9:
            records.append(read_minutiae_record(rec))
        elif rec.type == 10:
            records.append(_photo(rec, budget))
        elif rec.type in _TAGGED_RIDGE_TYPES:
            records.append(_tagged_image(rec, budget))
        else:
            records.append(UnreadRecord(rec.type, rec.idc, rec))
    return Transaction(info, tuple(records), tuple(warnings))
