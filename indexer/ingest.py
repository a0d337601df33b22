"""Ingest: images in, templates into the store, FAISS indexes brought up to date.

A source is a folder with ``labels.csv`` (columns ``file``, ``identity``; optional
``modality`` (``finger``/``face``), ``finger_position`` (ANSI/NIST 0-10), ``ppi``;
every other column becomes sample metadata) or a plain folder of images (identity =
the name of the sub-folder an image is in, or the file's stem when it lies at the top)
and of ANSI/NIST-ITL transactions, recognised by their bytes: each transaction is one
subject, one item per image record (:mod:`indexer.transactions`: names, positions,
ppi, and the records set aside, which the report lists with why).

Extraction runs in worker processes.  The SHA-256 of every image is computed first:
images already in the store are skipped, so an interrupted ingest resumes where it
stopped.  Results are committed in small transactions (each durable on return, WAL);
an image that cannot be used never stops the batch: it is written, with the reason,
to the error report (CSV).  The indexes are synchronised from the store at the end
(and every ``index_every`` samples), from vectors the workers already computed.
"""

from __future__ import annotations

import csv
import hashlib
import math
import multiprocessing
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

import numpy as np

from .faiss_index import VECTORS, finger_codes, open_index
from .ingest_report import ErrorReport, IngestReport
from .prepared import finger_prepared
from .store import MODALITIES, GalleryStore, NewSample
from .transactions import TRANSACTION_SUFFIXES, is_transaction, record_source

IMAGE_SUFFIXES = {".tif", ".tiff", ".png", ".jpg", ".jpeg", ".bmp", ".gif", ".pgm", ".ppm", ".webp", ".wsq", ""}


@dataclass(frozen=True)
class SourceItem:
    """One image to ingest."""

    path: Path
    identity: str
    modality: str
    finger_position: int = 0
    ppi: float = 500.0
    metadata: dict = field(default_factory=dict)
    invalid: str = ""
    """Why its ``labels.csv`` row (or its transaction) cannot be used (empty when it can): it
    goes to the error report as ``invalid_error`` and is never extracted."""
    invalid_error: str = "InvalidLabel"
    record: int | None = None
    """Index of the image's record in the transaction file ``path`` (None: ``path`` is the image)."""
    record_label: str = ""
    sha256: str = ""
    """SHA-256 of the image when known before ingest (a record's image data), else of the file."""
    set_aside: str = ""
    """Why this record of a transaction is not enrolled (a latent, a palm ...): in the report
    as ``SetAside``, counted apart from failures."""


def scan_source(source: str | Path, modality: str | None = None, subject_field: str | None = None) -> list[SourceItem]:
    """The images of a source folder.

    Parameters
    ----------
    modality : str, optional
        ``"finger"`` or ``"face"`` for rows without a ``modality`` column.  Default:
        ``finger`` when ``labels.csv`` has a ``ppi`` or ``finger_position`` column
        or there is no ``labels.csv``, else ``face``.  Transactions say it per record.
    subject_field : str, optional
        Type-2 field (``"2.014"``) naming the subject of a transaction
        (:func:`indexer.transactions.subject_name`).

    Raises
    ------
    FileNotFoundError, ValueError
    """
    root = Path(source)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder (expected a folder with labels.csv, or of images)")
    if modality is not None and modality not in MODALITIES:
        raise ValueError(f"modality must be one of {', '.join(MODALITIES)}, got {modality!r}")
    labels = root / "labels.csv"
    items = []
    if labels.is_file():
        with labels.open(newline="") as fh:
            reader = csv.DictReader(fh)
            cols = set(reader.fieldnames or [])
            missing = {"file", "identity"} - cols
            if missing:
                raise ValueError(f"{labels} lacks the column(s) {', '.join(sorted(missing))}")
            default = modality or ("finger" if cols & {"ppi", "finger_position"} else "face")
            for row in reader:
                items.append(_labelled_item(root, row, default))
        return items
    for p in sorted(root.rglob("*")):
        if not p.is_file() or p.name.startswith("."):
            continue
        rel = p.relative_to(root)
        identity = rel.parts[0] if len(rel.parts) > 1 else p.stem
        if is_transaction(_head(p)):
            from .transactions import source_items

            items += source_items(p, identity, subject_field)
        elif p.suffix.lower() in IMAGE_SUFFIXES:
            items.append(SourceItem(p, identity, modality or "finger"))
        elif p.suffix.lower() in TRANSACTION_SUFFIXES:
            items.append(SourceItem(p, identity, "finger", invalid="not an ANSI/NIST-ITL transaction (traditional "
                                    "encoding begins with 1.001:)", invalid_error="TransactionError"))
    return items


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(16)
    except OSError:
        return b""  # an image item, whose read error the report gives


