"""Score a minutia extractor against the generator's ground truth, or against another extractor.

Pairing is one-to-one and greedy by distance: each reference minutia, nearest first,
takes the closest unused extracted minutia within ``tolerance`` pixels.  Recall is
the share of reference minutiae paired, precision the share of extracted ones.

Direction convention: the ground truth points *into* the ridge for an ending and
between the branches for a bifurcation (see :mod:`benchmarks.synth`), as
``matcher.fingerprint`` does (the ANSI/NIST and ISO convention).  Peers' directions
are converted as in :mod:`benchmarks.peers.minutiae_sources`.  Besides the direction
error (0-180 degrees) the orientation error (modulo a half turn, 0-90 degrees) is
reported: an extractor that points endings the other way round is wrong by 180
degrees in direction and right in orientation, which locard's comparator tolerates.

Conditions of a generated impression are read off what the generator records in its
ground truth (:func:`conditions`); one impression may fall under several.

Run ``locard synth score SET [--extractor NAME ...]`` (or
``python -m benchmarks.synth.extractor_score``).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from .groundtruth import Minutiae, read_groundtruth

#: Pressure (-1 very dry .. +1 very wet, see :class:`.impression.Press`) at or below which an
#: impression is "dry", and at or above which it is "wet" (each about one impression in five).
DRY_PRESSURE, WET_PRESSURE = -0.5, 0.5
#: Skin drag (pixels) or twist (degrees) from which an impression is "distorted" (about one in four).
DISTORTED_DRAG_PX, DISTORTED_TWIST_DEG = 15.0, 5.0
#: Rotation (degrees) from which an impression is "rotated" (the generator's 15-35 degree presses).
ROTATED_DEG = 15.0
#: Share of the master's minutiae visible in the impression below which it is "partial".
PARTIAL_SHARE = 0.6
#: Condition names in report order; "clean" is an impression under none of the others.
CONDITIONS = ("all", "clean", "dry", "wet", "distorted", "rotated", "partial")


@dataclass(frozen=True)
class MinutiaScore:
    """Counts and errors of one comparison (or a sum of several)."""

    truth: int
    found: int
    paired: int
    same_type: int
    direction_errors: tuple[float, ...]  # radians, one per pair

    @property
    def recall(self) -> float:
        return self.paired / self.truth if self.truth else float("nan")

    @property
    def precision(self) -> float:
        return self.paired / self.found if self.found else float("nan")

    def __add__(self, other: "MinutiaScore") -> "MinutiaScore":
        return MinutiaScore(self.truth + other.truth, self.found + other.found,
                            self.paired + other.paired, self.same_type + other.same_type,
                            self.direction_errors + other.direction_errors)

    def summary(self) -> dict:
        """JSON-ready figures: recall, precision, type agreement, direction and orientation
        error (degrees)."""
        err = np.degrees(np.array(self.direction_errors)) if self.direction_errors else np.array([np.nan])
        orient = np.minimum(err, 180.0 - err)
        return {"truth": self.truth, "found": self.found, "paired": self.paired,
                "recall": round(self.recall, 4), "precision": round(self.precision, 4),
                "type_agreement": round(self.same_type / self.paired, 4) if self.paired else None,
                "direction_error_median_deg": round(float(np.median(err)), 1),
                "direction_error_within_30deg": round(float(np.mean(err <= 30)), 4),
                "orientation_error_median_deg": round(float(np.median(orient)), 1)}


EMPTY = MinutiaScore(0, 0, 0, 0, ())


def pair_minutiae(truth: Minutiae, found: Minutiae, tolerance: float = 10.0) -> list[tuple[int, int]]:
    """One-to-one pairs ``(truth index, found index)``, greedy by distance (module docstring)."""
    if len(truth) == 0 or len(found) == 0:
        return []
    d = np.hypot(truth.x[:, None] - found.x[None, :], truth.y[:, None] - found.y[None, :])
    used = np.zeros(len(found), bool)
    pairs = []
    for i in np.argsort(d.min(axis=1), kind="stable"):
        row = np.where(used, np.inf, d[i])
        j = int(np.argmin(row))
        if row[j] > tolerance:
            continue
        used[j] = True
        pairs.append((int(i), j))
    return pairs


def score_minutiae(truth: Minutiae, found: Minutiae, tolerance: float = 10.0) -> MinutiaScore:
    """Pair ``found`` with ``truth`` (pixels, same image) and count agreement.

    Parameters
    ----------
    truth, found : Minutiae
        Positions in pixels, directions in radians (same convention).
    tolerance : float
        Largest distance of a pair, pixels (10 px is about one ridge period at 500 ppi).
    """
    pairs = pair_minutiae(truth, found, tolerance)
    same = sum(int(truth.kind[i] == found.kind[j]) for i, j in pairs)
    errors = tuple(float(abs(np.angle(np.exp(1j * (truth.direction[i] - found.direction[j]))))) for i, j in pairs)
    return MinutiaScore(len(truth), len(found), len(pairs), same, errors)


def conditions(doc: dict) -> list[str]:
    """Conditions of one generated impression, from its ground-truth document.

    Parameters
    ----------
    doc : dict
        A ground-truth JSON document (``pressure``, ``transform`` with ``rotation`` and
        ``twist`` in radians and ``drag`` in pixels, ``minutiae``, ``master_minutiae``).

    Returns
    -------
    list of str
        ``"all"``, then ``"clean"`` or any of dry, wet, distorted, rotated, partial.
    """
    t = doc.get("transform", {})
    out = []
    pressure = float(doc.get("pressure", 0.0))
    if pressure <= DRY_PRESSURE:
        out.append("dry")
    if pressure >= WET_PRESSURE:
        out.append("wet")
    drag = float(np.hypot(*t.get("drag", (0.0, 0.0))))
    if drag >= DISTORTED_DRAG_PX or abs(np.degrees(float(t.get("twist", 0.0)))) >= DISTORTED_TWIST_DEG:
        out.append("distorted")
    if abs(np.degrees(float(t.get("rotation", 0.0)))) >= ROTATED_DEG:
        out.append("rotated")
    master = int(doc.get("master_minutiae", 0))
    if master and len(doc.get("minutiae", ())) / master < PARTIAL_SHARE:
        out.append("partial")
    return ["all"] + (out or ["clean"])


def minutiae_of(source: Any, data: bytes, ppi: float, cache: Any = None) -> Minutiae:
    """A source's minutiae of one image (:mod:`benchmarks.peers.minutiae_sources`), in the
    ground truth's convention; an image the source cannot enrol gives none."""
    from benchmarks.peers.minutiae_sources import CONVERSIONS, DIRECTIONS, cached_raw
    from matcher.errors import FailureToEnrol

    try:
        raw = cached_raw(source, data, ppi, cache)
    except FailureToEnrol:
        return Minutiae(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0, np.int8))
    direction = np.mod(CONVERSIONS[DIRECTIONS.get(source.name, "as-is")](raw.angle), 2 * np.pi)
    # RawMinutiae and the ground truth share the kind codes: 0 ending, 1 bifurcation
    return Minutiae(np.asarray(raw.x, float), np.asarray(raw.y, float), direction,
                    np.asarray(raw.kind, np.int8))


