"""Scores on a common scale, fusion per subject, decision threshold and expected FPIR.

Raw scores of different matchers mean different things (a cohort-normalised
fingerprint score, a face cosine in [-1, 1]).  Each matcher's calibration (its measured
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


def expected_fpir(fmr: float, gallery_size: int) -> float:
    """False positive identification rate to expect at per-subject ``fmr``.

    A non-mated search compares against ``gallery_size`` subjects; with independent
    comparisons ``FPIR = 1 - (1 - fmr)^N``.  ``fmr`` is per subject, whatever the
    number of probe samples fused, when the threshold is :func:`fused_threshold` of
    that number.
    """
    if gallery_size <= 0:
        return 0.0
    return float(-math.expm1(gallery_size * math.log1p(-min(max(fmr, 0.0), 1.0 - 1e-16))))


def fused_threshold(fmr: float, terms: int = 1) -> float:
    """Fused-score threshold of a decision at per-subject false match rate ``fmr``.

    A fused score adds ``-log10 FMR`` over ``terms`` independent comparisons (one per
    probe finger or face).  Against an impostor each FMR is uniform on (0, 1], so
    ``-ln FMR`` is exponential and the sum of ``terms`` of them is Gamma(``terms``, 1)
    (Fisher's method): the threshold is the Gamma's upper ``fmr`` quantile over
    ``ln 10``.  One term: ``-log10 fmr``; ten fingers at ``fmr`` 1e-3: 9.84, where 3
    would be reached by 84 % of impostors (ten impostor terms add up to 4.3 on
    average).  The calibration rounds every FMR up to its grid, a search adds only the
    subjects' shortlisted samples and a term that is the best of ``n`` comparisons loses
    ``log10 n`` (:meth:`indexer.search.Searcher.identify`), so the true rate is at most
    ``fmr``.

    Raises
    ------
    ValueError
        ``fmr`` outside (0, 1] or ``terms`` < 1.
    """
    if not 0 < fmr <= 1:
        raise ValueError(f"fmr must be in (0, 1], got {fmr}")
    if terms < 1:
        raise ValueError(f"a fused score has at least one term, got {terms}")
    if terms == 1:
        return -math.log10(fmr)
    from scipy.special import gammainccinv

    return float(gammainccinv(terms, fmr)) / math.log(10)