def _labelled_item(root: Path, row: dict, default_modality: str) -> SourceItem:
    """One ``labels.csv`` row as an item; a row that cannot be used says why in ``invalid``."""
    mod = (row.get("modality") or default_modality).strip()
    if mod in ("fingerprint", "fp"):
        mod = "finger"
    identity = (row.get("identity") or "").strip()
    fp_text = (row.get("finger_position") or "").strip() or "0"
    ppi_text = (row.get("ppi") or "").strip() or "500"
    meta = {k: v for k, v in row.items()
            if k and k not in ("file", "identity", "modality", "finger_position", "ppi") and v}
    problems = []
    if not identity:
        problems.append("identity is empty")
    if mod not in MODALITIES:
        problems.append(f"modality {mod!r} is not one of {', '.join(MODALITIES)}")
    position = int(fp_text) if fp_text.isdigit() else -1
    if not 0 <= position <= 10:
        problems.append(f"finger_position {fp_text!r} is not an ANSI/NIST code 0-10")
    try:
        ppi = float(ppi_text)
    except ValueError:
        ppi = math.nan
    if not (math.isfinite(ppi) and ppi > 0):
        problems.append(f"ppi {ppi_text!r} is not a positive number")
    return SourceItem(root / (row.get("file") or ""), identity, mod, max(position, 0),
                      ppi if math.isfinite(ppi) and ppi > 0 else 500.0, meta, "; ".join(problems))


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass(frozen=True)
class Extracted:
    """What a worker hands back for one image (picklable)."""

    item: SourceItem
    sha256: str
    template: bytes = b""
    template_version: str = ""
    quality: int = 0
    vectors: np.ndarray | None = None
    error: str = ""
    reason: str = ""
    prepared: bytes = b""
    """The template's comparator arrays to store (:mod:`indexer.prepared`; fingers only)."""
    prepared_format: str = ""


def extract_item(item: SourceItem, sha256: str, face_mode: str = "sface") -> Extracted:
    """Extract the template of one image; never raises for a bad image (see ``error``)."""
    from matcher.errors import FailureToEnrol, LocardError

    try:
        data = item.path.read_bytes()
    except OSError as exc:
        return Extracted(item, sha256, error="UnreadableFile", reason=str(exc))
    try:
        if item.record is not None:
            from .transactions import record_bytes

            data = record_bytes(data, item.record, sha256)
        if item.modality == "finger":
            from matcher.fingerprint import FORMAT_VERSION, MATCHER_VERSION, Template, cohort_stats, extract

            t = extract(data, ppi=item.ppi)
            if len(t) < 2:
                return Extracted(item, sha256, error="FailureToEnrol",
                                 reason=f"{len(t)} minutiae found (quality {t.quality})")
            cohort_stats(t)  # stored with the template: a gallery is never scored against the cohort again
            blob = t.to_bytes()
            version = f"LCFP{FORMAT_VERSION}/{MATCHER_VERSION}"
            quality = t.quality
            stored = Template.from_bytes(blob)  # what a search will decode: vectors and cylinders of it
            fmt, prepared = finger_prepared(stored)
            vectors = finger_codes(stored)
        else:
            from matcher.face import extract

            r = extract(data, mode=face_mode)
            if not r.found:
                return Extracted(item, sha256, error="FailureToEnrol", reason=r.message)
            blob = r.template.to_bytes()
            version = r.template.model
            quality = r.template.quality
            fmt, prepared = "", b""
            vectors = VECTORS["face"](blob)
    except FailureToEnrol as exc:
        return Extracted(item, sha256, error="FailureToEnrol", reason=f"{exc} (quality {exc.quality})")
    except LocardError as exc:
        return Extracted(item, sha256, error=type(exc).__name__, reason=str(exc))
    except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
        return Extracted(item, sha256, error=type(exc).__name__, reason=f"unexpected: {exc}")
    return Extracted(item, sha256, blob, version, int(quality), vectors, prepared=prepared, prepared_format=fmt)


def _extract_star(args) -> Extracted:
    return extract_item(*args)


@contextmanager
def extraction(todo: list[tuple], workers: int) -> Iterator[Iterator[Extracted]]:
    """:func:`extract_item` of every ``(item, sha256, face_mode)`` of ``todo``, in order: in
    this process, or by ``workers`` spawned processes (shut down on leaving the block)."""
    if workers <= 1 or len(todo) <= 1:
        yield (extract_item(*a) for a in todo)
        return
    # spawn, not fork: a forked child of a process that already runs OpenMP/numba threads
    # can deadlock on a lock a parent thread held (seen here with fork)
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_init_worker,
                               mp_context=multiprocessing.get_context("spawn"))
    try:
        yield pool.map(_extract_star, todo, chunksize=2)
    finally:
        pool.shutdown(cancel_futures=True)


