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

    part: str = Field(description="Form field the image came in (fingerprint or face)")
    index: int = Field(description="Position of the image within its field")
    filename: str = ""
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
    score: float = Field(description="Raw 1:1 score (fingerprint 0-1, face cosine -1..1)")
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
    search_id: str = Field(description="Id of this search, recorded in its audit log entry (request_id)")
    calibrated: bool
    fmr: float
    threshold: float | None
    gallery_subjects: int = Field(description="Subjects visible to the caller's bureau")
    expected_fpir: float | None
    probes: list[ImageOutcome]
    candidates: list[CandidateOut]


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


class JobResults(BaseModel):
    job: JobOut
    items: list[JobItemOut]
