"""Commands of the indexer: ``ingest``, ``search``, ``check``, ``reindex``, ``subjects``.

``locard.py`` registers :data:`commands` on the top-level app and :data:`subjects_app`
as ``locard subjects``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

STORE_HELP = "Store folder (SQLite + FAISS index files); created by the first ingest."
CLUSTER_HELP = ("Ray cluster address (HOST:PORT of `ray start --head`, or auto): use the sharded gallery "
                "whose cluster.json is in --store (indexer/cluster) instead of a single store.")

subjects_app = typer.Typer(help="List, show and delete the subjects of a store.", no_args_is_help=True)
KEY_FILE_HELP = ("HMAC key of the audit log's anchor, outside the store folder "
                 "(default ~/.config/locard/audit-<store id>.key).")


def _open_store(path: str, create: bool = False):
    from indexer.errors import StoreError
    from indexer.store import GalleryStore

    try:
        return GalleryStore(path, create=create)
    except StoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _audit_log(st, key_file: str | None):
    """The store's one audit log (:mod:`indexer.audit`); exit 2 on an unusable key file."""
    from indexer.errors import StoreError

    try:
        log = st.audit(key_file=key_file)
        log.anchor()  # an unusable key or anchor stops the command before it changes anything
        return log
    except StoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def ingest_cmd(
    source: str = typer.Argument(..., metavar="SOURCE", help="Folder with labels.csv (file, identity[, modality, finger_position, ppi, ...]) or a folder of images and/or ANSI/NIST-ITL transactions (one subject each)."),
    store: str = typer.Option(..., "--store", help=STORE_HELP),
    workers: int = typer.Option(0, "--workers", min=0, help="Extraction processes (0 = one per CPU)."),
    modality: str = typer.Option(None, "--modality", help="finger or face, for rows without a modality column (default: finger when labels.csv has ppi/finger_position or there is no labels.csv, else face)."),
    errors: str = typer.Option(None, "--errors", help="Error report CSV (default STORE/ingest-errors-<time>.csv)."),
    audit_key_file: str = typer.Option(None, "--audit-key-file", envvar="LOCARD_AUDIT_KEY", help=KEY_FILE_HELP),
    subject_field: str = typer.Option(None, "--subject-field", help="Type-2 field naming the subject of a transaction (e.g. 2.014); default: locard's own 2.003, else the sub-folder or file stem."),
    cluster: str = typer.Option(None, "--cluster", help=CLUSTER_HELP),
    shards: int = typer.Option(None, "--shards", min=1, help="With --cluster: shards of a new cluster folder (default: the folder must hold a cluster.json)."),
) -> None:
    """Extract and store every image of SOURCE; skips images already stored (resumable).

    Recorded in the audit log (actor: the OS user), also when interrupted."""
    if cluster:
        from indexer.cluster.cli import cluster_ingest

        return cluster_ingest(source, store, cluster, shards, modality, subject_field)
    from indexer.audit import os_actor
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from indexer.ingest import ingest, scan_source

    try:
        items = scan_source(source, modality, subject_field)
    except (FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    st = _open_store(store, create=True)
    log = _audit_log(st, audit_key_file)
    record = {**os_actor(), "action": "ingest", "source": str(Path(source).resolve()), "images": len(items),
              "outcome": "interrupted"}
    try:
        with Progress(TextColumn("ingest"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                      transient=True) as bar:
            task = bar.add_task("ingest", total=len(items))
            report = ingest(items, st, workers=workers, error_report=errors,
                            progress=lambda done, total: bar.update(task, completed=done))
        record.update(outcome="done", added=report.added, skipped=report.skipped, failed=report.failed,
                      set_aside=report.set_aside)
    finally:
        log.append(record)
        st.close()
    typer.echo(f"{report.added} added, {report.skipped} already stored, {report.failed} failed, "
               + (f"{report.set_aside} transaction records set aside, " if report.set_aside else "")
               + f"of {report.total} images in {report.seconds:.1f} s ({report.per_second:.1f} samples/s)")
    for m, action in report.index_actions.items():
        typer.echo(f"{m} index: {action}")
    if report.error_report:
        typer.echo(f"error report: {report.error_report}")


def search_cmd(
    probes: list[str] = typer.Argument(..., metavar="PROBE...", help="Probe images or ANSI/NIST-ITL transactions of one subject; prefix with finger: or face: (or finger3: for an ANSI/NIST finger position, also of a transaction's latents) to set the modality per image."),
    store: str = typer.Option(..., "--store", help=STORE_HELP),
    top: int = typer.Option(10, "--top", min=1, help="Candidates returned."),
    modality: str = typer.Option("finger", "--modality", help="Modality of probes without a prefix: finger or face."),
    shortlist: int = typer.Option(None, "--shortlist", min=1, help="Fingerprint samples re-ranked per probe finger (default 200)."),
    fmr: float = typer.Option(1e-3, "--fmr", help="False match rate of the decision threshold."),
    as_json: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    response_out: str = typer.Option(None, "--response-out", help="Also write the result as an ANSI/NIST-ITL search response transaction to this file."),
    cluster: str = typer.Option(None, "--cluster", help=CLUSTER_HELP),
) -> None:
    """Identify: rank the store's subjects against the probe images.

    A transaction probe gives all its exemplar prints (with their positions) and faces, fused;
    one without them is a latent search with its Type-13 images."""
    from matcher.errors import LocardError
    from indexer.search import DEFAULT_SHORTLIST, Searcher, probe_from_image

    parsed = []
    for p in probes:
        mod, pos, path = modality, 0, p
        head, sep, rest = p.partition(":")
        if sep and (head in ("face", "finger") or (head.startswith("finger") and head[6:].isdigit())):
            mod, path = ("finger" if head.startswith("finger") else "face"), rest
            pos = int(head[6:]) if head.startswith("finger") and head[6:] else 0
        parsed.append((mod, pos, path))
    samples = []
    tcns = []
    for mod, pos, path in parsed:
        try:
            data = Path(path).read_bytes()
            if _is_transaction(data):
                found, tcn = _transaction_probes(data, path, pos if mod == "finger" and pos else None)
                samples += found
                tcns.append(tcn)
            else:
                samples.append(probe_from_image(data, mod, finger_position=pos, label=path))
        except (OSError, LocardError) as exc:
            typer.echo(f"error: {path}: {exc}", err=True)
            raise typer.Exit(2) from exc
    if cluster:
        from indexer.cluster.cli import cluster_identify

        result = cluster_identify(store, cluster, samples, top=top, fmr=fmr, shortlist=shortlist or DEFAULT_SHORTLIST)
    else:
        st = _open_store(store)
        searcher = Searcher(st, shortlist=shortlist or DEFAULT_SHORTLIST, fmr=fmr)
        result = searcher.identify(samples, top=top)
        st.close()
    if response_out:
        from indexer.transactions import search_response

        Path(response_out).write_bytes(search_response(result.candidates, threshold=result.threshold,
                                                       request_tcn=tcns[0] if len(tcns) == 1 else None))
    if as_json:
        d = result.as_dict()
        d["probes"] = [{"file": s.label, "modality": s.modality, "finger_position": s.finger_position}
                       for s in samples]
        typer.echo(json.dumps(d, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(result.candidates)} candidates of {result.gallery_subjects} subjects (-log10 FMR)")
    for col in ("rank", "subject", "score", "hit", "evidence"):
        table.add_column(col)
    for r, c in enumerate(result.candidates, 1):
        ev = "; ".join(f"probe {e.probe} ~ sample {e.sample_id} {e.modality}"
                       f"{'' if e.modality == 'face' else ' pos ' + str(e.finger_position)}: {e.score:.3f}"
                       + (f" ({len(e.pairs)} minutiae paired)" if e.pairs is not None else "") for e in c.evidence)
        table.add_row(str(r), c.subject, f"{c.score:.3f}", "-" if c.hit is None else ("yes" if c.hit else "no"), ev)
    con = Console()
    con.print(table)
    pen = ", ".join(f"{m} {v:.1%}" for m, v in result.penetration.items())
    con.print(f"penetration: {pen or 'n/a'}; {result.timings_ms.get('total', 0):.0f} ms")
    if not getattr(result, "complete", True):
        con.print(f"INCOMPLETE: no answer from shard(s) {', '.join(f'{k} ({v})' for k, v in result.missing.items())}")
    if result.threshold is not None:
        con.print(f"decision threshold at FMR {result.fmr:g}: {result.threshold:.2f}; expected FPIR for "
                  f"{result.gallery_subjects} subjects: {result.expected_fpir:.2%}")


def _is_transaction(data: bytes) -> bool:
    from indexer.transactions import is_transaction

    return is_transaction(data)


def _transaction_probes(data: bytes, path: str, latent_position: int | None):
    """The probes of a transaction file and its TCN; records set aside or undecodable are warned
    about on stderr.  Raises ProbeError when none is usable."""
    from indexer.errors import ProbeError
    from indexer.search import probe_from_image
    from indexer.transactions import contents, encode_images, read
    from matcher.errors import LocardError

    tx = read(data)
    found = contents(tx, purpose="search", latent_position=latent_position)
    for a in found.set_aside:
        typer.echo(f"note: {path} {a.label} not used: {a.reason}", err=True)
    probes = []
    for im, image in zip(found.images, encode_images(data, tx, [im.index for im in found.images])):
        try:
            if isinstance(image, str):
                raise ProbeError(image)
            probes.append(probe_from_image(image, im.modality, finger_position=im.finger_position, ppi=im.ppi,
                                           label=f"{path} {im.label}"))
        except LocardError as exc:
            typer.echo(f"warning: {path} {im.label} not used: {exc}", err=True)
    if not probes:
        raise ProbeError("the transaction holds no usable fingerprint or face image")
    return probes, found.control_number


#: Checks of the files other packages keep in a store folder, run by ``locard check``:
#: ``fn(store, remove, grace_s) -> (problems, notes)`` (the service adds ``api.retention.check_files``).
file_checks: list = []


def check_cmd(store: str = typer.Option(..., "--store", help=STORE_HELP),
              remove_orphans: bool = typer.Option(False, "--remove-orphans",
                                                  help="Delete the files nothing refers to (older than --orphan-grace)."),
              orphan_grace: float = typer.Option(3600.0, "--orphan-grace", min=0,
                                                 help="Seconds an unreferenced file is left alone: a write whose "
                                                      "record may still be coming.")) -> None:
    """Verify the store (SQLite integrity), that every index holds exactly what the store says,
    and that every file the store keeps (enrolled images, job probes) is referred to."""
    from indexer.errors import IndexFileError
    from indexer.faiss_index import VectorIndex, check_index, index_path
    from indexer.prepared import finger_format

    st = _open_store(store)
    problems = st.integrity_problems()
    for check in file_checks:
        found, notes = check(st, remove_orphans, orphan_grace)
        problems += found
        for n in notes:
            typer.echo(n)
    for m in ("finger", "face"):
        problems += check_index(st, m)
        path = index_path(st, m)
        if path.exists():
            try:
                idx = VectorIndex.load(path)
                behind = len(st.changes_since(idx.last_change, m))
                typer.echo(f"{m} index: {idx.ntotal} vectors ({idx.factory}), up to change {idx.last_change}"
                           + (f"; {behind} newer changes are replayed on open" if behind else ""))
            except IndexFileError:
                pass
        elif st.count(m):
            typer.echo(f"{m} index: no file yet; built from the store on open")
    unprepared = st.unprepared_count("finger", finger_format())
    if unprepared:
        typer.echo(f"finger: {unprepared} samples have no stored cylinders of this matcher (computed on each "
                   f"search that reads them, ~1 ms each); `locard reindex --store {store}` stores them")
    counts = f"{st.subject_count()} subjects, {st.count('finger')} finger and {st.count('face')} face samples"
    st.close()
    if problems:
        for p in problems:
            typer.echo(f"problem: {p}")
        typer.echo(f"check FAILED ({counts}); `locard reindex --store {store}` rebuilds the indexes, "
                   f"`locard check --store {store} --remove-orphans` deletes orphan files")
        raise typer.Exit(1)
    typer.echo(f"check ok: {counts}; indexes agree with the store; every kept file is referred to")


def reindex_cmd(
    store: str = typer.Option(..., "--store", help=STORE_HELP),
    modality: str = typer.Option(None, "--modality", help="Only this modality's index."),
    factory: str = typer.Option(None, "--factory", help="FAISS factory string to use from now on (e.g. BFlat, BIVF1024 for fingers; Flat, HNSW32, IVF4096,PQ32 for faces); 'auto' = choose by size."),
) -> None:
    """Rebuild the FAISS indexes from the store, and store the comparator arrays (cylinders)
    of finger samples that lack them (enrolled before they were kept, or by an older matcher)."""
    from indexer.faiss_index import build_index, index_path, set_factory
    from indexer.prepared import backfill

    st = _open_store(store)
    if modality in (None, "finger"):
        n = backfill(st)
        if n:
            typer.echo(f"finger: stored the cylinders of {n} samples that had none of this matcher")
    for m in [modality] if modality else ["finger", "face"]:
        if factory:
            set_factory(st, m, None if factory == "auto" else factory)
        if st.count(m) == 0:
            continue
        try:
            idx = build_index(st, m)
        except ValueError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(2) from exc
        idx.save(index_path(st, m))
        typer.echo(f"{m}: {idx.ntotal} vectors, {idx.factory} {idx.params or ''}, up to change {idx.last_change}")
    st.close()


@subjects_app.command("list")
def subjects_list(store: str = typer.Option(..., "--store", help=STORE_HELP),
                  limit: int = typer.Option(100, "--limit"), offset: int = typer.Option(0, "--offset"),
                  as_json: bool = typer.Option(False, "--json")) -> None:
    """Subjects with their encounter and sample counts."""
    st = _open_store(store)
    subs = st.subjects(limit=limit, offset=offset)
    total = st.subject_count()
    st.close()
    if as_json:
        typer.echo(json.dumps([s.__dict__ for s in subs], indent=1))
        return
    for s in subs:
        typer.echo(f"{s.name}\t{s.encounters} encounters\t{s.finger_samples} finger\t{s.face_samples} face")
    typer.echo(f"({len(subs)} of {total})", err=True)


@subjects_app.command("show")
def subjects_show(subject: str = typer.Argument(...), store: str = typer.Option(..., "--store", help=STORE_HELP)) -> None:
    """One subject and its samples."""
    from indexer.errors import SubjectNotFoundError

    st = _open_store(store)
    try:
        sub, samples = st.subject(subject)
    except SubjectNotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    st.close()
    out = {"subject": sub.__dict__, "samples": [
        {k: v for k, v in s.__dict__.items() if k != "template"} for s in samples]}
    typer.echo(json.dumps(out, indent=1))


@subjects_app.command("delete")
def subjects_delete(subject: str = typer.Argument(...), store: str = typer.Option(..., "--store", help=STORE_HELP),
                    reason: str = typer.Option("", "--reason", help="Recorded in the audit log."),
                    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
                    audit_key_file: str = typer.Option(None, "--audit-key-file", envvar="LOCARD_AUDIT_KEY",
                                                       help=KEY_FILE_HELP)) -> None:
    """Delete a subject from the store and from every index (recorded in the audit log, actor: the OS
    user; the HTTP service drops the subject's access rule when it next reads the log)."""
    from indexer.errors import SubjectNotFoundError
    from indexer.faiss_index import open_index
    from indexer.store_files import delete_subject_and_files

    st = _open_store(store)
    log = _audit_log(st, audit_key_file)
    if not yes and sys.stdin.isatty():
        typer.confirm(f"delete {subject} and all its samples?", abort=True)
    try:
        deleted = delete_subject_and_files(st, subject, reason=reason)
    except SubjectNotFoundError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    ids = deleted.samples
    log.anchor()  # the deletion's entry was written with it, in one transaction
    for m in ("finger", "face"):
        if (st.path / f"{m}.index").exists():
            open_index(st, m)
    st.close()
    typer.echo(f"deleted {subject}: {len(ids)} samples, {len(deleted.files)} image files")


#: (name, function) pairs the top-level app registers.
commands = [("ingest", ingest_cmd), ("search", search_cmd), ("check", check_cmd), ("reindex", reindex_cmd)]


def register(app: typer.Typer) -> None:
    """Add the indexer's commands and the ``subjects`` group to the ``locard`` app."""
    for name, fn in commands:
        app.command(name)(fn)
    app.add_typer(subjects_app, name="subjects")
    from indexer.cluster.cli import cluster_app

    app.add_typer(cluster_app, name="cluster")
