"""Type-9 minutiae records of ANSI/NIST-ITL transactions: read the standard's blocks, keep
every other field (vendor blocks) as it is, and write locard's minutiae.

Three blocks are read:

- the INCITS 378 block, fields 9.126-9.150 (ANSI/NIST-ITL 1-2007 and later): 9.128/9.129
  the image size, 9.130-9.132 its resolution, 9.134 the finger, 9.135 its quality, 9.137 one
  subfield per minutia ``index, x, y, angle, type, quality``; positions in pixels, origin top
  left; angle in units of 2 degrees (0-179) counter-clockwise on screen; type 0 other,
  1 ending, 2 bifurcation; quality 0-100.  Read into a
  :class:`~matcher.interchange.finger_view.FingerView` of edition ANSI/INCITS 378-2004, so
  its conversion to locard's convention is the one the ISO/ANSI template reader uses.
- the original "standard" block, 9.005-9.012 (``9.004:S``): 9.012 one subfield per minutia
  ``index, XXXXYYYYTTT, quality, type, ridge counts...``; X, Y in units of 0.01 mm with the
  origin at the image's *bottom* left, TTT degrees counter-clockwise; quality 0 (manual),
  1 (unknown), 2-63; type A ending, B bifurcation, C compound, D undetermined.  Its angle
  is the 378 block's turned by half a turn: the NIST reference transactions carry the same
  48 minutiae of one print in both blocks, and 378 angle = standard angle + 180 degrees
  (tests/test_ansi_nist.py checks every one, positions within a pixel).
- the FBI/IAFIS block, 9.014-9.023: 9.023 MAT as 9.012 but with the origin at the top left
  and the 378 block's angle (the same reference print in this block agrees with the other
  two after that reading; its ridge counts are written ``nnncc``).

The writer uses the INCITS 378 block (``9.004:U``): its positions are pixels of a stated
resolution with the origin top left, locard's own frame, so a written record reads back to
the same integers; the original block would move each position by up to 0.01 mm (0.2 px at
500 ppi) and need the image height to flip the y axis.  Angles are quantised to 2 degrees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import LocardError, TransactionError
from ..fingerprint.minutiae import MINUTIA_DTYPE
from ..fingerprint.resolution import WORKING_PPI
from ..fingerprint.template import Template
from .ansi_nist_encoding import Field, TaggedRecord, is_digits
from .finger_view import FingerView, ppcm_from_ppi
from .record_codec import RECORD_MINUTIA_DTYPE, Edition

#: Field numbers of the INCITS 378 block.
INCITS_378_TAGS = range(126, 151)
#: Field numbers of the original standard block.
STANDARD_TAGS = range(5, 13)
#: CBEFF format owner and type of INCITS 378 minutiae (written in 9.126).
CBEFF_OWNER_INCITS, CBEFF_TYPE_378 = 27, 513
_STANDARD_TYPES = {"A": 1, "B": 2, "C": 0, "D": 0}


@dataclass(frozen=True)
class StandardMinutia:
    """One minutia of the original block (9.012) or the FBI/IAFIS block (9.023), in its units.

    ``x``, ``y``: 0.01 mm from the image's bottom-left (9.012) or top-left (9.023) corner;
    ``theta``: degrees, counter-clockwise; ``quality``: 0 manual, 1 unknown, 2-63; ``type``:
    A ending, B bifurcation, C/D other; ``ridge_counts``: (neighbour index, ridges crossed).
    """

    index: int
    x: int
    y: int
    theta: int
    quality: int
    type: str
    ridge_counts: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True, eq=False)
class MinutiaeRecord:
    """A Type-9 record.

    Attributes
    ----------
    idc : int
        Links the record to the image record of the same IDC (:meth:`Transaction.image_for`).
    impression : int or None
        IMP code (9.003).
    format : str
        9.004: ``"S"`` (original block used) or ``"U"`` (other blocks).
    positions : tuple of int
        Finger positions (9.134 of the 378 block, else 9.006).
    incits378 : FingerView or None
        The INCITS 378 block, when present and readable.
    standard : tuple of StandardMinutia or None
        The original block's minutiae (9.012), when present and readable.
    iafis : tuple of StandardMinutia or None
        The FBI/IAFIS block's minutiae (9.023), when present and readable.
    fields : tuple of Field
        Every field of the record, read or not (vendor blocks: 9.013-9.125, 9.151-9.299,
        extended feature set 9.300-9.399 ...).
    error : str or None
        Why a block that is present could not be read (the fields are still kept).
    """

    idc: int
    impression: int | None
    format: str
    positions: tuple[int, ...]
    incits378: FingerView | None
    standard: tuple[StandardMinutia, ...] | None
    fields: tuple[Field, ...]
    iafis: tuple[StandardMinutia, ...] | None = None
    error: str | None = None

    def to_minutiae(self, image_height: int | None = None, image_ppi: float | None = None) -> np.ndarray:
        """The minutiae in locard's convention (:data:`~matcher.fingerprint.minutiae.MINUTIA_DTYPE`,
        pixels at 500 ppi, direction in radians from x towards y), from the 378 block when
        present, else the FBI/IAFIS block, else the original block.

        Parameters
        ----------
        image_height, image_ppi
            Height (pixels) and resolution of the image the original block describes: its y
            axis starts at the image's bottom.  Not needed for the 378 block.

        Raises
        ------
        TransactionError
            No readable block, or the original block without the image's height and ppi.
        """
        if self.incits378 is not None:
            return self.incits378.to_minutiae()
        if self.iafis is not None:
            return _millimetre_minutiae(self.iafis, lambda y: y, 0.0)
        if self.standard is None:
            raise TransactionError(f"Type-9 record IDC {self.idc} has no minutiae block this reader reads"
                                   + (f" ({self.error})" if self.error else ""))
        if image_height is None or not image_ppi:
            raise TransactionError("the original Type-9 block measures y from the image's bottom: "
                                   "give the image's height and ppi")
        height_mm100 = image_height / image_ppi * 2540.0
        return _millimetre_minutiae(self.standard, lambda y: height_mm100 - y, 180.0)


def _millimetre_minutiae(m: tuple[StandardMinutia, ...], top_down, turn_deg: float) -> np.ndarray:
    """9.012/9.023 minutiae -> locard's: positions 0.01 mm -> pixels at 500 ppi (``top_down``
    maps the block's y to a distance from the top), angle + ``turn_deg`` -> the 378 angle,
    negated into locard's direction."""
    to_px = WORKING_PPI / 2540.0
    out = np.zeros(len(m), MINUTIA_DTYPE)
    out["x"] = [p.x * to_px for p in m]
    out["y"] = [top_down(p.y) * to_px for p in m]
    out["direction"] = np.mod(-np.radians([p.theta + turn_deg for p in m]), 2 * np.pi)
    out["type"] = [_STANDARD_TYPES.get(p.type, 0) for p in m]
    out["quality"] = [_standard_quality(p.quality) for p in m]
    return out


