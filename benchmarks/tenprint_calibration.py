"""Measure the fused ten-print calibration: decision thresholds per number of fused fingers.

A ten-print search sums one term per probe finger (:meth:`indexer.search.Searcher.subject_terms`);
the sum of an impostor's terms is not the Gamma of independent uniform FMRs that
:func:`indexer.fusion.fused_threshold` assumes.  This measures it instead, through the
search's own scoring step:

- ``subjects`` template-level ten-print subjects of one seed (one card each: a rolled
  and a flat impression of every finger, as ``locard synth tenprints --template-level``)
  go into a temporary store;
- every subject's card is a probe (every impression with its finger position) searched
  against all the others (itself excluded), with a shortlist as large as the gallery, so
  every impostor subject the stage-1 votes reach gets its terms: the term of probe
  ``p``, gallery subject ``g``, position ``f`` is kept (0 when absent);
- for ``k`` = 1..10, each probe card gives up to ``subsets`` random sets of ``k`` of its
  positions; the impostor sums are those sets' terms summed, against every other
  subject; their upper quantiles are the thresholds (:class:`matcher.calibration.Calibration`
  per ``k``, the FMR floor is 1 / number of sums).

Re-ranking the whole gallery instead of a shortlist makes the measured thresholds an
upper bound for shortlisted searches: a term of a subject whose samples were not all
shortlisted is the best of fewer comparisons (lower), but it loses less (``log10 n`` of
fewer ``n``); the second effect is what :func:`shortlist_effect` measures.

    locard bench calibrate-tenprint                 # writes indexer/tenprint_calibration.json
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

#: Defaults of the shipped measurement (a seed used for nothing else).
DEFAULT_SUBJECTS = 300
DEFAULT_SEED = 91
DEFAULT_SUBSETS = 12
#: Impostor (probe card, subject) pairs a table must have above its smallest FMR: the random
#: sets of positions of one pair share terms, so the sums are not that many independent draws;
#: below ``MIN_PAIRS_ABOVE / pairs`` a table says nothing and the threshold falls back to the bound.
MIN_PAIRS_ABOVE = 5
#: Shortlist meaning "the whole gallery" (every sample a stage-1 vote reaches is re-ranked).
WHOLE_GALLERY = 10 ** 9
#: The re-ranking cache may hold every gallery template of a measurement (scores do not depend on it).
CACHE_BYTES_PER_FINGER = 64 * 1024


def command(subjects: int, seed: int, subsets: int) -> str:
    """The command line that reproduces a measurement."""
    return f"locard bench calibrate-tenprint --subjects {subjects} --seed {seed} --subsets {subsets}"


@dataclass
class TermMatrix:
    """Terms of every probe card against every gallery subject.

    Attributes
    ----------
    values : (P, G, 10) float array
        ``-log10 FMR`` term (less ``log10 n``, floored at 0) of probe ``p`` against
        gallery subject ``g`` at finger position ``f + 1``; 0 where the term did not reach
        the subject; NaN on a probe's own subject.
    present : (P, 10) bool array
        Positions the probe card has (its fusion terms).
    comparisons : (P, G, 10) int array
        Comparisons behind each term (0 where absent).
    names : list of str
        Subject names, probes and gallery in the same order.
    """

    values: np.ndarray
    present: np.ndarray
    comparisons: np.ndarray
    names: list[str]


def generate(store_path: str | Path, subjects: int, seed: int, echo=print) -> dict:
    """Template-level ten-print subjects (one card, rolled and flat) in a store, on one core."""
    from .synth.template_level import write_store

    return write_store(store_path, subjects, seed=seed, cards=1, flat=True, workers=1, echo=echo)


def measure_terms(store, *, shortlist: int = WHOLE_GALLERY, uncertain_flat: bool = False,
                  progress=None) -> TermMatrix:
    """Search every subject's card of ``store`` against all other subjects; their terms.

    ``uncertain_flat`` flags every flat probe impression's position as uncertain (its
    neighbouring positions are searched too, as for a finger cut out of a slap).
    """
    from indexer.search import Probe, Searcher
    from matcher.fingerprint import Template

    # per-finger shortlists (no subject preselection): with the whole gallery, every subject is compared
    searcher = Searcher(store, shortlist=shortlist, tenprint_subjects=0, cache_bytes_per_finger=CACHE_BYTES_PER_FINGER)
    cards: dict[str, list] = {}
    for s in store.samples("finger"):
        flat = s.metadata.get("impression_kind") == "flat"
        cards.setdefault(s.subject, []).append(
            Probe("finger", Template.from_bytes(s.template), s.finger_position, f"{s.subject}/{s.id}",
                  position_uncertain=uncertain_flat and flat))
    names = sorted(cards)
    index = {n: i for i, n in enumerate(names)}
    n = len(names)
    values = np.zeros((n, n, 10))
    comparisons = np.zeros((n, n, 10), np.int32)
    present = np.zeros((n, 10), bool)
    for p, name in enumerate(names):
        probes = cards[name]
        for pr in probes:
            present[p, pr.finger_position - 1] = True
        scored = searcher.subject_terms(probes, exclude={name})
        for subj, per in scored.terms.items():
            g = index[scored.names[subj]]
            for term, ts in per.items():
                values[p, g, term[1] - 1] = ts.log_fmr
                comparisons[p, g, term[1] - 1] = ts.comparisons
        values[p, p] = np.nan
        if progress:
            progress(p + 1, n)
    return TermMatrix(values, present, comparisons, names)


def position_subsets(present: np.ndarray, k: int, subsets: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """Up to ``subsets`` distinct random sets of ``k`` of a card's ``present`` positions (all when fewer exist)."""
    have = np.flatnonzero(present)
    if len(have) < k:
        return []
    if math.comb(len(have), k) <= subsets:
        from itertools import combinations

        return [tuple(c) for c in combinations(have.tolist(), k)]
    out: set[tuple[int, ...]] = set()
    while len(out) < subsets:
        out.add(tuple(sorted(rng.choice(have, k, replace=False).tolist())))
    return sorted(out)


