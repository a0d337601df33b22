"""Score calibration (score <-> FMR) and the FVC error-rate definitions."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.metrics import cmc, eer, fnmr_at_fmr, verification_report
from matcher.calibration import Calibration


@pytest.fixture(scope="module")
def impostors():
    return np.random.default_rng(0).normal(size=20_000)


def test_thresholds_hold_their_false_match_rate(impostors):
    c = Calibration.from_impostor_scores(impostors, matcher="test", version="1")
    for target in (0.01, 0.001, 0.0001):
        t = c.threshold(target)
        assert (impostors >= t).mean() <= target
        assert (impostors >= t).mean() > target / 2  # and are not needlessly strict
        assert c.fmr(t) <= target
    assert list(c.standard_thresholds()) == ["0.01", "0.001", "0.0001"]


def test_fmr_is_monotonic_and_floored(impostors):
    c = Calibration.from_impostor_scores(impostors, matcher="test", version="1")
    s = np.linspace(-5, 6, 200)
    f = c.fmr(s)
    assert np.all(np.diff(f) <= 0)
    assert f[0] == 1.0 and f[-1] == pytest.approx(1 / 20_000)
    assert c.log_fmr_score(10.0) == pytest.approx(np.log10(20_000))


def test_unresolvable_fmr_is_refused(impostors):
    c = Calibration.from_impostor_scores(impostors[:1000], matcher="test", version="1")
    with pytest.raises(ValueError, match="calibrate on more impostor pairs"):
        c.threshold(1e-5)


def test_json_round_trip(tmp_path, impostors):
    c = Calibration.from_impostor_scores(impostors, matcher="test", version="7", source="unit test")
    c.save(tmp_path / "c.json")
    assert Calibration.load(tmp_path / "c.json") == c


def test_eer_of_known_distributions():
    rng = np.random.default_rng(1)
    g, i = rng.normal(2, 1, 20_000), rng.normal(0, 1, 200_000)
    assert eer(g, i) == pytest.approx(0.1587, abs=0.006)  # Phi(-1)
    assert eer(np.array([3.0, 4.0]), np.array([0.0, 1.0])) == 0.0


def test_fvc_figures_of_a_small_case():
    g = np.array([0.2, 0.5, 0.9, 0.95])
    i = np.array([0.1, 0.3, 0.6])
    rep = verification_report(g, i)
    assert rep["zero_fmr"] == pytest.approx(0.5)  # threshold above 0.6 loses 0.2 and 0.5
    assert fnmr_at_fmr(g, i, 1 / 3) == pytest.approx(0.25)


def test_cmc_counts_ties_against_the_mate():
    scores = np.array([[0.9, 0.1, 0.2], [0.5, 0.5, 0.1], [0.1, 0.2, 0.3]])
    gallery = np.array([0, 1, 2])
    probes = np.array([0, 1, 0])
    c = cmc(scores, gallery, probes, max_rank=3)
    assert c.tolist() == pytest.approx([1 / 3, 2 / 3, 1.0])


@pytest.mark.parametrize("mode", ["accurate", "fast"])
def test_shipped_fingerprint_calibration_matches_the_matcher(mode):
    from matcher.fingerprint import MATCHER_VERSION
    from matcher.fingerprint.calibration import calibration, threshold_at

    cal = calibration(mode)
    assert cal.version == f"{MATCHER_VERSION}+{mode}" and cal.n_impostors >= 10_000
    t = [threshold_at(f, mode) for f in (0.01, 0.001, 0.0001)]
    assert t[0] < t[1] < t[2]
    assert cal.fmr(t[1]) <= 0.001


def test_fused_scale_reads_the_calibration_of_the_probe_extraction_mode():
    from types import SimpleNamespace

    from indexer.fusion import common_scale
    from matcher.fingerprint.calibration import calibration

    for mode in ("accurate", "fast"):
        cal = calibration(mode)
        scores = np.array([cal.threshold(f) for f in (0.01, 0.001, 0.0001)])
        got = common_scale("finger", scores, SimpleNamespace(extractor=mode))
        assert np.allclose(got, cal.log_fmr_score(scores)) and np.allclose(got, [2, 3, 4], atol=0.05)
    # the two modes' scales differ (accurate is cohort-normalised, fast raw), so the choice matters
    scores = np.array([calibration("fast").threshold(0.001)])
    assert not np.allclose(calibration("fast").log_fmr_score(scores), calibration("accurate").log_fmr_score(scores))
