"""Writing ANSI/NIST-ITL transactions (version 0500, ANSI/NIST-ITL 1-2011, traditional encoding).

- :func:`write_subject_transaction`: Type-1, Type-2 (subject id in 2.003, metadata), one
  Type-14 per print (WSQ at the print's resolution, 8-bit gray), one Type-9 per print that
  comes with a template (INCITS 378 block, same IDC as its Type-14), one Type-10 per face
  (PNG from pixels, or the JPEG/PNG bytes handed over).
- :func:`write_search_response`: Type-1 (1.010 TCR = the request's TCN) and a Type-2 with
  the candidates; :func:`read_search_response` reads it back.

Type-2 content is set by the domain (1.013); these use domain ``LOCARD`` version 1:

=====  ====  =========================================================================
2.003  SID   subject id (subject transactions)
2.059  SRF   search result: ``I`` (a candidate reaches the threshold) or ``N`` (EBTS's code)
2.064  CAN   candidate list, one subfield per candidate: subject id (EBTS's field)
2.901  LCS   locard candidate scores, one subfield per candidate: rank, subject id,
             comparator score, -log10 FMR (calibrated), decision ``Y``/``N``
2.902  LDT   decision threshold as -log10 FMR, when one was applied
=====  ====  =========================================================================

Numbers are written with 6 decimals.  Text is ASCII, or UTF-8 with 1.015 DCS ``3 UTF-8``
when a value needs it.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterable, Mapping, Sequence

import cv2
import numpy as np

from .. import wsq
from ..errors import LocardError, TransactionError
from ..fingerprint.template import Template
from ..imageio import decode_image, sniff_format
from .ansi_nist_records import LOCARD_DOMAIN, Transaction
from .ansi_nist_encoding import Field, Record, TaggedRecord, encode_transaction
from .ansi_nist_minutiae import minutiae_record

#: ANSI/NIST-ITL version written (1.002): 1-2011.
VERSION = "0500"
#: Domain version written in 1.013 with :data:`~.ansi_nist.LOCARD_DOMAIN`.
DOMAIN_VERSION = "1"
#: Type-2 fields of domain LOCARD (see the module docstring).
SUBJECT_ID_TAG, RESULT_TAG, CANDIDATES_TAG, SCORES_TAG, THRESHOLD_TAG = 3, 59, 64, 901, 902
#: Highest IDC (two digits).
MAX_IDC = 99


@dataclass(frozen=True, eq=False)
class FingerprintSample:
    """One print to write as a Type-14 record.

    Attributes
    ----------
    position : int
        Finger position (FGP): 0 unknown, 1-10 fingers, 11-15 plain thumbs and slaps, 19 EJI/tip.
    pixels : (H, W) uint8 array, optional
        Gray pixels at ``ppi``, WSQ-encoded on writing.
    wsq : bytes, optional
        WSQ bytes to embed as they are (instead of ``pixels``).
    ppi : float
        Resolution of the image (written as THPS/TVPS in pixels per inch).
    impression : int
        IMP code (0 live-scan plain, 1 live-scan rolled, 2 non-live plain, 3 non-live rolled).
    template : Template, optional
        locard's minutiae of this print (500 ppi), written as a Type-9 record.
    """

    position: int
    pixels: np.ndarray | None = None
    wsq: bytes | None = None
    ppi: float = 500.0
    impression: int = 0
    template: Template | None = None


@dataclass(frozen=True, eq=False)
class FaceSample:
    """One face photo to write as a Type-10 record: ``pixels`` ((H, W) gray or (H, W, 3) BGR,
    written as PNG, lossless) or ``data`` (JPEG or PNG bytes, embedded as they are)."""

    pixels: np.ndarray | None = None
    data: bytes | None = None


@dataclass(frozen=True)
class SearchCandidate:
    """One candidate of a search response.

    ``subject``: the subject id; ``score``: the comparator's score; ``log10_fmr``: the
    calibrated strength, -log10 of the false match rate (higher is stronger); ``hit``:
    whether it reaches the decision threshold.
    """

    subject: str
    score: float
    log10_fmr: float
    hit: bool


def _now(when: datetime | None) -> datetime:
    when = when or datetime.now(timezone.utc)
    return when.astimezone(timezone.utc) if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _type1(tot: str, when: datetime, origin: str, destination: str, tcn: str | None,
           tcr: str | None, utf8: bool) -> list[Field]:
    fields = [Field.of(2, VERSION), Field.of(4, tot), Field.of(5, when.strftime("%Y%m%d")),
              Field.of(7, destination), Field.of(8, origin),
              Field.of(9, tcn or f"{when.strftime('%Y%m%d')}-{uuid.uuid4().hex[:12]}"),
              Field.of(11, "00.00"), Field.of(12, "00.00"), Field.of(13, [LOCARD_DOMAIN, DOMAIN_VERSION]),
              Field.of(14, when.strftime("%Y%m%d%H%M%SZ"))]
    if tcr is not None:
        fields.append(Field.of(10, tcr))
    if utf8:
        fields.append(Field.of(15, ["3", "UTF-8"]))
    return fields


def _needs_utf8(records: Iterable[Record]) -> bool:
    return any(not item.isascii() for r in records if isinstance(r, TaggedRecord)
               for f in r.fields for sf in f.subfields for item in sf)


def _number(x: float, what: str) -> str:
    if not math.isfinite(x):
        raise TransactionError(f"{what} must be a finite number, not {x}")
    return f"{x:.6f}"


def _check_code(value: int, lo: int, hi: int, what: str) -> int:
    if not isinstance(value, (int, np.integer)) or not lo <= int(value) <= hi:
        raise TransactionError(f"{what} must be an integer {lo}-{hi}, not {value!r}")
    return int(value)


def _fingerprint_record(s: FingerprintSample, idc: int, origin: str, date: str) -> TaggedRecord:
    position = _check_code(s.position, 0, 19, "finger position (FGP)")
    impression = _check_code(s.impression, 0, 29, "impression type (IMP)")
    if not s.ppi or not 100 <= s.ppi <= 10000:
        raise TransactionError(f"ppi must be 100-10000, not {s.ppi!r}")
    try:
        data = s.wsq if s.wsq is not None else wsq.encode(s.pixels) if s.pixels is not None else None
        if data is None:
            raise TransactionError(f"fingerprint {position}: give pixels or WSQ bytes")
        width, height = wsq.frame_size(data)
    except TransactionError:
        raise
    except LocardError as exc:
        raise TransactionError(f"fingerprint {position}: {exc}") from None
    ppi = str(int(round(s.ppi)))
    return TaggedRecord(14, (
        Field.of(2, f"{idc:02d}"), Field.of(3, impression), Field.of(4, origin), Field.of(5, date),
        Field.of(6, width), Field.of(7, height), Field.of(8, 1), Field.of(9, ppi), Field.of(10, ppi),
        Field.of(11, "WSQ20"), Field.of(12, 8), Field.of(13, f"{position:02d}"),
    ), data)


def _face_record(s: FaceSample, idc: int, origin: str, date: str) -> TaggedRecord:
    if (s.pixels is None) == (s.data is None):
        raise TransactionError("a face needs exactly one of pixels or data")
    if s.pixels is not None:
        px = np.asarray(s.pixels)
        if px.dtype != np.uint8 or not (px.ndim == 2 or (px.ndim == 3 and px.shape[2] == 3)):
            raise TransactionError(f"face pixels must be (H, W) or (H, W, 3) uint8, not {px.shape} {px.dtype}")
        ok, buf = cv2.imencode(".png", px)
        if not ok:
            raise TransactionError("the face could not be encoded as PNG")
        data, compression, color = buf.tobytes(), "PNG", px.ndim == 3
        height, width = px.shape[:2]
    else:
        data = bytes(s.data)
        fmt = sniff_format(data[:16])
        if fmt not in ("JPEG", "PNG"):
            raise TransactionError(f"face data must be JPEG or PNG, not {fmt or data[:8]!r}")
        try:
            decoded = decode_image(data, color=True)
        except LocardError as exc:
            raise TransactionError(f"face data: {exc}") from None
        compression, color = ("JPEGB" if fmt == "JPEG" else "PNG"), decoded.was_color
        height, width = decoded.pixels.shape[:2]
    return TaggedRecord(10, (
        Field.of(2, f"{idc:02d}"), Field.of(3, "FACE"), Field.of(4, origin), Field.of(5, date),
        Field.of(6, width), Field.of(7, height), Field.of(8, 0), Field.of(9, 1), Field.of(10, 1),
        Field.of(11, compression), Field.of(12, "SRGB" if color else "GRAY"), Field.of(13, 0),
    ), data)


def _metadata_fields(metadata: Mapping[int, str | Sequence] | None, reserved: set[int]) -> list[Field]:
    out = []
    for tag, value in sorted((metadata or {}).items()):
        if not isinstance(tag, int) or tag in reserved or not 3 <= tag <= 998:
            raise TransactionError(f"metadata field 2.{tag} is not a free Type-2 field number (3-998, not "
                                   f"{sorted(reserved)})")
        out.append(Field.of(tag, value))
    return out


def write_subject_transaction(subject_id: str, fingerprints: Sequence[FingerprintSample] = (),
                              faces: Sequence[FaceSample] = (), metadata: Mapping[int, str | Sequence] | None = None,
                              *, tot: str = "CAR", originating_agency: str = "LOCARD",
                              destination_agency: str = "LOCARD", tcn: str | None = None,
                              when: datetime | None = None) -> bytes:
    """A transaction holding one subject's prints, minutiae and face photos.

    Parameters
    ----------
    subject_id : str
        Written in 2.003 (domain LOCARD).
    fingerprints, faces : sequences of FingerprintSample, FaceSample
    metadata : mapping of Type-2 field number -> value, optional
        ``{18: "SMITH, TOM", 22: "19600201"}``; a value is text, a list of items, or a list
        of lists (subfields of items).  Field numbers 1-3 are the writer's.
    tot : str
        Type of transaction (1.004); ``CAR`` is EBTS's criminal ten-print submission.
    originating_agency, destination_agency : str
        1.008 ORI (also 14.004/10.004 SRC) and 1.007 DAI.
    tcn : str, optional
        Transaction control number (1.009); a fresh one by default.
    when : datetime, optional
        Date and time written (UTC; now by default).

    Raises
    ------
    TransactionError
        Bad codes, more than 99 images, separators inside text, an image the WSQ encoder refuses.
    """
    if not subject_id or not str(subject_id).strip():
        raise TransactionError("a subject transaction needs a subject id")
    if len(fingerprints) + len(faces) > MAX_IDC:
        raise TransactionError(f"at most {MAX_IDC} images fit one transaction's IDCs")
    when = _now(when)
    date = when.strftime("%Y%m%d")
    records: list[Record] = [TaggedRecord(2, (Field.of(2, "00"), Field.of(SUBJECT_ID_TAG, str(subject_id)),
                                              *_metadata_fields(metadata, {SUBJECT_ID_TAG})))]
    idcs = [0]
    prints, minutiae = [], []
    for k, s in enumerate(fingerprints, 1):
        prints.append(_fingerprint_record(s, k, originating_agency, date))
        if s.template is not None:
            minutiae.append(minutiae_record(s.template, k, int(s.position), int(s.impression)))
    photos = [_face_record(s, len(prints) + k, originating_agency, date) for k, s in enumerate(faces, 1)]
    for group in (minutiae, photos, prints):  # ascending record type: 9, 10, 14
        records.extend(group)
        idcs.extend(int(r.text(2)) for r in group)
    utf8 = _needs_utf8(records)
    t1 = _type1(tot, when, originating_agency, destination_agency, tcn, None, utf8)
    return encode_transaction(t1, records, idcs, "utf-8" if utf8 else "ascii")


def write_search_response(candidates: Sequence[SearchCandidate], *, request_tcn: str | None = None,
                          threshold_log10_fmr: float | None = None, tot: str = "SRE",
                          originating_agency: str = "LOCARD", destination_agency: str = "LOCARD",
                          tcn: str | None = None, when: datetime | None = None) -> bytes:
    """A search response: Type-1 and a Type-2 listing the candidates in rank order.

    Parameters
    ----------
    candidates : sequence of SearchCandidate
        Best first (rank 1 first).
    request_tcn : str, optional
        The search request's TCN, written as 1.010 TCR.
    threshold_log10_fmr : float, optional
        The decision threshold applied (2.902).
    tot : str
        Type of transaction (1.004); ``SRE`` is EBTS's search results (electronic).
    originating_agency, destination_agency, tcn, when
        As :func:`write_subject_transaction`.

    Raises
    ------
    TransactionError
        A non-finite number, an empty subject id, or separators inside one.
    """
    fields = [Field.of(2, "00"), Field.of(RESULT_TAG, "I" if any(c.hit for c in candidates) else "N")]
    if candidates:
        for c in candidates:
            if not c.subject:
                raise TransactionError("a candidate needs a subject id")
        fields.append(Field.of(CANDIDATES_TAG, [[c.subject] for c in candidates]))
        fields.append(Field.of(SCORES_TAG, [[str(k), c.subject, _number(c.score, "score"),
                                             _number(c.log10_fmr, "-log10 FMR"), "Y" if c.hit else "N"]
                                            for k, c in enumerate(candidates, 1)]))
    if threshold_log10_fmr is not None:
        fields.append(Field.of(THRESHOLD_TAG, _number(threshold_log10_fmr, "threshold")))
    records = [TaggedRecord(2, tuple(fields))]
    utf8 = _needs_utf8(records)
    t1 = _type1(tot, _now(when), originating_agency, destination_agency, tcn, request_tcn, utf8)
    return encode_transaction(t1, records, [0], "utf-8" if utf8 else "ascii")


def read_search_response(transaction: Transaction) -> tuple[SearchCandidate, ...]:
    """The candidates of a search response written by :func:`write_search_response`, rank order.

    Raises
    ------
    TransactionError
        No Type-2 field 2.901, or a candidate row that is not rank, subject, two numbers, Y/N.
    """
    for text in transaction.descriptive_text():
        f = next((f for f in text.fields if f.tag == SCORES_TAG), None)
        if f is None:
            continue
        out = []
        for k, row in enumerate(f.subfields, 1):
            try:
                _, subject, score, strength, decision = row
                out.append(SearchCandidate(subject, float(score), float(strength), decision.strip().upper() == "Y"))
            except ValueError:
                raise TransactionError(f"2.{SCORES_TAG} candidate {k} is {list(row)[:5]}, not rank, subject, "
                                       "score, -log10 FMR, Y/N") from None
        return tuple(out)
    if any(t.fields and any(f.tag == RESULT_TAG for f in t.fields) for t in transaction.descriptive_text()):
        return ()
    raise TransactionError(f"not a search response: no Type-2 field 2.{RESULT_TAG} or 2.{SCORES_TAG}")
