"""The ``locard`` command: wires one Typer sub-app per package, nothing more."""

from __future__ import annotations

import typer

from api.cli import register as register_api
from benchmarks.cli import bench_app, demo, synth_app
from indexer.cli import register as register_indexer
from matcher.cli import register as register_matcher

app = typer.Typer(
    name="locard",
    help=(
        "locard: biometric identification engine (fingerprints and faces).\n\n"
        "Start with `locard demo`. Measure accuracy with `locard bench fingerprint DATASET`, "
        "where DATASET is a folder holding images and a labels.csv (file, identity, ppi)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("demo")(demo)
app.add_typer(bench_app, name="bench")
app.add_typer(synth_app, name="synth")
register_matcher(app)  # compare
register_indexer(app)  # ingest, search, check, reindex, subjects
register_api(app)  # serve, keys, audit


def main() -> None:
    app()


if __name__ == "__main__":
    main()
