"""Typed records of an ANSI/NIST-ITL transaction, as :func:`.ansi_nist.read_transaction` gives them.

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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np

from .ansi_nist_encoding import BinaryRecord, Field, TaggedRecord
from .ansi_nist_minutiae import MinutiaeRecord

#: Finger positions (FGP) of one finger's image; 11 and 12 are plain thumbs (read as 1 and 6).
SINGLE_FINGER_POSITIONS = frozenset(range(0, 13))
#: Domain (1.013) of transactions written by locard: 2.003 holds the subject id.
LOCARD_DOMAIN = "LOCARD"
_STANDARD_PPI = (250.0, 500.0, 1000.0, 2000.0)


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
            return snap_ppi(v * 25.4) if v is not None and 0 < v < 1000 else None  # "00.00": not stated

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
