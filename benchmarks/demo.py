"""``locard demo``: enrol a small gallery into a store, search probes, print candidates and rank-1.

Data, first found wins: the generated samples shipped in ``data/samples/fingerprints``,
then FVC2002 DB1_B in ``../shared/data``.  The gallery holds the first impression
of every finger, ingested into an embedded store (a fresh folder under a temporary
directory, or ``--store``); every other impression is a probe, searched 1:N through
the store's FAISS index and re-ranked by the 1:1 comparator.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import track
from rich.table import Table

from matcher.errors import FailureToEnrol, ImageError
from matcher.fingerprint import extract

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


def run_demo(top: int = 3, show: int = 8, store: str | None = None) -> int:
    """Run the demo; returns the process exit code.

    Parameters
    ----------
    store : str, optional
        Store folder to enrol into (kept afterwards); default a temporary one, removed.
    """
    from indexer.ingest import SourceItem, ingest
    from indexer.search import Probe, Searcher
    from indexer.store import GalleryStore

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
    seen: set[str] = set()
    gallery, probes = [], []
    for s in ds.samples:
        (probes if s.identity in seen else gallery).append(s)
        seen.add(s.identity)
    tmp = None
    if store is None:
        tmp = tempfile.TemporaryDirectory(prefix="locard-demo-")
        store = str(Path(tmp.name) / "store")
    try:
        st = GalleryStore(store, create=True)
        items = [SourceItem(s.path, s.identity, "finger", 0, s.ppi or 500.0) for s in gallery]
        rep = ingest(items, st, workers=1)
        console.print(f"enrolled {rep.added} fingers into the store {store} in {rep.seconds:.1f} s"
                      + (f" ({rep.skipped} already there)" if rep.skipped else "")
                      + (f"; {rep.failed} not enrolled, see {rep.error_report}" if rep.failed else ""))
        searcher = Searcher(st)
        prefix = len(os.path.commonprefix(ds.identities)) if len(ds.identities) > 1 else 0
        table = Table(title=f"first {show} searches (top {top} candidates)")
        table.add_column("probe")
        table.add_column("true identity")
        for r in range(1, top + 1):
            table.add_column(f"#{r} (score)")
        hits, searched, ftes, times, pen = 0, 0, 0, [], []
        result = None
        for n, s in enumerate(track(probes, description="searching", console=console)):
            try:
                t = extract(s.path.read_bytes(), s.ppi or 500)
            except (FailureToEnrol, ImageError) as exc:
                ftes += 1
                console.print(f"  {s.path.name}: no usable probe ({exc})")
                continue
            t0 = time.perf_counter()
            result = searcher.identify(Probe("finger", t, label=s.path.name), top=top)
            times.append(time.perf_counter() - t0)
            pen.append(result.penetration.get("finger", 0.0))
            searched += 1
            names = [c.subject for c in result.candidates]
            hits += bool(names) and names[0] == s.identity
            if n < show:
                cells = [f"{'[green]' if c.subject == s.identity else ''}{c.subject[prefix:]} ({c.raw:.3f})"
                         for c in result.candidates]
                table.add_row(s.path.name, s.identity[prefix:], *cells, *[""] * (top - len(cells)))
        st.close()
    finally:
        if tmp is not None:
            tmp.cleanup()
    console.print(table)
    if result is not None:
        console.print(f"median search {1000 * np.median(times):.1f} ms (extraction excluded); penetration "
                      f"{100 * np.mean(pen):.0f} % of the gallery re-ranked; scores are the 1:1 comparator's"
                      + (f"; decision threshold at FMR {result.fmr:g} on -log10 FMR: {result.threshold:.1f}"
                         if result.threshold is not None else ""))
    rate = hits / max(searched, 1)
    console.print(f"[bold]rank-1 identification: {hits}/{searched} = {100 * rate:.1f} %[/bold]"
                  + (f" ({ftes} probes not usable)" if ftes else ""))
    return 0
