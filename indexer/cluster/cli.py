"""Commands of the sharded gallery: ``locard cluster status|add-shard|stop``, and the
``--cluster`` halves of ``locard ingest`` and ``locard search`` (:mod:`indexer.cli`).

With ``--cluster ADDRESS`` the ``--store`` folder is the cluster folder (``cluster.json``
and ``shards/``, :mod:`indexer.cluster.config`) and must be at the same path on every
node that runs a shard.
"""

from __future__ import annotations

import json

import typer

ROOT_HELP = "Cluster folder (cluster.json and the shard stores), at the same path on every node."

cluster_app = typer.Typer(help="The sharded gallery on a Ray cluster: status, add a shard, stop the shard actors.",
                          no_args_is_help=True)


def open_gallery(store: str, address: str, *, shards: int | None = None, **kw):
    """The :class:`ClusterGallery` of a cluster folder; exit 2 with the reason when it cannot be used."""
    from indexer.cluster.gallery import ClusterGallery
    from indexer.errors import StoreError
    from matcher.errors import LocardError

    try:
        return ClusterGallery(store, address, shards=shards, **kw)
    except (LocardError, StoreError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def cluster_ingest(source: str, store: str, address: str, shards: int | None, modality: str | None,
                   subject_field: str | None) -> None:
    """``locard ingest --cluster``: each image to its subject's shard; prints what each did."""
    from indexer.audit import os_actor
    from indexer.errors import ShardUnavailableError
    from indexer.ingest import scan_source

    try:
        items = scan_source(source, modality, subject_field)
    except (FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    gallery = open_gallery(store, address, shards=shards)
    try:
        report = gallery.ingest(items, actor={**os_actor(), "source": source})
    except ShardUnavailableError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"{report.added} added, {report.skipped} already stored, {report.failed} failed, of {report.total} "
               f"images on {len(gallery.config.active)} shards in {report.seconds:.1f} s "
               f"({report.per_second:.1f} samples/s)")
    if report.error_report:
        typer.echo(f"error reports: in each shard's folder under {gallery.root / 'shards'} (ingest-errors-*.csv)")


def cluster_identify(store: str, address: str, samples: list, *, top: int, fmr: float, shortlist: int):
    """``locard search --cluster``: one search over every shard (a ClusterSearchResult)."""
    from matcher.errors import LocardError

    gallery = open_gallery(store, address, shortlist=shortlist)
    try:
        return gallery.identify(samples, top=top, fmr=fmr)
    except LocardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@cluster_app.command("status")
def status_cmd(store: str = typer.Option(..., "--store", help=ROOT_HELP),
               address: str = typer.Option(..., "--cluster", help="Ray cluster address."),
               as_json: bool = typer.Option(False, "--json")) -> None:
    """Each shard: state, subjects and samples, the node its actor runs on; exit 1 if one is unreachable."""
    gallery = open_gallery(store, address)
    st = gallery.status()
    if as_json:
        typer.echo(json.dumps({"epoch": gallery.config.epoch, "shards": st}, indent=1))
    else:
        typer.echo(f"cluster {gallery.config.cluster_id}, epoch {gallery.config.epoch}, ring of "
                   f"{len(gallery.config.active)} shards")
        for name, s in st.items():
            if s.get("missing"):
                typer.echo(f"  {name} ({s['state']}): UNREACHABLE: {s['missing']}")
            else:
                typer.echo(f"  {name} ({s['state']}): {s['subjects']} subjects, {s['finger_samples']} finger and "
                           f"{s['face_samples']} face samples, node {str(s['node'])[:12]}")
    if any(s.get("missing") for s in st.values()):
        raise typer.Exit(1)


@cluster_app.command("add-shard")
def add_shard_cmd(store: str = typer.Option(..., "--store", help=ROOT_HELP),
                  address: str = typer.Option(..., "--cluster", help="Ray cluster address."),
                  cpus: float = typer.Option(None, "--cpus", min=0, help="CPUs the new shard's actor reserves "
                                             "(default: as the first shard).")) -> None:
    """Add a shard and move to it the subjects the new ring gives it, while searches go on."""
    from matcher.errors import LocardError

    gallery = open_gallery(store, address)
    try:
        rep = gallery.add_shard(cpus=cpus, progress=typer.echo)
    except LocardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(f"shard {rep['shard']} added (epoch {rep['epoch']}); moved: "
               + ", ".join(f"{n} from {s}" for s, n in rep["moved"].items()))


@cluster_app.command("stop")
def stop_cmd(store: str = typer.Option(..., "--store", help=ROOT_HELP),
             address: str = typer.Option(..., "--cluster", help="Ray cluster address.")) -> None:
    """End the shard actors (stores stay on disk; the next command starts them again)."""
    open_gallery(store, address).stop()
    typer.echo("shard actors stopped")