def _init_worker() -> None:
    # one thread per process: the workers are the parallelism; and none outlives a killed ingest
    from .worker_lifetime import exit_with_parent

    exit_with_parent()
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
        os.environ[var] = "1"
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:
        pass


def _metadata(item: SourceItem) -> dict:
    # A finger template is at 500 ppi whatever the scan was: keep the scan's resolution.
    return {**item.metadata, "ppi": item.ppi} if item.modality == "finger" else item.metadata


def ingest(source: str | Path | list[SourceItem], store: GalleryStore, *, workers: int = 1,
           modality: str | None = None, error_report: str | Path | None = None, commit_every: int = 16,
           index_every: int = 20_000, face_mode: str = "sface", sync_index: bool = True,
           progress: Callable[[int, int], None] | None = None) -> IngestReport:
    """Ingest a source folder (or a list of items) into a store.

    Parameters
    ----------
    workers : int
        Extraction processes; 1 extracts in this process, 0 means one per CPU.
    error_report : path, optional
        CSV of the failed images and the records set aside; default
        ``<store>/ingest-errors-<UTC time>.csv`` (written only when there is a row).
    commit_every : int
        Samples per transaction (each is durable when committed).
    progress : callable, optional
        Called with ``(done, total)`` after each image.
    """
    t0 = time.perf_counter()
    items = source if isinstance(source, list) else scan_source(source, modality)
    report = IngestReport(total=len(items))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    errors = ErrorReport(Path(error_report) if error_report else store.path / f"ingest-errors-{stamp}.csv")
    known = store.known_hashes()
    todo: list[tuple[SourceItem, str, str]] = []
    done = 0
    set_aside = 0
    for it in items:
        if it.invalid or it.set_aside:
            errors.add(Extracted(it, "", error=it.invalid_error if it.invalid else "SetAside",
                                 reason=it.invalid or it.set_aside))
            set_aside += not it.invalid
            done += 1
            continue
        try:
            h = it.sha256 or sha256_file(it.path)
        except OSError as exc:
            errors.add(Extracted(it, "", error="UnreadableFile", reason=str(exc)))
            done += 1
            continue
        if h in known:
            report.skipped += 1
            done += 1
            continue
        known.add(h)
        todo.append((it, h, face_mode))
    if progress:
        progress(done, len(items))

    cache: dict[str, dict[int, np.ndarray]] = {m: {} for m in MODALITIES}
    pending: list[Extracted] = []
    since_sync = 0

    def commit(final: bool = True):
        """Store what is pending; each transaction's samples in their own call (one encounter),
        and, unless ``final``, the last transaction's held back (more may follow)."""
        nonlocal since_sync
        batch = list(pending)
        last = pending[-1].item if pending else None
        while not final and batch and batch[-1].item.record is not None and batch[-1].item.path == last.path:
            batch.pop()
        del pending[:len(batch)]
        images = [e for e in batch if e.item.record is None]
        groups = [(images, str(source) if not isinstance(source, list) else "")] if images else []
        for path, group in groupby((e for e in batch if e.item.record is not None), key=lambda e: e.item.path):
            groups.append((list(group), str(path)))
        for group, encounter_source in groups:
            ids = store.add_samples(
                [NewSample(subject=e.item.identity, modality=e.item.modality, template=e.template,
                           template_version=e.template_version, quality=e.quality, sha256=e.sha256,
                           finger_position=e.item.finger_position, metadata=_metadata(e.item),
                           source=str(e.item.path) if e.item.record is None else record_source(e.item.path, e.item.record),
                           prepared=e.prepared, prepared_format=e.prepared_format)
                 for e in group], encounter_source=encounter_source)
            for e, sid in zip(group, ids):
                if sid is None:
                    report.skipped += 1
                else:
                    report.added += 1
                    since_sync += 1
                    if e.vectors is not None:
                        cache[e.item.modality][sid] = e.vectors

    def sync():
        nonlocal since_sync
        for m in MODALITIES:
            if cache[m] or store.count(m):
                _, action = open_index(store, m, cache=cache[m])
                report.index_actions[m] = action
                cache[m].clear()
        since_sync = 0

    if workers == 0:
        workers = os.cpu_count() or 1
    try:
        with extraction(todo, workers) as results:
            for e in results:
                done += 1
                if e.error:
                    errors.add(e)
                else:
                    pending.append(e)
                    if len(pending) >= commit_every:
                        commit(final=False)
                if sync_index and since_sync >= index_every:
                    commit(final=False)
                    sync()
                if progress:
                    progress(done, len(items))
            commit()
    finally:
        errors.close()
    if sync_index:
        sync()
    report.failed = errors.n - set_aside
    report.set_aside = set_aside
    report.error_report = errors.path if errors.n else None
    report.seconds = time.perf_counter() - t0
    return report
