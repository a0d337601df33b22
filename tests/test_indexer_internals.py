"""Indexer internals: in-memory index catch-up, index file writers, SQL lookups and paging,
calibration errors, and labels.csv rows that cannot be used.

Work is counted, never timed: SQLite virtual-machine steps (``set_progress_handler``) for
the lookups, calls to the index file reader and writer for the catch-up.
"""

from __future__ import annotations

import csv
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from indexer import faiss_index
from indexer.errors import CalibrationError
from indexer.faiss_index import VectorIndex, index_path, open_index
from indexer.ingest import ingest, scan_source
from indexer.search import Probe, Searcher
from indexer.store import GalleryStore, NewSample

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples" / "fingerprints"


def _face(rng, name: str, sha: str | None = None) -> tuple[NewSample, object]:
    from matcher.face import FaceTemplate

    v = rng.normal(size=128).astype(np.float32)
    t = FaceTemplate("test-model/1", v / np.linalg.norm(v), 80)
    return NewSample(subject=name, modality="face", template=t.to_bytes(), template_version=t.model,
                     quality=t.quality, sha256=sha or f"h-{name}"), t


def _steps(con, fn) -> int:
    """SQLite virtual-machine instructions (in hundreds) that ``fn()`` runs on ``con``."""
    n = [0]

    def tick():
        n[0] += 1
        return 0
    con.set_progress_handler(tick, 100)
    try:
        fn()
    finally:
        con.set_progress_handler(None, 0)
    return n[0]