def fused_impostor_sums(m: TermMatrix, k: int, subsets: int, seed: int = 0,
                        values: np.ndarray | None = None) -> np.ndarray:
    """Impostor sums of ``k`` terms: per probe card, up to ``subsets`` sets of ``k`` of its
    positions, each summed against every other subject (``values``: another term array of
    the same shape, e.g. with subjects shuffled per position)."""
    v = m.values if values is None else values
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(k,)))
    out = []
    for p in range(len(m.names)):
        others = np.delete(v[p], p, axis=0)
        for sub in position_subsets(m.present[p], k, subsets, rng):
            out.append(others[:, list(sub)].sum(axis=1))
    return np.concatenate(out) if out else np.zeros(0)


def shuffled_subjects(m: TermMatrix, seed: int = 0) -> np.ndarray:
    """Term values with each position's gallery subjects dealt out at random (per probe): the
    same terms, but a subject's fingers no longer come from one person."""
    rng = np.random.default_rng(seed)
    v = m.values.copy()
    n = len(m.names)
    for p in range(n):
        others = np.delete(np.arange(n), p)
        for f in range(10):
            v[p, others, f] = v[p, rng.permutation(others), f]
    return v


def measure(subjects: int = DEFAULT_SUBJECTS, seed: int = DEFAULT_SEED, subsets: int = DEFAULT_SUBSETS,
            work: str | Path | None = None, echo=print):
    """Generate, search and tabulate; returns ``(FusedCalibration, report dict, TermMatrix)``.

    ``work``: a folder to keep the store in (resumable); a temporary one by default.
    """
    from indexer.store import GalleryStore

    t0 = time.process_time()
    with tempfile.TemporaryDirectory(prefix="locard-tenprint-cal-") as tmp:
        store_path = Path(work or tmp) / f"tl_s{seed}_n{subjects}"
        echo(f"generating {subjects} template-level ten-print subjects of seed {seed} in {store_path}")
        generate(store_path, subjects, seed, echo=lambda *a: None)
        t_gen = time.process_time() - t0
        echo(f"  {t_gen:.0f} CPU s; searching every card against the other subjects")
        with GalleryStore(store_path) as store:
            m = measure_terms(store, progress=lambda i, n: echo(f"  {i}/{n} cards") if i % 40 == 0 or i == n else None)
    t_search = time.process_time() - t0 - t_gen
    echo(f"  {t_search:.0f} CPU s")
    cal, report = tabulate(m, subjects, seed, subsets)
    return cal, report, m


