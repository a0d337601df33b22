"""ANSI/NIST-ITL transactions over HTTP: request bodies in, answers out.

Requests: ``POST /v1/subjects``, ``/v1/subjects/{id}/encounters``, ``/v1/search`` and
``/v1/jobs`` take a transaction as the whole body with ``Content-Type:
application/x-ansi-nist`` (the name of this format here) or ``application/octet-stream``;
what a multipart request sends as form fields then comes as query parameters.  A
transaction is one subject: its images become the same per-image inputs
(:class:`api.service.ImageInput`) a multipart request gives (:mod:`indexer.transactions`:
which records are used, positions and ppi from the records), and go the same way from there.

Answers are JSON unless the ``Accept`` header names ``application/x-ansi-nist`` or
``application/octet-stream`` before any JSON type; then, in that media type: an enrolment
answers a transaction of Type-1 (TOT ``SRE``) and Type-2 with the subject id (2.003, domain
LOCARD); a search answers a search response (:func:`matcher.interchange.write_search_response`:
1.010 TCR = the probe's TCN, 1.009 TCN = the search id); a batch job's results answer the
search response of one item (``?item=N``; a job of one item needs none).  Errors stay
``application/problem+json``.

Limits are those of any image request: the body-size limit and the per-key admission apply
before the body is read; each image record is held to the per-image byte limit, the images of
one transaction to the per-request image count and pixel budget, counted from the sizes the
records declare before anything is decoded, then from the images' own headers (413).  A transaction that cannot be read is a 422
with the reader's message; records that cannot be used are listed one by one in the answer's
``images`` (``part`` ``transaction``, ``index`` the record number, ``filename`` its label).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import Response

from matcher.errors import ImageTooLargeError, TransactionError

from . import schemas as S
from .extraction import Limits

MEDIA_TYPE = "application/x-ansi-nist"
"""Media type of a transaction here (no registered one exists); application/octet-stream is taken too."""
MEDIA_TYPES = (MEDIA_TYPE, "application/octet-stream")
_JSON_TYPES = frozenset({"application/json", "application/problem+json", "application/*", "*/*"})
_BINARY = {"schema": {"type": "string", "format": "binary"}}

#: ``openapi_extra`` of a route that takes a transaction body (besides its multipart form).
REQUEST_BODY = {"requestBody": {"content": {t: _BINARY for t in MEDIA_TYPES}}}


def answer_content(description: str) -> dict:
    """OpenAPI ``content`` of a transaction answer."""
    return {"content": {t: _BINARY for t in MEDIA_TYPES}, "description": description}


def sent_transaction(request: Request) -> bool:
    """Whether the request's body is a transaction (by its Content-Type)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower() in MEDIA_TYPES


def answer_type(request: Request) -> str | None:
    """The transaction media type the client's ``Accept`` prefers to JSON, or None (answer JSON)."""
    ranked = []
    for n, part in enumerate(request.headers.get("accept", "").split(",")):
        kind, *params = [p.strip() for p in part.split(";")]
        q = 1.0
        for p in params:
            name, _, value = p.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if kind and q > 0:
            ranked.append((-q, n, kind.lower()))
    for _, _, kind in sorted(ranked):
        if kind in MEDIA_TYPES:
            return kind
        if kind in _JSON_TYPES:
            return None
    return None


@dataclass(frozen=True)
class TransactionInputs:
    """A transaction's images as the service's per-image inputs, and the records not used."""

    images: list
    """:class:`api.service.ImageInput` per image record to use."""
    refused: list[S.ImageOutcome]
    """Records set aside or whose image could not be decoded, each with why."""
    control_number: str
    """TCN (1.009) of the transaction."""
    reference: str
    """The subject's name in the transaction (:func:`indexer.transactions.subject_name`), else its TCN."""


