"""``locard compare``: one fingerprint against another, with the evidence behind the score."""

from __future__ import annotations

from pathlib import Path

import typer


def compare_command(
    image_a: Path = typer.Argument(..., exists=True, dir_okay=False, help="First fingerprint image."),
    image_b: Path = typer.Argument(..., exists=True, dir_okay=False, help="Second fingerprint image."),
    ppi_a: float = typer.Option(500.0, "--ppi-a", help="Capture resolution of the first image, pixels per inch."),
    ppi_b: float = typer.Option(500.0, "--ppi-b", help="Capture resolution of the second image."),
    fmr: float = typer.Option(0.001, "--fmr", help="Decide at this false match rate (0.01, 0.001, 0.0001)."),
    mode: str = typer.Option("accurate", "--mode", help="Extraction: accurate (minutiae network) or fast (classical)."),
) -> None:
    """Compare two fingerprint images: score, its false match rate, decision and paired minutiae."""
    from rich.console import Console
    from rich.table import Table

    from .errors import LocardError
    from .fingerprint import compare, extract
    from .fingerprint.calibration import calibration

    console = Console()
    try:
        a = extract(image_a.read_bytes(), ppi_a, mode=mode)
        b = extract(image_b.read_bytes(), ppi_b, mode=mode)
        cal = calibration(mode)
        threshold = cal.threshold(fmr)
    except (LocardError, ValueError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    r = compare(a, b)
    decision = "[green]MATCH[/green]" if r.score >= threshold else "[yellow]no match[/yellow]"
    console.print(f"{image_a.name}: {len(a)} minutiae, quality {a.quality}; "
                  f"{image_b.name}: {len(b)} minutiae, quality {b.quality}")
    console.print(f"score {r.score:.4f}; false match rate of this score <= {cal.fmr(r.score):.2g} "
                  f"(from {cal.n_impostors} impostor comparisons); threshold at FMR {fmr:g}: "
                  f"{threshold:.4f} -> {decision}")
    t = Table(title="paired minutiae (pixels at 500 ppi, degrees)")
    for col in ("#", "a: x, y, dir", "b: x, y, dir", "pair score"):
        t.add_column(col, justify="right")
    for k, ((i, j), s) in enumerate(zip(r.pairs, r.pair_scores), 1):
        ma, mb = a.minutiae[i], b.minutiae[j]
        t.add_row(str(k), f"{ma['x']:.0f}, {ma['y']:.0f}, {ma['direction'] * 57.2958:.0f}",
                  f"{mb['x']:.0f}, {mb['y']:.0f}, {mb['direction'] * 57.2958:.0f}", f"{s:.3f}")
    console.print(t)


def register(app: typer.Typer) -> None:
    """Add the matcher's commands to the top-level app."""
    app.command("compare")(compare_command)
