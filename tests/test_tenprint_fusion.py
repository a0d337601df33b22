"""Ten-print fusion: like positions only, one term per finger (the best of its comparisons, less
log10 of their number), neighbours for uncertain positions; the Gamma model of a sum of independent
terms (what the measured fused calibration replaces, tests/test_tenprint_calibration.py)."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest

from benchmarks.search_bench import synthetic_finger_template
from indexer.fusion import decision_threshold, fused_threshold
from indexer.owners import NO_SUBJECT, comparable
from indexer.positions import comparable_positions, neighbours
from indexer.search import Probe, Searcher
from indexer.store import GalleryStore, NewSample
from indexer.votes import preselect_subjects
from matcher.fingerprint import FORMAT_VERSION, MATCHER_VERSION, Template


def test_neighbours_stay_on_one_hand():
    assert neighbours(1) == (2,) and neighbours(3) == (2, 4) and neighbours(5) == (4,)
    assert neighbours(6) == (7,) and neighbours(10) == (9,)
    assert comparable_positions(0) is None
    assert comparable_positions(7) == {7} and comparable_positions(7, uncertain=True) == {6, 7, 8}
    with pytest.raises(ValueError):
        neighbours(11)


def test_fused_threshold_keeps_the_fmr_of_a_sum_of_terms():
    assert fused_threshold(1e-3) == pytest.approx(3.0)
    rng = np.random.default_rng(0)
    for k in (2, 10):
        t = fused_threshold(1e-3, k)
        fused = -np.log10(rng.random((400_000, k))).sum(axis=1)  # impostor terms: -log10 of uniform FMRs
        assert np.mean(fused >= t) == pytest.approx(1e-3, rel=0.2)
        assert np.mean(fused >= fused_threshold(1e-3)) > 5e-3  # the one-term threshold would not hold
    assert fused_threshold(1e-3, 10) > fused_threshold(1e-3, 2) > 3.0
    with pytest.raises(ValueError):
        fused_threshold(1e-3, 0)


def _sample(subject: str, t: Template, position: int) -> NewSample:
    blob = t.to_bytes()
    return NewSample(subject=subject, modality="finger", template=blob, template_version=f"LCFP{FORMAT_VERSION}/{MATCHER_VERSION}",
                     quality=60, sha256=hashlib.sha256(subject.encode() + blob).hexdigest(), finger_position=position)


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    """30 subjects with ten made-up fingers each (positions 1-10)."""
    rng = np.random.default_rng(11)
    fingers = {f"s{i:02d}": {p: synthetic_finger_template(rng) for p in range(1, 11)} for i in range(30)}
    store = GalleryStore(tmp_path_factory.mktemp("tenprint") / "g", create=True)
    store.add_samples([_sample(s, t, p) for s, fs in fingers.items() for p, t in fs.items()])
    yield store, fingers, rng
    store.close()


def _copy(t: Template) -> Template:
    return Template.from_bytes(t.to_bytes())


def test_a_subject_matching_on_three_fingers_is_found_and_missing_fingers_cost_nothing(gallery):
    store, fingers, rng = gallery
    s = Searcher(store, shortlist=50)
    true = fingers["s07"]
    # three of the subject's fingers, seven fingers of nobody in the gallery
    probes = [Probe("finger", _copy(true[p]), p) for p in (2, 3, 7)]
    probes += [Probe("finger", synthetic_finger_template(rng), p) for p in (1, 4, 5, 6, 8, 9, 10)]
    r = s.identify(probes, top=5)
    best = r.candidates[0]
    assert best.subject == "s07"
    mated = [e for e in best.evidence if e.probe in (0, 1, 2)]
    assert len(mated) == 3 and all(e.finger_position == probes[e.probe].finger_position for e in mated)
    # the three matching fingers alone give the same mated terms: the others add, never subtract
    alone = s.identify(probes[:3], top=1).candidates[0]
    assert alone.subject == "s07" and best.score >= alone.score - 1e-9
    assert r.threshold == pytest.approx(decision_threshold(s.fmr, 10))  # the measured ten-finger threshold
    assert alone.hit and alone.score >= decision_threshold(s.fmr, 3)


def test_positions_must_agree_unless_uncertain(gallery):
    store, fingers, _ = gallery
    s = Searcher(store, shortlist=300)
    t = fingers["s03"][3]
    wrong = s.identify(Probe("finger", _copy(t), 4), top=3)  # right middle finger labelled right ring
    assert all(e.finger_position == 4 for c in wrong.candidates for e in c.evidence)
    assert not any(c.subject == "s03" and c.hit for c in wrong.candidates)
    slap = s.identify(Probe("finger", _copy(t), 4, position_uncertain=True), top=3)
    assert slap.candidates[0].subject == "s03" and slap.candidates[0].evidence[0].finger_position == 3
    unknown = s.identify(Probe("finger", _copy(t), 0), top=3)
    assert unknown.candidates[0].subject == "s03"


def test_two_impressions_of_one_finger_are_one_term(gallery):
    store, fingers, _ = gallery
    s = Searcher(store, shortlist=50)
    t = fingers["s12"][8]
    r = s.identify([Probe("finger", _copy(t), 8), Probe("finger", _copy(t), 8)], top=1)
    c = r.candidates[0]
    assert c.subject == "s12" and len(c.evidence) == 1
    one = s.identify(Probe("finger", _copy(t), 8), top=1).candidates[0]
    # the same finger twice is no stronger evidence: one term, the best of two comparisons (Bonferroni)
    assert c.score == pytest.approx(one.score - math.log10(2))
    assert r.threshold == pytest.approx(decision_threshold(s.fmr, 1))  # one finger of known position: measured


def test_a_ten_print_reranks_its_preselected_subjects_in_full(gallery):
    store, fingers, rng = gallery
    true = fingers["s21"]
    probes = [Probe("finger", _copy(true[p]), p) for p in range(1, 11)]
    whole = Searcher(store, shortlist=300, tenprint_subjects=0).identify(probes, top=30)
    few = Searcher(store, tenprint_subjects=3)
    given = few._tenprint_shortlists(probes, {}, frozenset())
    owners = few.owners["finger"]
    chosen = {owners[s][0] for ids in given.values() for s in ids}
    assert len(chosen) == 3 and owners[given[0][0]][0] in chosen
    for p_i, ids in given.items():  # every sample of the chosen subjects the finger voted for, nothing else
        sids, _ = few._finger_votes(probes[p_i], {})
        assert ids == [s for s in sids.tolist() if owners[s][0] in chosen and owners[s][2] == probes[p_i].finger_position]
    r = few.identify(probes, top=30)
    assert r.candidates[0].subject == "s21" and len(r.candidates) == 3
    # a preselected subject scores exactly as when the whole gallery is re-ranked
    exact = {c.subject: c.score for c in whole.candidates}
    assert all(c.score == pytest.approx(exact[c.subject]) for c in r.candidates)
    assert whole.candidates[0].subject == "s21" and r.candidates[0].score == pytest.approx(whole.candidates[0].score)
    # one finger alone keeps its own shortlist
    assert few.identify(probes[:1], top=1).candidates[0].subject == "s21"


def _shares_by_loop(fingers, n):
    """The preselection as a plain loop (what preselect_subjects computes with arrays)."""
    from collections import Counter

    share = Counter()
    for subj, votes in fingers:
        best = {}
        for s, v in zip(subj.tolist(), votes.tolist()):
            best.setdefault(s, v)
        if best:
            top = max(best.values())
            for s, v in best.items():
                share[s] += v / top
    return [s for s, _ in sorted(share.items(), key=lambda kv: (-kv[1], kv[0]))[:n]]


def test_preselection_sums_each_fingers_share_of_its_best_subject():
    rng = np.random.default_rng(5)
    fingers = []
    for m in (0, 1, 40, 300, 2000):
        votes = -np.sort(-np.round(rng.gamma(1.0, 2.0, m), 1))  # rounded: ties between subjects
        fingers.append((rng.integers(0, 500, m), votes))
    for n in (1, 7, 50, 10_000):
        assert preselect_subjects(fingers, n).tolist() == _shares_by_loop(fingers, n)
    # best on two fingers of three (shares 0.01 + 1 + 1) beats best on one by far (1 + 0.2 + 0.2)
    one = [(np.array([1, 2]), np.array([100.0, 1.0])), (np.array([2, 1]), np.array([5.0, 1.0])),
           (np.array([2, 1]), np.array([5.0, 1.0]))]
    assert preselect_subjects(one, 2).tolist() == [2, 1]
    assert preselect_subjects([], 3).size == 0


def test_owner_columns_follow_enrolments_and_deletions(tmp_path):
    rng = np.random.default_rng(8)
    store = GalleryStore(tmp_path / "g", create=True)
    store.add_samples([_sample(f"p{i}", synthetic_finger_template(rng), 1 + i % 10) for i in range(6)])
    s = Searcher(store)
    cols = s._owner_columns["finger"]
    owners = s.owners["finger"]
    sids = np.array(sorted(owners) + [0, 10_000])
    subj, pos = cols.lookup(sids)
    assert subj.tolist() == [owners[x][0] for x in sorted(owners)] + [NO_SUBJECT, NO_SUBJECT]
    assert pos.tolist() == [owners[x][2] for x in sorted(owners)] + [0, 0]
    new = store.add_samples([_sample("late", synthetic_finger_template(rng), 7)])[0]
    gone = min(owners)
    store.delete_subject(owners[gone][1])
    s.refresh()
    subj, pos = cols.lookup(np.array([new, gone]))
    assert subj[0] == s.owners["finger"][new][0] and pos[0] == 7 and subj[1] == NO_SUBJECT
    assert comparable(np.array([0, 3, 4, 7], np.int8), comparable_positions(3, True)).tolist() == [True, True, True, False]
    store.close()