def transaction_inputs(data: bytes, purpose: str, limits: Limits,
                       latent_position: int | None = None) -> TransactionInputs:
    """Read a transaction into per-image inputs (CPU-bound: call it off the event loop).

    Raises
    ------
    matcher.errors.TransactionError
        The transaction cannot be read, or holds no image (422).
    matcher.errors.ImageTooLargeError
        An image record over the per-image byte limit, more images than a request may hold, or
        more pixels than its budget, from the declared sizes (413).
    """
    from indexer.transactions import contents, encode_images, read, subject_name

    from .service import ImageInput

    tx = read(data)
    found = contents(tx, purpose=purpose, latent_position=latent_position)
    if not found.images and not found.set_aside:
        raise TransactionError("the transaction holds no fingerprint or face image")
    if len(found.images) > limits.max_images:
        raise ImageTooLargeError(f"the transaction holds {len(found.images)} images to use; "
                                 f"the limit is {limits.max_images} per request")
    pixels = 0.0
    for im in found.images:
        size = len(tx.records[im.index].data)
        if size > limits.max_image_bytes:
            raise ImageTooLargeError(f"{im.label}: its image is {size} bytes; the limit is {limits.max_image_bytes}")
        scale = (500.0 / im.ppi) ** 2 if im.modality == "finger" and im.ppi < 500 else 1.0
        pixels += max(im.width, 0) * max(im.height, 0) * scale
    if pixels > limits.max_request_pixels:
        raise ImageTooLargeError(f"the transaction's images declare {pixels / 1e6:.1f} million pixels together; the "
                                 f"limit is {limits.max_request_pixels / 1e6:.1f} million per request")
    refused = [S.ImageOutcome(part="transaction", index=a.index + 2, filename=a.label, modality=a.modality,
                              accepted=False, error="SetAside", reason=a.reason) for a in found.set_aside]
    images = []
    for im, encoded in zip(found.images, encode_images(data, tx, [im.index for im in found.images])):
        if isinstance(encoded, str):
            refused.append(S.ImageOutcome(part="transaction", index=im.index + 2, filename=im.label,
                                          modality=im.modality, finger_position=im.finger_position, accepted=False,
                                          image_sha256=im.sha256, error="CorruptImageError", reason=encoded))
        else:
            images.append(ImageInput("transaction", im.index + 2, im.label, encoded, im.modality, im.finger_position,
                                     im.ppi, im.metadata))
    from .admission import request_pixels

    counted = request_pixels(images)  # from the images' own headers: a record may understate its size
    if counted > limits.max_request_pixels:
        raise ImageTooLargeError(f"the transaction's images hold {counted / 1e6:.1f} million pixels together; the "
                                 f"limit is {limits.max_request_pixels / 1e6:.1f} million per request")
    return TransactionInputs(images, refused, found.control_number, subject_name(tx) or found.control_number)


def enrolment_answer(request: Request, out: S.Enrolment, status: int = 201) -> S.Enrolment | Response:
    """The enrolment as JSON, or as a transaction naming the subject when the client asks for one."""
    media = answer_type(request)
    if media is None:
        return out
    from matcher.interchange import write_subject_transaction

    return Response(write_subject_transaction(out.subject.id, tot="SRE"), status_code=status, media_type=media,
                    headers={"X-Locard-Subject": out.subject.id})


def search_answer(request: Request, out: S.SearchOut) -> S.SearchOut | Response:
    """The search as JSON, or as a search response transaction when the client asks for one."""
    media = answer_type(request)
    if media is None:
        return out
    from indexer.transactions import search_response

    data = search_response(out.candidates, request_tcn=out.control_number, threshold=out.threshold,
                           tcn=out.search_id)
    return Response(data, media_type=media, headers={"X-Locard-Search": out.search_id})


def job_results_answer(request: Request, results: S.JobResults, item: int | None) -> S.JobResults | Response:
    """A job's results as JSON, or one item's search response transaction when the client asks for one."""
    media = answer_type(request)
    if media is None:
        return results
    from indexer.transactions import search_response

    from .problems import TYPE_BASE, Problem

    if item is None and len(results.items) != 1:
        raise Problem(422, f"the job has {len(results.items)} probes: ask for one with ?item=N to get its search "
                           "response transaction", type_=TYPE_BASE + "invalid-request")
    found = [it for it in results.items if it.index == (item if item is not None else results.items[0].index)]
    if not found:
        raise Problem(404, f"the job has no item {item}", type_=TYPE_BASE + "not-found")
    it = found[0]
    if it.state != "done":
        raise Problem(409, f"item {it.index} is {it.state}" + (f": {it.error}" if it.error else ""),
                      type_=TYPE_BASE + "item-not-done")
    data = search_response(it.candidates, request_tcn=it.control_number, threshold=it.threshold)
    return Response(data, media_type=media)
