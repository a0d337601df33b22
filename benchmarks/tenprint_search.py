"""``locard bench search`` on ten-print subjects: people, not fingers.

Used when DATASET's ``labels.csv`` gives every image a finger position (1-10) and a
``card`` (a ``locard synth tenprints`` folder).  Protocol (``benchmarks/README.md``,
section Ten-print search):

- subjects are split in half by a seeded permutation (as :func:`.search_bench.split_dataset`);
- the gallery holds one card of each subject of the first half (its lowest-numbered
  card: every finger it printed, rolled and flat, with its position);
- mated probes: every other card of those subjects, one multi-sample probe per card
  (all its images, with their positions); non-mated probes: every card of the other
  half;
- ``--distractors DIR`` adds the first card of every subject of another ten-print set
  to the gallery only; ``--distractor-store STORE`` starts from a copy of a store
  (e.g. template-level distractors, ``locard synth tenprints --template-level``);
- each probe card is searched once (:meth:`indexer.search.Searcher.identify`, all its
  fingers fused per subject) by ``workers`` processes at once (forked after the gallery
  is loaded): ``searches_per_s`` is the batch's throughput, ``search_ms_*`` the time of
  one search while every worker is busy.

A card whose every image fails extraction counts as a miss (mated) or as a search
without candidates (non-mated).
"""

from __future__ import annotations

import json
import multiprocessing
import resource
import time
from pathlib import Path

import numpy as np

from indexer.fusion import expected_fpir
from indexer.ingest import SourceItem, ingest, scan_source
from indexer.search import DEFAULT_SHORTLIST, DEFAULT_TENPRINT_SUBJECTS, Probe, Searcher
from indexer.store import GalleryStore

#: Decision FMR (per subject) whose hit rates the report gives.
DECISION_FMR = 1e-3
#: FPIRs at which FNIR is reported.
FPIRS = (0.01, 0.001)


def is_tenprint(items: list[SourceItem]) -> bool:
    """Whether every image names its finger position (1-10) and its card."""
    return bool(items) and all(it.finger_position > 0 and it.metadata.get("card") for it in items)


def cards_of(items: list[SourceItem]) -> dict[str, dict[str, list[SourceItem]]]:
    """Subject -> card -> its images (``labels.csv`` order)."""
    out: dict[str, dict[str, list[SourceItem]]] = {}
    for it in items:
        out.setdefault(it.identity, {}).setdefault(it.metadata["card"], []).append(it)
    return out


def _card_order(card: str):
    return (0, int(card)) if card.isdigit() else (1, card)


