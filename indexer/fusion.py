"""Scores on a common scale, fusion per subject, decision threshold and expected FPIR.

Raw scores of different matchers mean different things (a fingerprint score in
[0, 1], a face cosine in [-1, 1]).  Each matcher's calibration (its measured
impostor score distribution, :class:`matcher.calibration.Calibration`) maps a score
to the false match rate it would have; fusion adds ``-log10 FMR`` over the probe's
samples (independent evidence multiplies FMRs).  A matcher without a calibration
falls back to its raw score, and the result says so (``calibrated=False``).
"""

from __future__ import annotations

import importlib.resources
import math
from functools import lru_cache

import numpy as np

from matcher.calibration import Calibration


@lru_cache(maxsize=None)
def load_calibration(modality: str) -> Calibration | None:
    """The shipped calibration of a modality's matcher, or ``None`` when none ships.

    Fingerprint: ``matcher/fingerprint/calibration.json`` (or the package's own loader);
    face: :func:`matcher.face.calibration` of the default mode.
    """
    try:
        if modality == "finger":
            import matcher.fingerprint as fp

            loader = getattr(fp, "calibration", None)
            if callable(loader):
                return loader()
            text = importlib.resources.files("matcher.fingerprint").joinpath("calibration.json").read_text()
            return Calibration.from_json(text)
        from matcher.face import calibration

        return calibration()
    except (FileNotFoundError, OSError, ValueError, KeyError, TypeError):
        return None


def common_scale(modality: str, scores: np.ndarray) -> tuple[np.ndarray, bool]:
    """``-log10 FMR`` of raw scores, or the raw scores when the matcher has no calibration.

    Returns
    -------
    scores : array
    calibrated : bool
    """
    cal = load_calibration(modality)
    scores = np.asarray(scores, dtype=np.float64)
    if cal is None:
        return scores, False
    return np.asarray(cal.log_fmr_score(scores), dtype=np.float64), True


def expected_fpir(fmr: float, gallery_size: int, probe_samples: int = 1) -> float:
    """False positive identification rate to expect at per-comparison ``fmr``.

    A non-mated search compares against ``gallery_size`` subjects; with independent
    comparisons ``FPIR = 1 - (1 - fmr)^N``.  With several probe samples fused by
    summing ``-log10 FMR``, the fused threshold ``-log10 fmr`` is treated as one
    comparison (an approximation: it ignores that sums of several small terms can
    reach it).
    """
    if gallery_size <= 0:
        return 0.0
    return float(-math.expm1(gallery_size * math.log1p(-min(max(fmr, 0.0), 1.0 - 1e-16))))


def fused_threshold(fmr: float) -> float:
    """Fused-score threshold of a decision at ``fmr`` (fused scores are ``-log10 FMR`` sums)."""
    if not 0 < fmr <= 1:
        raise ValueError(f"fmr must be in (0, 1], got {fmr}")
    return -math.log10(fmr)
