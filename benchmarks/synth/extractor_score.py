"""Score a minutia extractor against the ground truth of a generated set.

Pairing is one-to-one and greedy by distance: each ground-truth minutia, nearest
first, takes the closest unused extracted minutia within ``tolerance`` pixels.

Direction convention: the ground truth points *into* the ridge for an ending and
between the branches for a bifurcation (see :mod:`benchmarks.synth`), as
``matcher.fingerprint`` does (the ANSI/NIST and ISO convention).

Run ``python -m benchmarks.synth.extractor_score SET [--limit N]``.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .groundtruth import BIFURCATION, ENDING, Minutiae, read_groundtruth


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
        """JSON-ready figures: recall, precision, type agreement, direction error (degrees)."""
        err = np.degrees(np.array(self.direction_errors)) if self.direction_errors else np.array([np.nan])
        return {"truth": self.truth, "found": self.found, "paired": self.paired,
                "recall": round(self.recall, 4), "precision": round(self.precision, 4),
                "type_agreement": round(self.same_type / self.paired, 4) if self.paired else None,
                "direction_error_median_deg": round(float(np.median(err)), 1),
                "direction_error_within_30deg": round(float(np.mean(err <= 30)), 4)}


def score_minutiae(truth: Minutiae, found: Minutiae, tolerance: float = 10.0) -> MinutiaScore:
    """Pair ``found`` with ``truth`` (pixels, same image) and count agreement.

    Parameters
    ----------
    truth, found : Minutiae
        Positions in pixels, directions in radians (same convention).
    tolerance : float
        Largest distance of a pair, pixels (10 px is about one ridge period at 500 ppi).
    """
    if len(truth) == 0 or len(found) == 0:
        return MinutiaScore(len(truth), len(found), 0, 0, ())
    d = np.hypot(truth.x[:, None] - found.x[None, :], truth.y[:, None] - found.y[None, :])
    used = np.zeros(len(found), bool)
    paired = same = 0
    errors = []
    for i in np.argsort(d.min(axis=1), kind="stable"):
        row = np.where(used, np.inf, d[i])
        j = int(np.argmin(row))
        if row[j] > tolerance:
            continue
        used[j] = True
        paired += 1
        same += int(truth.kind[i] == found.kind[j])
        errors.append(float(abs(np.angle(np.exp(1j * (truth.direction[i] - found.direction[j]))))))
    return MinutiaScore(len(truth), len(found), paired, same, tuple(errors))


def locard_minutiae(image_bytes: bytes) -> Minutiae:
    """Minutiae of ``matcher.fingerprint``."""
    from matcher import fingerprint as fp

    m = fp.extract(image_bytes, ppi=500).minutiae
    kind = np.where(m["type"] == int(fp.MinutiaType.BIFURCATION), BIFURCATION, ENDING).astype(np.int8)
    direction = m["direction"].astype(np.float64)
    return Minutiae(m["x"].astype(np.float64), m["y"].astype(np.float64), direction, kind)


def score_set(root: str | Path, limit: int | None = None, tolerance: float = 10.0) -> MinutiaScore:
    """Score ``matcher.fingerprint`` on the first ``limit`` images of a generated set."""
    root = Path(root)
    files = sorted((root / "groundtruth").glob("*.json"))[:limit]
    total = MinutiaScore(0, 0, 0, 0, ())
    for f in files:
        doc, truth = read_groundtruth(f)
        total = total + score_minutiae(truth, locard_minutiae((root / doc["file"]).read_bytes()),
                                       tolerance)
    return total


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("set", help="folder written by 'locard synth fingerprints'")
    parser.add_argument("--limit", type=int, default=None, help="first N images only")
    parser.add_argument("--tolerance", type=float, default=10.0, help="pairing distance, pixels")
    args = parser.parse_args(argv)
    score = score_set(args.set, args.limit, args.tolerance)
    print(json.dumps(score.summary()))


if __name__ == "__main__":
    main()