def tabulate(m: TermMatrix, subjects: int, seed: int, subsets: int):
    """The fused calibration (and the Gamma thresholds' observed FMRs) from measured terms."""
    from indexer.fusion import FusedCalibration, fused_threshold
    from matcher.calibration import Calibration
    from matcher.fingerprint.calibration import calibration_version

    version = calibration_version("accurate")
    tables, report = {}, {}
    n = len(m.names)
    for k in range(1, 11):
        sums = fused_impostor_sums(m, k, subsets, seed)
        pairs = int(np.sum(m.present.sum(axis=1) >= k)) * (n - 1)
        if len(sums) < 100:
            continue
        full = Calibration.from_impostor_scores(
            sums, matcher="locard-tenprint-fusion", version=version,
            source=f"{len(sums)} impostor sums of {k} finger terms from {pairs} (probe card, subject) pairs; "
                   f"FMRs below {MIN_PAIRS_ABOVE} pairs' worth left out")
        keep = np.asarray(full.fmr_grid) >= MIN_PAIRS_ABOVE / pairs * (1 - 1e-9)
        tables[k] = replace(full, fmr_grid=list(np.asarray(full.fmr_grid)[keep].tolist()),
                            thresholds=list(np.asarray(full.thresholds)[keep].tolist()))
        report[k] = {"sums": int(len(sums)),
                     **{f"fmr_at_gamma_{f:g}": float(np.mean(sums >= fused_threshold(f, k))) for f in (1e-2, 1e-3, 1e-4)}}
    cmd = command(subjects, seed, subsets)
    source = (f"{subjects} template-level ten-print subjects of seed {seed} (one card: rolled + flat of every "
              f"finger), every card searched against the {subjects - 1} others with the whole gallery re-ranked, "
              f"up to {subsets} random sets of k positions per card")
    return FusedCalibration(version, tables, cmd, source), report


def save(cal, report: dict, path: str | Path) -> None:
    """Write the fused calibration with the Gamma thresholds' observed FMRs beside it (for readers)."""
    Path(path).write_text(cal.to_json({"fmr_at_gamma_threshold": {str(k): v for k, v in report.items()}}) + "\n")


def default_output() -> Path:
    """Where the shipped fused calibration lives in this checkout."""
    from indexer.fusion import FUSED_CALIBRATION_FILE

    return Path(__file__).resolve().parent.parent / "indexer" / FUSED_CALIBRATION_FILE


# -- checking a calibration on other subjects ----------------------------------------------------------
#: FMRs the check reports.
CHECK_FMRS = (1e-2, 1e-3, 1e-4)


def rates(sums: np.ndarray, thresholds: dict[float, float | None]) -> dict[str, dict]:
    """Impostor sums at or above each FMR's threshold: ``{fmr: {threshold, passed, observed_fmr}}``."""
    out = {}
    for f, t in thresholds.items():
        passed = None if t is None else int(np.sum(sums >= t))
        out[f"{f:g}"] = {"threshold": t, "passed": passed,
                         "observed_fmr": None if passed is None else passed / max(len(sums), 1)}
    return out


def check(m: TermMatrix, cal, subsets: int = DEFAULT_SUBSETS, seed: int = 0) -> dict:
    """Observed FMR of impostor sums at the Gamma thresholds and at ``cal``'s, per number of terms;
    also with each position's subjects shuffled (no person behind a sum: what is left is the
    terms' own calibration and best-of-n, not the correlation between a person's fingers)."""
    from indexer.fusion import fused_threshold

    shuffled = shuffled_subjects(m, seed)
    out = {}
    for k in range(1, 11):
        sums = fused_impostor_sums(m, k, subsets, seed)
        if len(sums) == 0:
            continue
        free = fused_impostor_sums(m, k, subsets, seed, values=shuffled)
        gamma = {f: fused_threshold(f, k) for f in CHECK_FMRS}
        out[str(k)] = {
            "sums": int(len(sums)), "mean": float(sums.mean()),
            "gamma": rates(sums, gamma), "gamma_subjects_shuffled": rates(free, gamma),
            "measured": rates(sums, {f: cal.threshold(f, k) for f in CHECK_FMRS}),
        }
    return out


def run_check(subjects: int, seed: int, *, shortlist: int = WHOLE_GALLERY, uncertain_flat: bool = False,
              subsets: int = DEFAULT_SUBSETS, work: str | Path | None = None, echo=print) -> dict:
    """Generate ``subjects`` of ``seed`` (not the calibration's), search, and :func:`check` the shipped calibration."""
    from indexer.fusion import load_fused_calibration
    from indexer.store import GalleryStore

    cal = load_fused_calibration()
    t0 = time.process_time()
    with tempfile.TemporaryDirectory(prefix="locard-tenprint-check-") as tmp:
        store_path = Path(work or tmp) / f"tl_s{seed}_n{subjects}"
        generate(store_path, subjects, seed, echo=lambda *a: None)
        with GalleryStore(store_path) as store:
            m = measure_terms(store, shortlist=shortlist, uncertain_flat=uncertain_flat,
                              progress=lambda i, n: echo(f"  {i}/{n} cards") if i % 40 == 0 or i == n else None)
    return {"subjects": subjects, "seed": seed, "shortlist": None if shortlist >= WHOLE_GALLERY else shortlist,
            "uncertain_flat": uncertain_flat, "subsets": subsets, "calibration": cal.command,
            "mean_comparisons_per_term": float(m.comparisons[m.comparisons > 0].mean()),
            "cpu_s": time.process_time() - t0, "terms": check(m, cal, subsets, seed)}
