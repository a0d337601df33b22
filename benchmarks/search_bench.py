"""``locard bench search``: 1:N identification accuracy and speed through a real store.

Protocol (``benchmarks/README.md``, section Search):

- identities of DATASET are split in half by a seeded permutation; the gallery holds
  the first sample (``labels.csv`` order) of each identity of the first half;
- mated probes: every other sample of those identities; non-mated probes: every
  sample of the second half;
- ``--distractors DIR`` adds the first sample of every identity of another data set
  to the gallery only;
- the gallery is ingested into a fresh store (``indexer.ingest``, timed:
  ``ingest_per_s``); each probe is extracted once and then searched
  (``Searcher.identify``, timed without extraction: ``search_ms_*``).

A mated probe whose extraction fails counts as a miss at every rank (and for FNIR);
a non-mated probe whose extraction fails returns no candidate (not a false positive).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from indexer.ingest import SourceItem, extract_item, ingest, scan_source, sha256_file
from indexer.search import Probe, Searcher
from indexer.store import GalleryStore


def split_dataset(items: list[SourceItem], seed: int = 0):
    """Gallery (first sample of half the identities), mated and non-mated probes."""
    by_id: dict[str, list[SourceItem]] = {}
    for it in items:
        by_id.setdefault(it.identity, []).append(it)
    names = sorted(by_id)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(names))
    half = set(names[i] for i in order[: (len(names) + 1) // 2])
    gallery = [by_id[n][0] for n in names if n in half]
    mated = [s for n in names if n in half for s in by_id[n][1:]]
    nonmated = [s for n in names if n not in half for s in by_id[n]]
    return gallery, mated, nonmated


def _probe_templates(items: list[SourceItem], workers: int) -> list:
    """Decoded templates of the probes (``None`` where extraction failed)."""
    from concurrent.futures import ProcessPoolExecutor

    from indexer.ingest import _extract_star, _init_worker

    args = [(it, "", "sface") for it in items]
    if workers > 1:
        import multiprocessing

        with ProcessPoolExecutor(workers, initializer=_init_worker,
                                 mp_context=multiprocessing.get_context("spawn")) as pool:
            res = list(pool.map(_extract_star, args, chunksize=2))
    else:
        res = [extract_item(*a) for a in args]
    out = []
    for e in res:
        if e.error:
            out.append(None)
        elif e.item.modality == "finger":
            from matcher.fingerprint import Template

            out.append(Template.from_bytes(e.template))
        else:
            from matcher.face import FaceTemplate

            out.append(FaceTemplate.from_bytes(e.template))
    return out


def fnir_at_fpir(mate_scores: np.ndarray, nonmated_top: np.ndarray, fpir: float) -> tuple[float, float]:
    """FNIR at the lowest threshold whose FPIR is at most ``fpir``.

    Parameters
    ----------
    mate_scores : (m,) array
        Score of the true subject in each mated search's candidate list (-inf when absent).
    nonmated_top : (n,) array
        Top candidate score of each non-mated search (-inf when no candidate).

    Returns
    -------
    fnir, threshold
    """
    s = np.sort(nonmated_top[np.isfinite(nonmated_top)])[::-1]
    n = len(nonmated_top)
    allowed = int(np.floor(fpir * n + 1e-9))  # non-mated searches that may reach the threshold
    if len(s) <= allowed:
        t = -np.inf
    else:
        t = float(np.nextafter(s[allowed], np.inf))  # strictly above the (allowed+1)-th highest
    return float(np.mean(~(mate_scores >= t))), t


def run(dataset: str, modality: str, *, distractors: str | None = None, json_path: str | None = None,
        seed: int = 0, workers: int = 1, shortlist: int | None = None, top: int = 10,
        store_path: str | None = None, exhaustive: bool = False, echo=print) -> dict:
    """Run the benchmark and return (and optionally write) the JSON report."""
    import faiss

    faiss.omp_set_num_threads(1)
    items = scan_source(dataset, modality)
    if not items:
        raise ValueError(f"{dataset} holds no images")
    gallery, mated, nonmated = split_dataset(items, seed)
    n_distr = 0
    if distractors:
        d_items = scan_source(distractors, modality)
        seen = set()
        for it in d_items:
            if it.identity not in seen:
                seen.add(it.identity)
                gallery.append(SourceItem(it.path, f"distractor:{Path(distractors).name}:{it.identity}", it.modality,
                                          it.finger_position, it.ppi, it.metadata))
        n_distr = len(seen)
    tmp = None
    if store_path is None:
        tmp = tempfile.TemporaryDirectory(prefix="locard-bench-search-")
        store_path = tmp.name
    store = GalleryStore(store_path, create=True)
    echo(f"ingesting {len(gallery)} gallery images ({n_distr} distractor identities) into {store_path}")
    rep = ingest(gallery, store, workers=workers)
    echo(f"  {rep.added} added, {rep.failed} failed in {rep.seconds:.1f} s ({rep.per_second:.2f}/s, {workers} worker(s))")
    probes = mated + nonmated
    echo(f"extracting {len(probes)} probes ({len(mated)} mated, {len(nonmated)} non-mated)")
    templates = _probe_templates(probes, workers)
    from indexer.search import DEFAULT_SHORTLIST

    searcher = Searcher(store, shortlist=shortlist or DEFAULT_SHORTLIST, k_per_minutia=64)
    n_gal = store.count(modality)
    gallery_sha = {sha256_file(it.path) for it in gallery}

    def search_all(s: Searcher):
        ranks, mate_scores, nm_top, times, pens = [], [], [], [], []
        for it, t in zip(probes, templates):
            is_mated = id(it) in mated_set
            if t is None:
                if is_mated:
                    ranks.append(np.inf)
                    mate_scores.append(-np.inf)
                else:
                    nm_top.append(-np.inf)
                continue
            t0 = time.perf_counter()
            r = s.identify(Probe(modality, t, it.finger_position, str(it.path)), top=top)
            times.append((time.perf_counter() - t0) * 1e3)
            if modality in r.penetration:
                pens.append(r.penetration[modality])
            names = [c.subject for c in r.candidates]
            if is_mated:
                rank = names.index(it.identity) + 1 if it.identity in names else np.inf
                ranks.append(rank)
                mate_scores.append(r.candidates[rank - 1].raw if np.isfinite(rank) else -np.inf)
            else:
                nm_top.append(r.candidates[0].raw if r.candidates else -np.inf)
        return (np.array(ranks, float), np.array(mate_scores, float), np.array(nm_top, float),
                np.array(times), np.array(pens) if pens else np.zeros(1))

    mated_set = {id(it) for it in mated}
    # warm-up (JIT compilation of the comparator) outside the timings
    first = next((t for t in templates if t is not None), None)
    if first is not None:
        searcher.identify(Probe(modality, first), top=1)
    ranks, mate_scores, nm_top, times, pens = search_all(searcher)
    fnir, thr = fnir_at_fpir(mate_scores, nm_top, 0.01)
    index_file = store.path / f"{modality}.index"
    report = {
        "dataset": str(dataset), "modality": modality, "distractors": distractors, "seed": seed,
        "gallery_size": n_gal, "gallery_subjects": store.subject_count(), "distractor_identities": n_distr,
        "gallery_failed": rep.failed, "mated_probes": len(mated), "nonmated_probes": len(nonmated),
        "probe_failed": int(sum(t is None for t in templates)),
        "rank1": float(np.mean(ranks <= 1)) if len(ranks) else None,
        "rank10": float(np.mean(ranks <= 10)) if len(ranks) else None,
        "fnir_at_fpir_0.01": fnir, "threshold_at_fpir_0.01": thr,
        "fpir_resolution": 1.0 / max(len(nm_top), 1),
        "penetration": float(np.mean(pens)),
        "shortlist": searcher.shortlist if modality == "finger" else None,
        "search_ms_p50": float(np.percentile(times, 50)) if len(times) else None,
        "search_ms_p95": float(np.percentile(times, 95)) if len(times) else None,
        "ingest_per_s": rep.per_second, "workers": workers,
        "index_factory": searcher.indexes[modality].factory if modality in searcher.indexes else None,
        "index_bytes_per_sample": index_file.stat().st_size / n_gal if index_file.exists() and n_gal else None,
        "calibrated": bool(searcher.identify(Probe(modality, first), top=1).calibrated) if first is not None else None,
        "search_timing": "Searcher.identify only (probe extraction excluded), one thread, after one warm-up search",
    }
    if exhaustive and modality == "finger":
        full = Searcher(store, shortlist=n_gal, k_per_minutia=max(64, searcher.indexes["finger"].ntotal))
        r2, *_ = search_all(full)
        report["rank1_exhaustive"] = float(np.mean(r2 <= 1)) if len(r2) else None
    if gallery_sha & {sha256_file(it.path) for it in probes}:
        report["warning"] = "some probe images are byte-identical to gallery images"
    store.close()
    if tmp is not None:
        tmp.cleanup()
    if json_path:
        Path(json_path).write_text(json.dumps(report, indent=1))
    return report
