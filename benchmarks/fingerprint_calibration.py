"""Measure the fingerprint matcher's calibration on a generated set.

Thresholds ("decide at FMR 0.1 %"), fusion and expected false hits all read the
impostor score distribution shipped in ``matcher/fingerprint/calibration*.json``.
It must come from data the accuracy is not reported on: a generated set (its
impostor pairs are as many as one likes), never FVC or another set a figure in
benchmarks/README.md is reported on.  One file per extraction mode, since the two
modes find different minutiae.

    locard bench cohort-fingerprint COHORT_SET --mode accurate       # first: the score cohort
    locard bench calibrate-fingerprint GENERATED_SET --mode accurate

Scores are cohort-normalised (:mod:`matcher.fingerprint.cohort`), so the cohort comes
first and the calibration is measured through it; both from generated sets of
different seeds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from benchmarks.datasets import load_dataset
from matcher.calibration import Calibration
from matcher.errors import FailureToEnrol
from matcher.fingerprint import extract
from matcher.fingerprint.calibration import CALIBRATION_FILES, calibration_version
from matcher.fingerprint.comparison import compare_scores, pack_templates


def impostor_scores(templates: list, identities: np.ndarray) -> np.ndarray:
    """Scores of every pair of templates of different identities (each pair once)."""
    packed = pack_templates(templates)
    out = []
    for i in range(len(templates) - 1):
        scores = compare_scores(templates[i], packed)
        later = np.arange(i + 1, len(templates))
        out.append(scores[later][identities[later] != identities[i]])
    return np.concatenate(out) if out else np.zeros(0)


def build_cohort(dataset: str | Path, mode: str = "accurate", size: int = 300, progress=None) -> list:
    """Templates of the first image of the first ``size`` identities of a generated set.

    The cohort must be made of impostors for everything it normalises: take it from a
    generated set of a seed used for nothing else (not the calibration set, which is
    scored through it, nor any evaluation set).  Images that fail to enrol are skipped.
    """
    ds = load_dataset(dataset)
    first: dict[str, object] = {}
    for s in ds.samples:
        first.setdefault(s.identity, s)
    chosen = list(first.values())
    out = []
    for k, s in enumerate(chosen):
        if len(out) >= size:
            break
        try:
            t = extract(s.path.read_bytes(), ppi=float(s.ppi or 500.0), mode=mode)
            if len(t) >= 2:
                out.append(t)
        except FailureToEnrol:
            pass
        if progress:
            progress(k + 1, min(size, len(chosen)))
    if len(out) < size:
        raise ValueError(f"{dataset}: only {len(out)} identities enrolled, {size} asked for the cohort")
    return out


def measure(dataset: str | Path, mode: str = "accurate", progress=None) -> Calibration:
    """Calibration of extraction ``mode`` from all impostor pairs of ``dataset``.

    Images that fail to enrol are left out (the count is recorded in ``source``).
    """
    ds = load_dataset(dataset)
    templates, names = [], []
    for k, s in enumerate(ds.samples):
        try:
            templates.append(extract(s.path.read_bytes(), ppi=float(s.ppi or 500.0), mode=mode))
            names.append(s.identity)
        except FailureToEnrol:
            pass
        if progress:
            progress(k + 1, len(ds.samples))
    identities = np.unique(np.array(names), return_inverse=True)[1]
    scores = impostor_scores(templates, identities)
    return Calibration.from_impostor_scores(
        scores, matcher="locard-fingerprint", version=calibration_version(mode),
        source=(f"all {len(scores)} impostor pairs of generated set {ds.name} ({len(templates)} of "
                f"{len(ds.samples)} images enrolled), extraction mode {mode}: "
                f"`locard bench calibrate-fingerprint DIR --mode {mode}`"))


def default_output(mode: str) -> Path:
    """Where the shipped calibration of ``mode`` lives in this checkout."""
    return Path(__file__).resolve().parent.parent / "matcher" / "fingerprint" / CALIBRATION_FILES[mode]
