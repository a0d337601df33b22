"""``locard bench``, ``locard synth`` and ``locard demo``."""

from __future__ import annotations

import typer

bench_app = typer.Typer(
    help="Measure accuracy and speed on a labelled data set (folder with labels.csv).",
    no_args_is_help=True,
)
synth_app = typer.Typer(help="Generate synthetic biometric data with ground truth.", no_args_is_help=True)


def demo() -> None:
    """Enrol a small gallery, search probes against it and print ranked candidates."""
    from benchmarks.demo import run_demo

    raise typer.Exit(run_demo())