def score_by_condition(root: str | Path, source: Any, limit: int | None = None, tolerance: float = 10.0,
                       cache: Any = None, progress: Callable[[int, int], None] | None = None,
                       ) -> dict[str, MinutiaScore]:
    """Score a source against the ground truth of a generated set, per condition.

    Parameters
    ----------
    root : folder written by ``locard synth fingerprints``
    source : a :class:`benchmarks.peers.minutiae_sources.MinutiaeSource`
    limit : first N images only (sorted by file name)
    cache : BenchCache for the source's raw minutiae (None: extract every time)

    Returns
    -------
    dict condition -> summed score, conditions in :data:`CONDITIONS` order, empty ones left out
    """
    root = Path(root)
    files = sorted((root / "groundtruth").glob("*.json"))[:limit]
    totals = {c: EMPTY for c in CONDITIONS}
    for k, f in enumerate(files):
        doc, truth = read_groundtruth(f)
        found = minutiae_of(source, (root / doc["file"]).read_bytes(), float(doc.get("ppi", 500)), cache)
        s = score_minutiae(truth, found, tolerance)
        for c in conditions(doc):
            totals[c] = totals[c] + s
        if progress:
            progress(k + 1, len(files))
    return {c: v for c, v in totals.items() if v.truth or v.found}