def _standard_quality(q: int) -> int:
    """Original-block quality (0 manual, 1 unknown, 2-63 ascending) -> 0-100."""
    return 100 if q == 0 else 0 if q == 1 else int(round((min(q, 63) - 2) * 100 / 61))


def _int(field: Field | None, what: str, default: int | None = None) -> int:
    if field is None or not field.value.strip():
        if default is not None:
            return default
        raise ValueError(f"{what} is missing")
    v = field.value.strip()
    if not is_digits(v):
        raise ValueError(f"{what} is {v[:12]!r}, not a number")
    return int(v)


def _read_378(rec: TaggedRecord, impression: int | None) -> FingerView:
    width, height = _int(rec.get(128), "9.128 HLL"), _int(rec.get(129), "9.129 VLL")
    slc, hps, vps = (_int(rec.get(t), f"9.{t}", 2) for t in (130, 131, 132))
    if slc == 1:
        hps, vps = ppcm_from_ppi(hps), ppcm_from_ppi(vps)
    elif slc != 2:  # no stated scale: 500 ppi, the resolution every Type-9 consumer assumes
        hps = vps = ppcm_from_ppi(WORKING_PPI)
    fmd = rec.get(137)
    rows = fmd.subfields if fmd is not None and fmd.value != "" else ()
    minutiae = np.zeros(len(rows), RECORD_MINUTIA_DTYPE)
    for k, sf in enumerate(rows):
        if len(sf) < 6 or not all(is_digits(s.strip()) for s in sf[:6]):
            raise ValueError(f"9.137 minutia {k + 1} is {list(sf)[:6]}, not six numbers")
        _, x, y, angle, kind, quality = (int(s) for s in sf[:6])
        if angle > 179 or kind > 2 or quality > 255 or x > 16383 or y > 16383:
            raise ValueError(f"9.137 minutia {k + 1} has a value out of range: {list(sf)[:6]}")
        minutiae[k] = (kind, x, y, angle, quality)
    fqd = rec.get(135)
    quality = int(fqd.value) if fqd is not None and is_digits(fqd.value.strip()) else 0
    return FingerView(edition=Edition.ANSI_2004, width=width, height=height, minutiae=minutiae,
                      x_resolution=hps, y_resolution=vps, position=_int(rec.get(134), "9.134 FGP", 0),
                      view=_int(rec.get(133), "9.133 FVW", 0), impression=impression or 0,
                      quality=min(quality, 255))


