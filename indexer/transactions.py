"""ANSI/NIST-ITL transactions as the per-image inputs of the one enrolment and search path.

``locard ingest``, ``locard search`` and the HTTP service take a transaction as one
subject.  This module turns it into what they already take from image files, one entry
per image: encoded bytes, modality, finger position, ppi.  From there a transaction's
images go through the same extraction as any image (:func:`indexer.ingest.extract_item`,
which the service's enrolment calls too; :func:`indexer.search.probe_from_image` for
probes), never a path of their own.

Which records are images of the subject
---------------------------------------
====================================  ==================================================
record                                use
====================================  ==================================================
Type-4/14 of one finger               finger sample; position from FGP (0-10, plain thumbs
                                      11/12 as 1/6), ppi from the record
Type-10 with image type FACE          face sample
Type-13 latent                        a probe, never enrolled: used by a search when the
                                      transaction has no exemplar print or face; its
                                      position is unknown (0) unless the record names one
                                      finger or the caller gives one
====================================  ==================================================

Set aside, each with its reason (never an error for the rest): latents at enrolment, palms
(Type-15), multi-finger slaps (FGP 13-15: not segmented), tips and EJI (19), the legacy
low-resolution Types 3/5/6, Type-10 photos that are not faces, prints whose record states
a resolution outside 250-2000 ppi.  Type-9 minutiae are not used: locard extracts its
own from each image (its templates carry its matcher's version).  A print whose record
states no resolution is taken at 500 ppi (the standard's exemplar scanning resolution),
and its metadata says ``ppi_stated: false``.

Image bytes: the record's own data when it is WSQ, JPEG or PNG (the shared decoder,
:mod:`matcher.imageio`, reads those, and so the stored image is the one sent); raw,
lossless-JPEG and JPEG 2000 images are decoded by the transaction reader and handed on as
PNG (lossless).  The SHA-256 of an image is that of the record's data as sent.

Subject name at ingest (:func:`subject_name`): the subject id of a transaction written by
locard (2.003 with domain 1.013 ``LOCARD``), or the Type-2 field the caller names
(``--subject-field 2.014``), else the same rule as for image files: the sub-folder the file
lies in, or its stem.  Not 2.003 of other domains (its meaning is theirs: NIST's reference
files hold a placeholder text there) and not the TCN (1.009, unique per submission, not per
person, and repeated in real data: 16 of NIST's conformance files share ``1234567890``): a
name shared by mistake would silently merge two people.  The TCN is kept in each sample's
metadata with the record, the type of transaction, the originating agency and the Type-2
fields.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

#: Compressions whose record data the shared image decoder reads as it is.
SHARED_DECODER_COMPRESSIONS = frozenset({"WSQ20", "JPEGB", "PNG"})
#: File suffixes of transactions (files are recognised by their bytes; a file with one of
#: these suffixes that is not a transaction is reported).
TRANSACTION_SUFFIXES = frozenset({".an2", ".an", ".eft", ".ebts", ".nist", ".nst", ".int"})
#: Stated resolutions a print is used at (outside: set aside).
PPI_RANGE = (250.0, 2000.0)
#: Type-2 text kept per sample, at most (JSON bytes); beyond it the fields are left out, saying so.
MAX_TYPE2_JSON = 64 * 1024
_HEAD = re.compile(rb"1\.0{0,8}1:[0-9]")
_SLAPS = {13: "a right four-finger slap", 14: "a left four-finger slap", 15: "a two-thumb slap",
          19: "a fingertip or EJI image"}


def is_transaction(head: bytes) -> bool:
    """Whether bytes begin like an ANSI/NIST-ITL transaction (traditional encoding: Type-1's
    LEN field, ``1.001:`` or the older ``1.01:``).  16 bytes suffice."""
    return _HEAD.match(bytes(head[:16])) is not None


def read(data: bytes):
    """The transaction's records, images not decoded (cheap: ingest and the service decide from
    them what to use, and check their limits, before any pixel is decoded).

    Raises
    ------
    matcher.errors.TransactionError
        Malformed transaction (with the reader's message).
    """
    from matcher.interchange import read_transaction

    return read_transaction(bytes(data), decode_images=False)


@dataclass(frozen=True)
class RecordImage:
    """One image of a transaction, to enrol or search with.

    ``index`` is the record's place in ``Transaction.records``; ``label`` names it as
    ``Transaction.problems()`` does (``record 3 (Type-14, IDC 1)``, Type-1 being record 1).
    ``width``/``height`` are as declared (pixels), ``sha256`` that of the record's image data.
    """

    index: int
    label: str
    modality: str
    finger_position: int
    ppi: float
    width: int
    height: int
    sha256: str
    metadata: dict = field(default_factory=dict)


@dataclass(frozen=True)
class SetAside:
    """A record of a transaction that is not used, and why."""

    index: int
    label: str
    modality: str
    reason: str


@dataclass(frozen=True)
class Contents:
    """What a transaction gives: its images to use, the records set aside, its TCN."""

    images: tuple[RecordImage, ...]
    set_aside: tuple[SetAside, ...]
    control_number: str


def _label(k: int, rec) -> str:
    return f"record {k + 2} (Type-{getattr(rec, 'record_type', 10)}, IDC {rec.idc})"  # PhotoImage: Type-10


def _common_metadata(tx) -> dict:
    meta = {"tcn": tx.info.control_number, "tot": tx.info.type_of_transaction, "ori": tx.info.originating_agency}
    type2 = tx.metadata()
    if type2:
        text = json.dumps(type2, ensure_ascii=False)
        meta["type2"] = type2 if len(text.encode()) <= MAX_TYPE2_JSON else f"left out: {len(text.encode())} bytes"
    return meta


def _print_problem(rec) -> str:
    """Why an exemplar print (Type-4/14) cannot be a sample ('' when it can)."""
    if rec.finger is None:
        what = _SLAPS.get(rec.position, f"finger position {rec.position}, not one finger")
        return f"{what}: locard enrols one finger per image (slaps are not segmented)"
    if rec.ppi is not None and not PPI_RANGE[0] <= rec.ppi <= PPI_RANGE[1]:
        return f"stated resolution {rec.ppi:g} ppi is outside {PPI_RANGE[0]:g}-{PPI_RANGE[1]:g} ppi"
    return ""


def _image(k: int, rec, modality: str, position: int, common: dict) -> RecordImage:
    label = _label(k, rec)
    meta = {**common, "record": label, "compression": rec.compression}
    ppi = 500.0
    if modality == "finger":
        meta["impression"] = rec.impression
        if rec.ppi is None:
            meta["ppi_stated"] = False
        else:
            ppi = float(rec.ppi)
    return RecordImage(k, label, modality, position, ppi, rec.width, rec.height,
                       hashlib.sha256(rec.data).hexdigest(), meta)


def contents(tx, *, purpose: str = "enrol", latent_position: int | None = None) -> Contents:
    """The images of a transaction to enrol (``purpose="enrol"``) or search with (``"search"``).

    A search uses the exemplar prints and faces (a ten-print search, fused); a transaction
    with neither is a latent search: its Type-13 images, at ``latent_position`` when given,
    else the one finger the record names, else 0 (unknown).
    """
    from matcher.interchange import FingerprintImage, PhotoImage

    if purpose not in ("enrol", "search"):
        raise ValueError(f"purpose must be 'enrol' or 'search', not {purpose!r}")
    common = _common_metadata(tx)
    images: list[RecordImage] = []
    aside: list[SetAside] = []
    exemplars = {id(r) for r in tx.fingerprints()} | {id(r) for r in tx.faces()}
    latent_search = purpose == "search" and not exemplars
    for k, rec in enumerate(tx.records):
        label = _label(k, rec)
        if isinstance(rec, PhotoImage):
            if id(rec) in exemplars:
                images.append(_image(k, rec, "face", 0, common))
            else:
                aside.append(SetAside(k, label, "face", f"a Type-10 photo of image type {rec.image_type or 'unstated'}, "
                                                        "not a face"))
        elif isinstance(rec, FingerprintImage):
            t = rec.record_type
            if id(rec) in exemplars:
                problem = _print_problem(rec)
                if problem:
                    aside.append(SetAside(k, label, "finger", problem))
                else:
                    images.append(_image(k, rec, "finger", rec.finger, common))
            elif t == 13 and latent_search:
                if rec.ppi is not None and not PPI_RANGE[0] <= rec.ppi <= PPI_RANGE[1]:
                    aside.append(SetAside(k, label, "finger", f"stated resolution {rec.ppi:g} ppi is outside "
                                                              f"{PPI_RANGE[0]:g}-{PPI_RANGE[1]:g} ppi"))
                    continue
                named = [p for p in rec.positions if 1 <= p <= 10]
                position = latent_position if latent_position is not None else (named[0] if len(named) == 1 else 0)
                images.append(_image(k, rec, "finger", position, common))
            elif t == 13:
                aside.append(SetAside(k, label, "finger", "a latent is a probe, not enrolled: search with it"
                                      if purpose == "enrol" else
                                      "a latent in a ten-print search: send latents in a transaction of their own"))
            elif t == 15:
                aside.append(SetAside(k, label, "finger", "a palm print: kept by the standard, not matched by locard"))
            else:
                aside.append(SetAside(k, label, "finger", f"a Type-{t} legacy print (low resolution or binary)"))
    return Contents(tuple(images), tuple(aside), tx.info.control_number)


def subject_name(tx, subject_field: str | None = None) -> str | None:
    """The subject's name written in a transaction, or None (then the caller's fallback applies).

    Parameters
    ----------
    subject_field : str, optional
        A Type-2 field (``"2.014"``, ``"2.14"`` or ``"14"``) that holds the subject's name in the
        sender's domain; without it only locard's own subject id (2.003, domain LOCARD) is used.

    Raises
    ------
    ValueError
        ``subject_field`` is not a Type-2 field number.
    """
    if subject_field:
        number = subject_field.strip().removeprefix("2.")
        if not (number.isascii() and number.isdigit() and 3 <= int(number) <= 999):
            raise ValueError(f"subject field {subject_field!r} is not a Type-2 field (2.003-2.999)")
        value = tx.metadata().get(f"2.{int(number):03d}")
        if isinstance(value, str) and value.strip():
            return value.strip()
    return tx.subject_id.strip() if tx.subject_id and tx.subject_id.strip() else None


def encode_images(data: bytes, tx, indexes: Sequence[int]) -> list[bytes | str]:
    """Bytes the shared image decoder reads, per record index, or a message saying why there are none.

    The record's own data for WSQ, JPEG and PNG; for the others a PNG of the pixels the
    transaction reader decodes (the whole transaction is decoded once, and only when one of
    them is asked for).  Declared sizes are the caller's to check before this.
    """
    import cv2

    out: list[bytes | str] = []
    decoded = None
    for index in indexes:
        rec = tx.records[index]
        if rec.compression in SHARED_DECODER_COMPRESSIONS:
            out.append(rec.data)
            continue
        if decoded is None:
            from matcher.interchange import read_transaction

            decoded = read_transaction(data)
        pixels = decoded.records[index].pixels
        if pixels is None:
            out.append(decoded.records[index].error or "the image could not be decoded")
            continue
        ok, buf = cv2.imencode(".png", pixels)
        out.append(buf.tobytes() if ok else "the decoded image could not be handed on as PNG")
    return out


def record_bytes(data: bytes, index: int, sha256: str) -> bytes:
    """The image bytes (:func:`encode_images`) of one record of a transaction, checked to be
    the record's data that hashed to ``sha256`` when the transaction was first read.

    Raises
    ------
    matcher.errors.TransactionError
        Not a transaction, or the record is missing or changed.
    matcher.errors.CorruptImageError
        The record's image could not be decoded.
    """
    from matcher.errors import CorruptImageError, TransactionError

    tx = read(data)
    rec = tx.records[index] if 0 <= index < len(tx.records) else None
    if rec is None or not hasattr(rec, "data") or hashlib.sha256(rec.data).hexdigest() != sha256:
        raise TransactionError(f"record {index + 2} is not the image read before: the transaction changed")
    out = encode_images(data, tx, [index])[0]
    if isinstance(out, str):
        raise CorruptImageError(out)
    return out


def record_source(path: str | Path, index: int) -> str:
    """A sample's ``source`` naming one record of a transaction file: ``file#record=N`` with N the
    record number of its label (Type-1 is record 1; see :func:`parse_record_source`)."""
    return f"{path}#record={index + 2}"


def parse_record_source(source: str) -> tuple[Path, int] | None:
    """``(file, index in Transaction.records)`` of a source written by :func:`record_source`, else None."""
    path, sep, rest = source.rpartition("#record=")
    return (Path(path), int(rest) - 2) if sep and rest.isascii() and rest.isdigit() and int(rest) >= 2 else None


def source_items(path: Path, identity: str, subject_field: str | None = None) -> list:
    """``locard ingest``'s items for one transaction file: one per image to enrol, one per record
    set aside; one invalid item when the file cannot be read as a transaction.

    ``identity`` is the fallback name (sub-folder or stem, as for image files).
    """
    from matcher.errors import LocardError

    from .ingest import SourceItem

    try:
        tx = read(path.read_bytes())
    except OSError as exc:
        return [SourceItem(path, identity, "finger", invalid=str(exc), invalid_error="UnreadableFile")]
    except LocardError as exc:
        return [SourceItem(path, identity, "finger", invalid=str(exc), invalid_error=type(exc).__name__)]
    name = subject_name(tx, subject_field) or identity
    found = contents(tx, purpose="enrol")
    items = [SourceItem(path, name, im.modality, im.finger_position, im.ppi, im.metadata, record=im.index,
                        record_label=im.label, sha256=im.sha256) for im in found.images]
    items += [SourceItem(path, name, a.modality, record=a.index, record_label=a.label, set_aside=a.reason)
              for a in found.set_aside]
    if not items:
        return [SourceItem(path, name, "finger", invalid="the transaction holds no fingerprint or face image",
                           invalid_error="TransactionError")]
    return sorted(items, key=lambda it: it.record)


def search_response(candidates: Sequence, *, request_tcn: str | None, threshold: float | None,
                    tcn: str | None = None) -> bytes:
    """A search response transaction (Type-1 + Type-2 candidate list) for ranked candidates.

    ``candidates`` are the searcher's (:class:`indexer.search.Candidate`) or the service's
    (``CandidateOut``): ``subject``, ``raw`` (comparator score), ``score`` (fused -log10 FMR)
    and ``hit``; ``threshold`` is the decision threshold as -log10 FMR (None: none applied).
    """
    from matcher.interchange import SearchCandidate, write_search_response

    return write_search_response([SearchCandidate(c.subject, float(c.raw), float(c.score), bool(c.hit))
                                  for c in candidates], request_tcn=request_tcn or None,
                                 threshold_log10_fmr=threshold, tcn=tcn)
