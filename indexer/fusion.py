"""Scores on a common scale, fusion per subject, decision threshold and expected FPIR.

Raw scores of different matchers mean different things (a cohort-normalised
fingerprint score, a face cosine in [-1, 1]).  Each matcher's calibration (its measured
impostor score distribution, :class:`matcher.calibration.Calibration`) maps a score
to the false match rate it would have; fusion adds ``-log10 FMR`` over the probe's
terms.  A matcher whose calibration is missing, unreadable or measured for another
matcher version raises :class:`~indexer.errors.CalibrationError`: raw scores on the
fused scale would move every threshold without anyone noticing.

A sum of terms is not a sum of independent uniform FMRs (a person's fingers are
alike, a term is the best of several comparisons): the threshold of a ten-print
search is read from the fused calibration measured on generated impostor ten-print
cards (:func:`load_fused_calibration`, ``tenprint_calibration.json``), see
:func:`decision_threshold`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np

from matcher.calibration import Calibration

from .errors import CalibrationError

if TYPE_CHECKING:  # the probe type only; search imports this module
    from .search import Probe


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
    number of probe samples fused, when the threshold is :func:`decision_threshold` of
    those terms.
    """
    if gallery_size <= 0:
        return 0.0
    return float(-math.expm1(gallery_size * math.log1p(-min(max(fmr, 0.0), 1.0 - 1e-16))))


def _one_term(fmr: float, terms: int) -> bool:
    """Whether a fused score of ``terms`` terms is a single term; ValueError on a bad ``fmr`` or no term."""
    if not 0 < fmr <= 1:
        raise ValueError(f"fmr must be in (0, 1], got {fmr}")
    if terms < 1:
        raise ValueError(f"a fused score has at least one term, got {terms}")
    return terms == 1


def fused_threshold(fmr: float, terms: int = 1) -> float:
    """Fused-score threshold at ``fmr`` IF the ``terms`` were independent and each uniform.

    Against such an impostor each FMR is uniform on (0, 1], so ``-ln FMR`` is
    exponential and the sum of ``terms`` of them is Gamma(``terms``, 1) (Fisher's
    method): the threshold is the Gamma's upper ``fmr`` quantile over ``ln 10``.  One
    term: ``-log10 fmr``; ten at ``fmr`` 1e-3: 9.84.  Ten-print terms are not
    independent, and this threshold does not hold its FMR on them (benchmarks/README.md,
    Ten-print search): decisions use :func:`decision_threshold`; this is the model the
    measured calibration is compared with.

    Raises
    ------
    ValueError
        ``fmr`` outside (0, 1] or ``terms`` < 1.
    """
    if _one_term(fmr, terms):
        return -math.log10(fmr)
    from scipy.special import gammainccinv

    return float(gammainccinv(terms, fmr)) / math.log(10)


# -- the fused ten-print calibration -------------------------------------------------------------
#: Format of ``tenprint_calibration.json``.
FUSED_CALIBRATION_FORMAT = 1
FUSED_CALIBRATION_FILE = "tenprint_calibration.json"


