"""What the routes do: enrol, search, verify, read, list, delete, with access rules and audit.

Every method takes the caller's key record and answers only with records the
caller's bureau may see.  A record it may not see behaves exactly like one that does
not exist (same 404 text, no count, no score): searches pass the hidden subjects to
the searcher, which leaves them out before the fingerprint shortlist is cut and the
face neighbours are counted, so the answer is the one a gallery without those records
would give.

CPU-heavy work (decoding, extraction, comparison) runs in worker threads; store
access runs on the gallery thread (:mod:`api.gallery`).
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import threading
import time
import logging
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from anyio.to_thread import run_sync

from indexer.fusion import common_scale, decision_threshold, expected_fpir
from indexer.search import Probe, SearchResult
from indexer.store import NewSample, checkpoint
from indexer.store_files import delete_subject_and_files, remove_unnamed
from matcher.errors import LocardError

from . import schemas as S
from .access import AccessRule, AccessRules
from .audit import carry_over_legacy, forget_deleted, open_log
from .conclusions import Casework
from .database import ApiDatabase
from .extraction import Limits, enrol_image, final_path, image_path, keep_image, probe, sample_hash, worker_init
from .gallery import Gallery, not_on_cluster
from .jobs import JobRunner
from .retention import Retention, RetentionSweeper, purge
from .keys import KeyRecord, create_key, list_keys, revoke_key
from .problems import TYPE_BASE, Problem

log = logging.getLogger("locard.api")


@dataclass(frozen=True)
class ServiceConfig:
    store: Path
    limits: Limits = Limits()
    default_bureau: str = "central"
    """Owner of subjects that have no access rule (put in the store by ``locard ingest``)."""
    manifest_root: Path | None = None
    """Folder whose images batch-job manifests may name (none: manifests are refused)."""
    extract_threads: int = 2
    extract_processes: int = 0
    """Extraction processes for probes and enrolments (0: worker threads of the server process)."""
    shortlist: int | None = None
    audit_key_file: Path | None = None
    """Key of the audit log's anchor (default: ``$LOCARD_AUDIT_KEY`` or ~/.config/locard, :mod:`indexer.audit`)."""
    retention: Retention = Retention()
    """How long job results and images are kept (:mod:`api.retention`)."""
    cluster: str | None = None
    """Ray address of a sharded gallery whose ``cluster.json`` is in ``store`` (:mod:`indexer.cluster`)."""


@dataclass(frozen=True)
class ImageInput:
    part: str
    index: int
    filename: str
    data: bytes
    modality: str
    finger_position: int = 0
    ppi: float = 500.0
    metadata: dict = field(default_factory=dict)
    """Kept with the sample (a transaction's record, TCN and Type-2 fields)."""

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _who(caller: KeyRecord) -> dict:
    return {"key": caller.id, "role": caller.role, "bureau": caller.bureau}


def _not_found(subject: str) -> Problem:
    return Problem(404, f"no subject {subject!r} is visible to your bureau", type_=TYPE_BASE + "not-found")


