"""Verification and identification error rates, as FVC and NIST report them.

Scores are similarities (higher = more alike).  FMR(t) is the share of impostor
scores ``>= t``; FNMR(t) the share of genuine scores ``< t``.  All rates are
fractions 0-1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ErrorCurve:
    """FMR and FNMR at every distinct score threshold (increasing)."""

    thresholds: np.ndarray
    fmr: np.ndarray
    fnmr: np.ndarray


def error_curve(genuine: np.ndarray, impostor: np.ndarray) -> ErrorCurve:
    """FMR/FNMR at each distinct score, plus a threshold above all scores."""
    g = np.sort(np.asarray(genuine, dtype=np.float64))
    i = np.sort(np.asarray(impostor, dtype=np.float64))
    t = np.unique(np.concatenate([g, i]))
    t = np.concatenate([t, [np.nextafter(t[-1], np.inf) if len(t) else 0.0]])
    fmr = 1.0 - np.searchsorted(i, t, side="left") / max(len(i), 1)
    fnmr = np.searchsorted(g, t, side="left") / max(len(g), 1)
    return ErrorCurve(t, fmr, fnmr)


def eer(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """Equal error rate, FVC style: where FMR and FNMR cross (mean of the bracket)."""
    c = error_curve(genuine, impostor)
    d = c.fmr - c.fnmr  # decreasing from >= 0 to <= 0
    k = int(np.searchsorted(-d, 0.0, side="left"))  # first index with d <= 0
    if k < len(d) and d[k] == 0:
        return float(c.fmr[k])
    lo = max(k - 1, 0)
    hi = min(k, len(d) - 1)
    # FVC2000: EER in [EERlow, EERhigh]; report the midpoint.
    low = max(min(c.fmr[lo], c.fnmr[lo]), min(c.fmr[hi], c.fnmr[hi]))
    high = min(max(c.fmr[lo], c.fnmr[lo]), max(c.fmr[hi], c.fnmr[hi]))
    return float((low + high) / 2)


def fnmr_at_fmr(genuine: np.ndarray, impostor: np.ndarray, target: float) -> float:
    """Lowest FNMR over thresholds whose FMR <= ``target`` (FMR100: target 0.01)."""
    c = error_curve(genuine, impostor)
    ok = c.fmr <= target + 1e-12
    return float(c.fnmr[ok].min())


def tar_at_fmr(genuine: np.ndarray, impostor: np.ndarray, target: float) -> float:
    """True accept rate ``1 - FNMR`` at FMR <= ``target``."""
    return 1.0 - fnmr_at_fmr(genuine, impostor, target)


def verification_report(genuine: np.ndarray, impostor: np.ndarray) -> dict[str, float]:
    """The FVC figures: EER, FMR100, FMR1000, ZeroFMR."""
    return {
        "eer": eer(genuine, impostor),
        "fmr100": fnmr_at_fmr(genuine, impostor, 0.01),
        "fmr1000": fnmr_at_fmr(genuine, impostor, 0.001),
        "zero_fmr": fnmr_at_fmr(genuine, impostor, 0.0),
    }


def cmc(scores: np.ndarray, gallery_labels: np.ndarray, probe_labels: np.ndarray,
        max_rank: int = 20) -> np.ndarray:
    """Cumulative match characteristic for closed-set identification.

    Parameters
    ----------
    scores : (n_probes, n_gallery) float array
        Similarity of every probe to every gallery entry.
    gallery_labels, probe_labels : int arrays

    Returns
    -------
    (max_rank,) array: share of probes whose mate is within rank 1..max_rank.
    Ties are broken against the mate (a pessimistic rank).
    """
    scores = np.asarray(scores, dtype=np.float64)
    mate = gallery_labels[None, :] == probe_labels[:, None]
    mate_score = np.where(mate, scores, -np.inf).max(axis=1)
    rank = (np.where(~mate, scores, -np.inf) >= mate_score[:, None]).sum(axis=1) + 1
    rank[~mate.any(axis=1)] = np.iinfo(np.int64).max
    return np.array([(rank <= r).mean() for r in range(1, max_rank + 1)])
