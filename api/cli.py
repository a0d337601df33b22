"""Commands of the HTTP service: ``serve``, ``keys`` (create, list, revoke), ``audit`` (show, verify).

``audit`` reads the store's one log (:mod:`indexer.audit`); it lives here because it also
carries over the entries older builds kept in ``api.sqlite``.

``locard.py`` calls :func:`register` to add them to the top-level app.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import typer

STORE_HELP = "Store folder (gallery.sqlite; the service keeps api.sqlite beside it)."
KEY_FILE_HELP = ("HMAC key of the audit log's anchor, kept outside the store folder "
                 "(default ~/.config/locard/audit-<store id>.key, made 0600 on first use).")

keys_app = typer.Typer(help="API keys of the HTTP service (stored as hashes in STORE/api.sqlite).",
                       no_args_is_help=True)
audit_app = typer.Typer(help="The store's one hash-chained audit log (CLI and HTTP service alike), "
                             "anchored by a keyed checkpoint outside the store folder.", no_args_is_help=True)


def _key_file_option():
    return typer.Option(None, "--audit-key-file", envvar="LOCARD_AUDIT_KEY", help=KEY_FILE_HELP)


def _db(store: str):
    from .database import ApiDatabase

    if not Path(store).is_dir():
        typer.echo(f"error: {store} is not a folder (create a store with `locard ingest` or `locard serve`)",
                   err=True)
        raise typer.Exit(2)
    return ApiDatabase(store)


def _log(store: str, key_file: str | None, *, writing: bool = True):
    """The store's audit log, with the service's old api.sqlite entries carried over first.

    ``writing``: check the key and anchor now (an unusable one stops the command before it
    changes anything); reading commands never write an anchor.
    """
    from indexer.errors import StoreError

    from .audit import carry_over_legacy, open_log

    db = _db(store)
    try:
        log = open_log(store, key_file)
        if writing:
            log.anchor()
    except StoreError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    carry_over_legacy(db, log)
    return db, log


class RedactKeys(logging.Filter):
    """Takes the secret out of any key a client put where it does not belong (a URL's query) before
    a log line is written; the routes read keys from the X-API-Key header only, never logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        from .keys import redact_keys

        if isinstance(record.args, tuple):  # uvicorn's access formatter reads its fields from args
            record.args = tuple(redact_keys(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact_keys(record.msg)
        return True


def make_server(app, host: str, port: int, log_level: str):
    """The uvicorn server of ``locard serve``: its access log lines (client, method, path, status:
    no headers, no body) pass through :class:`RedactKeys`."""
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, log_level=log_level)  # configures uvicorn's loggers
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactKeys) for f in logger.filters):
            logger.addFilter(RedactKeys())
    return uvicorn.Server(config)


def serve_cmd(
    store: str = typer.Option(..., "--store", help=STORE_HELP),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", min=1, max=65535),
    default_bureau: str = typer.Option("central", "--default-bureau",
                                       help="Owner of subjects put in the store without the service (shared with all)."),
    manifest_root: str = typer.Option(None, "--manifest-root",
                                      help="Folder whose images batch-job manifests may name (default: none)."),
    extract_threads: int = typer.Option(2, "--extract-threads", min=1, help="Concurrent image extractions."),
    extract_processes: int = typer.Option(2, "--extract-processes", min=0,
                                          help="Run extractions in this many worker processes (0: threads of the server process)."),
    max_images: int = typer.Option(20, "--max-images", min=1, help="Images per enrolment/search request."),
    max_request_pixels: int = typer.Option(16_000_000, "--max-request-pixels", min=1,
                                           help="Pixels of all images of one request together (read from headers)."),
    max_concurrent_per_key: int = typer.Option(2, "--max-concurrent-per-key", min=1,
                                               help="Image requests one key may have in flight (more: 429)."),
    job_retention_days: float = typer.Option(30.0, "--job-retention-days", min=0,
                                             help="Days finished batch jobs and their results are kept."),
    image_retention_days: float = typer.Option(None, "--image-retention-days", min=0,
                                               help="Days enrolled image files are kept (default: for ever; "
                                                    "templates stay searchable)."),
    log_level: str = typer.Option("warning", "--log-level"),
    audit_key_file: str = _key_file_option(),
    cluster: str = typer.Option(None, "--cluster", help="Ray cluster address (HOST:PORT of `ray start --head`): "
                                "search the sharded gallery whose cluster.json is in --store (indexer/cluster)."),
) -> None:
    """Run the HTTP query service (OpenAPI at /docs)."""
    from .app import create_app
    from .extraction import Limits
    from .service import ServiceConfig

    from indexer.store import private_folder

    from .retention import Retention

    private_folder(Path(store))
    limits = Limits(max_images=max_images, max_request_pixels=max_request_pixels,
                    max_concurrent_per_key=max_concurrent_per_key)
    config = ServiceConfig(store=Path(store), limits=limits, default_bureau=default_bureau,
                           manifest_root=Path(manifest_root).resolve() if manifest_root else None,
                           extract_threads=extract_threads, extract_processes=extract_processes,
                           audit_key_file=Path(audit_key_file) if audit_key_file else None,
                           retention=Retention(job_days=job_retention_days, image_days=image_retention_days),
                           cluster=cluster)
    from matcher.errors import LocardError

    try:
        app = create_app(config)
    except LocardError as exc:  # e.g. no cluster.json, or Ray unreachable
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    make_server(app, host, port, log_level).run()


