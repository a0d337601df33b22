"""Ten-print search end to end, small: template-level distractors, rendered mated subjects.

The issue's CI form is 1,000 template-level distractor subjects and 100 rendered mated
subjects.  On a 2-core box that is ~40 minutes of both cores even when idle (measured
2026-12-07: 60 template-level subjects, rolled and flat, in 60 s with 2 workers; a rendered
and extracted impression ~0.3 CPU s, 40 of them per subject of 2 cards), more than CI's whole
run, and ~3 x that on a loaded machine; so this test runs DISTRACTORS template-level
subjects and MATED rendered mated subjects (plus as many rendered non-mated ones), a few
minutes; ``LOCARD_TENPRINT_CI_DISTRACTORS`` and ``LOCARD_TENPRINT_CI_MATED`` raise them.
It asserts subject-level accuracy, never time.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from benchmarks import tenprint_search
from benchmarks.synth.extraction_noise import NOISE_FORMAT, ExtractionNoise, load, model_id
from benchmarks.synth.groundtruth import read_groundtruth
from benchmarks.synth.template_level import press_truth, subject_name, subject_templates, write_store
from benchmarks.synth.tenprint import MASTER_KEY, SubjectTask, _rng, generate_tenprints, subject_plan
from indexer.store import GalleryStore

DISTRACTORS = int(os.environ.get("LOCARD_TENPRINT_CI_DISTRACTORS", "60"))
MATED = int(os.environ.get("LOCARD_TENPRINT_CI_MATED", "5"))


def test_a_template_level_press_has_the_rendered_images_ground_truth(tmp_path):
    from benchmarks.synth.master import make_master
    from benchmarks.synth.template_level import _press_rng

    generate_tenprints(tmp_path, 3, cards=1, seed=5, workers=1, progress=False, part=(1, 2))
    task = SubjectTask(str(tmp_path), 5, 1, 3, 1)
    plan = subject_plan(task)
    for position in (1, 7):
        master = make_master(plan.classes[position], _rng(5, MASTER_KEY, 1, position))
        for kind in ("rolled", "flat"):
            _, contact, truth, _ = press_truth(master, _press_rng(task, position, 1, kind), kind)
            _, rendered = read_groundtruth(tmp_path / "groundtruth" / f"{task.name}_{position:02d}_1_{kind}.json")
            assert len(truth) == len(rendered) > 5
            assert np.allclose(truth.x, rendered.x, atol=0.01) and np.allclose(truth.y, rendered.y, atol=0.01)


def test_template_level_subject_and_store(tmp_path):
    noise = load()
    task = SubjectTask("", 9, 0, 1, 1)
    made = subject_templates(task, noise)
    assert {p for p, *_ in made} <= set(range(1, 11)) and len(made) >= 18  # ten fingers, rolled and flat
    rolled = [len(t) for _, _, k, t in made if k == "rolled"]
    flat = [len(t) for _, _, k, t in made if k == "flat"]
    assert np.mean(rolled) > np.mean(flat) > 10  # a flat press covers less of the finger
    assert all(t.extractor == "accurate" for *_, t in made)
    again = subject_templates(task, noise)  # deterministic
    assert [t.to_bytes() for *_, t in made] == [t.to_bytes() for *_, t in again]
    summary = write_store(tmp_path / "s", 2, seed=9, workers=1, echo=lambda *a: None)
    assert summary["subjects"] == 2
    with GalleryStore(tmp_path / "s") as store:
        names = {s.name for s in store.subjects()}
        assert names == {subject_name(9, "0001"), subject_name(9, "0002")}
        positions = {smp.finger_position for smp in store.samples("finger")}
        assert positions <= set(range(1, 11)) and len(positions) >= 9  # a finger may be amputated
    assert write_store(tmp_path / "s", 2, seed=9, workers=1, echo=lambda *a: None)["subjects"] == 0  # resumes
    with GalleryStore(tmp_path / "s") as store:
        assert {smp.metadata["noise_model"] for smp in store.samples("finger", with_templates=False)} == {model_id()}
    other = ExtractionNoise.from_json(noise.to_json())
    other.kinds["rolled"].min_distance += 1.0
    (tmp_path / "other.json").write_text(other.to_json())
    assert model_id(tmp_path / "other.json") != model_id()
    with pytest.raises(ValueError, match="extraction-noise model"):  # never two models in one store
        write_store(tmp_path / "s", 3, seed=9, workers=1, noise_path=str(tmp_path / "other.json"), echo=lambda *a: None)


def test_noise_model_file_is_versioned(tmp_path):
    noise = load()
    assert set(noise.kinds) == {"rolled", "flat"} and noise.extractor == "accurate"
    doc = json.loads(noise.to_json())
    assert doc["format"] == NOISE_FORMAT
    doc["format"] = NOISE_FORMAT + 1
    with pytest.raises(ValueError, match="format"):
        ExtractionNoise.from_json(json.dumps(doc))
    assert ExtractionNoise.from_json(noise.to_json()).kinds["flat"].detect == noise.kinds["flat"].detect


def test_split_keeps_cards_together():
    from pathlib import Path

    from indexer.ingest import SourceItem

    items = [SourceItem(Path(f"{s}_{p}_{c}.png"), f"s{s}", "finger", p, metadata={"card": str(c)})
             for s in range(6) for c in (1, 2) for p in range(1, 11)]
    assert tenprint_search.is_tenprint(items)
    gallery, mated, nonmated = tenprint_search.split_tenprint(items, seed=1)
    assert len(gallery) == 30 and len(mated) == 3 and len(nonmated) == 6
    assert all(it.metadata["card"] == "1" for it in gallery)
    assert all(len(card) == 10 and len({it.identity for it in card}) == 1 for card in mated + nonmated)
    assert {c[0].identity for c in mated} == {it.identity for it in gallery}


@pytest.fixture(scope="module")
def tenprint_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("tenprint-ci")
    generate_tenprints(root / "rendered", 2 * MATED, cards=2, seed=77, workers=0, progress=False)
    write_store(root / "distractors", DISTRACTORS, seed=78, workers=0, echo=lambda *a: None)
    return tenprint_search.run(str(root / "rendered"), distractor_store=str(root / "distractors"),
                               store_path=str(root / "gallery"), workers=2, echo=lambda *a: None)


def test_tenprint_search_accuracy(tenprint_run):
    r = tenprint_run
    print(json.dumps({k: v for k, v in r.items() if k != "mated_misses"}))  # shown with pytest -s
    assert r["protocol"] == "ten-print" and r["mated_probes"] == MATED and r["nonmated_probes"] == 2 * MATED
    assert r["gallery_subjects"] == MATED + DISTRACTORS and r["distractor_subjects"] == DISTRACTORS
    # measured at the default size (60 + 5, 2026-12-06): rank-1 5/5, every mated card a hit at FMR 1e-3,
    # FNIR 0 at the best non-mated card's score.  Not asserted: 3 of the 10 non-mated cards were hits at
    # that FMR too (6 % expected for 65 subjects): the fused threshold assumes independent fingers
    # (benchmarks/README.md, Ten-print search).
    assert r["rank1"] >= 0.8
    assert r["tpir_at_decision"] >= 0.8
    assert r["fnir_at_fpir_0.01"] <= 0.2
    assert r["searches_per_s"] > 0 and r["search_ms_p50"] > 0


def test_subject_permutation_pvalue_counts_subjects_not_scores():
    from benchmarks.template_level_check import subject_permutation_pvalue
    from scipy.stats import ks_2samp

    rng = np.random.default_rng(3)

    def side(n_subjects, shift):  # 400 scores per subject around a subject's own level
        level = rng.normal(shift, 1.0, n_subjects)
        return (np.concatenate([rng.normal(m, 0.3, 400) for m in level]),
                np.repeat([f"s{i}" for i in range(n_subjects)], 400))

    (a, sa), (b, sb) = side(20, 0.0), side(20, 0.0)
    assert ks_2samp(a, b).pvalue < 1e-6  # 8,000 scores each look different...
    assert subject_permutation_pvalue(a, sa, b, sb, permutations=200) > 0.01  # ...20 subjects each do not
    (c, sc) = side(20, 2.0)
    assert subject_permutation_pvalue(a, sa, c, sc, permutations=200) < 0.01
