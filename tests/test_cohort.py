"""Cohort score normalisation: stored statistics, the cohort file, symmetric normalised scores."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from matcher.errors import TemplateError
from matcher.fingerprint import Template, cohort_stats, compare, extract
from matcher.fingerprint.cohort import (COHORT_FILES, SD_FLOOR, load_cohort, read_cohort, stats_from_scores,
                                        write_cohort)
from matcher.fingerprint.comparison import MATCHER_VERSION, compare_scores, pack_templates, raw_scores
from matcher.fingerprint.template import CohortStats
from tests.fingerprint_images import DEFAULT_POINTS, OTHER_POINTS, ridge_image


@pytest.fixture(scope="module")
def prints():
    a = extract(ridge_image(points=DEFAULT_POINTS))
    a2 = extract(ridge_image(points=DEFAULT_POINTS, noise=25, seed=1))
    b = extract(ridge_image(points=OTHER_POINTS, angle=1.2, period=10))
    return a, a2, b


@pytest.mark.parametrize("mode", sorted(COHORT_FILES))
def test_shipped_cohorts_load_and_are_impostors_of_each_other(mode):
    c = load_cohort(mode)
    assert c.size >= 200 and c.identifier.startswith(f"{MATCHER_VERSION}+{mode}:")
    assert all(t.extractor == mode and t.cohort is None for t in read_cohort(_cohort_bytes(mode)))


def _cohort_bytes(mode):
    from matcher.fingerprint.cohort import cohort_path

    return cohort_path(mode).read_bytes()


def test_statistics_are_stored_with_the_template_and_reused(prints):
    a = Template.from_bytes(prints[0].to_bytes(with_cohort=False))
    assert a.cohort is None
    s = cohort_stats(a)
    assert s.cohort == load_cohort("accurate").identifier and s.sd >= SD_FLOOR
    data = a.to_bytes()
    assert struct.unpack_from("<H", data, 4)[0] == 3
    back = Template.from_bytes(data)
    assert back.cohort == CohortStats(s.cohort, pytest.approx(s.mean, rel=1e-6), pytest.approx(s.sd, rel=1e-6))
    assert cohort_stats(back) is back.cohort  # not measured again


def test_statistics_of_another_cohort_are_measured_again(prints):
    a = Template.from_bytes(prints[0].to_bytes(with_cohort=False))
    a.cohort = CohortStats("locard-fp-0+accurate:000000000000", 0.5, 0.1)
    again = Template.from_bytes(a.to_bytes())
    assert cohort_stats(again).cohort == load_cohort("accurate").identifier
    assert cohort_stats(again).mean != 0.5


def test_damaged_cohort_block_is_an_error(prints):
    a = prints[0]
    cohort_stats(a)
    data = a.to_bytes()
    for cut in (1, 4, 9):
        with pytest.raises(TemplateError, match="damaged"):
            Template.from_bytes(data[:-cut])
    bad = bytearray(data)
    bad[-4:] = struct.pack("<f", -1.0)  # a negative spread
    with pytest.raises(TemplateError, match="cohort"):
        Template.from_bytes(bytes(bad))


def test_cohort_file_round_trip_and_errors(prints, tmp_path):
    path = tmp_path / "c.lcfc"
    write_cohort(list(prints), path)
    back = read_cohort(path.read_bytes())
    assert [len(t) for t in back] == [len(t) for t in prints] and all(t.cohort is None for t in back)
    with pytest.raises(TemplateError, match="not a locard cohort"):
        read_cohort(b"LCFP" + path.read_bytes()[4:])
    with pytest.raises(TemplateError, match="truncated|damaged"):
        read_cohort(path.read_bytes()[:-5])
    with pytest.raises(TemplateError, match="after the last"):
        read_cohort(path.read_bytes() + b"x")


def test_normalised_scores_agree_between_1to1_and_1toN(prints):
    a, a2, b = prints
    assert np.allclose(compare_scores(a, [a2, b]), [compare(a, a2).score, compare(a, b).score])
    raw = raw_scores(a, pack_templates([a2, b], raw=True))
    sa, s2, sb = (cohort_stats(t) for t in prints)
    expect = [0.5 * ((raw[0] - sa.mean) / sa.sd + (raw[0] - s2.mean) / s2.sd),
              0.5 * ((raw[1] - sa.mean) / sa.sd + (raw[1] - sb.mean) / sb.sd)]
    assert np.allclose(compare_scores(a, [a2, b]), expect)
    assert compare(a, a2).score > 10 > 3 > compare(a, b).score


def test_raw_pack_cannot_give_normalised_scores(prints):
    with pytest.raises(ValueError, match="cohort statistics"):
        compare_scores(prints[0], pack_templates(list(prints), raw=True))


def test_spread_is_floored():
    s = stats_from_scores(np.zeros(300), "x")
    assert s.mean == 0.0 and s.sd == pytest.approx(SD_FLOOR, rel=1e-6)


def test_a_template_scores_the_same_fresh_and_read_back(prints):
    a, a2, b = (Template.from_bytes(t.to_bytes(with_cohort=False)) for t in prints)
    fresh = compare_scores(a, [a2, b])
    back = [Template.from_bytes(t.to_bytes()) for t in (a, a2, b)]  # statistics now stored
    assert all(t.cohort is not None for t in back)
    assert np.array_equal(compare_scores(back[0], back[1:]), fresh)


def test_fast_mode_scores_stay_raw(prints):
    from matcher.fingerprint.cohort import RAW

    fast = [Template.from_bytes(t.to_bytes(with_cohort=False)) for t in prints]
    for t in fast:
        t.extractor = "fast"
    assert cohort_stats(fast[0]) is RAW and fast[0].cohort is None  # nothing measured or stored
    raw = raw_scores(fast[0], pack_templates(fast[1:], raw=True))
    assert np.array_equal(compare_scores(fast[0], fast[1:]), raw)
    with pytest.raises(ValueError, match="no cohort"):
        from matcher.fingerprint.cohort import cohort_path

        cohort_path("fast")