def _read_standard(rec: TaggedRecord, tag: int = 12) -> tuple[StandardMinutia, ...]:
    mrc = rec.get(tag)
    rows = mrc.subfields if mrc is not None and mrc.value != "" else ()
    out = []
    for k, sf in enumerate(rows):
        if len(sf) < 4:
            raise ValueError(f"9.{tag:03d} minutia {k + 1} has {len(sf)} items, at least 4 are needed")
        xyt = sf[1].strip()
        if len(xyt) != 11 or not is_digits(xyt) or not is_digits(sf[0].strip()):
            raise ValueError(f"9.{tag:03d} minutia {k + 1}: position {xyt[:12]!r} is not XXXXYYYYTTT")
        counts = []
        for rc in sf[4:]:
            a, comma, b = rc.strip().partition(",")
            if not comma and len(a) == 5:  # 9.023 writes nnncc
                a, b = a[:3], a[3:]
            if is_digits(a) and is_digits(b.strip()):
                counts.append((int(a), int(b)))
        q = sf[2].strip()
        out.append(StandardMinutia(index=int(sf[0]), x=int(xyt[:4]), y=int(xyt[4:8]), theta=int(xyt[8:]) % 360,
                                   quality=int(q) if is_digits(q) else 1, type=sf[3].strip()[:1].upper() or "D",
                                   ridge_counts=tuple(counts)))
    return tuple(out)


def read_minutiae_record(rec: TaggedRecord) -> MinutiaeRecord:
    """Interpret a Type-9 record; a block that cannot be read leaves a message, never an exception."""
    impression = rec.text(3)
    impression_code = int(impression) if impression is not None and is_digits(impression.strip()) else None
    tags = {f.tag for f in rec.fields}
    errors, view, standard, iafis = [], None, None, None
    if tags & {128, 129, 137}:
        try:
            view = _read_378(rec, impression_code)
        except (ValueError, LocardError) as exc:
            errors.append(f"INCITS 378 block (9.126-9.150): {exc}")
    if 12 in tags:
        try:
            standard = _read_standard(rec)
        except ValueError as exc:
            errors.append(f"original block (9.005-9.012): {exc}")
    if 23 in tags:
        try:
            iafis = _read_standard(rec, 23)
        except ValueError as exc:
            errors.append(f"FBI/IAFIS block (9.014-9.023): {exc}")
    if view is not None and view.position:
        positions: tuple[int, ...] = (view.position,)
    else:
        fgp = rec.get(6) or rec.get(14)
        positions = tuple(int(v) for sf in (fgp.subfields if fgp else ()) for v in sf if is_digits(v.strip()))
    return MinutiaeRecord(idc=rec.idc if rec.idc is not None else -1, impression=impression_code,
                          format=(rec.text(4) or "").strip(), positions=positions, incits378=view,
                          standard=standard, fields=rec.fields, iafis=iafis, error="; ".join(errors) or None)


def minutiae_record(template: Template, idc: int, position: int, impression: int) -> TaggedRecord:
    """A Type-9 record holding a locard template's minutiae in the INCITS 378 block.

    Parameters
    ----------
    template : Template
        Minutiae at 500 ppi, as :func:`matcher.fingerprint.extract` gives them.
    idc : int
        The IDC of the image record they were found in.
    position, impression : int
        FGP and IMP codes.

    Raises
    ------
    TransactionError
        More than 255 minutiae or positions past 16383 pixels (the block's 378 limits).
    """
    try:
        view = FingerView.from_template(template, Edition.ANSI_2004, position=position, impression=impression)
    except LocardError as exc:
        raise TransactionError(f"Type-9 record: {exc}") from None
    m = view.minutiae
    fmd = [[f"{k + 1:03d}", int(r["x"]), int(r["y"]), int(r["angle"]), int(r["type"]), int(r["quality"])]
           for k, r in enumerate(m)]
    fields = [
        Field.of(2, f"{idc:02d}"), Field.of(3, impression), Field.of(4, "U"),
        Field.of(126, [CBEFF_OWNER_INCITS, CBEFF_TYPE_378]), Field.of(127, ["NONE", "0"]),
        Field.of(128, view.width), Field.of(129, view.height), Field.of(130, 2),
        Field.of(131, view.x_resolution), Field.of(132, view.y_resolution), Field.of(133, view.view),
        Field.of(134, f"{position:02d}"), Field.of(135, [view.quality, "0000", "0"]), Field.of(136, len(m)),
    ]
    if fmd:  # an empty 9.137 would read as one empty minutia
        fields.append(Field.of(137, [[str(v) for v in row] for row in fmd]))
    return TaggedRecord(9, tuple(fields))

