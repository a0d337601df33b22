"""Batch search jobs: many probes in, one ranked list per probe out, persisted in the store.

A job and its items live in ``api.sqlite`` (``jobs``, ``job_items``); uploaded probe
images are kept under ``STORE/api-jobs/<job id>/``, manifest probes are files under the
server's ``--manifest-root``.  One runner thread works through queued jobs item by item,
committing each result, so a job survives a restart of the server: the runner starts
again at the first item without a result.  Cancelling marks the job; the runner stops
before its next item.

Results are shown only to the submitting bureau and are filtered again by the access
rules when fetched, so a record hidden from that bureau never appears in them.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import secrets
import shutil
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from . import schemas as S
from .database import ApiDatabase
from .extraction import Limits
from .problems import TYPE_BASE, Problem

log = logging.getLogger("locard.api.jobs")
JOBS_DIR = "api-jobs"
MAX_PROBES = S.MAX_JOB_PROBES


@dataclass(frozen=True)
class JobProbe:
    label: str
    modality: str
    finger_position: int
    data: bytes | None = None
    """Uploaded bytes (kept under the job's folder); None for a manifest path."""
    path: Path | None = None


def job_out(row) -> S.JobOut:
    jid, state, total, done, failed, created, updated, message = row
    return S.JobOut(id=jid, state=state, total=total, done=done, failed=failed,
                    progress=(done + failed) / total if total else 1.0, created=created, updated=updated,
                    message=message)


_JOB_COLS = "id, state, total, done, failed, created, updated, message"


ARCHIVE_RATIO_FLOOR = 1024 * 1024
"""Archives expanding to less than this (bytes) are not judged by their compression ratio: a few
small, plain images can deflate well and harm no one."""
_CHUNK = 1024 * 1024


def read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """One archive entry, read in chunks and never more than ``limit`` bytes of it (else 413).

    The sizes in the archive's directory are the sender's word; this counts what comes out.
    """
    parts, n = [], 0
    try:
        with zf.open(info) as f:
            while chunk := f.read(min(_CHUNK, limit + 1 - n)):
                n += len(chunk)
                if n > limit:
                    raise Problem(413, f"{info.filename[:200]} expands past {limit} bytes",
                                  type_=TYPE_BASE + "image-too-large")
                parts.append(chunk)
    except (zipfile.BadZipFile, OSError, RuntimeError, ValueError, NotImplementedError, EOFError) as exc:
        raise Problem(422, f"{info.filename[:200]}: cannot be read from the archive ({exc})",
                      type_=TYPE_BASE + "unsupported-archive") from None
    return b"".join(parts)


def read_archive(source: BinaryIO, modality: str, max_probes: int, limits: Limits) -> list[JobProbe]:
    """Probe images from a ZIP archive (every file that is not a folder or hidden).

    Refused before anything is decompressed: more than ``max_probes`` files, entries whose sizes
    together exceed ``limits.max_archive_bytes`` (413) or expand more than
    ``limits.max_archive_ratio`` times their compressed size (422, a ZIP bomb); any entry over
    ``limits.max_image_bytes`` (413).  Entries are then read with a bounded reader, so an archive
    whose directory understates its sizes is stopped at the same limits.
    """
    try:
        zf = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise Problem(415, f"archive is not a ZIP file ({exc})", type_=TYPE_BASE + "unsupported-archive") from None
    with zf:
        infos = sorted((i for i in zf.infolist() if not i.is_dir() and not PurePosixPath(i.filename).name.startswith(".")),
                       key=lambda i: i.filename)
        if len(infos) > max_probes:
            raise Problem(413, f"archive holds {len(infos)} files; the limit is {max_probes}",
                          type_=TYPE_BASE + "too-many-images")
        declared = sum(i.file_size for i in infos)
        packed = sum(i.compress_size for i in infos)
        if declared > limits.max_archive_bytes:
            raise Problem(413, f"archive expands to {declared} bytes; the limit is {limits.max_archive_bytes}",
                          type_=TYPE_BASE + "archive-too-large")
        if declared > ARCHIVE_RATIO_FLOOR and declared > limits.max_archive_ratio * max(packed, 1):
            raise Problem(422, f"archive expands {declared / max(packed, 1):.0f} times its compressed size; "
                               f"images do not compress beyond a ratio of {limits.max_archive_ratio:g}",
                          type_=TYPE_BASE + "unsupported-archive")
        out, total = [], 0
        for i in infos:
            if i.file_size > limits.max_image_bytes:
                raise Problem(413, f"{i.filename[:200]} is {i.file_size} bytes uncompressed; "
                                   f"the limit is {limits.max_image_bytes}", type_=TYPE_BASE + "image-too-large")
            data = read_entry(zf, i, min(limits.max_image_bytes, limits.max_archive_bytes - total))
            total += len(data)
            out.append(JobProbe(i.filename[:200], modality, 0, data=data))
    return out


def read_probe_file(path: Path, limit: int) -> bytes:
    """A probe image file, refused (ImageTooLargeError) from its size before it is read; never
    more than ``limit`` + 1 bytes are read even if the file grows meanwhile."""
    from matcher.errors import ImageTooLargeError

    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise ImageTooLargeError(f"{path.name} is {size} bytes; the limit is {limit}")
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ImageTooLargeError(f"{path.name} grew past {limit} bytes")
    return data


def manifest_probes(manifest: S.JobManifest, root: Path | None, max_image_bytes: int) -> list[JobProbe]:
    """Probes named by a manifest: files under ``root``, none larger than ``max_image_bytes``."""
    if root is None:
        raise Problem(422, "this server takes no manifests (it was started without --manifest-root)",
                      type_=TYPE_BASE + "manifest-refused")
    out = []
    for i, item in enumerate(manifest.probes):
        try:
            p = (root / item.path).resolve()
            ok = p.is_relative_to(root) and p.is_file()
            size = p.stat().st_size if ok else 0
        except (OSError, ValueError):  # e.g. a name too long for the file system
            ok, size = False, 0
        if not ok:
            raise Problem(422, f"probes[{i}].path {item.path!r} is not a file under the manifest root",
                          type_=TYPE_BASE + "invalid-request")
        if size > max_image_bytes:
            raise Problem(413, f"probes[{i}].path {item.path!r} is {size} bytes; the limit is {max_image_bytes}",
                          type_=TYPE_BASE + "image-too-large")
        out.append(JobProbe(item.label or item.path, item.modality, item.finger_position, path=p))
    return out


class JobRunner:
    """Creates, runs, cancels and reports batch jobs.

    ``search`` is a callable ``(bureau, key_id, probe bytes, modality, finger_position, ppi, top, fmr, label)
    -> (list[CandidateOut], TCN or None, threshold)`` run on the runner thread (the service's synchronous
    search; a probe whose bytes are an ANSI/NIST-ITL transaction is searched as one, all its images fused;
    ``threshold`` is the decision threshold its hits were judged by, which depends on how many fingers
    were fused, so it is kept per item).
    """

    def __init__(self, db: ApiDatabase, store: Path, search, hidden_from,
                 max_image_bytes: int = Limits.max_image_bytes):
        self.db = db
        self.max_image_bytes = max_image_bytes
        self.dir = store / JOBS_DIR
        self._search = search
        self._hidden_from = hidden_from
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="batch-jobs", daemon=True)
            self._thread.start()
            self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    # -- API side -----------------------------------------------------------------------------
    def submit(self, bureau: str, key_id: str, probes: list[JobProbe], *, top: int, fmr: float, ppi: float) -> S.JobOut:
        if not probes:
            raise Problem(422, "a job needs at least one probe", type_=TYPE_BASE + "invalid-request")
        jid = "job_" + secrets.token_hex(8)
        folder = self.dir / jid
        rows = []
        for i, p in enumerate(probes):
            if p.data is not None:
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / f"{i:06d}"
                path.write_bytes(p.data)
            else:
                path = p.path
            rows.append((jid, i, p.label, str(path), p.modality, p.finger_position))
        now = time.time()
        with self.db.write() as con:
            con.execute("INSERT INTO jobs(id, bureau, key_id, created, updated, state, params, total) "
                        "VALUES (?, ?, ?, ?, ?, 'queued', ?, ?)",
                        (jid, bureau, key_id, now, now, json.dumps({"top": top, "fmr": fmr, "ppi": ppi}), len(probes)))
            con.executemany("INSERT INTO job_items(job_id, idx, label, path, modality, finger_position) "
                            "VALUES (?, ?, ?, ?, ?, ?)", rows)
        self._wake.set()
        return self.get(bureau, jid)

    def get(self, bureau: str, jid: str) -> S.JobOut:
        rows = self.db.query(f"SELECT {_JOB_COLS} FROM jobs WHERE id=? AND bureau=?", (jid, bureau))
        if not rows:
            raise Problem(404, f"no job {jid!r} of your bureau", type_=TYPE_BASE + "not-found")
        return job_out(rows[0])

    def cancel(self, bureau: str, jid: str) -> S.JobOut:
        job = self.get(bureau, jid)
        if job.state in ("queued", "running"):
            with self.db.write() as con:
                con.execute("UPDATE jobs SET cancel=1, updated=?, "
                            "state=CASE WHEN state='queued' THEN 'cancelled' ELSE state END WHERE id=?",
                            (time.time(), jid))
            if job.state == "queued":
                shutil.rmtree(self.dir / jid, ignore_errors=True)
        return self.get(bureau, jid)

    def results(self, bureau: str, jid: str) -> S.JobResults:
        job = self.get(bureau, jid)
        hidden = self._hidden_from(bureau)
        items = []
        for idx, label, state, result in self.db.query(
                "SELECT idx, label, state, result FROM job_items WHERE job_id=? ORDER BY idx", (jid,)):
            res = json.loads(result) if result else {}
            cands = [S.CandidateOut(**c) for c in res.get("candidates", []) if c["subject"] not in hidden]
            for r, c in enumerate(cands, 1):
                c.rank = r
            items.append(S.JobItemOut(index=idx, label=label, state=state, error=res.get("error"), candidates=cands,
                                      control_number=res.get("control_number"), threshold=res.get("threshold")))
        # one job-wide threshold only when every searched item was judged by the same one
        used = {it.threshold for it in items if it.state == "done"}
        return S.JobResults(job=job, items=items, threshold=used.pop() if len(used) == 1 else None)

    @staticmethod
    def results_csv(results: S.JobResults) -> str:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["index", "label", "state", "error", "rank", "subject", "score", "hit"])
        for it in results.items:
            if not it.candidates:
                w.writerow([it.index, it.label, it.state, it.error or "", "", "", "", ""])
            for c in it.candidates:
                w.writerow([it.index, it.label, it.state, "", c.rank, c.subject, f"{c.score:.4f}",
                            "" if c.hit is None else int(c.hit)])
        return buf.getvalue()

    # -- runner thread ------------------------------------------------------------------------
    def _next_job(self):
        rows = self.db.query("SELECT id, bureau, key_id, params FROM jobs WHERE state IN ('queued', 'running') "
                             "AND cancel=0 ORDER BY created LIMIT 1")
        return rows[0] if rows else None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(timeout=5.0)
            self._wake.clear()
            while not self._stop.is_set():
                job = self._next_job()
                if job is None:
                    break
                try:
                    self._run(*job)
                except Exception as exc:  # noqa: BLE001 - a job fails, the runner goes on
                    log.exception("batch job %s failed", job[0])
                    with self.db.write() as con:
                        con.execute("UPDATE jobs SET state='failed', message=?, updated=? WHERE id=?",
                                    (f"internal error: {type(exc).__name__}", time.time(), job[0]))

    def _run(self, jid: str, bureau: str, key_id: str, params: str) -> None:
        p = json.loads(params)
        with self.db.write() as con:
            con.execute("UPDATE jobs SET state='running', updated=? WHERE id=?", (time.time(), jid))
        items = self.db.query("SELECT idx, label, path, modality, finger_position FROM job_items "
                              "WHERE job_id=? AND state='pending' ORDER BY idx", (jid,))
        for idx, label, path, modality, pos in items:
            if self._stop.is_set():
                return  # resumed at the next start
            if self.db.query("SELECT cancel FROM jobs WHERE id=?", (jid,))[0][0]:
                with self.db.write() as con:
                    con.execute("UPDATE jobs SET state='cancelled', updated=? WHERE id=?", (time.time(), jid))
                shutil.rmtree(self.dir / jid, ignore_errors=True)
                return
            from matcher.errors import LocardError

            try:
                data = read_probe_file(Path(path), self.max_image_bytes)
                cands, tcn, threshold = self._search(bureau, key_id, data, modality, pos, p["ppi"], p["top"], p["fmr"],
                                                     label)
                state, result = "done", {"candidates": [c.model_dump() for c in cands], "control_number": tcn,
                                         "threshold": threshold}
            except (LocardError, OSError) as exc:
                state, result = "failed", {"error": f"{type(exc).__name__}: {exc}"}
            col = "done" if state == "done" else "failed"
            with self.db.write() as con:
                con.execute("UPDATE job_items SET state=?, result=? WHERE job_id=? AND idx=?",
                            (state, json.dumps(result), jid, idx))
                con.execute(f"UPDATE jobs SET {col}={col}+1, updated=? WHERE id=?", (time.time(), jid))
        with self.db.write() as con:
            con.execute("UPDATE jobs SET state=CASE WHEN cancel=1 THEN 'cancelled' ELSE 'done' END, updated=? "
                        "WHERE id=?", (time.time(), jid))
        folder = self.dir / jid
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)
