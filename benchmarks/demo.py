"""``locard demo``: enrol a small gallery, search probes, print candidates and how well it did.

Data, first found wins: the generated samples shipped in ``data/samples/fingerprints``,
then FVC2002 DB1_B in ``../shared/data``.  The gallery holds the first impression
of every finger; every other impression is a probe.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import track
from rich.table import Table

from matcher.errors import FailureToEnrol, ImageError
from matcher.fingerprint import extract
from matcher.fingerprint.comparison import compare_scores

from .datasets import Dataset, load_dataset

REPO = Path(__file__).resolve().parents[1]
CANDIDATE_SETS = (
    REPO / "data" / "samples" / "fingerprints",
    REPO.parent / "shared" / "data" / "fingerprint" / "fvc2002_db1_b",
)


def find_demo_dataset() -> Dataset | None:
    """The first demo data set present, or ``None``."""
    for root in CANDIDATE_SETS:
        if (root / "labels.csv").is_file():
            return load_dataset(root)
    return None


def run_demo(top: int = 3, show: int = 8) -> int:
    """Run the demo; returns the process exit code."""
    console = Console()
    ds = find_demo_dataset()
    if ds is None:
        console.print("[red]locard demo needs fingerprint images and found none.[/red] It looks for "
                      + " or ".join(f"{p}/labels.csv" for p in CANDIDATE_SETS)
                      + ". Generate samples with `locard synth fingerprints data/samples/fingerprints "
                        "--identities 20 --impressions 4`.")
        return 2
    console.print(f"[bold]locard demo[/bold]: fingerprints from {ds.root} "
                  f"({len(ds.samples)} images, {len(ds.identities)} fingers)")
    templates, ftes, times = [], 0, []
    for s in track(ds.samples, description="extracting", console=console):
        t0 = time.perf_counter()
        try:
            templates.append(extract(s.path.read_bytes(), s.ppi or 500))
        except (FailureToEnrol, ImageError) as exc:
            templates.append(None)
            ftes += 1
            console.print(f"  {s.path.name}: not enrolled ({exc})")
        times.append(time.perf_counter() - t0)
    seen: set[str] = set()
    gallery, probes = [], []
    for k, s in enumerate(ds.samples):
        if templates[k] is None:
            continue
        (probes if s.identity in seen else gallery).append(k)
        seen.add(s.identity)
    console.print(f"gallery: {len(gallery)} fingers enrolled; probes: {len(probes)}; "
                  f"failures to enrol: {ftes}; median extraction {1000 * np.median(times):.0f} ms")
    g_templates = [templates[k] for k in gallery]
    g_ids = [ds.samples[k].identity for k in gallery]
    prefix = len(os.path.commonprefix(ds.identities)) if len(ds.identities) > 1 else 0
    hits = 0
    table = Table(title=f"first {show} searches (top {top} candidates)")
    table.add_column("probe")
    table.add_column("true identity")
    for r in range(1, top + 1):
        table.add_column(f"#{r} (score)")
    for n, k in enumerate(probes):
        scores = compare_scores(templates[k], g_templates)
        order = np.argsort(-scores, kind="stable")
        truth = ds.samples[k].identity
        hits += g_ids[order[0]] == truth
        if n < show:
            cells = [f"{'[green]' if g_ids[i] == truth else ''}{g_ids[i][prefix:]} ({scores[i]:.3f})"
                     for i in order[:top]]
            table.add_row(ds.samples[k].path.name, truth[prefix:], *cells)
    console.print(table)
    rate = hits / max(len(probes), 1)
    console.print(f"[bold]rank-1 identification: {hits}/{len(probes)} = {100 * rate:.1f} %[/bold]")
    return 0
