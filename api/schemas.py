"""Request and response models of the HTTP service (they are the OpenAPI schema)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["examiner", "bureau", "auditor", "admin"]
Modality = Literal["finger", "face"]


class ProblemDetail(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow")
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None


class Health(BaseModel):
    status: Literal["ok"] = "ok"
    version: str


# -- subjects -------------------------------------------------------------------------------------
class SampleOut(BaseModel):
    sample_id: int
    modality: Modality
    finger_position: int = Field(description="ANSI/NIST-ITL finger position (0 unknown, 1-10)")
    quality: int = Field(ge=0, le=100)
    image_sha256: str


class SubjectOut(BaseModel):
    id: str
    reference: str = Field("", description="The enrolling bureau's own reference (case number)")
    owner: str = Field(description="Owning bureau")
    shared_with: list[str] | None = Field(description="Bureaus besides the owner that may see the record; null = all")
    created: float
    encounters: int
    finger_samples: int
    face_samples: int
    samples: list[SampleOut] = []


class SubjectPage(BaseModel):
    items: list[SubjectOut]
    offset: int
    limit: int
    total: int = Field(description="Subjects visible to the caller's bureau")


class ImageOutcome(BaseModel):
    """What happened to one image of an enrolment or search."""

    part: str = Field(description="Form field the image came in (fingerprint or face), or 'transaction' for a "
                                   "record of a transaction body")
    index: int = Field(description="Position of the image within its field (a transaction's record number, "
                                   "Type-1 being 1)")
    filename: str = Field("", description="File name sent, or the record's label (record 3 (Type-14, IDC 1))")
    modality: Modality
    finger_position: int = 0
    accepted: bool
    sample_id: int | None = None
    quality: int | None = None
    image_sha256: str | None = None
    error: str | None = Field(None, description="Why the image was not used (error class)")
    reason: str | None = None


class Enrolment(BaseModel):
    subject: SubjectOut
    images: list[ImageOutcome]


class AccessUpdate(BaseModel):
    shared_with: list[str] | None = Field(
        description="Bureaus besides the owner that may see the record; null shares it with all bureaus",
        max_length=200)


class Deleted(BaseModel):
    id: str
    samples: int


# -- search and verify -----------------------------------------------------------------------------
class EvidenceOut(BaseModel):
    probe: int = Field(description="Index of the probe image")
    sample_id: int
    modality: Modality
    finger_position: int
    score: float = Field(description="1:1 score (fingerprint: cohort-normalised, about 0 for an impostor; face: cosine -1..1)")
    log_fmr: float = Field(description="-log10 FMR of the score (the raw score when uncalibrated)")
    pairs: list[tuple[int, int]] | None = Field(None, description="Paired minutiae (probe index, gallery index)")


class CandidateOut(BaseModel):
    rank: int
    subject: str
    score: float = Field(description="Fused score: sum over probe images of -log10 FMR")
    raw: float
    hit: bool | None = Field(description="Score reaches the threshold at the requested FMR (null when uncalibrated)")
    evidence: list[EvidenceOut]


class SearchOut(BaseModel):
    search_id: str = Field(description="Id of this search, recorded in its audit log entry (request_id); "
                                       "GET /v1/searches/{search_id} reads it again")
    case: str = Field("", description="The caller's case reference, as sent")
    calibrated: bool
    fmr: float
    threshold: float | None
    gallery_subjects: int = Field(description="Subjects visible to the caller's bureau")
    expected_fpir: float | None
    probes: list[ImageOutcome]
    candidates: list[CandidateOut]
    control_number: str | None = Field(None, description="TCN (1.009) of the probe transaction, when the probe was one")
    complete: bool = Field(True, description="Every shard of a sharded gallery answered (always true for one store); "
                                             "when false, candidates come from the shards that did")
    missing_shards: dict[str, str] = Field(default_factory=dict,
                                           description="Shards that did not answer in time, with why")


class ComparisonOut(BaseModel):
    probe: int
    against: str = Field(description="sample:<id> of the subject, or 'image' for image-to-image")
    modality: Modality
    score: float
    log_fmr: float
    pairs: list[tuple[int, int]] | None = None


class VerifyOut(BaseModel):
    verify_id: str = Field(description="Id of this verification, recorded in its audit log entry (request_id)")
    subject: str | None
    calibrated: bool
    fmr: float
    threshold: float | None
    score: float = Field(description="Fused score (sum of -log10 FMR of the best comparison per probe image)")
    match: bool | None
    comparisons: list[ComparisonOut]


# -- compare and conclusions (the examiners' workbench) -------------------------------------------
class MinutiaOut(BaseModel):
    x: float = Field(description="Column, pixels of the side's 500-ppi frame")
    y: float = Field(description="Row, pixels of the side's 500-ppi frame")
    direction: float = Field(description="Radians in [0, 2 pi), image axes (y down)")
    type: int = Field(description="1 ridge ending, 2 bifurcation")
    quality: int = Field(ge=0, le=100)


class SideOut(BaseModel):
    """One side (probe or gallery) of a comparison, in the frame the template was made in."""

    width: int = Field(description="Pixels (the image_png's width)")
    height: int
    ppi: float | None = Field(description="500 for fingerprints (rescaled); null for face crops")
    image_png: str | None = Field(description="Base64 PNG of the image (gray print at 500 ppi, or the aligned "
                                              "face crop); null when it cannot be shown, see image_note")
    image_note: str | None = Field(None, description="Why image_png is null (e.g. the gallery image changed)")
    enhanced_png: str | None = Field(None, description="Base64 PNG of the enhanced ridges (fingerprints only)")
    enhanced_note: str | None = Field(None, description="Why enhanced_png is null, for a fingerprint")
    minutiae: list[MinutiaOut] = Field([], description="Empty for faces; pairs index into this list")


class CompareOut(BaseModel):
    subject: str
    sample_id: int = Field(description="The subject's sample compared (the best-scoring one unless given)")
    modality: Modality
    score: float = Field(description="1:1 score (fingerprint: cohort-normalised, about 0 for an impostor; face: cosine -1..1)")
    log_fmr: float = Field(description="-log10 FMR of the score, from the matcher's calibration")
    decision_fmr_1e3: bool = Field(description="log_fmr reaches the threshold at FMR 0.1 % (3.0)")
    probe: SideOut
    gallery: SideOut
    pairs: list[tuple[int, int]] = Field(description="Paired minutiae (probe index, gallery index); empty for faces")


ConclusionValue = Literal["identification", "exclusion", "inconclusive"]
ConclusionStatus = Literal["pending", "verified", "disagreement"]


class StoredSearch(SearchOut):
    """A search as it was answered, with who made it and when (candidates no longer visible left out)."""

    created: float = Field(description="Time of the search (s since the epoch)")
    examiner: str = Field(description="Key id that searched")
    bureau: str = Field(description="Bureau of that key")


class ConclusionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subject: str = Field(min_length=1, max_length=200, description="A candidate of the search")
    conclusion: ConclusionValue
    note: str = Field("", max_length=2000)


class ConclusionOut(BaseModel):
    id: int
    search_id: str
    case: str
    subject: str
    examiner: str = Field(description="Key id of the examiner")
    conclusion: ConclusionValue
    note: str
    created_at: float = Field(description="s since the epoch")
    kind: Literal["initial", "verification"] = Field(
        description="initial: the first on this candidate of this search; verification: a later one by another key")
    status: ConclusionStatus = Field(description="Status of the candidate's conclusions now (see CandidateConclusions)")


class CandidateConclusions(BaseModel):
    """Conclusions on one candidate of one search, as the caller may see them.

    Blind verification: an examiner sees only their own conclusion until they have
    recorded one on this candidate, then all of them; auditors see all.
    """

    search_id: str
    case: str
    subject: str
    status: ConclusionStatus | None = Field(description=(
        "null: no conclusion yet; pending: one conclusion, awaiting verification by another examiner; "
        "verified: another examiner recorded the same conclusion; disagreement: conclusions differ "
        "(flagged for review)"))
    awaiting_verification: bool = Field(description="Status is pending (one conclusion, by someone)")
    concluded_by_you: bool = Field(description="The calling key has recorded a conclusion on this candidate")
    conclusions: list[ConclusionOut] = Field(description="Oldest first; see the blind rule")


class SearchConclusions(BaseModel):
    search_id: str
    case: str
    candidates: list[CandidateConclusions] = Field(description="One per candidate still visible, in rank order")


class ConclusionPage(BaseModel):
    items: list[CandidateConclusions] = Field(description="Candidates with at least one conclusion, by case, then time")
    offset: int
    limit: int
    total: int


class OperationOut(BaseModel):
    name: str = Field(description="Operation id (the route's name, e.g. search, compare, record_conclusion)")
    method: str
    path: str = Field(description="Path template, e.g. /v1/searches/{search_id}/conclusions")


class WhoAmI(BaseModel):
    key_id: str
    role: Role
    bureau: str
    scope: Literal["bureau", "global"]
    operations: list[OperationOut] = Field(description="The operations this key's role may call")


# -- keys and audit ------------------------------------------------------------------------------
class KeyCreate(BaseModel):
    role: Role
    bureau: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    label: str = Field("", max_length=200)
    scope: Literal["bureau", "global"] = Field(
        "bureau", description="'global': an auditor key that reads every bureau's audit entries (auditors only)")


class KeyOut(BaseModel):
    id: str
    role: Role
    bureau: str
    label: str
    created: float
    revoked: float | None = None
    scope: Literal["bureau", "global"] = "bureau"


class KeyCreated(BaseModel):
    key: str = Field(description="The API key; shown once, only its hash is stored")
    record: KeyOut


class AuditEntryOut(BaseModel):
    seq: int
    at: float
    record: dict
    prev: str
    hash: str


class AuditPage(BaseModel):
    entries: list[AuditEntryOut]
    next_after: int | None


class AuditCheck(BaseModel):
    entries: int
    intact: bool
    problems: list[str]


# -- batch jobs ----------------------------------------------------------------------------------
JobState = Literal["queued", "running", "done", "cancelled", "failed"]


MAX_JOB_PROBES = 10_000
"""Probes in one batch job, whatever way they are sent."""


class JobManifestItem(BaseModel):
    path: str = Field(description="Image path relative to the server's manifest root (no control characters)",
                      min_length=1, max_length=1000, pattern=r"^[^\x00-\x1f\x7f]+$")
    modality: Modality = "finger"
    finger_position: int = Field(0, ge=0, le=10)
    label: str = Field("", max_length=200)


class JobManifest(BaseModel):
    probes: list[JobManifestItem] = Field(min_length=1, max_length=MAX_JOB_PROBES)
    top: int = Field(10, ge=1, le=100)
    fmr: float = Field(1e-3, gt=0, le=1)
    ppi: float = Field(500.0, ge=250, le=2000)


class JobOut(BaseModel):
    id: str
    state: JobState
    total: int
    done: int
    failed: int
    progress: float
    created: float
    updated: float
    message: str = ""


class JobItemOut(BaseModel):
    index: int
    label: str
    state: Literal["pending", "done", "failed"]
    error: str | None = None
    candidates: list[CandidateOut] = []
    control_number: str | None = Field(None, description="TCN (1.009) of a transaction probe")
    threshold: float | None = Field(None, description=(
        "Decision threshold on the fused score that this item's hits were judged by, at the job's fmr: it "
        "depends on how many fingers the probe fused (null for items not searched, or searched before it was kept)"))


class JobResults(BaseModel):
    job: JobOut
    items: list[JobItemOut]
    threshold: float | None = Field(None, description=(
        "The decision threshold every searched item was judged by, when they all share one (e.g. every item "
        "one finger of known position); null when items fused different numbers of fingers: see each item's threshold"))


# -- options of requests whose body is an ANSI/NIST-ITL transaction (api.transactions) ---------------
class TransactionEnrolQuery(BaseModel):
    """Query parameters of an enrolment whose body is a transaction (multipart requests send form fields)."""

    shared_with: str = Field("none", max_length=10_000, description=(
        "With a transaction body: who besides your bureau may see the record ('all', a comma-separated list "
        "of bureaus, or 'none')"))
    reference: str = Field("", max_length=200, description=(
        "With a transaction body: your own reference; default the subject's name in the transaction "
        "(locard's 2.003), else its TCN"))


class TransactionSearchQuery(BaseModel):
    """Query parameters of a search or batch job whose body is a transaction."""

    top: int = Field(10, ge=1, le=100, description="With a transaction body: candidates returned")
    fmr: float = Field(1e-3, gt=0, le=1, description="With a transaction body: target FMR of the decision")
    case: str = Field("", max_length=200, description="With a transaction body: your case reference (search only)")
    finger_position: int | None = Field(None, ge=0, le=10, description=(
        "With a transaction body of latents: their finger position (default: the one finger a record names, "
        "else 0, unknown)"))
