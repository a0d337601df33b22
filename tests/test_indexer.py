"""Gallery store, FAISS index files (replay, rebuild, delete), search and fusion.

Fingerprints come from the shipped synthetic samples (``data/samples/fingerprints``);
face templates are made up (random unit vectors) so no face model is needed here.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from indexer.errors import StoreNotFoundError, StoreVersionError, SubjectNotFoundError
from indexer.faiss_index import (VectorIndex, check_index, default_factory, index_path, open_index,
                                 set_factory)
from indexer.fusion import expected_fpir, fused_threshold
from indexer.ingest import SourceItem, ingest, scan_source
from indexer.search import Probe, Searcher
from indexer.votes import VOTE_POWER, finger_votes
from indexer.store import GalleryStore, NewSample

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples" / "fingerprints"
needs_samples = pytest.mark.skipif(not (SAMPLES / "labels.csv").is_file(),
                                   reason="data/samples/fingerprints (shipped sample prints) is missing")


def _face_template(rng, model="test-model/1"):
    from matcher.face import FaceTemplate

    v = rng.normal(size=128).astype(np.float32)
    return FaceTemplate(model, v / np.linalg.norm(v), 80)


def _face_sample(name, t, sha):
    return NewSample(subject=name, modality="face", template=t.to_bytes(), template_version=t.model,
                     quality=t.quality, sha256=sha)


@pytest.fixture(scope="module")
def finger_items():
    """Six fingers x 4 impressions of the shipped samples."""
    items = scan_source(SAMPLES)
    keep = sorted({it.identity for it in items})[:6]
    return [it for it in items if it.identity in keep]


@pytest.fixture(scope="module")
def finger_store(tmp_path_factory, finger_items):
    """A store with impressions 1-2 of each finger; impressions 3-4 are probes."""
    path = tmp_path_factory.mktemp("fstore")
    st = GalleryStore(path, create=True)
    gallery = [it for it in finger_items if it.path.stem.endswith(("_1", "_2"))]
    rep = ingest(gallery, st, workers=1)
    assert rep.added == len(gallery) and rep.failed == 0
    st.close()
    return path


def _probes(finger_items):
    from matcher.fingerprint import extract

    return [(it.identity, extract(it.path.read_bytes())) for it in finger_items
            if it.path.stem.endswith(("_3", "_4"))]


# -- store ------------------------------------------------------------------------------------
def test_store_requires_create(tmp_path):
    with pytest.raises(StoreNotFoundError):
        GalleryStore(tmp_path / "nope")


def test_store_add_skip_delete_audit(tmp_path):
    rng = np.random.default_rng(0)
    st = GalleryStore(tmp_path / "s", create=True)
    a, b = _face_template(rng), _face_template(rng)
    ids = st.add_samples([_face_sample("alice", a, "h1"), _face_sample("bob", b, "h2"),
                          _face_sample("alice", a, "h1")])
    assert ids[0] and ids[1] and ids[2] is None  # same SHA-256: skipped
    assert st.count("face") == 2 and st.subject_count() == 2
    # a new image of alice is a new encounter; nothing is overwritten
    st.add_samples([_face_sample("alice", _face_template(rng), "h3")])
    sub, samples = st.subject("alice")
    assert sub.encounters == 2 and len(samples) == 2
    deleted = st.delete_subject("alice", reason="test")
    assert sorted(deleted) == sorted(s.id for s in samples)
    with pytest.raises(SubjectNotFoundError):
        st.subject("alice")
    ops = [c[1] for c in st.changes_since(0, "face")]
    assert ops == ["add", "add", "add", "delete", "delete"]
    assert st.audit().entries(limit=10)[-1].record["action"] == "delete"
    assert st.integrity_problems() == []
    st.close()


def test_per_subject_lookups_use_indexes(tmp_path):
    # listing subjects counts encounters and samples per subject: without an index on
    # subject_id each count scans its table (100,000 subjects took > 4 min, seen here)
    st = GalleryStore(tmp_path, create=True)
    for table in ("encounters", "samples"):
        plan = " ".join(str(r) for r in st.con.execute(
            f"EXPLAIN QUERY PLAN SELECT COUNT(*) FROM {table} WHERE subject_id=?", (1,)))
        assert "USING COVERING INDEX" in plan or "USING INDEX" in plan, (table, plan)
    st.close()


def test_store_refuses_newer_schema(tmp_path):
    GalleryStore(tmp_path, create=True).close()
    con = sqlite3.connect(tmp_path / "gallery.sqlite")
    con.execute("UPDATE meta SET value='99' WHERE key='schema_version'")
    con.commit()
    con.close()
    with pytest.raises(StoreVersionError):
        GalleryStore(tmp_path)


# -- indexes ----------------------------------------------------------------------------------
def test_face_index_replay_delete_and_rebuild(tmp_path):
    rng = np.random.default_rng(1)
    st = GalleryStore(tmp_path, create=True)
    temps = {f"s{i}": _face_template(rng) for i in range(20)}
    st.add_samples([_face_sample(n, t, f"h{n}") for n, t in list(temps.items())[:10]])
    idx, action = open_index(st, "face")
    assert action.startswith("rebuilt") and idx.ntotal == 10 and idx.factory == "Flat"
    # more changes after the index was saved: the next open replays them
    st.add_samples([_face_sample(n, t, f"h{n}") for n, t in list(temps.items())[10:]])
    st.delete_subject("s3")
    assert check_index(st, "face") == []  # check replays in memory
    idx, action = open_index(st, "face")
    assert action == "replayed 11 changes" and idx.ntotal == 19
    assert VectorIndex.load(index_path(st, "face")).last_change == st.last_change()
    # a damaged file is rebuilt from the store
    index_path(st, "face").write_bytes(b"LCIX garbage")
    assert check_index(st, "face")
    idx, action = open_index(st, "face")
    assert action.startswith("rebuilt") and idx.ntotal == 19
    # search: each template finds its own subject first
    searcher = Searcher(st)
    r = searcher.identify(Probe("face", temps["s7"]), top=3)
    assert r.candidates[0].subject == "s7" and r.candidates[0].evidence[0].score == pytest.approx(1.0, abs=1e-5)
    assert all(c.subject != "s3" for c in searcher.identify(Probe("face", temps["s3"]), top=19).candidates)
    # excluded subjects are searched as if absent: with one neighbour asked, the next one comes back
    one = Searcher(st, face_k=1)
    r = one.identify(Probe("face", temps["s7"]), top=5, exclude={"s7", "nobody"})
    assert len(r.candidates) == 1 and r.candidates[0].subject != "s7"
    assert r.gallery_subjects == 18
    st.close()


def test_factory_override_with_tombstones(tmp_path):
    """An index type without remove_ids (HNSW) hides deleted samples, then compacts."""
    rng = np.random.default_rng(2)
    st = GalleryStore(tmp_path, create=True)
    temps = {f"s{i}": _face_template(rng) for i in range(30)}
    st.add_samples([_face_sample(n, t, f"h{n}") for n, t in temps.items()])
    set_factory(st, "face", "HNSW32")
    idx, _ = open_index(st, "face")
    assert idx.factory == "HNSW32" and not idx.auto
    assert VectorIndex.load(index_path(st, "face")).header()["factory"] == "HNSW32"
    st.delete_subject("s5")
    idx, action = open_index(st, "face")
    assert len(idx.tombstones) == 1 and action == "replayed 1 changes"
    assert check_index(st, "face") == []
    r = Searcher(st).identify(Probe("face", temps["s5"]), top=30)
    assert "s5" not in [c.subject for c in r.candidates]
    for n in [f"s{i}" for i in range(10, 20)]:
        st.delete_subject(n)
    idx, action = open_index(st, "face")  # 11 tombstones > 20 % of 30 vectors: compacted
    assert action.startswith("rebuilt") and not idx.tombstones and idx.ntotal == 19
    st.close()


def test_default_factory_by_size():
    assert default_factory("finger", 10_000)[0] == "BFlat"
    assert default_factory("finger", 5_000_000)[0].startswith("BIVF")
    assert default_factory("face", 1000)[0] == "Flat"
    assert default_factory("face", 1_000_000) == ("PQ64x4fs,RFlat", {"k_factor": 40})


def test_finger_votes_best_per_minutia():
    d = np.array([[10, 20, 40], [5, 50, 60]])
    ids = np.array([[7, 7, 8], [8, 9, -1]])
    sids, votes = finger_votes(d, ids)
    # row 0: sample 7 keeps its best (1 - 10/40), sample 8 gets 0 (the k-th neighbour)
    # row 1: sample 8: 1 - 5/60, sample 9: 1 - 50/60
    got = dict(zip(sids.tolist(), votes.tolist()))
    assert got[8] == pytest.approx(1 - 5 / 60)
    assert got[7] == pytest.approx(0.75)
    assert got[9] == pytest.approx(1 - 50 / 60)
    assert sids[0] == 8
    # normalised by the set bits of both cylinders: a sparse hit weighs less
    sids, votes = finger_votes(np.array([[10, 12]]), np.array([[1, 2]]), np.array([50]), np.array([[10, 60]]))
    got = dict(zip(sids.tolist(), votes.tolist()))
    assert got[1] == pytest.approx((1 - 10 / 60) ** VOTE_POWER) and got[2] == pytest.approx((1 - 12 / 110) ** VOTE_POWER)
    assert sids[0] == 2


def test_fusion_helpers():
    assert fused_threshold(1e-3) == pytest.approx(3.0)
    assert expected_fpir(1e-3, 1) == pytest.approx(1e-3)
    assert expected_fpir(1e-3, 1000) == pytest.approx(1 - (1 - 1e-3) ** 1000)
    assert expected_fpir(1e-3, 0) == 0.0


# -- fingerprint search -------------------------------------------------------------------------
@needs_samples
def test_finger_search_rank1_and_penetration(finger_store, finger_items):
    st = GalleryStore(finger_store)
    assert check_index(st, "finger") == []
    probes = _probes(finger_items)
    full = Searcher(st)
    hits = 0
    for identity, t in probes:
        r = full.identify(Probe("finger", t), top=5)
        hits += r.candidates[0].subject == identity
        c = r.candidates[0]
        assert c.evidence[0].pairs is not None and c.evidence[0].pairs.shape[1] == 2
        assert r.penetration["finger"] == pytest.approx(1.0)  # shortlist 200 > 12 samples
    assert hits >= len(probes) - 1
    # a short shortlist re-ranks less of the gallery
    short = Searcher(st, shortlist=3)
    r = short.identify(Probe("finger", probes[0][1]), top=5)
    assert r.penetration["finger"] == pytest.approx(3 / st.count("finger"))
    st.close()


@needs_samples
def test_excluded_subjects_take_no_shortlist_place(tmp_path, finger_items):
    from matcher.fingerprint import extract

    # the same finger enrolled twice, as two subjects, among others
    first = sorted({it.identity for it in finger_items})[0]
    gallery = [SourceItem(it.path, ("twin-" if it.path.stem.endswith("_2") else "") + it.identity, "finger")
               for it in finger_items if it.path.stem.endswith("_1") or it.path.stem == f"{first}_2"]
    st = GalleryStore(tmp_path, create=True)
    assert ingest(gallery, st, workers=1).added == len(gallery)
    probe = Probe("finger", extract((SAMPLES / "images" / f"{first}_3.png").read_bytes()))
    s = Searcher(st, shortlist=1)
    top = s.identify(probe, top=5).candidates[0].subject
    assert top in (first, f"twin-{first}")
    other = ({first, f"twin-{first}"} - {top}).pop()
    # with one place in the shortlist, only leaving the excluded subject out before the cut finds the other
    r = s.identify(probe, top=5, exclude={top})
    assert [c.subject for c in r.candidates] == [other]
    assert r.gallery_subjects == st.subject_count() - 1
    st.close()


@needs_samples
def test_multi_sample_probe_fuses_per_subject(finger_store, finger_items):
    st = GalleryStore(finger_store)
    probes = _probes(finger_items)
    ident = probes[0][0]
    both = [Probe("finger", t) for i, t in probes if i == ident]
    assert len(both) == 2
    r = Searcher(st).identify(both, top=3)
    assert r.candidates[0].subject == ident
    assert {e.probe for e in r.candidates[0].evidence} == {0, 1}
    assert r.candidates[0].raw == pytest.approx(sum(e.score for e in r.candidates[0].evidence))
    st.close()


@needs_samples
def test_delete_removes_from_finger_index(tmp_path, finger_store, finger_items):
    path = tmp_path / "copy"
    shutil.copytree(finger_store, path)
    st = GalleryStore(path)
    identity, t = _probes(finger_items)[0]
    st.delete_subject(identity)
    searcher = Searcher(st)
    assert searcher.index_actions["finger"].startswith("replayed")
    assert identity not in [c.subject for c in searcher.identify(Probe("finger", t), top=10).candidates]
    assert check_index(st, "finger") == []
    st.close()


@needs_samples
def test_cli_check_search_subjects(tmp_path, finger_store, finger_items):
    from locard import app

    runner = CliRunner()
    path = tmp_path / "copy"
    shutil.copytree(finger_store, path)
    r = runner.invoke(app, ["check", "--store", str(path)])
    assert r.exit_code == 0, r.output
    assert "check ok" in r.output
    probe = next(it for it in finger_items if it.path.stem.endswith("_3"))
    r = runner.invoke(app, ["search", str(probe.path), "--store", str(path), "--top", "3", "--json"])
    assert r.exit_code == 0, r.output
    import json

    out = json.loads(r.output)
    assert out["candidates"][0]["subject"] == probe.identity
    assert "pairs" in out["candidates"][0]["evidence"][0]
    r = runner.invoke(app, ["subjects", "list", "--store", str(path)])
    assert probe.identity in r.output
    r = runner.invoke(app, ["subjects", "delete", probe.identity, "--store", str(path), "--yes"])
    assert r.exit_code == 0 and "deleted" in r.output
    r = runner.invoke(app, ["subjects", "show", probe.identity, "--store", str(path)])
    assert r.exit_code == 1
    r = runner.invoke(app, ["reindex", "--store", str(path), "--factory", "BHNSW16"])
    assert r.exit_code == 0 and "BHNSW16" in r.output
    r = runner.invoke(app, ["check", "--store", str(path)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["check", "--store", str(tmp_path / "missing")])
    assert r.exit_code == 2


def test_rescored_fast_scan_face_index(tmp_path):
    """The large-gallery face index (PQ fast-scan codes, exact re-scoring): trained, searched,
    deletions tombstoned; and exact search until the gallery can train it."""
    rng = np.random.default_rng(3)
    st = GalleryStore(tmp_path, create=True)
    temps = {f"s{i}": _face_template(rng) for i in range(700)}
    st.add_samples([_face_sample(n, t, f"h{n}") for n, t in list(temps.items())[:100]])
    set_factory(st, "face", "PQ64x4fs,RFlat")
    idx, _ = open_index(st, "face")
    assert idx.factory == "Flat" and idx.deferred["factory"] == "PQ64x4fs,RFlat"  # 100 < 39 * 16
    st.add_samples([_face_sample(n, t, f"h{n}") for n, t in list(temps.items())[100:]])
    idx, action = open_index(st, "face")
    assert idx.factory == "PQ64x4fs,RFlat" and idx.params["k_factor"] == 40 and idx.ntotal == 700
    searcher = Searcher(st)
    for name in ("s3", "s650"):
        assert searcher.identify(Probe("face", temps[name]), top=3).candidates[0].subject == name
    st.delete_subject("s3")
    idx, _ = open_index(st, "face")
    assert check_index(st, "face") == []
    assert "s3" not in [c.subject for c in Searcher(st).identify(Probe("face", temps["s3"]), top=10).candidates]
    st.close()
