"""Multipart uploads and transaction bodies -> :class:`api.service.ImageInput`, with the count and size limits."""

from __future__ import annotations

from anyio.to_thread import run_sync
from fastapi import Request, UploadFile

from matcher.errors import ImageTooLargeError, LocardError

from .admission import check_pixel_budget
from .keys import BUREAU_NAME
from .problems import TYPE_BASE, Problem
from .service import ImageInput, QueryService
from .transactions import TransactionInputs, transaction_inputs


async def read_upload(service: QueryService, f: UploadFile, part: str, index: int) -> bytes:
    limit = service.config.limits.max_image_bytes
    data = await f.read(limit + 1)
    if len(data) > limit:
        raise Problem(413, f"{part}[{index}] ({f.filename or 'unnamed'}) is larger than {limit} bytes",
                      type_=TYPE_BASE + "image-too-large")
    return data


async def read_images(service: QueryService, fingerprints: list[UploadFile] | None, positions: list[int] | None,
                      faces: list[UploadFile] | None, ppi: float) -> list[ImageInput]:
    fingerprints, faces, positions = fingerprints or [], faces or [], positions or []
    n = len(fingerprints) + len(faces)
    limit = service.config.limits.max_images
    if n == 0:
        raise Problem(422, "no image was sent: send one or more 'fingerprint' and/or 'face' file parts, or an "
                           "ANSI/NIST-ITL transaction as the body (Content-Type: application/x-ansi-nist)",
                      type_=TYPE_BASE + "invalid-request")
    if n > limit:
        raise Problem(413, f"{n} images in one request; the limit is {limit}", type_=TYPE_BASE + "too-many-images")
    if positions and len(positions) != len(fingerprints):
        raise Problem(422, f"{len(positions)} finger_position values for {len(fingerprints)} fingerprint images: "
                           "give one per image, in the same order, or none", type_=TYPE_BASE + "invalid-request")
    for p in positions:
        if not 0 <= p <= 10:
            raise Problem(422, f"finger_position {p} is not an ANSI/NIST code 0-10", type_=TYPE_BASE + "invalid-request")
    out = []
    for i, f in enumerate(fingerprints):
        out.append(ImageInput("fingerprint", i, f.filename or "", await read_upload(service, f, "fingerprint", i),
                              "finger", positions[i] if positions else 0, ppi))
    for i, f in enumerate(faces):
        out.append(ImageInput("face", i, f.filename or "", await read_upload(service, f, "face", i), "face", 0, ppi))
    check_pixel_budget(out, service.config.limits.max_request_pixels)
    return out


async def read_probe(service: QueryService, fingerprint: UploadFile | None, face: UploadFile | None,
                     finger_position: int, ppi: float) -> ImageInput:
    """The one probe image of a 1:1 request: a ``fingerprint`` or a ``face`` file part, not both."""
    if (fingerprint is None) == (face is None):
        raise Problem(422, "send exactly one probe image: a 'fingerprint' or a 'face' file part",
                      type_=TYPE_BASE + "invalid-request")
    f, part, modality = (fingerprint, "fingerprint", "finger") if fingerprint is not None else (face, "face", "face")
    image = ImageInput(part, 0, f.filename or "", await read_upload(service, f, part, 0), modality,
                       finger_position if modality == "finger" else 0, ppi)
    check_pixel_budget([image], service.config.limits.max_request_pixels)
    return image


def parse_shared(value: str) -> tuple[str, ...] | None:
    """``all`` -> None (every bureau); ``none`` -> () (the owner only); else a comma-separated list."""
    value = value.strip()
    if value.lower() in ("all", "*"):
        return None
    if value.lower() in ("none", ""):
        return ()
    names = tuple(sorted({v.strip() for v in value.split(",") if v.strip()}))
    for n in names:
        if not BUREAU_NAME.match(n):
            raise Problem(422, f"shared_with: {n!r} is not a bureau name", type_=TYPE_BASE + "invalid-request")
    return names


def check_bureaus(names: list[str] | None) -> tuple[str, ...] | None:
    if names is None:
        return None
    for n in names:
        if not BUREAU_NAME.match(n):
            raise Problem(422, f"shared_with: {n!r} is not a bureau name", type_=TYPE_BASE + "invalid-request")
    return tuple(sorted(set(names)))


async def read_job_probes(service: QueryService, fingerprints: list[UploadFile] | None, positions: list[int] | None,
                          faces: list[UploadFile] | None, archive: UploadFile | None, archive_modality: str):
    """The probes of a batch job: uploaded images and/or the images of a ZIP archive."""
    from .jobs import MAX_PROBES, JobProbe, read_archive

    fingerprints, faces, positions = fingerprints or [], faces or [], positions or []
    if positions and len(positions) != len(fingerprints):
        raise Problem(422, f"{len(positions)} finger_position values for {len(fingerprints)} fingerprint images",
                      type_=TYPE_BASE + "invalid-request")
    if any(not 0 <= p <= 10 for p in positions):
        raise Problem(422, "finger_position values must be ANSI/NIST codes 0-10", type_=TYPE_BASE + "invalid-request")
    if len(fingerprints) + len(faces) > MAX_PROBES:
        raise Problem(413, f"more than {MAX_PROBES} probes in one job", type_=TYPE_BASE + "too-many-images")
    probes = []
    for i, f in enumerate(fingerprints):
        probes.append(JobProbe(f.filename or f"fingerprint[{i}]", "finger", positions[i] if positions else 0,
                               data=await read_upload(service, f, "fingerprint", i)))
    for i, f in enumerate(faces):
        probes.append(JobProbe(f.filename or f"face[{i}]", "face", 0, data=await read_upload(service, f, "face", i)))
    if archive is not None:
        # the upload is already spooled to a file: the archive is read from there, entry by entry, off the loop
        await archive.seek(0)
        probes += await run_sync(read_archive, archive.file, archive_modality, MAX_PROBES - len(probes),
                                 service.config.limits)
    if not probes:
        raise Problem(422, "no probe was sent: send 'fingerprint' / 'face' file parts or a ZIP 'archive'",
                      type_=TYPE_BASE + "invalid-request")
    return probes


async def read_transaction_body(service: QueryService, request: Request, caller, action: str,
                                latent_position: int | None = None) -> TransactionInputs:
    """The images of a transaction body (:mod:`api.transactions`) for ``action`` (``enrol``,
    ``enrol-encounter`` or ``search``).  A transaction that cannot be read, or over the limits,
    is refused (422, 413) and the attempt audited."""
    data = await request.body()  # bounded by the body-size limit before it is read
    purpose = "search" if action == "search" else "enrol"
    try:
        return await run_sync(transaction_inputs, data, purpose, service.config.limits, latent_position)
    except LocardError as exc:
        await service.refused_input(caller, action, data, exc)
        raise


async def read_job_transaction(service: QueryService, request: Request, caller, latent_position: int | None):
    """A batch job of one transaction body (searched as one probe, asynchronously), checked now: held
    to the per-image byte limit like any job probe, readable, within the request limits."""
    from .jobs import JobProbe

    data = await request.body()
    try:
        limit = service.config.limits.max_image_bytes
        if len(data) > limit:
            raise ImageTooLargeError(f"a job's transaction is {len(data)} bytes; a job probe may be {limit}")
        inputs = await run_sync(transaction_inputs, data, "search", service.config.limits, latent_position)
    except LocardError as exc:
        await service.refused_input(caller, "batch-submit", data, exc)
        raise
    label = f"transaction {inputs.control_number}".strip()
    return [JobProbe(label[:200], "finger", latent_position or 0, data=data)]
