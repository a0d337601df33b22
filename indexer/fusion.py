"""Scores on a common scale, fusion per subject, decision threshold and expected FPIR.

Raw scores of different matchers mean different things (a fingerprint score in
[0, 1], a face cosine in [-1, 1]).  Each matcher's calibration (its measured
impostor score distribution, :class:`matcher.calibration.Calibration`) maps a score
to the false match rate it would have; fusion adds ``-log10 FMR`` over the probe's
samples (independent evidence multiplies FMRs).  A matcher whose calibration is
missing, unreadable or measured for another matcher version raises
:class:`~indexer.errors.CalibrationError`: raw scores on the fused scale would move
every threshold without anyone noticing.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from matcher.calibration import Calibration

from .errors import CalibrationError


def calibration_mode(modality: str, template: object | None) -> str | None:
    """The calibration a template's scores need: its extraction mode (None = the default).

    Fingerprint templates name their extractor (``accurate`` or ``fast``); face
    templates name their model, which maps to one face mode.
    """
    if template is None:
        return None
    if modality == "finger":
        return getattr(template, "extractor", None)
    if modality == "face":
        from matcher.face import MODES

        model = getattr(template, "model", None)
        return next((mode for mode, m in MODES.items() if m == model), None)
    return None


@lru_cache(maxsize=None)
def load_calibration(modality: str, mode: str | None = None) -> Calibration:
    """The shipped calibration of a modality's matcher, checked against the matcher version.

    Fingerprint: :func:`matcher.fingerprint.calibration.calibration` of extraction
    ``mode``; face: :func:`matcher.face.calibration` of face ``mode`` (None: each one's
    default mode).

    Raises
    ------
    CalibrationError
        Unknown modality, or the calibration is missing, unreadable or was measured
        with another matcher version (the message says which and how to re-measure).
    """
    try:
        if modality == "finger":
            from matcher.fingerprint.calibration import calibration
        elif modality == "face":
            from matcher.face import calibration
        else:
            raise CalibrationError(f"no calibration for modality {modality!r} (finger or face)")
        return calibration() if mode is None else calibration(mode)
    except CalibrationError:
        raise
    # the loaders raise RuntimeError/ValueError on a version mismatch, OSError when the file is missing,
    # KeyError/TypeError/ValueError when its JSON lacks fields
    except (OSError, RuntimeError, ValueError, KeyError, TypeError) as exc:
        raise CalibrationError(f"{modality} matcher calibration unusable: {exc}") from exc


def common_scale(modality: str, scores: np.ndarray, template: object | None = None) -> np.ndarray:
    """``-log10 FMR`` of raw scores, through the matcher's calibration.

    Parameters
    ----------
    modality : {"finger", "face"}
    scores : array of raw scores
    template : the probe's template, optional
        Selects the calibration of the mode it was extracted in (see
        :func:`calibration_mode`); the default mode's without it.

    Returns
    -------
    array of ``-log10 FMR``

    Raises
    ------
    CalibrationError
    """
    cal = load_calibration(modality, calibration_mode(modality, template))
    return np.asarray(cal.log_fmr_score(np.asarray(scores, dtype=np.float64)), dtype=np.float64)


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