# -- Searcher.refresh: catch up in memory ---------------------------------------------------------
def test_refresh_replays_changes_in_memory_without_reading_or_writing_the_file(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    st = GalleryStore(tmp_path, create=True)
    first = [_face(rng, f"s{i}") for i in range(10)]
    st.add_samples([s for s, _ in first])
    searcher = Searcher(st)  # builds and saves the file
    assert index_path(st, "face").exists()
    loads, saves = [], []
    real_load, real_save = VectorIndex.load, VectorIndex.save
    monkeypatch.setattr(VectorIndex, "load", classmethod(lambda cls, p: loads.append(p) or real_load(p)))
    monkeypatch.setattr(VectorIndex, "save", lambda self, p: saves.append(p) or real_save(self, p))
    new, t_new = _face(rng, "late")
    other, _ = _face(rng, "later")
    st.add_samples([new])
    st.add_samples([other])
    searcher.refresh()
    assert loads == [] and saves == []  # the index caught up in memory
    assert searcher.identify(Probe("face", t_new), top=1).candidates[0].subject == "late"
    assert searcher.indexes["face"].last_change == st.last_change()
    # the file is still behind; the next open replays what it lacks
    idx, action = open_index(st, "face", save=False)
    assert action == "replayed 2 changes" and idx.ntotal == 12
    st.close()


def test_a_deletion_leaves_the_index_file_at_once(tmp_path):
    rng = np.random.default_rng(2)
    st = GalleryStore(tmp_path, create=True)
    faces = [_face(rng, f"s{i}") for i in range(6)]
    st.add_samples([s for s, _ in faces])
    searcher = Searcher(st)
    before = set(VectorIndex.load(index_path(st, "face")).ids().tolist())
    st.delete_subject("s3")
    searcher.refresh()
    assert all(c.subject != "s3" for c in searcher.identify(Probe("face", faces[3][1]), top=20).candidates)
    on_disk = VectorIndex.load(index_path(st, "face"))
    after = set(on_disk.ids().tolist())
    assert on_disk.last_change == st.last_change()  # written at once, not after save_every changes
    assert len(before - after) == 1 and not on_disk.tombstones  # s3's one sample left the file
    st.close()


def test_refresh_saves_once_enough_changes_have_piled_up(tmp_path):
    rng = np.random.default_rng(1)
    st = GalleryStore(tmp_path, create=True)
    st.add_samples([_face(rng, f"s{i}")[0] for i in range(4)])
    searcher = Searcher(st, save_every=3)
    st.add_samples([_face(rng, "a")[0], _face(rng, "b")[0]])
    searcher.refresh()
    assert VectorIndex.load(index_path(st, "face")).ntotal == 4  # 2 changes: not saved yet
    st.add_samples([_face(rng, "c")[0]])
    searcher.refresh()
    on_disk = VectorIndex.load(index_path(st, "face"))
    assert on_disk.ntotal == 7 and on_disk.last_change == st.last_change()
    st.close()


def test_searcher_save_writes_what_was_replayed_in_memory(tmp_path):
    rng = np.random.default_rng(6)
    st = GalleryStore(tmp_path, create=True)
    st.add_samples([_face(rng, f"s{i}")[0] for i in range(4)])
    searcher = Searcher(st)
    st.add_samples([_face(rng, "a")[0]])
    searcher.refresh()
    assert VectorIndex.load(index_path(st, "face")).last_change < st.last_change()
    searcher.save()
    assert VectorIndex.load(index_path(st, "face")).last_change == st.last_change()
    st.close()


def test_refresh_follows_a_factory_fixed_meanwhile(tmp_path):
    """``locard reindex --factory`` in another process: the running searcher switches too."""
    from indexer.faiss_index import set_factory

    rng = np.random.default_rng(7)
    st = GalleryStore(tmp_path, create=True)
    st.add_samples([_face(rng, f"s{i}")[0] for i in range(6)])
    searcher = Searcher(st)
    assert searcher.indexes["face"].factory == "Flat"
    set_factory(st, "face", "HNSW32")
    s, t = _face(rng, "late")
    st.add_samples([s])
    searcher.refresh()
    assert searcher.indexes["face"].factory == "HNSW32" and searcher.indexes["face"].ntotal == 7
    assert searcher.identify(Probe("face", t), top=1).candidates[0].subject == "late"
    st.close()


# -- index files: one writer at a time, unique temporary names -----------------------------------
def test_concurrent_saves_of_one_index_file_do_not_collide(tmp_path, monkeypatch):
    """Two processes (``serve`` and ``ingest``) saving the same index file: the second
    starts while the first has written its temporary file but not yet renamed it."""
    rng = np.random.default_rng(2)
    st = GalleryStore(tmp_path, create=True)
    st.add_samples([_face(rng, f"s{i}")[0] for i in range(5)])
    older, _ = open_index(st, "face", save=False)
    st.add_samples([_face(rng, "t")[0]])
    newer, _ = open_index(st, "face", save=False)
    path = index_path(st, "face")
    first_written = threading.Event()
    go_on = threading.Event()
    real_fsync = faiss_index.os.fsync
    writer_a = []

    def fsync(fd):
        real_fsync(fd)
        if threading.current_thread().name == "A" and not writer_a:
            writer_a.append(fd)
            first_written.set()
            go_on.wait(10)

    monkeypatch.setattr(faiss_index.os, "fsync", fsync)
    errors = []

    def save(idx):
        try:
            idx.save(path)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    a = threading.Thread(target=save, args=(older,), name="A")
    b = threading.Thread(target=save, args=(newer,), name="B")
    a.start()
    assert first_written.wait(10)
    b.start()
    b.join(1.0)  # with a lock, B waits for A; without, it overwrites A's temporary file meanwhile
    go_on.set()
    a.join(10)
    b.join(10)
    assert errors == []
    on_disk = VectorIndex.load(path)
    assert on_disk.last_change == newer.last_change and on_disk.ntotal == 6
    assert not [p.name for p in tmp_path.iterdir() if ".tmp" in p.name]
    st.close()


def test_an_older_index_never_replaces_a_newer_file(tmp_path):
    rng = np.random.default_rng(3)
    st = GalleryStore(tmp_path, create=True)
    st.add_samples([_face(rng, f"s{i}")[0] for i in range(3)])
    older, _ = open_index(st, "face", save=False)
    st.add_samples([_face(rng, "t")[0]])
    open_index(st, "face")  # saves the newer one
    older.save(index_path(st, "face"))
    assert VectorIndex.load(index_path(st, "face")).last_change == st.last_change()
    st.close()


# -- store lookups and paging in SQL ---------------------------------------------------------------
def _store_with(tmp_path: Path, n: int) -> GalleryStore:
    rng = np.random.default_rng(4)
    st = GalleryStore(tmp_path, create=True)
    st.add_samples([_face(rng, f"s{i:05d}")[0] for i in range(n)])
    return st


def test_subject_lookup_does_not_touch_every_subject(tmp_path):
    small, large = _store_with(tmp_path / "small", 20), _store_with(tmp_path / "large", 2000)
    cost = {}
    for name, st in (("small", small), ("large", large)):
        sub, samples = st.subject("s00007")
        assert sub.name == "s00007" and sub.face_samples == 1 and sub.encounters == 1 and len(samples) == 1
        cost[name] = _steps(st.con, lambda: st.subject("s00007"))
    # listing every subject to pick one costs ~100x more at 100x the subjects
    assert cost["large"] <= 2 * cost["small"] + 2, cost
    small.close()
    large.close()


def test_subject_page_without_hidden_subjects_is_cut_in_sql(tmp_path):
    small, large = _store_with(tmp_path / "small", 20), _store_with(tmp_path / "large", 2000)
    hidden = {"s00001", "s00003", "nobody"}
    for st, n in ((small, 20), (large, 2000)):
        page = st.subjects(limit=3, offset=1, exclude=hidden)
        assert [s.name for s in page] == ["s00002", "s00004", "s00005"]
        assert st.subject_count(exclude=hidden) == n - 2
    cost = {name: _steps(st.con, lambda st=st: (st.subjects(limit=3, offset=1, exclude=hidden),
                                                   st.subject_count(exclude=hidden)))
            for name, st in (("small", small), ("large", large))}
    assert cost["large"] <= 2 * cost["small"] + 2, cost
    small.close()
    large.close()


# -- calibration ----------------------------------------------------------------------------------
@pytest.fixture
def fresh_calibrations():
    import matcher.face as face
    import matcher.fingerprint.calibration as fpcal

    from indexer.fusion import load_calibration

    caches = (load_calibration, fpcal.calibration, face.calibration)
    for c in caches:
        c.cache_clear()
    yield
    for c in caches:
        c.cache_clear()


def test_shipped_calibrations_load(fresh_calibrations):
    from indexer.fusion import common_scale, load_calibration

    assert load_calibration("finger").n_impostors > 0 and load_calibration("face").n_impostors > 0
    scores = common_scale("finger", np.array([0.0, 1.0]))
    assert scores[1] > scores[0]


def test_mismatched_fingerprint_calibration_is_an_error(fresh_calibrations, monkeypatch):
    import matcher.fingerprint.calibration as fpcal

    from indexer.fusion import common_scale

    monkeypatch.setattr(fpcal, "MATCHER_VERSION", "some-other-matcher/9")
    with pytest.raises(CalibrationError, match="some-other-matcher/9"):
        common_scale("finger", np.array([0.5]))


def test_missing_or_mismatched_face_calibration_is_an_error(fresh_calibrations, monkeypatch):
    import matcher.face as face

    from indexer.fusion import load_calibration

    monkeypatch.setattr(face, "MODES", {k: "another-model/2" for k in face.MODES})
    with pytest.raises(CalibrationError):
        load_calibration("face")
    load_calibration.cache_clear()
    face.calibration.cache_clear()
    monkeypatch.setattr(face, "MODES", {})  # no table for the default mode
    with pytest.raises(CalibrationError):
        load_calibration("face")
    with pytest.raises(CalibrationError):
        load_calibration("iris")


def test_search_with_a_broken_calibration_raises(tmp_path, fresh_calibrations, monkeypatch):
    import matcher.face as face

    rng = np.random.default_rng(5)
    st = GalleryStore(tmp_path, create=True)
    s, t = _face(rng, "a")
    st.add_samples([s])
    monkeypatch.setattr(face, "MODES", {k: "another-model/2" for k in face.MODES})
    with pytest.raises(CalibrationError):
        Searcher(st).identify(Probe("face", t))
    st.close()


# -- labels.csv rows that cannot be used ----------------------------------------------------------
needs_samples = pytest.mark.skipif(not (SAMPLES / "labels.csv").is_file(),
                                   reason="data/samples/fingerprints (shipped sample prints) is missing")


def _labelled_source(tmp_path: Path, rows: list[dict]) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    for r in rows:
        if (SAMPLES / "images" / r["file"]).exists():
            shutil.copy(SAMPLES / "images" / r["file"], src / r["file"])
    with (src / "labels.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", "identity", "finger_position", "ppi", "modality"])
        w.writeheader()
        w.writerows(rows)
    return src