def score_against(dataset: str | Path, source: Any, reference: Any, limit: int | None = None,
                  tolerance: float = 10.0, cache: Any = None,
                  progress: Callable[[int, int], None] | None = None) -> MinutiaScore:
    """Score a source against another extractor's minutiae on a labelled set of real prints.

    Both sources work at 500 ppi (images at another ``ppi`` of ``labels.csv`` are resampled
    by each), so positions compare directly.
    """
    from benchmarks.datasets import load_dataset

    ds = load_dataset(dataset)
    samples = ds.samples[:limit]
    total = EMPTY
    for k, s in enumerate(samples):
        data, ppi = s.path.read_bytes(), float(s.ppi or 500)
        total = total + score_minutiae(minutiae_of(reference, data, ppi, cache),
                                       minutiae_of(source, data, ppi, cache), tolerance)
        if progress:
            progress(k + 1, len(samples))
    return total


def score_set(root: str | Path, limit: int | None = None, tolerance: float = 10.0,
              mode: str = "accurate") -> MinutiaScore:
    """Score ``matcher.fingerprint`` (``mode``) on the first ``limit`` images of a generated set."""
    from benchmarks.peers.minutiae_sources import make_source

    return score_by_condition(root, make_source(f"locard-{mode}"), limit, tolerance)["all"]


def markdown_table(rows: Iterable[tuple[str, str, dict]]) -> str:
    """``(extractor, condition, summary)`` rows as a Markdown table (rates in %)."""
    lines = ["| extractor | condition | truth | found | recall % | precision % | direction error median deg "
             "| within 30 deg % | orientation error median deg |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, cond, s in rows:
        lines.append(f"| {name} | {cond} | {s['truth']} | {s['found']} | {100 * s['recall']:.1f} | "
                     f"{100 * s['precision']:.1f} | {s['direction_error_median_deg']:.1f} | "
                     f"{100 * s['direction_error_within_30deg']:.1f} | {s['orientation_error_median_deg']:.1f} |")
    return "\n".join(lines) + "\n"


def run(dataset: str | Path, extractors: list[str], reference: str | None = None, limit: int | None = None,
        tolerance: float = 10.0, cache_dir: str | None = None, echo: Callable[[str], None] = print,
        ) -> dict[str, Any]:
    """What ``locard synth score`` does: per extractor, per condition (ground truth) or against
    ``reference``; prints a Markdown table and returns the JSON report.

    Raises
    ------
    FileNotFoundError
        ``dataset`` has no ``groundtruth/`` folder and no ``reference`` was given.
    """
    from benchmarks.fingerprint_bench import BenchCache, default_cache_dir
    from benchmarks.peers import PeerUnavailable
    from benchmarks.peers.minutiae_sources import make_source

    root = Path(dataset)
    if reference is None and not (root / "groundtruth").is_dir():
        raise FileNotFoundError(f"{root} has no groundtruth/ folder: give --reference EXTRACTOR for real prints")
    cache = BenchCache(cache_dir or default_cache_dir())
    report: dict[str, Any] = {"dataset": str(root), "tolerance_px": tolerance,
                              "reference": reference or "ground truth", "extractors": {}, "skipped": {}}
    rows = []
    ref = make_source(reference) if reference else None
    for name in extractors:
        try:
            src = make_source(name)
        except PeerUnavailable as exc:
            report["skipped"][name] = str(exc)
            echo(f"{name} skipped: {exc}")
            continue
        if ref is None:
            per = {c: s.summary() for c, s in score_by_condition(root, src, limit, tolerance, cache).items()}
        else:
            per = {"all": score_against(root, src, ref, limit, tolerance, cache).summary()}
        report["extractors"][name] = per
        rows += [(name, c, s) for c, s in per.items()]
    report["markdown"] = markdown_table(rows)
    echo(report["markdown"])
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("set", help="folder written by 'locard synth fingerprints' (or real prints with --reference)")
    parser.add_argument("--extractor", action="append", default=None,
                        help="minutiae source (repeatable; default locard-fast)")
    parser.add_argument("--reference", default=None, help="score against this source instead of the ground truth")
    parser.add_argument("--limit", type=int, default=None, help="first N images only")
    parser.add_argument("--tolerance", type=float, default=10.0, help="pairing distance, pixels")
    args = parser.parse_args(argv)
    report = run(args.set, args.extractor or ["locard-fast"], args.reference, args.limit, args.tolerance)
    print(json.dumps(report["extractors"]))


if __name__ == "__main__":
    main()
