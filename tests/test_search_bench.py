"""``locard bench search``: protocol pieces and one small end-to-end run on the shipped samples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from benchmarks.search_bench import (fnir_at_fpir, run, split_dataset, synthetic_face_embeddings,
                                     synthetic_finger_template)
from indexer.ingest import SourceItem

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples" / "fingerprints"


def test_split_is_seeded_and_disjoint():
    items = [SourceItem(Path(f"{i}_{k}.png"), f"id{i}", "finger") for i in range(10) for k in range(3)]
    g, m, n = split_dataset(items, seed=3)
    g2, m2, n2 = split_dataset(items, seed=3)
    assert [x.path for x in g] == [x.path for x in g2]
    assert len(g) == 5 and len(m) == 10 and len(n) == 15
    gal_ids = {x.identity for x in g}
    assert {x.identity for x in m} == gal_ids and not gal_ids & {x.identity for x in n}
    assert all(x.path.stem.endswith("_0") for x in g)  # first sample of each identity


def test_fnir_at_fpir():
    nonmated = np.array([0.1, 0.2, 0.3, 0.9] + [0.05] * 96)  # 100 searches
    mates = np.array([0.95, 0.5, 0.85, -np.inf])
    fnir, t = fnir_at_fpir(mates, nonmated, 0.01)  # one non-mated search may pass: t just above 0.3
    assert 0.3 < t <= 0.31
    assert fnir == pytest.approx(0.25)
    fnir0, t0 = fnir_at_fpir(mates, nonmated, 0.0)
    assert t0 > 0.9 and fnir0 == pytest.approx(0.75)


def test_synthetic_generators():
    from matcher.fingerprint import Template

    rng = np.random.default_rng(0)
    t = synthetic_finger_template(rng)
    assert 15 <= len(t) <= 60 and t.in_print(t.minutiae["x"], t.minutiae["y"]).mean() > 0.9
    assert len(Template.from_bytes(t.to_bytes())) == len(t)
    e = synthetic_face_embeddings(1000, 128, rng)
    assert e.shape == (1000, 128) and np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)


@pytest.mark.skipif(not (SAMPLES / "labels.csv").is_file(), reason="data/samples/fingerprints is missing")
def test_run_on_samples_with_synthetic_distractors(tmp_path):
    out = tmp_path / "r.json"
    rep = run(str(SAMPLES), "finger", json_path=str(out), synthetic=200, shortlist=20, exhaustive=True,
              max_probes=6, echo=lambda *a: None)
    saved = json.loads(out.read_text())
    for key in ("gallery_size", "rank1", "rank10", "fnir_at_fpir_0.01", "penetration", "search_ms_p50",
                "search_ms_p95", "ingest_per_s"):
        assert key in saved
    assert rep["gallery_size"] == 8 + 200
    assert rep["penetration"] == pytest.approx(20 / 208)
    assert rep["rank1"] >= 0.8 and rep["rank1_exhaustive"] >= 0.8


def test_run_from_a_prebuilt_distractor_store_leaves_it_unchanged(tmp_path):
    from benchmarks.synth.generate import generate
    from indexer.ingest import ingest
    from indexer.store import GalleryStore

    # three fingers of a 100,000-finger set: names 000001.. never clash with the samples' 0001..
    generate(tmp_path / "distr", 100_000, 1, seed=11, workers=1, progress=False, part=(0, 3))
    st = GalleryStore(tmp_path / "store", create=True)
    assert ingest(str(tmp_path / "distr"), st).added == 3
    st.close()
    rep = run(str(SAMPLES), "finger", distractor_store=str(tmp_path / "store"), shortlist=20,
              max_probes=4, echo=lambda *a: None)
    assert rep["gallery_size"] == 8 + 3 and rep["distractor_identities"] == 3
    assert rep["gallery_subjects"] == 8 + 3
    st = GalleryStore(tmp_path / "store")
    assert st.count("finger") == 3
    st.close()
    with pytest.raises(FileNotFoundError, match="not a store"):
        run(str(SAMPLES), "finger", distractor_store=str(tmp_path / "distr"), echo=lambda *a: None)
    generate(tmp_path / "same", 3, 1, seed=11, workers=1, progress=False)  # names 0001..0003
    st = GalleryStore(tmp_path / "clash", create=True)
    ingest(str(tmp_path / "same"), st)
    st.close()
    with pytest.raises(ValueError, match="already subjects"):
        run(str(SAMPLES), "finger", distractor_store=str(tmp_path / "clash"), echo=lambda *a: None)