@needs_samples
def test_one_bad_label_row_goes_to_the_report_and_the_rest_is_stored(tmp_path):
    good = [{"file": "0001_1.png", "identity": "a", "finger_position": "2", "ppi": "500", "modality": ""},
            {"file": "0002_1.png", "identity": "b", "finger_position": "", "ppi": "", "modality": "finger"}]
    bad = [{"file": "0003_1.png", "identity": "c", "finger_position": "11", "ppi": "500", "modality": ""},
           {"file": "0004_1.png", "identity": "d", "finger_position": "x", "ppi": "500", "modality": ""},
           {"file": "0005_1.png", "identity": "e", "finger_position": "1", "ppi": "lots", "modality": ""},
           {"file": "0001_2.png", "identity": "f", "finger_position": "1", "ppi": "-3", "modality": ""},
           {"file": "0002_2.png", "identity": "g", "finger_position": "1", "ppi": "500", "modality": "iris"},
           {"file": "0003_2.png", "identity": "", "finger_position": "1", "ppi": "500", "modality": ""}]
    src = _labelled_source(tmp_path, good[:1] + bad[:3] + good[1:] + bad[3:])
    items = scan_source(src)
    assert len(items) == 8 and sum(bool(it.invalid) for it in items) == 6
    st = GalleryStore(tmp_path / "store", create=True)
    report = ingest(src, st, workers=1, error_report=tmp_path / "errors.csv")
    assert report.added == 2 and report.failed == 6
    assert sorted(s.name for s in st.subjects()) == ["a", "b"]
    with open(tmp_path / "errors.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert sorted(Path(r["file"]).name for r in rows) == sorted(r["file"] for r in bad)
    assert all(r["error"] == "InvalidLabel" and r["reason"] for r in rows)
    assert any("finger_position" in r["reason"] and "11" in r["reason"] for r in rows)
    st.close()


def test_a_search_may_visit_fewer_inverted_lists_than_the_index():
    rng = np.random.default_rng(4)
    codes = rng.integers(0, 256, (3000, 64), dtype=np.uint8)
    idx = VectorIndex.empty("finger", 512, "BIVF16", {"nprobe": 8})
    idx.train(codes)
    idx.add(codes, np.arange(3000, dtype=np.int64) * faiss_index.FINGER_LABEL_SHIFT)
    q = codes[:20]
    own = idx.search_labels(q, 10)
    assert all(np.array_equal(a, b) for a, b in zip(own, idx.search_labels(q, 10, nprobe=None)))
    assert all(np.array_equal(a, b) for a, b in zip(own, idx.search_labels(q, 10, nprobe=32)))  # never more
    two = idx.search_labels(q, 10, nprobe=2)
    import faiss

    inner = faiss.downcast_IndexBinary(idx.index.index)
    inner.nprobe = 2
    assert all(np.array_equal(a, b) for a, b in zip(two, idx.search_labels(q, 10)))  # as if the index said 2
    inner.nprobe = 8
    assert not np.array_equal(own[0], two[0])  # random codes: 2 of 16 lists miss neighbours