@keys_app.command("create")
def keys_create(
    role: str = typer.Option(..., "--role", help="examiner, bureau, auditor or admin."),
    bureau: str = typer.Option(..., "--bureau", help="The member bureau the key speaks for."),
    store: str = typer.Option(..., "--store", help=STORE_HELP),
    label: str = typer.Option("", "--label", help="Free text (who holds the key)."),
    global_: bool = typer.Option(False, "--global",
                                 help="Auditor keys only: read every bureau's audit entries (default: its own bureau's)."),
    audit_key_file: str = _key_file_option(),
) -> None:
    """Make a key and print it once (only its hash is kept)."""
    from indexer.audit import os_actor

    from .keys import create_key

    db, log = _log(store, audit_key_file)
    try:
        key, rec = create_key(db, role, bureau, label, "global" if global_ else "bureau")
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    log.append({**os_actor(), "action": "key-create", "target": rec.id, "target_role": rec.role,
                "target_bureau": rec.bureau, "target_scope": rec.scope})
    typer.echo(key)
    typer.echo(f"key id {rec.id}, role {rec.role}, bureau {rec.bureau}, scope {rec.scope}: store the key now, "
               "it is not shown again", err=True)


@keys_app.command("list")
def keys_list(store: str = typer.Option(..., "--store", help=STORE_HELP)) -> None:
    """List keys (ids, roles, bureaus; never the keys)."""
    from .keys import list_keys

    for k in list_keys(_db(store)):
        typer.echo(f"{k.id}  {k.role:8}  {k.bureau:12}  {k.scope:6}  {'revoked' if k.revoked else 'active':7}  "
                   f"{k.label}")


@keys_app.command("revoke")
def keys_revoke(key_id: str = typer.Argument(..., help="Key id (the 12 hex digits after lk_)."),
                store: str = typer.Option(..., "--store", help=STORE_HELP),
                audit_key_file: str = _key_file_option()) -> None:
    """Revoke a key."""
    from indexer.audit import os_actor

    from .keys import revoke_key

    db, log = _log(store, audit_key_file)
    if revoke_key(db, key_id) is None:
        typer.echo(f"error: no active key {key_id!r}", err=True)
        raise typer.Exit(1)
    log.append({**os_actor(), "action": "key-revoke", "target": key_id})
    typer.echo(f"revoked {key_id}")


@audit_app.command("verify")
def audit_verify(store: str = typer.Option(..., "--store", help=STORE_HELP),
                 audit_key_file: str = _key_file_option()) -> None:
    """Recompute the hash chain and compare its head with the anchor; exit 1 when any entry was
    altered, removed or inserted, the end truncated, the log emptied or rewritten, or it cannot be told."""
    _, log = _log(store, audit_key_file, writing=False)
    check = log.verify()
    for p in check.problems:
        typer.echo(p)
    if check.problems:
        typer.echo(f"audit log TAMPERED or unverifiable: {len(check.problems)} problems in {check.entries} entries",
                   err=True)
        raise typer.Exit(1)
    tail = check.last - check.anchored
    typer.echo(f"audit log intact: {check.entries} entries, anchored up to entry {check.anchored}"
               + (f" ({tail} newer entries not yet anchored)" if tail else "") + f" ({log.anchor_path})")


@audit_app.command("show")
def audit_show(store: str = typer.Option(..., "--store", help=STORE_HELP),
               after: int = typer.Option(0, "--after", min=0), limit: int = typer.Option(50, "--limit", min=1),
               bureau: str = typer.Option(None, "--bureau", help="Only the entries that concern this bureau."),
               audit_key_file: str = _key_file_option()) -> None:
    """Print entries as JSON lines."""
    _, log = _log(store, audit_key_file, writing=False)
    for e in log.entries(after=after, limit=limit, bureau=bureau):
        typer.echo(json.dumps({"seq": e.seq, "at": e.at, "hash": e.hash, **e.record}, sort_keys=True))


def purge_cmd(
    store: str = typer.Option(..., "--store", help=STORE_HELP),
    job_retention_days: float = typer.Option(30.0, "--job-retention-days", min=0,
                                             help="Delete finished batch jobs (and results) older than this."),
    image_retention_days: float = typer.Option(None, "--image-retention-days", min=0,
                                               help="Delete enrolled image files older than this (default: none)."),
    orphan_grace: float = typer.Option(3600.0, "--orphan-grace", min=0,
                                       help="Seconds an unreferenced file is left alone."),
) -> None:
    """Delete what the retention settings say has expired (see api/retention.py and the README)."""
    import time

    from indexer.store import GalleryStore

    from .retention import Retention, purge

    db = _db(store)
    with GalleryStore(store, create=True) as st:
        r = purge(db, lambda fn: fn(st), Path(store),
                  Retention(job_days=job_retention_days, image_days=image_retention_days,
                            orphan_grace_s=orphan_grace), time.time())
    typer.echo(f"purged {len(r.jobs)} jobs, {len(r.images)} image files, {len(r.orphans)} orphan files, "
               f"{len(r.searches)} searches without conclusions")


def register(app: typer.Typer) -> None:
    from indexer.cli import file_checks

    from .retention import check_files

    file_checks.append(check_files)  # `locard check` looks at api-images/ and api-jobs/ too
    app.command("serve")(serve_cmd)
    app.command("purge")(purge_cmd)
    app.add_typer(keys_app, name="keys")
    app.add_typer(audit_app, name="audit")