@dataclass(frozen=True)
class FusedCalibration:
    """Measured impostor distribution of fused ten-print scores, per number of finger terms.

    Attributes
    ----------
    finger_calibration : str
        Version of the per-finger calibration the terms went through
        (:func:`matcher.fingerprint.calibration.calibration_version`, e.g. ``locard-fp-4+accurate``).
    tables : dict
        Number of finger terms ``k`` -> :class:`~matcher.calibration.Calibration` of the
        fused score of ``k`` terms (impostor subject per probe card): FMR <-> threshold.
    command : str
        The command that measured it.
    source : str
        The data it was measured on.
    """

    finger_calibration: str
    tables: dict[int, Calibration]
    command: str
    source: str

    def threshold(self, fmr: float, terms: int) -> float | None:
        """Measured threshold of ``terms`` finger terms at per-subject ``fmr``; None when the table
        lacks that many terms or does not resolve ``fmr`` (fewer impostor sums than ``1 / fmr``)."""
        table = self.tables.get(terms)
        if table is None:
            return None
        try:
            return table.threshold(fmr)
        except ValueError:
            return None

    def to_json(self, extra: dict | None = None) -> str:
        from dataclasses import asdict

        return json.dumps({"format": FUSED_CALIBRATION_FORMAT, "finger_calibration": self.finger_calibration,
                           "command": self.command, "source": self.source, **(extra or {}),
                           "tables": {str(k): asdict(c) for k, c in sorted(self.tables.items())}}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> "FusedCalibration":
        d = json.loads(text)
        if d.get("format") != FUSED_CALIBRATION_FORMAT:
            raise ValueError(f"fused calibration format {d.get('format')} is not {FUSED_CALIBRATION_FORMAT}")
        return cls(d["finger_calibration"], {int(k): Calibration(**c) for k, c in d["tables"].items()},
                   d["command"], d["source"])


def load_fused_calibration_text(text: str, expected: str) -> FusedCalibration:
    """Parse a fused calibration and check it was measured through the per-finger calibration ``expected``.

    Raises
    ------
    CalibrationError
        Unreadable, or measured with another matcher version (the message gives the command).
    """
    try:
        cal = FusedCalibration.from_json(text)
    except (ValueError, KeyError, TypeError) as exc:
        raise CalibrationError(f"indexer/{FUSED_CALIBRATION_FILE} unusable: {exc}") from exc
    if cal.finger_calibration != expected:
        raise CalibrationError(
            f"indexer/{FUSED_CALIBRATION_FILE} was measured with {cal.finger_calibration}, this is {expected}: "
            f"re-measure it with `{cal.command}`")
    return cal


@lru_cache(maxsize=None)
def load_fused_calibration(mode: str | None = None) -> FusedCalibration | None:
    """The shipped fused ten-print calibration for fingerprint extraction ``mode`` (None: the default).

    Returns None for a mode it was not measured in (the fast mode: its probes get the
    dependence-free bound of :func:`decision_threshold`).

    Raises
    ------
    CalibrationError
        The file is missing or unreadable, or was measured with another matcher version.
    """
    from matcher.fingerprint.calibration import calibration_version

    try:
        expected = calibration_version(mode or "accurate")
    except ValueError as exc:
        raise CalibrationError(str(exc)) from exc
    try:
        text = resources.files(__package__).joinpath(FUSED_CALIBRATION_FILE).read_text()
    except OSError as exc:
        raise CalibrationError(f"indexer/{FUSED_CALIBRATION_FILE} missing: {exc}") from exc
    measured_mode = json.loads(text).get("finger_calibration", "").rpartition("+")[2]
    if measured_mode != (mode or "accurate"):
        return None
    return load_fused_calibration_text(text, expected)


def dependence_free_threshold(fmr: float, terms: int) -> float:
    """Threshold that holds ``fmr`` for a sum of ``terms`` terms however they depend on each other.

    A sum reaches ``t`` only if some term reaches ``t / terms``; each term (a calibrated
    ``-log10 FMR``, less ``log10 n`` for a best of ``n``) does so with probability at most
    ``10 ** (-t / terms)``, so ``terms * log10(terms / fmr)`` keeps the rate at most
    ``fmr`` (union bound).  Far above a measured threshold (40 for ten terms at 1e-3):
    the fallback where nothing was measured, never a guess.
    """
    if not 0 < fmr <= 1:
        raise ValueError(f"fmr must be in (0, 1], got {fmr}")
    if terms < 1:
        raise ValueError(f"a fused score has at least one term, got {terms}")
    return terms * math.log10(terms / fmr)


def decision_threshold(fmr: float, finger_terms: int, other_terms: int = 0, mode: str | None = None) -> float:
    """Decision threshold on a fused score at per-subject false match rate ``fmr``.

    Parameters
    ----------
    fmr : float
        In (0, 1].
    finger_terms : int
        Terms that are probe fingers of a known position (all impressions of that
        position; :func:`fusion_terms`).
    other_terms : int
        Every other term: faces, fingers of unknown position.
    mode : str, optional
        Extraction mode of the probe fingers (None: the default).

    Returns
    -------
    float
        - finger terms only: the fused calibration's measured threshold
          (:func:`load_fused_calibration`), where it resolves ``fmr``; one finger term too,
          for its impressions are ten-print ones (rolled and flat, a best of ``n``), on which
          the matcher's own calibration (single impressions) passed 2.8 x its FMR at 1e-3;
        - one term otherwise (a face, a finger of unknown position): ``-log10 fmr``, the
          matcher's own calibration;
        - otherwise (other terms in the sum, a mode or term count not measured, ``fmr``
          below what was measured): :func:`dependence_free_threshold`, a bound that holds
          whatever the dependence between terms.

    Raises
    ------
    ValueError
        ``fmr`` outside (0, 1] or no term.
    CalibrationError
        The fused calibration is missing, unreadable or for another matcher version.
    """
    terms = finger_terms + other_terms
    one = _one_term(fmr, terms)
    if other_terms == 0:
        cal = load_fused_calibration(mode)
        measured = None if cal is None else cal.threshold(fmr, finger_terms)
        if measured is not None:
            return measured
    return -math.log10(fmr) if one else dependence_free_threshold(fmr, terms)


def probe_threshold(fmr: float, probes: list[Probe]) -> float:
    """Decision threshold of a search with ``probes`` at per-subject ``fmr``
    (:func:`~indexer.fusion.decision_threshold` of its fusion terms): the fused ten-print
    calibration's when every term is a finger of a known, certain position and all were
    extracted in one mode, else the dependence-free bound (one term: ``-log10 fmr``).  A
    position flagged uncertain (neighbours searched too) is not what the table was measured
    on: with every flat impression uncertain it passed 1.2-2 x its FMR (benchmarks/README.md)."""
    by_term = fusion_terms(probes)
    terms = set(by_term.values())
    uncertain = {by_term[i] for i, p in enumerate(probes) if p.position_uncertain}
    fingers = sum(isinstance(t, tuple) and t not in uncertain for t in terms)
    modes = {calibration_mode("finger", p.template) for p in probes if p.modality == "finger"}
    if len(modes) > 1:  # fingers of two extraction modes: not what was measured
        return decision_threshold(fmr, 0, len(terms))
    return decision_threshold(fmr, fingers, len(terms) - fingers, next(iter(modes), None))


def fusion_terms(probes: list[Probe]) -> dict[int, object]:
    """Probe index -> its fusion term: the probe samples of one known finger position are one
    term (one finger), every other sample (unknown position, face) a term of its own."""
    return {p_i: (("finger", p.finger_position) if p.modality == "finger" and p.finger_position else p_i)
            for p_i, p in enumerate(probes)}


@dataclass(frozen=True)
class TermScore:
    """One fusion term of one subject: its best comparison.

    Attributes
    ----------
    log_fmr : float
        ``-log10 FMR`` of the best score, less ``log10 comparisons``, floored at 0.
    raw : float
        The best raw score.
    sample_id, finger_position : int
        Of the gallery sample.
    template : object or None
        The gallery template (fingers), for the paired minutiae.
    probe : int
        Index of the probe sample.
    comparisons : int
        Comparisons of the term's probe samples with the subject's samples behind the best.
    """

    log_fmr: float
    raw: float
    sample_id: int
    finger_position: int
    template: object
    probe: int
    comparisons: int


@dataclass(frozen=True)
class SubjectTerms:
    """What :meth:`indexer.search.Searcher.subject_terms` returns.

    Attributes
    ----------
    terms : dict
        Subject id -> fusion term -> :class:`TermScore` (terms that did not reach the subject are absent).
    names : dict
        Subject id -> name.
    n_terms : int
        Fusion terms of the probe (what the decision threshold depends on).
    reranked : int
        Finger samples scored by the 1:1 comparator, over all probe fingers.
    finger_probes : int
    """

    terms: dict[int, dict[object, TermScore]]
    names: dict[int, str]
    n_terms: int
    reranked: int
    finger_probes: int