class QueryService:
    def __init__(self, config: ServiceConfig):
        self.config = config
        self.db = ApiDatabase(config.store)
        self.access = AccessRules(self.db, config.default_bureau)
        self.audit = open_log(config.store, config.audit_key_file)
        carry_over_legacy(self.db, self.audit)
        self.audit.anchor()  # an unusable key or anchor file fails here, at start, not in a request
        self.gallery = Gallery(config.store, shortlist=config.shortlist, cluster=config.cluster)
        self.casework = Casework(self.db, self.audit, self.access)
        self.extract_limiter = anyio.CapacityLimiter(max(config.extract_threads, config.extract_processes))
        self._pool: ProcessPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self.jobs = JobRunner(self.db, config.store, self.search_for_job, self.access.hidden_from,
                              max_image_bytes=config.limits.max_image_bytes)
        self.sweeper = RetentionSweeper(
            lambda: purge(self.db, self.gallery.call, config.store, config.retention, time.time()),
            config.retention.sweep_interval_s)

    def start(self) -> None:
        """Start background work (the batch-job runner, the retention sweep); called when the app starts."""
        self.forget_deleted()
        self.jobs.start()
        self.sweeper.start()

    def close(self) -> None:
        self.sweeper.stop()
        self.jobs.stop()
        self.gallery.close()
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
                self._pool = None

    # -- audit --------------------------------------------------------------------------------
    def forget_deleted(self) -> None:
        """Drop the access rules of subjects deleted outside the service (``locard subjects delete``)."""
        forget_deleted(self.db, self.audit)

    def refused(self, request_id: dict, status: int, reason: str) -> None:
        """Record a refused request (401, 403): who presented what, where, and why."""
        self.audit.append({**request_id, "action": "refused", "status": status, "reason": reason[:300]})

    async def read_audit(self, caller: KeyRecord, after: int, limit: int) -> list:
        """Entries the caller may read: its bureau's, or all for a global auditor; the read is recorded."""
        scope = None if caller.scope == "global" else caller.bureau
        entries = await run_sync(lambda: self.audit.entries(after=after, limit=limit, bureau=scope))
        await run_sync(self.audit.append, {**_who(caller), "action": "audit-read", "scope": scope or "global",
                                           "after": after, "limit": limit, "entries": len(entries),
                                           "through": entries[-1].seq if entries else None})
        return entries

    async def verify_audit(self, caller: KeyRecord):
        """Check the whole chain and its anchor (before the check itself is recorded)."""
        check = await run_sync(self.audit.verify)
        await run_sync(self.audit.append, {**_who(caller), "action": "audit-verify", "entries": check.entries,
                                           "intact": check.intact, "problems": len(check.problems)})
        return check

    async def refused_input(self, caller: KeyRecord, action: str, data: bytes, exc: LocardError) -> None:
        """Record a request refused for its body before any image was used (an unreadable transaction)."""
        from .problems import locard_error_status

        await run_sync(self.audit.append, {**_who(caller), "action": action,
                                           "transaction": hashlib.sha256(data).hexdigest(),
                                           "outcome": f"refused: {locard_error_status(exc)[0]}",
                                           "reason": str(exc)[:300]})

    async def _refuse(self, caller: KeyRecord, action: str, subject: str, detail: str) -> Problem:
        await run_sync(self.audit.append, {**_who(caller), "action": action, "subject": subject,
                                           "outcome": "refused: 403", "reason": detail})
        return Problem(403, detail)

    # -- keys ---------------------------------------------------------------------------------
    async def create_key(self, caller: KeyRecord, body: S.KeyCreate) -> S.KeyCreated:
        try:
            key, rec = await run_sync(create_key, self.db, body.role, body.bureau, body.label, body.scope)
        except ValueError as exc:
            raise Problem(422, str(exc)) from exc
        await run_sync(self.audit.append, {**_who(caller), "action": "key-create", "target": rec.id,
                                           "target_role": rec.role, "target_bureau": rec.bureau,
                                           "target_scope": rec.scope})
        return S.KeyCreated(key=key, record=S.KeyOut(**rec.__dict__))

    async def list_keys(self) -> list[S.KeyOut]:
        return [S.KeyOut(**k.__dict__) for k in await run_sync(list_keys, self.db)]

    async def revoke_key(self, caller: KeyRecord, key_id: str) -> S.KeyOut:
        rec = await run_sync(revoke_key, self.db, key_id)
        if rec is None:
            raise Problem(404, f"no active key {key_id!r}", type_=TYPE_BASE + "not-found")
        await run_sync(self.audit.append, {**_who(caller), "action": "key-revoke", "target": key_id})
        return S.KeyOut(**rec.__dict__)

    async def _off_loop(self, fn, *args):
        """Run CPU-heavy ``fn`` off the event loop: in a worker thread, or in the extraction
        processes when configured (they take the GIL out of the server process)."""
        if self.config.extract_processes and fn in (probe, enrol_image):
            async with self.extract_limiter:
                try:
                    return await asyncio.wrap_future(self._process_pool().submit(fn, *args))
                except BrokenProcessPool:
                    log.error("an extraction process died; starting new ones, this request runs in a thread")
                    with self._pool_lock:
                        self._pool = None
        return await run_sync(fn, *args, limiter=self.extract_limiter)

    def _process_pool(self):
        with self._pool_lock:
            if self._pool is None:
                self._pool = ProcessPoolExecutor(self.config.extract_processes, mp_context=get_context("spawn"),
                                                 initializer=worker_init)
            return self._pool

    # -- subjects -----------------------------------------------------------------------------
    def _subject_out(self, subject, samples, rule: AccessRule) -> S.SubjectOut:
        return S.SubjectOut(
            id=subject.name, reference=rule.reference, owner=rule.owner,
            shared_with=None if rule.shared_with is None else list(rule.shared_with), created=subject.created,
            encounters=subject.encounters, finger_samples=subject.finger_samples, face_samples=subject.face_samples,
            samples=[S.SampleOut(sample_id=s.id, modality=s.modality, finger_position=s.finger_position,
                                 quality=s.quality, image_sha256=s.metadata.get("image_sha256", s.sha256))
                     for s in samples])

    async def read_subject(self, caller: KeyRecord, subject: str) -> S.SubjectOut:
        """One subject the caller may see (the read, or the attempt, is recorded)."""
        try:
            out = await self._subject_view(caller, subject)
        except Problem:
            await run_sync(self.audit.append, {**_who(caller), "action": "read", "subject": subject,
                                               "outcome": "not-found"})
            raise
        # the owner's auditor sees who read its record
        await run_sync(self.audit.append, {**_who(caller), "action": "read", "subject": subject, "outcome": "read",
                                           "bureaus": [caller.bureau, out.owner]})
        return out

    async def _subject_view(self, caller: KeyRecord, subject: str) -> S.SubjectOut:
        rule = await run_sync(self.access.get, subject)
        if not rule.visible_to(caller.bureau):
            raise _not_found(subject)
        try:
            sub, samples = await self.gallery.acall(self.gallery.subject(subject))
        except KeyError:
            raise _not_found(subject) from None
        return self._subject_out(sub, samples, rule)

    async def list_subjects(self, caller: KeyRecord, offset: int, limit: int) -> S.SubjectPage:
        page, total = await self.gallery.acall(self.gallery.subjects(
            offset, limit, lambda: self.access.hidden_from(caller.bureau)))
        items = []
        for s in page:
            rule = await run_sync(self.access.get, s.name)
            items.append(self._subject_out(s, [], rule))
        page_out = S.SubjectPage(items=items, offset=offset, limit=limit, total=total)
        await run_sync(self.audit.append, {**_who(caller), "action": "list", "offset": offset, "limit": limit,
                                           "total": page_out.total, "subjects": [i.id for i in page_out.items]})
        return page_out

    async def enrol(self, caller: KeyRecord, images: list[ImageInput], shared_with: tuple[str, ...] | None,
                    reference: str, existing: str | None = None, refused: list[S.ImageOutcome] = ()) -> S.Enrolment:
        """Enrol a new subject, or (``existing``) add a new encounter to a subject the caller's bureau owns.

        ``refused``: images of the request already known to be unusable (records of a transaction
        set aside), answered and audited with the others."""
        if self.gallery.cluster is not None:
            not_on_cluster("enrolment through the service")
        if existing is not None:
            rule = await run_sync(self.access.get, existing)
            if not rule.visible_to(caller.bureau) or not await self._exists(existing):
                raise _not_found(existing)
            if rule.owner != caller.bureau:
                raise await self._refuse(caller, "enrol-encounter", existing,
                                         f"only the owning bureau ({rule.owner}) may add samples to {existing!r}")
        name = existing or "sub_" + secrets.token_hex(8)
        store = self.config.store
        limits = self.config.limits
        async with anyio.create_task_group() as tg:
            results: list = [None] * len(images)

            async def one(i: int, im: ImageInput):
                results[i] = await self._off_loop(enrol_image, store, im.data, name, im.modality,
                                                  im.finger_position, im.ppi, limits)
            for i, im in enumerate(images):
                tg.start_soon(one, i, im)
        outcomes = []
        new = []
        for im, e in zip(images, results):
            ok = not e.error
            outcomes.append(S.ImageOutcome(part=im.part, index=im.index, filename=im.filename, modality=im.modality,
                                           finger_position=im.finger_position, accepted=ok,
                                           quality=e.quality if ok else None, image_sha256=e.sha256,
                                           error=e.error or None, reason=e.reason or None))
            if ok:
                new.append((len(outcomes) - 1, NewSample(
                    subject=name, modality=im.modality, template=e.template, template_version=e.template_version,
                    quality=e.quality, sha256=sample_hash(name, e.sha256), finger_position=im.finger_position,
                    source=str(image_path(store.resolve(), e.sha256)),
                    metadata={**im.metadata, "image_sha256": e.sha256, "filename": im.filename[:200], "ppi": im.ppi,
                              "bureau": caller.bureau},
                    prepared=e.prepared, prepared_format=e.prepared_format)))
        outcomes += refused
        record = {**_who(caller), "action": "enrol" if existing is None else "enrol-encounter", "subject": name,
                  "images": [{"sha256": o.image_sha256, "modality": o.modality, "accepted": o.accepted,
                              "error": o.error} for o in outcomes]}
        if not new:
            await run_sync(self.audit.append, {**record, "outcome": "refused: no usable image"})
            raise Problem(422, "no image could be enrolled; see images for the reason of each",
                          type_=TYPE_BASE + "failure-to-enrol",
                          images=[o.model_dump() for o in outcomes])
        pending = [e.item.path for e in results if not e.error]

        def commit(st):  # on the gallery thread, where deletions run: images placed, then their samples
            for p in pending:
                keep_image(p)
            return st.add_samples([s for _, s in new], encounter_source=f"api:{caller.bureau}")
        try:
            # the access rule exists before any sample does: the record is never briefly visible to all
            if existing is None:
                await run_sync(self.access.set, name, caller.bureau, shared_with, reference)
            ids = await self.gallery.acall(commit)
        except BaseException:
            await self.gallery.acall(lambda st: _discard(st, pending))
            raise
        for (i, _), sid in zip(new, ids):
            if sid is None:
                outcomes[i] = outcomes[i].model_copy(update={"accepted": False, "error": "Duplicate",
                                                             "reason": "the same image twice in one enrolment"})
            else:
                outcomes[i] = outcomes[i].model_copy(update={"sample_id": sid})
        await run_sync(self.audit.append, {**record, "outcome": "enrolled",
                                           "samples": [s for s in ids if s is not None],
                                           "shared_with": "all" if shared_with is None else list(shared_with)}
                       if existing is None else {**record, "outcome": "enrolled",
                                                 "samples": [s for s in ids if s is not None]})
        return S.Enrolment(subject=await self._subject_view(caller, name), images=outcomes)

    async def set_access(self, caller: KeyRecord, subject: str, shared_with: tuple[str, ...] | None) -> S.SubjectOut:
        rule = await run_sync(self.access.get, subject)
        if not rule.visible_to(caller.bureau) or not await self._exists(subject):
            raise _not_found(subject)
        if rule.owner != caller.bureau:
            raise await self._refuse(caller, "access", subject,
                                     f"only the owning bureau ({rule.owner}) may change who sees {subject!r}")
        await run_sync(self.access.set, subject, rule.owner, shared_with, rule.reference)
        await run_sync(self.audit.append, {**_who(caller), "action": "access", "subject": subject,
                                           "shared_with": "all" if shared_with is None else list(shared_with)})
        return await self._subject_view(caller, subject)

    async def _exists(self, subject: str) -> bool:
        try:
            await self.gallery.acall(self.gallery.subject(subject))
            return True
        except KeyError:
            return False

    async def delete(self, caller: KeyRecord, subject: str) -> S.Deleted:
        rule = await run_sync(self.access.get, subject)
        if not rule.visible_to(caller.bureau) or not await self._exists(subject):
            raise _not_found(subject)
        if rule.owner != caller.bureau:
            raise await self._refuse(caller, "delete", subject, f"only the owning bureau ({rule.owner}) may delete {subject!r}")
        try:
            deleted = await self.gallery.acall(
                lambda st: delete_subject_and_files(st, subject, reason="deleted through the HTTP service",
                                                    actor=_who(caller)))  # audited with the deletion
        except KeyError:
            raise _not_found(subject) from None
        ids = deleted.samples
        await run_sync(self.access.remove, subject)
        await run_sync(lambda: checkpoint(self.db.connection()))  # the access row's old page leaves the WAL
        await run_sync(self.audit.anchor)
        return S.Deleted(id=subject, samples=len(ids))

    # -- probes -------------------------------------------------------------------------------
    async def probes(self, images: list[ImageInput], refused: list[S.ImageOutcome] = ()
                     ) -> tuple[list[Probe], list[S.ImageOutcome], list[int]]:
        """Extract probe templates; returns usable probes, an outcome per image (then the ``refused``
        ones), and their image indexes."""
        limits = self.config.limits
        results: list = [None] * len(images)

        async def one(i: int, im: ImageInput):
            try:
                results[i] = await self._off_loop(probe, im.data, im.modality, im.finger_position, im.ppi,
                                                  limits, im.filename)
            except LocardError as exc:
                results[i] = exc
        async with anyio.create_task_group() as tg:
            for i, im in enumerate(images):
                tg.start_soon(one, i, im)
        probes, outcomes, used = [], [], []
        for i, (im, r) in enumerate(zip(images, results)):
            ok = isinstance(r, Probe)
            if ok:
                probes.append(r)
                used.append(i)
            q = getattr(r.template, "quality", None) if ok else getattr(r, "quality", None)
            outcomes.append(S.ImageOutcome(part=im.part, index=im.index, filename=im.filename, modality=im.modality,
                                           finger_position=im.finger_position, accepted=ok, quality=q,
                                           image_sha256=im.sha256, error=None if ok else type(r).__name__,
                                           reason=None if ok else str(r)))
        outcomes += refused
        if not probes:
            first = next((r for r in results if not isinstance(r, Probe)), None)
            from .problems import locard_error_status

            status, kind = locard_error_status(first) if first is not None else (422, "unusable-probe")
            raise Problem(status if len(outcomes) == 1 else 422, "no probe image could be used; see images",
                          type_=TYPE_BASE + kind, images=[o.model_dump() for o in outcomes])
        return probes, outcomes, used

    # -- search -------------------------------------------------------------------------------
    async def identify(self, caller: KeyRecord, probes: list[Probe], top: int, fmr: float
                       ) -> tuple[list[S.CandidateOut], SearchResult, int]:
        """Ranked candidates visible to the caller, the raw result, and the visible gallery size."""
        # the hidden set is read on the gallery thread in the search's own step: one read
        # before it would miss a subject enrolled between the two
        result = await self.gallery.acall(self.gallery.identify(
            probes, top, fmr, lambda: self.access.hidden_from(caller.bureau)))
        out = _candidates(result)
        return out, result, result.gallery_subjects

    def search_for_job(self, bureau: str, key_id: str, data: bytes, modality: str, finger_position: int,
                       ppi: float, top: int, fmr: float, label: str
                       ) -> tuple[list[S.CandidateOut], str | None, float | None]:
        """One batch-job probe, on the job runner's thread: candidates, the TCN when the probe is
        a transaction (all its images fused; raises typed locard errors), and the decision threshold
        its hits were judged by."""
        from indexer.transactions import is_transaction

        who = {"key": key_id, "role": "bureau", "bureau": bureau, "action": "search", "batch": True, "label": label,
               "probes": [hashlib.sha256(data).hexdigest()], "top": top, "fmr": fmr}
        tcn = None
        try:
            if is_transaction(data):
                probes, tcn = self._transaction_probes(data, finger_position or None, label)
            else:
                probes = [probe(data, modality, finger_position, ppi, self.config.limits, label)]
        except LocardError as exc:
            self.audit.append({**who, "outcome": f"failed: {type(exc).__name__}", "reason": str(exc)[:300]})
            raise
        self.forget_deleted()
        result = self.gallery.call(self.gallery.identify(probes, top, fmr, lambda: self.access.hidden_from(bureau)))
        if not getattr(result, "complete", True):  # a job item fails rather than keep a partial list
            from indexer.errors import ShardUnavailableError

            self.audit.append({**who, "outcome": "failed: incomplete", "missing_shards": sorted(result.missing)})
            raise ShardUnavailableError("no answer from shard(s) " + ", ".join(
                f"{k} ({v})" for k, v in result.missing.items()))
        cands = _candidates(result)
        self.audit.append({**who, "candidates": [{"subject": c.subject, "score": round(c.score, 4)} for c in cands]})
        return cands, tcn, result.threshold

    def _transaction_probes(self, data: bytes, latent_position: int | None, label: str) -> tuple[list[Probe], str]:
        """The usable probes of a transaction and its TCN (ProbeError, with each record's reason, if none)."""
        from indexer.errors import ProbeError

        from .transactions import transaction_inputs

        inputs = transaction_inputs(data, "search", self.config.limits, latent_position)
        probes, why = [], [f"{o.filename}: {o.reason}" for o in inputs.refused]
        for im in inputs.images:
            try:
                probes.append(probe(im.data, im.modality, im.finger_position, im.ppi, self.config.limits,
                                    f"{label} {im.filename}"))
            except LocardError as exc:
                why.append(f"{im.filename}: {exc}")
        if not probes:
            raise ProbeError("no image of the transaction could be used: " + "; ".join(why)[:1000])
        return probes, inputs.control_number

    # -- batch jobs ---------------------------------------------------------------------------
    async def submit_job(self, caller: KeyRecord, probes, top: int, fmr: float, ppi: float) -> S.JobOut:
        job = await run_sync(lambda: self.jobs.submit(caller.bureau, caller.id, probes, top=top, fmr=fmr, ppi=ppi))
        await run_sync(self.audit.append, {**_who(caller), "action": "batch-submit", "job": job.id,
                                           "probes": job.total, "top": top, "fmr": fmr})
        return job

    async def job(self, caller: KeyRecord, job_id: str) -> S.JobOut:
        return await run_sync(self.jobs.get, caller.bureau, job_id)

    async def cancel_job(self, caller: KeyRecord, job_id: str) -> S.JobOut:
        job = await run_sync(self.jobs.cancel, caller.bureau, job_id)
        await run_sync(self.audit.append, {**_who(caller), "action": "batch-cancel", "job": job_id})
        return job

    async def job_results(self, caller: KeyRecord, job_id: str) -> S.JobResults:
        try:
            res = await run_sync(self.jobs.results, caller.bureau, job_id)
        except Problem as exc:
            await run_sync(self.audit.append, {**_who(caller), "action": "batch-results", "job": job_id,
                                               "outcome": f"refused: {exc.status}"})
            raise
        await run_sync(self.audit.append, {**_who(caller), "action": "batch-results", "job": job_id,
                                           "items": len(res.items),
                                           "candidates": sorted({c.subject for it in res.items for c in it.candidates})})
        return res


    async def search(self, caller: KeyRecord, images: list[ImageInput], top: int, fmr: float,
                     case: str = "", refused: list[S.ImageOutcome] = (), control_number: str | None = None
                     ) -> S.SearchOut:
        """1:N; ``refused``: images of the request already known to be unusable, ``control_number``:
        the probe transaction's TCN."""
        try:
            probes, outcomes, used = await self.probes(images, refused)
        except Problem as exc:  # no usable probe: the attempt is recorded all the same
            await run_sync(self.audit.append, {**_who(caller), "action": "search", "probes": [im.sha256 for im in images],
                                               "top": top, "fmr": fmr, "case": case,
                                               "outcome": f"failed: {exc.status}"})
            raise
        # map the searcher's probe index back to the image index
        cands, result, visible = await self.identify(caller, probes, top, fmr)
        for c in cands:
            for e in c.evidence:
                e.probe = used[e.probe]
        request_id = "srch_" + secrets.token_hex(8)  # not the audit sequence number: that would count others' work
        await run_sync(self.audit.append, {
            **_who(caller), "action": "search", "request_id": request_id, "probes": [o.image_sha256 for o in outcomes],
            "top": top, "fmr": fmr, "case": case, **({"tcn": control_number} if control_number else {}),
            **({} if getattr(result, "complete", True) else {"missing_shards": sorted(result.missing)}),
            "candidates": [{"subject": c.subject, "score": round(c.score, 4)} for c in cands]})
        out = S.SearchOut(search_id=request_id, case=case, calibrated=result.calibrated, fmr=fmr,
                          threshold=result.threshold, gallery_subjects=visible,
                          expected_fpir=expected_fpir(fmr, visible) if result.calibrated else None,
                          probes=outcomes, candidates=cands, control_number=control_number,
                          complete=getattr(result, "complete", True), missing_shards=getattr(result, "missing", {}))
        await run_sync(self.casework.remember, caller, out)  # so it can be reopened and concluded on
        return out

    # -- verify -------------------------------------------------------------------------------
    async def verify(self, caller: KeyRecord, images: list[ImageInput], subject: str | None,
                     other: ImageInput | None, fmr: float) -> S.VerifyOut:
        if subject is not None:
            gallery = await self._visible_samples(caller, subject)
            probes, outcomes, used = await self.probes(images)
            comps = await self._off_loop(_compare_with_samples, probes, used, gallery)
        else:
            probes, outcomes, used = await self.probes(images + [other])
            if len(probes) != 2:
                raise Problem(422, "both images must be usable to compare them; see images",
                              type_=TYPE_BASE + "unusable-probe", images=[o.model_dump() for o in outcomes])
            if probes[0].modality != probes[1].modality:
                raise Problem(422, "the two images must be of the same modality")
            comps = await self._off_loop(_compare_two, probes[0], probes[1])
        # scores are always calibrated (a missing calibration raises); no comparison, no decision
        calibrated = bool(comps)
        score = float(sum(c.log_fmr for c in comps))
        # one term per probe image: not the terms of a search (impressions of one finger are separate
        # terms, no best-of-n correction), so no measured fused calibration applies - the dependence-free bound
        threshold = decision_threshold(fmr, 0, len(comps)) if calibrated else None
        request_id = "vrfy_" + secrets.token_hex(8)
        await run_sync(self.audit.append, {
            **_who(caller), "action": "verify", "request_id": request_id, "subject": subject, "probes": [o.image_sha256 for o in outcomes],
            "fmr": fmr, "score": round(score, 4)})
        return S.VerifyOut(verify_id=request_id, subject=subject, calibrated=calibrated, fmr=fmr, threshold=threshold,
                           score=score, match=None if threshold is None else bool(comps and score >= threshold),
                           comparisons=comps)

    # -- evidence and compare -----------------------------------------------------------------
    async def _visible_samples(self, caller: KeyRecord, subject: str) -> list:
        """The subject's samples with their templates; 404 (as for a missing one) if the caller may not see it."""
        rule = await run_sync(self.access.get, subject)
        if not rule.visible_to(caller.bureau):
            raise _not_found(subject)
        try:
            return await self.gallery.acall(self.gallery.samples_with_templates(subject))
        except KeyError:
            raise _not_found(subject) from None

    async def evidence(self, caller: KeyRecord, image: ImageInput, subject: str, sample_id: int | None):
        from .evidence import make_evidence

        samples = await self._visible_samples(caller, subject)
        ev = await self._off_loop(make_evidence, image.data, image.ppi, image.finger_position, samples,
                                  self.config.limits, sample_id)
        if ev is None:
            raise Problem(404, f"subject {subject!r} has no fingerprint sample"
                               f"{'' if sample_id is None else f' {sample_id}'} to compare with this probe",
                          type_=TYPE_BASE + "not-found")
        await run_sync(self.audit.append, {**_who(caller), "action": "evidence", "subject": subject,
                                           "probes": [image.sha256], "sample": ev.sample_id,
                                           "score": round(ev.score, 4)})
        return ev

    async def compare(self, caller: KeyRecord, image: ImageInput, subject: str, sample_id: int | None) -> S.CompareOut:
        """Probe and the subject's best (or given) sample of the image's modality, as data for the page."""
        from .comparison import compare_face, compare_fingerprint

        samples = await self._visible_samples(caller, subject)
        limits = self.config.limits
        who = {**_who(caller), "action": "compare", "subject": subject, "probes": [image.sha256],
               "modality": image.modality}
        try:
            if image.modality == "finger":
                out = await self._off_loop(compare_fingerprint, image.data, image.ppi, image.finger_position,
                                           samples, limits, sample_id)
            else:
                out = await self._off_loop(compare_face, image.data, samples, limits, sample_id)
        except LocardError as exc:
            await run_sync(self.audit.append, {**who, "outcome": f"failed: {type(exc).__name__}"})
            raise
        if out is None:
            raise Problem(404, f"subject {subject!r} has no {image.modality} sample"
                               f"{'' if sample_id is None else f' {sample_id}'} to compare with this probe",
                          type_=TYPE_BASE + "not-found")
        await run_sync(self.audit.append, {**who, "sample": out.sample_id, "score": round(out.score, 4),
                                           "pairs": len(out.pairs), "gallery_image": out.gallery.image_note or "source"})
        return out