def split_tenprint(items: list[SourceItem], seed: int = 0):
    """Gallery images, mated probe cards and non-mated probe cards.

    Returns
    -------
    gallery : list of SourceItem
        Every image of the first card of each subject of the gallery half.
    mated, nonmated : list of list of SourceItem
        One list per probe card.
    """
    subjects = cards_of(items)
    names = sorted(subjects)
    order = np.random.default_rng(seed).permutation(len(names))
    half = {names[i] for i in order[: (len(names) + 1) // 2]}
    gallery, mated, nonmated = [], [], []
    for n in names:
        cards = [subjects[n][c] for c in sorted(subjects[n], key=_card_order)]
        if n in half:
            gallery += cards[0]
            mated += cards[1:]
        else:
            nonmated += cards
    return gallery, mated, nonmated


def first_cards(items: list[SourceItem], prefix: str) -> list[SourceItem]:
    """The first card of every subject of a distractor set, renamed ``prefix:<subject>``."""
    out = []
    for name, cards in cards_of(items).items():
        first = cards[min(cards, key=_card_order)]
        out += [SourceItem(it.path, f"{prefix}:{name}", it.modality, it.finger_position, it.ppi, it.metadata)
                for it in first]
    return out


# -- the batch: forked workers share the loaded gallery ------------------------------------------
_BATCH: dict = {}


def _worker_init(store_path: str) -> None:
    # a SQLite connection must not cross a fork: each worker reads templates through its own
    _BATCH["searcher"].store = GalleryStore(store_path)


def _search_card(i: int) -> tuple[int, list[tuple[str, float, bool]], float]:
    """Search probe card ``i``: (index, [(subject, fused score, hit)] best first, milliseconds)."""
    probes = _BATCH["probes"][i]
    if not probes:
        return i, [], float("nan")
    t0 = time.perf_counter()
    r = _BATCH["searcher"].identify(probes, top=_BATCH["top"])
    ms = (time.perf_counter() - t0) * 1e3
    return i, [(c.subject, c.score, bool(c.hit)) for c in r.candidates], ms


def search_batch(searcher: Searcher, probes: list[list[Probe]], top: int, workers: int) -> tuple[list, float]:
    """Search every probe card with ``workers`` forked processes; (results by card, wall seconds)."""
    _BATCH.update(searcher=searcher, probes=probes, top=top)
    t0 = time.perf_counter()
    try:
        if workers > 1:
            ctx = multiprocessing.get_context("fork")
            with ctx.Pool(workers, initializer=_worker_init, initargs=(str(searcher.store.path),)) as pool:
                res = pool.map(_search_card, range(len(probes)), chunksize=4)
        else:
            res = [_search_card(i) for i in range(len(probes))]
    finally:
        _BATCH.clear()
    return sorted(res), time.perf_counter() - t0


def _probe_cards(cards: list[list[SourceItem]], workers: int, uncertain: bool) -> list[list[Probe]]:
    """Extract every image of every card once; a card's usable images as probe samples."""
    from .search_bench import _probe_templates

    flat = [it for card in cards for it in card]
    templates = iter(_probe_templates(flat, workers))
    out = []
    for card in cards:
        out.append([Probe("finger", t, it.finger_position, str(it.path),
                          position_uncertain=uncertain and it.metadata.get("impression_kind") == "flat")
                    for it, t in zip(card, templates) if t is not None])
    return out


def run(dataset: str, *, distractors: str | None = None, distractor_store: str | None = None,
        json_path: str | None = None, seed: int = 0, workers: int = 1, shortlist: int | None = None,
        top: int = 10, store_path: str | None = None, max_probes: int | None = None, warm: bool = False,
        uncertain: bool = False, tenprint_subjects: list[int] | None = None, exhaustive: bool = False,
        echo=print) -> dict:
    """Run the ten-print benchmark and return (and optionally write) the JSON report.

    ``uncertain`` flags every flat probe impression's position as uncertain (as if
    cut out of a slap), so that its neighbouring fingers are searched too.
    ``tenprint_subjects``: subjects a card re-ranks in full (:class:`indexer.search.Searcher`;
    0 = per-finger shortlists); the first value is the report, each other one is measured
    on the same probes under ``variants``.  ``exhaustive`` also re-ranks every subject for
    the mated cards (``rank1_exhaustive``: what the preselection may lose).
    """
    import faiss

    from .search_bench import fnir_at_fpir, open_gallery_store, sample_probes

    faiss.omp_set_num_threads(1)
    items = scan_source(dataset, "finger")
    if not is_tenprint(items):
        raise ValueError(f"{dataset} is not a ten-print set (labels.csv needs finger_position 1-10 and card)")
    gallery, mated, nonmated = split_tenprint(items, seed)
    n_distr = 0
    if distractors:
        d_items = scan_source(distractors, "finger")
        if not is_tenprint(d_items):
            raise ValueError(f"{distractors} is not a ten-print set (labels.csv needs finger_position and card)")
        extra = first_cards(d_items, f"distractor:{Path(distractors).name}")
        gallery += extra
        n_distr = len({it.identity for it in extra})
    store, store_path, tmp, n_stored = open_gallery_store(store_path, distractor_store, {it.identity for it in items},
                                                          dataset, echo, "locard-bench-tenprint-")
    n_distr += n_stored
    try:
        echo(f"ingesting {len(gallery)} gallery images ({n_distr} distractor subjects) into {store_path}")
        rep = ingest(gallery, store, workers=workers)
        echo(f"  {rep.added} added, {rep.failed} failed in {rep.seconds:.1f} s ({rep.per_second:.2f}/s)")
        mated, nonmated = sample_probes(mated, nonmated, max_probes, seed)
        cards = mated + nonmated
        echo(f"extracting {sum(map(len, cards))} images of {len(cards)} probe cards "
             f"({len(mated)} mated, {len(nonmated)} non-mated)")
        probes = _probe_cards(cards, workers, uncertain)
        sizes = list(tenprint_subjects or [DEFAULT_TENPRINT_SUBJECTS])
        variants = []
        for size in sizes:
            searcher = Searcher(store, shortlist=shortlist or DEFAULT_SHORTLIST, tenprint_subjects=size,
                                fmr=DECISION_FMR)
            if warm:
                searcher.warm()
            first = next((p for p in probes if p), None)
            if first is not None:  # JIT compilation of the comparator, outside the timings
                searcher.identify(first[:1], top=1)
            echo(f"searching {len(cards)} ten-print probes with {workers} worker(s), {size} subjects re-ranked a card")
            results, wall = search_batch(searcher, probes, top, workers)
            variants.append((size, _report(results, cards, mated, probes, wall, workers)))
        report = variants[0][1]
        report["tenprint_subjects"] = sizes[0]
        if exhaustive:
            whole = Searcher(store, tenprint_subjects=store.subject_count(), fmr=DECISION_FMR)
            echo(f"re-ranking all {store.subject_count()} subjects for the {len(mated)} mated cards")
            res, wall = search_batch(whole, probes[:len(mated)], top, workers)
            ex = _report(res, cards[:len(mated)], mated, probes[:len(mated)], wall, workers)
            report["rank1_exhaustive"], report["search_ms_p50_exhaustive"] = ex["rank1"], ex["search_ms_p50"]
        report.update({
            "dataset": str(dataset), "protocol": "ten-print", "distractors": distractors,
            "distractor_store": distractor_store, "seed": seed, "uncertain_flat_positions": uncertain,
            "gallery_subjects": store.subject_count(), "gallery_fingers": store.count("finger"),
            "distractor_subjects": n_distr, "gallery_failed": rep.failed, "ingest_per_s": rep.per_second,
            "shortlist": searcher.shortlist, "warm": warm,
            "expected_fpir_at_decision": expected_fpir(DECISION_FMR, store.subject_count()),
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "max_rss_mb_worker": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024 if workers > 1 else None,
        })
        for rep in [report] + [r for _, r in variants[1:]]:
            mate, top_nm = rep.pop("_mate"), rep.pop("_top")
            for f in FPIRS:
                rep[f"fnir_at_fpir_{f:g}"], rep[f"threshold_at_fpir_{f:g}"] = fnir_at_fpir(mate, top_nm, f)
        if len(variants) > 1:
            report["variants"] = [_variant(size, rep) for size, rep in variants[1:]]
    finally:
        store.close()
        if tmp is not None:
            tmp.cleanup()
    if json_path:
        Path(json_path).write_text(json.dumps(report, indent=1))
    return report


def _variant(size: int, rep: dict) -> dict:
    """The accuracy and speed of one more preselection size, for the report's ``variants``."""
    keys = ("rank1", "rank10", "tpir_at_decision", "fpir_at_decision", "search_ms_p50", "search_ms_p95",
            "searches_per_s", *(f"fnir_at_fpir_{f:g}" for f in FPIRS))
    return {"tenprint_subjects": size, **{k: rep[k] for k in keys}}


def _report(results: list, cards: list[list[SourceItem]], mated: list, probes: list[list[Probe]], wall: float,
            workers: int) -> dict:
    """Subject-level accuracy and speed from the batch's results (mated cards first)."""
    ranks, mate, top_nm, hits_nm, hits_m, times, misses = [], [], [], [], [], [], []
    for (i, cands, ms), card, prb in zip(results, cards, probes):
        truth = card[0].identity
        names = [c[0] for c in cands]
        if np.isfinite(ms):
            times.append(ms)
        if i < len(mated):
            rank = names.index(truth) + 1 if truth in names else np.inf
            ranks.append(rank)
            mate.append(cands[rank - 1][1] if np.isfinite(rank) else -np.inf)
            hits_m.append(bool(np.isfinite(rank) and cands[rank - 1][2]))
            if rank > 1:
                misses.append({"card": f"{truth}/{card[0].metadata['card']}", "fingers": len(prb),
                               "rank": None if not np.isfinite(rank) else int(rank),
                               "rank1_subject": names[0] if names else None})
        else:
            top_nm.append(cands[0][1] if cands else -np.inf)
            hits_nm.append(bool(cands) and cands[0][2])
    ranks = np.array(ranks, float)
    n = len(results)
    return {
        "mated_probes": len(mated), "nonmated_probes": n - len(mated),
        "probe_fingers_mean": float(np.mean([len({p.finger_position for p in prb}) for prb in probes])) if n else None,
        "probe_cards_failed": int(sum(not p for p in probes)),
        "rank1": float(np.mean(ranks <= 1)) if len(ranks) else None,
        "rank10": float(np.mean(ranks <= 10)) if len(ranks) else None,
        "decision_fmr": DECISION_FMR,
        "tpir_at_decision": float(np.mean(hits_m)) if hits_m else None,
        "fpir_at_decision": float(np.mean(hits_nm)) if hits_nm else None,
        "fpir_resolution": 1.0 / max(len(top_nm), 1),
        "search_ms_p50": float(np.percentile(times, 50)) if times else None,
        "search_ms_p95": float(np.percentile(times, 95)) if times else None,
        "searches_per_s": n / wall if wall > 0 else None, "batch_s": wall, "workers": workers,
        "search_timing": f"Searcher.identify of one ten-print card (extraction excluded), measured inside a "
                         f"batch of {n} searches run by {workers} process(es) at once",
        "mated_misses": misses, "_mate": np.array(mate, float), "_top": np.array(top_nm, float),
    }
