"""The FastAPI application: routes wired to :class:`api.service.QueryService`.

``create_app(ServiceConfig(store=...))`` builds it; ``locard serve`` runs it with uvicorn.
Route functions only wire: parse the request (typed models and form fields), check the
key's role (dependencies in :mod:`api.auth`), call the service, return its model.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, File, Form, Path, Query, Request, UploadFile
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST
from fastapi.responses import Response

from . import schemas as S
from .admission import KeyAdmission, check_pixel_budget
from .auth import Admin, AnyKey, Auditor, Bureau, CaseReader, Examiner, Reader, Searcher, allowed_operations, get_service
from .problems import install_handlers
from .limits import BodySizeLimit
from .metrics import Metrics, MetricsMiddleware
from .service import QueryService, ServiceConfig
from .jobs import JobRunner, manifest_probes
from .transactions import (REQUEST_BODY as TRANSACTION_BODY, answer_content, enrolment_answer, job_results_answer,
                           search_answer, sent_transaction)
from .uploads import (check_bureaus, parse_shared, read_images, read_job_probes, read_job_transaction, read_probe,
                      read_transaction_body, read_upload)
from .web import mount_workbench

VERSION = "0.1.0"
Service = Annotated[QueryService, Depends(get_service)]
SubjectId = Annotated[str, Path(max_length=200, description="Subject id")]

PROBLEM = {"model": S.ProblemDetail, "content": {"application/problem+json": {}}}
AUTH_ERRORS = {401: PROBLEM, 403: PROBLEM}
IMAGE_ERRORS = {**AUTH_ERRORS, 413: PROBLEM, 415: PROBLEM, 422: PROBLEM}

FingerprintFiles = Annotated[list[UploadFile] | None, File(description="Fingerprint images (repeat the field)")]
FingerPositions = Annotated[list[int] | None, Form(
    description="ANSI/NIST finger position (0 unknown, 1-10) of each fingerprint image, in order")]
FaceFiles = Annotated[list[UploadFile] | None, File(description="Face images (repeat the field)")]
Ppi = Annotated[float, Form(ge=250, le=2000, description="Capture resolution of the fingerprint images (ppi)")]
Fmr = Annotated[float, Form(gt=0, le=1, description="Target false match rate of the decision threshold")]
# A transaction body (api.transactions) brings its options as query parameters
TxEnrol = Annotated[S.TransactionEnrolQuery, Query()]
TxSearch = Annotated[S.TransactionSearchQuery, Query()]
ENROL_ANSWER = {201: answer_content("With Accept: application/x-ansi-nist: Type-1 (TOT SRE) and Type-2 with the "
                                    "subject id in 2.003 (domain LOCARD)")}

v1 = APIRouter(prefix="/v1")


@v1.get("/health", response_model=S.Health, tags=["service"])
async def health() -> S.Health:
    """Liveness; needs no key."""
    return S.Health(version=VERSION)


# -- subjects ------------------------------------------------------------------------------------
@v1.post("/subjects", status_code=201, response_model=S.Enrolment, responses={**IMAGE_ERRORS, **ENROL_ANSWER},
         tags=["subjects"], openapi_extra=TRANSACTION_BODY)
async def enrol_subject(
    caller: Bureau, service: Service, request: Request, tx: TxEnrol, fingerprint: FingerprintFiles = None,
    finger_position: FingerPositions = None, face: FaceFiles = None, ppi: Ppi = 500.0,
    shared_with: Annotated[str, Form(max_length=10_000, description=(
        "Who besides your bureau may see the record: 'all', or a comma-separated list of bureaus; "
        "'none' or absent: your bureau only"))] = "none",
    reference: Annotated[str, Form(max_length=200, description="Your own reference (case number)")] = "",
):
    """Enrol a new subject from fingerprint and/or face images (one multipart request), or from an
    ANSI/NIST-ITL transaction (the body, Content-Type application/x-ansi-nist; options as query parameters)."""
    if sent_transaction(request):
        found = await read_transaction_body(service, request, caller, "enrol")
        out = await service.enrol(caller, found.images, parse_shared(tx.shared_with), tx.reference or found.reference,
                                  refused=found.refused)
    else:
        images = await read_images(service, fingerprint, finger_position, face, ppi)
        out = await service.enrol(caller, images, parse_shared(shared_with), reference)
    return enrolment_answer(request, out)


@v1.post("/subjects/{subject_id}/encounters", status_code=201, response_model=S.Enrolment,
         responses={**IMAGE_ERRORS, 404: PROBLEM, **ENROL_ANSWER}, tags=["subjects"], openapi_extra=TRANSACTION_BODY)
async def add_encounter(caller: Bureau, service: Service, request: Request, subject_id: SubjectId,
                        fingerprint: FingerprintFiles = None, finger_position: FingerPositions = None,
                        face: FaceFiles = None, ppi: Ppi = 500.0):
    """Add a new encounter (more images, or a transaction body) to a subject your bureau owns; nothing
    stored is overwritten."""
    if sent_transaction(request):
        found = await read_transaction_body(service, request, caller, "enrol-encounter")
        out = await service.enrol(caller, found.images, None, "", existing=subject_id, refused=found.refused)
    else:
        images = await read_images(service, fingerprint, finger_position, face, ppi)
        out = await service.enrol(caller, images, None, "", existing=subject_id)
    return enrolment_answer(request, out)


@v1.get("/subjects", response_model=S.SubjectPage, responses=AUTH_ERRORS, tags=["subjects"])
async def list_subjects(caller: Reader, service: Service, offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
                        limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> S.SubjectPage:
    """Subjects your bureau may see, by id, paged."""
    return await service.list_subjects(caller, offset, limit)


@v1.get("/subjects/{subject_id}", response_model=S.SubjectOut, responses={**AUTH_ERRORS, 404: PROBLEM},
        tags=["subjects"])
async def read_subject(caller: Reader, service: Service, subject_id: SubjectId) -> S.SubjectOut:
    return await service.read_subject(caller, subject_id)


@v1.delete("/subjects/{subject_id}", response_model=S.Deleted, responses={**AUTH_ERRORS, 404: PROBLEM},
           tags=["subjects"])
async def delete_subject(caller: Bureau, service: Service, subject_id: SubjectId) -> S.Deleted:
    """Delete a subject your bureau owns, everywhere (recorded in the audit log)."""
    return await service.delete(caller, subject_id)


@v1.put("/subjects/{subject_id}/access", response_model=S.SubjectOut,
        responses={**AUTH_ERRORS, 404: PROBLEM, 422: PROBLEM}, tags=["subjects"])
async def set_access(caller: Bureau, service: Service, subject_id: SubjectId, body: S.AccessUpdate) -> S.SubjectOut:
    """Change who may see a subject your bureau owns."""
    return await service.set_access(caller, subject_id, check_bureaus(body.shared_with))


# -- search and verify ---------------------------------------------------------------------------
@v1.post("/search", response_model=S.SearchOut, tags=["search"], openapi_extra=TRANSACTION_BODY, responses={
    **IMAGE_ERRORS, 200: answer_content("With Accept: application/x-ansi-nist: a search response transaction "
                                        "(1.010 TCR the probe's TCN, 1.009 TCN the search id, candidates in 2.901)")})
async def search(caller: Searcher, service: Service, request: Request, tx: TxSearch,
                 fingerprint: FingerprintFiles = None, finger_position: FingerPositions = None,
                 face: FaceFiles = None, ppi: Ppi = 500.0, top: Annotated[int, Form(ge=1, le=100)] = 10,
                 fmr: Fmr = 1e-3,
                 case: Annotated[str, Form(max_length=200, description="Your case reference (kept with the search)")]
                 = ""):
    """1:N: rank the subjects your bureau may see against the probe images (one person), or against an
    ANSI/NIST-ITL transaction (the body: a ten-print's prints and faces fused, or its latents).

    The search is kept (GET /v1/searches/{search_id}) so that conclusions can be recorded on it."""
    if sent_transaction(request):
        found = await read_transaction_body(service, request, caller, "search", tx.finger_position)
        out = await service.search(caller, found.images, tx.top, tx.fmr, tx.case, refused=found.refused,
                                   control_number=found.control_number)
    else:
        images = await read_images(service, fingerprint, finger_position, face, ppi)
        out = await service.search(caller, images, top, fmr, case)
    return search_answer(request, out)


@v1.post("/verify", response_model=S.VerifyOut, responses={**IMAGE_ERRORS, 404: PROBLEM}, tags=["search"])
async def verify_subject(caller: Examiner, service: Service, subject: Annotated[str, Form(max_length=200)],
                         fingerprint: FingerprintFiles = None, finger_position: FingerPositions = None,
                         face: FaceFiles = None, ppi: Ppi = 500.0, fmr: Fmr = 1e-3) -> S.VerifyOut:
    """1:1: are the probe images of this subject?"""
    images = await read_images(service, fingerprint, finger_position, face, ppi)
    return await service.verify(caller, images, subject, None, fmr)


@v1.post("/verify/images", response_model=S.VerifyOut, responses=IMAGE_ERRORS, tags=["search"])
async def verify_images(caller: Examiner, service: Service, image_a: Annotated[UploadFile, File()],
                        image_b: Annotated[UploadFile, File()],
                        modality: Annotated[S.Modality, Form()] = "finger", ppi: Ppi = 500.0,
                        fmr: Fmr = 1e-3) -> S.VerifyOut:
    """1:1: are two images of the same finger (or face)?"""
    from .service import ImageInput

    a = ImageInput("image_a", 0, image_a.filename or "", await read_upload(service, image_a, "image_a", 0),
                   modality, 0, ppi)
    b = ImageInput("image_b", 0, image_b.filename or "", await read_upload(service, image_b, "image_b", 0),
                   modality, 0, ppi)
    check_pixel_budget([a, b], service.config.limits.max_request_pixels)
    return await service.verify(caller, [a], None, b, fmr)


@v1.post("/evidence", response_class=Response, responses={
    **IMAGE_ERRORS, 404: PROBLEM,
    200: {"content": {"image/png": {}}, "description": "Probe (left) and gallery print (right), paired minutiae linked"}},
    tags=["search"])
async def evidence(caller: Examiner, service: Service, fingerprint: Annotated[UploadFile, File()],
                   subject: Annotated[str, Form(max_length=200)],
                   sample_id: Annotated[int | None, Form(ge=1, le=2**62)] = None,
                   finger_position: Annotated[int, Form(ge=0, le=10)] = 0, ppi: Ppi = 500.0) -> Response:
    """PNG of the probe print beside the subject's best-matching (or the given) fingerprint sample."""
    from .service import ImageInput

    image = ImageInput("fingerprint", 0, fingerprint.filename or "",
                       await read_upload(service, fingerprint, "fingerprint", 0), "finger", finger_position, ppi)
    ev = await service.evidence(caller, image, subject, sample_id)
    return Response(ev.png, media_type="image/png", headers={
        "X-Locard-Sample": str(ev.sample_id), "X-Locard-Score": f"{ev.score:.6f}",
        "X-Locard-Pairs": str(ev.pairs), "X-Locard-Gallery-Image": ev.gallery_image})


@v1.post("/compare", response_model=S.CompareOut, responses={**IMAGE_ERRORS, 404: PROBLEM}, tags=["search"])
async def compare(caller: Examiner, service: Service, subject: Annotated[str, Form(min_length=1, max_length=200)],
                  fingerprint: Annotated[UploadFile | None, File(description="Probe fingerprint (or send face)")] = None,
                  face: Annotated[UploadFile | None, File(description="Probe face image (or send fingerprint)")] = None,
                  sample_id: Annotated[int | None, Form(ge=1, le=2**62)] = None,
                  finger_position: Annotated[int, Form(ge=0, le=10)] = 0, ppi: Ppi = 500.0) -> S.CompareOut:
    """The probe beside the subject's best-matching (or the given) sample, as data for the compare view:
    images in the templates' frame (500 ppi; faces: aligned crops), enhanced ridges, minutiae, pairs, score."""
    image = await read_probe(service, fingerprint, face, finger_position, ppi)
    return await service.compare(caller, image, subject, sample_id)


# -- casework: stored searches and ACE-V conclusions --------------------------------------------
SearchId = Annotated[str, Path(max_length=40, description="search_id of a search of your bureau")]


@v1.get("/searches/{search_id}", response_model=S.StoredSearch, responses={**AUTH_ERRORS, 404: PROBLEM},
        tags=["conclusions"])
async def read_search(caller: Examiner, service: Service, search_id: SearchId) -> S.StoredSearch:
    """A search of your bureau as it was answered (candidates your bureau may no longer see left out)."""
    return await service.casework.read_search(caller, search_id)


@v1.post("/searches/{search_id}/conclusions", status_code=201, response_model=S.ConclusionOut,
         responses={**AUTH_ERRORS, 404: PROBLEM, 409: PROBLEM, 422: PROBLEM}, tags=["conclusions"])
async def record_conclusion(caller: Examiner, service: Service, search_id: SearchId,
                            body: S.ConclusionIn) -> S.ConclusionOut:
    """Record your conclusion on a candidate of the search: the first is the initial one, another
    examiner's is a verification (the same key twice: 409)."""
    return await service.casework.record(caller, search_id, body)


@v1.get("/searches/{search_id}/conclusions", response_model=S.SearchConclusions,
        responses={**AUTH_ERRORS, 404: PROBLEM}, tags=["conclusions"])
async def search_conclusions(caller: CaseReader, service: Service, search_id: SearchId) -> S.SearchConclusions:
    """Conclusions per candidate of the search.  Blind: an examiner sees others' conclusions on a
    candidate only after recording their own there; auditors see all."""
    return await service.casework.of_search(caller, search_id)


@v1.get("/conclusions", response_model=S.ConclusionPage, responses={**AUTH_ERRORS, 422: PROBLEM},
        tags=["conclusions"])
async def list_conclusions(caller: CaseReader, service: Service,
                           case: Annotated[str | None, Query(max_length=200, description="Only this case")] = None,
                           status: Annotated[S.ConclusionStatus | None, Query()] = None,
                           offset: Annotated[int, Query(ge=0, le=10**9)] = 0,
                           limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> S.ConclusionPage:
    """Candidates with conclusions in your bureau's searches (a global auditor: all), by case, paged
    (same blind rule)."""
    return await service.casework.page(caller, case, status, offset, limit)


# -- batch jobs ----------------------------------------------------------------------------------
JobId = Annotated[str, Path(max_length=40, description="Job id")]


@v1.post("/jobs", status_code=202, response_model=S.JobOut, responses=IMAGE_ERRORS, tags=["jobs"],
         openapi_extra=TRANSACTION_BODY)
async def submit_job(caller: Bureau, service: Service, request: Request, tx: TxSearch,
                     fingerprint: FingerprintFiles = None, finger_position: FingerPositions = None,
                     face: FaceFiles = None,
                     archive: Annotated[UploadFile | None, File(description="ZIP of probe images or transactions")] = None,
                     archive_modality: Annotated[S.Modality, Form(description="Modality of the archive's images")] = "finger",
                     ppi: Ppi = 500.0, top: Annotated[int, Form(ge=1, le=100)] = 10, fmr: Fmr = 1e-3) -> S.JobOut:
    """Batch search: one probe per image (uploaded, or in a ZIP archive); poll the job, then fetch results.
    A probe that is an ANSI/NIST-ITL transaction (an archive entry, or the body itself) is searched as one
    subject, all its images fused."""
    if sent_transaction(request):
        probes = await read_job_transaction(service, request, caller, tx.finger_position)
        return await service.submit_job(caller, probes, tx.top, tx.fmr, 500.0)
    probes = await read_job_probes(service, fingerprint, finger_position, face, archive, archive_modality)
    return await service.submit_job(caller, probes, top, fmr, ppi)


@v1.post("/jobs/manifest", status_code=202, response_model=S.JobOut, responses={**AUTH_ERRORS, 422: PROBLEM},
         tags=["jobs"])
async def submit_manifest_job(caller: Bureau, service: Service, body: S.JobManifest) -> S.JobOut:
    """Batch search over images already on the server (paths under its --manifest-root)."""
    probes = manifest_probes(body, service.config.manifest_root, service.config.limits.max_image_bytes)
    return await service.submit_job(caller, probes, body.top, body.fmr, body.ppi)


@v1.get("/jobs/{job_id}", response_model=S.JobOut, responses={**AUTH_ERRORS, 404: PROBLEM}, tags=["jobs"])
async def job_status(caller: Bureau, service: Service, job_id: JobId) -> S.JobOut:
    """State and progress of a job of your bureau."""
    return await service.job(caller, job_id)


@v1.get("/jobs/{job_id}/results", response_model=S.JobResults, responses={
    **AUTH_ERRORS, 404: PROBLEM, 409: PROBLEM, 422: PROBLEM,
    200: {"content": {"text/csv": {}, **answer_content("")["content"]}, "description": (
        "JSON; CSV with format=csv; with Accept: application/x-ansi-nist the search response transaction of "
        "one item")}}, tags=["jobs"])
async def job_results(caller: Bureau, service: Service, request: Request, job_id: JobId,
                      format: Annotated[Literal["json", "csv"], Query()] = "json",
                      item: Annotated[int | None, Query(ge=0, le=S.MAX_JOB_PROBES, description=(
                          "With Accept: application/x-ansi-nist: the item whose search response to answer "
                          "(needless for a job of one probe)"))] = None):
    """Results so far (one ranked list per probe), as JSON or CSV, or one item's search response transaction."""
    results = await service.job_results(caller, job_id)
    if format == "csv":
        return Response(JobRunner.results_csv(results), media_type="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{job_id}.csv"'})
    return job_results_answer(request, results, item)


@v1.delete("/jobs/{job_id}", response_model=S.JobOut, responses={**AUTH_ERRORS, 404: PROBLEM}, tags=["jobs"])
async def cancel_job(caller: Bureau, service: Service, job_id: JobId) -> S.JobOut:
    """Cancel a queued or running job (results so far are kept)."""
    return await service.cancel_job(caller, job_id)


# -- audit and keys ------------------------------------------------------------------------------
@v1.get("/audit", response_model=S.AuditPage, responses=AUTH_ERRORS, tags=["audit"])
async def audit_log(caller: Auditor, service: Service, after: Annotated[int, Query(ge=0, le=2**62)] = 0,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> S.AuditPage:
    """The audit log, oldest first, from the entry after ``after``: the entries that concern your
    bureau, or all of them for a global auditor key.  Reading it is itself recorded."""
    entries = await service.read_audit(caller, after, limit)
    return S.AuditPage(entries=[S.AuditEntryOut(**e.__dict__) for e in entries],
                       next_after=entries[-1].seq if len(entries) == limit else None)


@v1.get("/audit/verify", response_model=S.AuditCheck, responses=AUTH_ERRORS, tags=["audit"])
async def audit_verify(caller: Auditor, service: Service) -> S.AuditCheck:
    """Recompute the hash chain of the whole log and compare its head with the anchor kept outside the store."""
    check = await service.verify_audit(caller)
    return S.AuditCheck(entries=check.entries, intact=check.intact, problems=check.problems[:100])


@v1.post("/keys", status_code=201, response_model=S.KeyCreated, responses={**AUTH_ERRORS, 422: PROBLEM},
         tags=["keys"])
async def create_key(caller: Admin, service: Service, body: S.KeyCreate) -> S.KeyCreated:
    """Make a key; the key is in this answer only."""
    return await service.create_key(caller, body)


@v1.get("/keys", response_model=list[S.KeyOut], responses=AUTH_ERRORS, tags=["keys"])
async def list_keys(caller: Admin, service: Service) -> list[S.KeyOut]:
    return await service.list_keys()


@v1.delete("/keys/{key_id}", response_model=S.KeyOut, responses={**AUTH_ERRORS, 404: PROBLEM}, tags=["keys"])
async def revoke_key(caller: Admin, service: Service,
                     key_id: Annotated[str, Path(max_length=40)]) -> S.KeyOut:
    return await service.revoke_key(caller, key_id)


@v1.get("/whoami", response_model=S.WhoAmI, responses=AUTH_ERRORS, tags=["keys"])
async def whoami(caller: AnyKey, request: Request) -> S.WhoAmI:
    """The calling key: id, role, bureau, and the operations its role may call."""
    # the router's own routes: newer FastAPI keeps included routers nested in app.routes
    ops = allowed_operations([*v1.routes, *request.app.routes], caller.role)
    return S.WhoAmI(key_id=caller.id, role=caller.role, bureau=caller.bureau, scope=caller.scope,
                    operations=[S.OperationOut(name=n, method=m, path=p) for n, m, p in ops])


async def prometheus_metrics(caller: AnyKey, request: Request) -> Response:
    """Prometheus metrics (text format); any valid key."""
    return Response(request.app.state.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def create_app(config: ServiceConfig) -> FastAPI:
    service = QueryService(config)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.service.start()
        yield
        app.state.service.close()

    # Swagger UI and ReDoc from the fastapi-offline package's files, not a CDN (offline networks)
    app = FastAPIOffline(title="locard query service", version=VERSION, lifespan=lifespan,
                         swagger_ui_parameters={"validatorUrl": None},
                         description="Biometric search for examiners and bureaus: enrol, search (1:N), verify (1:1), "
                                     "batch jobs, evidence images, audit. Every route but /v1/health needs an "
                                     "X-API-Key header.")
    app.state.service = service
    app.state.metrics = metrics = Metrics(service.db)
    install_handlers(app)
    app.include_router(v1)
    app.add_api_route("/metrics", prometheus_metrics, methods=["GET"], response_class=Response, tags=["service"],
                      responses={**AUTH_ERRORS, 200: {"content": {"text/plain": {}}}})
    mount_workbench(app)  # the examiners' pages at /workbench/, / redirects there
    # outermost last: metrics see every answer; the size limit comes before the key check
    app.add_middleware(KeyAdmission, db=service.db, max_concurrent_per_key=config.limits.max_concurrent_per_key)
    app.add_middleware(BodySizeLimit, max_bytes=config.limits.max_request_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    return app