def _discard(store, pending: list[Path]) -> None:
    """After a failed commit: the enrolment's pending and placed images that no sample names."""
    for p in pending:
        p.unlink(missing_ok=True)
    remove_unnamed(store, [final_path(p) for p in pending])


def _compare(a: Probe, b_template, modality: str):
    if modality == "finger":
        from matcher.fingerprint import compare

        r = compare(a.template, b_template)
        return float(r.score), [tuple(p) for p in r.pairs.tolist()]
    from matcher.face import compare

    return float(compare(a.template, b_template)), None


def _comparison(probe_index: int, against: str, modality: str, score: float, pairs,
                template=None) -> S.ComparisonOut:
    import numpy as np

    common = common_scale(modality, np.array([score]), template)
    return S.ComparisonOut(probe=probe_index, against=against, modality=modality, score=score,
                           log_fmr=float(common[0]), pairs=pairs)


def _compare_two(a: Probe, b: Probe) -> list[S.ComparisonOut]:
    score, pairs = _compare(a, b.template, a.modality)
    return [_comparison(0, "image", a.modality, score, pairs, a.template)]


def _compare_with_samples(probes: list[Probe], used: list[int], samples) -> list[S.ComparisonOut]:
    """Per probe image: its best comparison with the subject's samples of the same modality and position."""
    from matcher.face import FaceTemplate
    from matcher.fingerprint import Template

    out = []
    for p_i, p in zip(used, probes):
        best = None
        for s in samples:
            if s.modality != p.modality:
                continue
            if p.modality == "finger" and p.finger_position and s.finger_position not in (0, p.finger_position):
                continue
            t = Template.from_bytes(s.template) if s.modality == "finger" else FaceTemplate.from_bytes(s.template)
            score, pairs = _compare(p, t, p.modality)
            if best is None or score > best[0]:
                best = (score, pairs, s.id)
        if best is not None:
            out.append(_comparison(p_i, f"sample:{best[2]}", p.modality, best[0], best[1], p.template))
    return out


def _candidates(result: SearchResult) -> list[S.CandidateOut]:
    return [S.CandidateOut(rank=r, subject=c.subject, score=c.score, raw=c.raw, hit=c.hit,
                           evidence=[S.EvidenceOut(probe=e.probe, sample_id=e.sample_id, modality=e.modality,
                                                   finger_position=e.finger_position, score=e.score, log_fmr=e.log_fmr,
                                                   pairs=None if e.pairs is None else [tuple(p) for p in e.pairs.tolist()])
                                     for e in c.evidence])
            for r, c in enumerate(result.candidates, 1)]

