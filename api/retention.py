"""How long the service keeps what it writes, and the files nothing refers to.

What expires (``locard serve --job-retention-days N --image-retention-days M``, or
``locard purge`` with the same options):

- **Batch jobs**: a job that is over (done, failed or cancelled) and was last updated
  more than ``N`` days ago is deleted with its results (``jobs``, ``job_items``) and
  its probe folder ``api-jobs/<job>/``.  Default 30 days; queued and running jobs never
  expire.
- **Searches** (kept for the workbench, :mod:`api.conclusions`): one that no examiner
  concluded on expires like a finished batch job, ``N`` days after it was made; one
  with a conclusion is a case record and is kept, like the audit log.
- **Enrolled images**: only with ``M`` set (default: never).  The image file of a sample
  under ``api-images/`` is deleted ``M`` days after the newest sample that names it
  was enrolled.  The samples and templates stay (search, verify and the audit log are
  unchanged); evidence PNGs then show the gallery print's minutiae on a blank canvas.
  Enrolled images are the evidence: set ``M`` only where a rule says so.
- **Orphans**: files under ``api-images/`` that no sample names and files under
  ``api-jobs/`` that no queued or running job names (left by a process that died
  between writing a file and committing its record) are deleted once older than the
  grace period (default 1 hour, so an enrolment in flight keeps its file).

The audit log never expires.  Deleting a subject removes its images at once
(:func:`indexer.store_files.delete_subject_and_files`), whatever the settings.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from indexer.store import GalleryStore, checkpoint
from indexer.store_files import StoreFile, files_under, key_in_source, named_files, remove_unnamed

from .conclusions import expire_searches
from .database import ApiDatabase
from .extraction import IMAGES_DIR
from .jobs import JOBS_DIR

log = logging.getLogger("locard.api.retention")
T = TypeVar("T")
DAY_S = 86_400.0
#: Runs ``fn(store)`` where the gallery's samples are committed (the service's gallery thread).
OnGallery = Callable[[Callable[[GalleryStore], T]], T]


@dataclass(frozen=True)
class Retention:
    """Retention settings (see the module docstring for what each one expires).

    Attributes
    ----------
    job_days : float or None
        Days a finished batch job and its results are kept; None: for ever.
    image_days : float or None
        Days an enrolled image file is kept after its newest sample; None (default): for ever.
    orphan_grace_s : float
        Seconds an unreferenced file is left alone (a write whose commit is still coming).
    sweep_interval_s : float
        Seconds between two sweeps of a running server.
    """

    job_days: float | None = 30.0
    image_days: float | None = None
    orphan_grace_s: float = 3600.0
    sweep_interval_s: float = 3600.0


@dataclass
class PurgeReport:
    """What one purge deleted."""

    jobs: list[str] = field(default_factory=list)
    searches: list[str] = field(default_factory=list)
    images: list[Path] = field(default_factory=list)
    orphans: list[Path] = field(default_factory=list)


def _remove(files: list[Path], root: Path) -> list[Path]:
    """Delete files, then the folders under ``root`` they leave empty; returns the deleted files."""
    out = []
    for f in files:
        try:
            f.unlink()
        except FileNotFoundError:
            continue
        out.append(f)
        _remove_empty_parents(f, root)
    return out


def _remove_empty_parents(f: Path, root: Path) -> None:
    parent = f.parent
    while parent != root and root in parent.parents:
        try:
            parent.rmdir()
        except OSError:  # not empty
            return
        parent = parent.parent


def orphan_images(store: GalleryStore, now: float) -> list[StoreFile]:
    """Files under ``api-images/`` that no sample names (pending files of enrolments included)."""
    named = named_files(store, IMAGES_DIR)
    return [f for f in files_under(store.path, IMAGES_DIR, now) if f.key not in named]


def orphan_job_files(db: ApiDatabase, store: Path, now: float) -> list[StoreFile]:
    """Files under ``api-jobs/`` that no queued or running job names."""
    live = {key_in_source(r[0], JOBS_DIR) for r in db.query(
        "SELECT i.path FROM job_items i JOIN jobs j ON j.id=i.job_id WHERE j.state IN ('queued', 'running')")}
    return [f for f in files_under(store, JOBS_DIR, now) if f.key not in live]


def remove_orphans(store: GalleryStore, files: list[StoreFile]) -> list[Path]:
    """Delete orphans found earlier; an image that a sample names meanwhile is kept."""
    images = [f.path for f in files if f.key.startswith(IMAGES_DIR + "/")]
    others = [f.path for f in files if not f.key.startswith(IMAGES_DIR + "/")]
    removed = remove_unnamed(store, images)
    for f in removed:  # their folders, when now empty
        _remove_empty_parents(f, store.path / IMAGES_DIR)
    return removed + _remove(others, store.path / JOBS_DIR)


def expire_jobs(db: ApiDatabase, store: Path, older_than: float) -> list[str]:
    """Delete the jobs over before ``older_than`` (epoch s) with their results and probe folders."""
    with db.write() as con:
        ids = [r[0] for r in con.execute(
            "SELECT id FROM jobs WHERE state IN ('done', 'failed', 'cancelled') AND updated < ?", (older_than,))]
        con.executemany("DELETE FROM job_items WHERE job_id=?", [(j,) for j in ids])
        con.executemany("DELETE FROM jobs WHERE id=?", [(j,) for j in ids])
    for j in ids:
        shutil.rmtree(store / JOBS_DIR / j, ignore_errors=True)
    if ids:
        checkpoint(db.connection())  # the results' old pages leave the WAL too
    return ids


def expire_images(store: GalleryStore, older_than: float) -> list[Path]:
    """Delete enrolled image files whose newest naming sample was enrolled before ``older_than``."""
    old = [store.path / key for key, created in named_files(store, IMAGES_DIR).items() if created < older_than]
    return _remove([p for p in old if p.is_file()], store.path / IMAGES_DIR)


def purge(db: ApiDatabase, on_gallery: OnGallery, store: Path, policy: Retention, now: float) -> PurgeReport:
    """Apply ``policy`` at time ``now`` (epoch s): expired jobs, expired images, old orphans.

    Parameters
    ----------
    on_gallery : callable
        Runs ``fn(GalleryStore)`` where samples are committed (``Gallery.call`` in the
        server, a plain call in the command line).
    """
    report = PurgeReport()
    if policy.job_days is not None:
        report.jobs = expire_jobs(db, store, now - policy.job_days * DAY_S)
        report.searches = expire_searches(db, now - policy.job_days * DAY_S)
    if policy.image_days is not None:
        report.images = on_gallery(lambda st: expire_images(st, now - policy.image_days * DAY_S))

    def orphans(st: GalleryStore) -> list[Path]:
        found = orphan_images(st, now) + orphan_job_files(db, store, now)
        return remove_orphans(st, [f for f in found if f.age_s >= policy.orphan_grace_s])
    report.orphans = on_gallery(orphans)
    return report


def check_files(store: GalleryStore, remove: bool, grace_s: float) -> tuple[list[str], list[str]]:
    """``locard check``'s look at the service's folders: ``(problems, notes)``.

    Orphans older than ``grace_s`` are problems (or removed, with ``remove``); younger
    ones are only noted, since an enrolment or a job may be about to commit them.
    """
    from .database import DB_NAME

    now = time.time()
    found = orphan_images(store, now)
    if (store.path / DB_NAME).exists():
        found += orphan_job_files(ApiDatabase(store.path), store.path, now)
    elif (store.path / JOBS_DIR).exists():
        found += files_under(store.path, JOBS_DIR, now)  # no job at all refers to them
    old = [f for f in found if f.age_s >= grace_s]
    notes = [f"{len(found) - len(old)} unreferenced files younger than {grace_s:g} s left alone "
             "(a write whose record may still be coming)"] if len(found) > len(old) else []
    if remove and old:
        removed = remove_orphans(store, old)
        notes.append(f"removed {len(removed)} orphan files")
        old = [f for f in old if f.path.exists()]
    problems = [f"orphan file {f.key} ({f.age_s / 3600:.1f} h old): nothing refers to it" for f in old]
    return problems, notes


class RetentionSweeper:
    """A daemon thread that runs ``sweep()`` at start and then every ``interval_s`` seconds."""

    def __init__(self, sweep: Callable[[], PurgeReport], interval_s: float):
        self._sweep = sweep
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="retention", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                r = self._sweep()
                if r.jobs or r.searches or r.images or r.orphans:
                    log.warning("retention: %d jobs, %d searches, %d images, %d orphan files deleted",
                                len(r.jobs), len(r.searches), len(r.images), len(r.orphans))
            except Exception:  # noqa: BLE001 - a failed sweep is retried at the next interval
                log.exception("retention sweep failed")
            self._stop.wait(self.interval_s)
