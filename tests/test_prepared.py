"""Cylinders stored beside finger templates: read back bit for bit, written by every enrolment,
deleted with their subject, back-filled for older stores, and a search scores the same with them
as without."""

from __future__ import annotations

import hashlib
import sqlite3

import numpy as np
import pytest
from typer.testing import CliRunner

from benchmarks.search_bench import synthetic_finger_template
from indexer.ingest import ingest
from indexer.prepared import backfill, finger_format, finger_prepared, load_finger_templates
from indexer.search import Probe, Searcher
from indexer.store import SCHEMA_VERSION, GalleryStore, NewSample
from matcher.fingerprint import FORMAT_VERSION, MATCHER_VERSION, Template
from matcher.fingerprint.descriptors import (
    CYLINDERS_FORMAT, DESCRIPTOR_VERSION, cylinders, cylinders_from_bytes, cylinders_to_bytes, load_cylinders)

from .test_ingest import _source

FIELDS = ("bits", "valid", "usable", "full", "ones")


def _same(a, b) -> bool:
    return all(getattr(a, f).dtype == getattr(b, f).dtype and np.array_equal(getattr(a, f), getattr(b, f))
               for f in FIELDS)


def _templates(n: int, seed: int = 3) -> list[Template]:
    rng = np.random.default_rng(seed)
    # decoded from bytes, as a gallery template is
    return [Template.from_bytes(synthetic_finger_template(rng).to_bytes()) for _ in range(n)]


def test_cylinder_bytes_round_trip_and_refuse_what_they_are_not():
    for t in _templates(5):
        c = cylinders(t)
        data = cylinders_to_bytes(c)
        assert len(data) < (c.bits.nbytes + c.valid.nbytes) / 2  # compressed
        assert _same(cylinders_from_bytes(data), c)
        for bad in (b"", data[:6], b"XXXX" + data[4:], data[:-20]):
            with pytest.raises(ValueError):
                cylinders_from_bytes(bad)
    assert CYLINDERS_FORMAT.startswith(DESCRIPTOR_VERSION)


def test_load_cylinders_reads_the_stored_ones_and_computes_when_they_do_not_fit():
    ts = _templates(6)
    a = ts[0]
    other = next(t for t in ts[1:] if len(t) != len(a))
    stored = cylinders_to_bytes(cylinders(a))
    fresh = Template.from_bytes(a.to_bytes())
    assert _same(load_cylinders(fresh, stored), cylinders(a))
    # bytes of a template of another size, corrupt bytes, or none: computed from the template
    for data in (cylinders_to_bytes(cylinders(other)), stored[:-5], None):
        assert _same(load_cylinders(Template.from_bytes(a.to_bytes()), data), cylinders(a))


def _sample(name: str, t: Template, position: int, prepared: bool = True) -> NewSample:
    blob = t.to_bytes()
    fmt, data = finger_prepared(Template.from_bytes(blob)) if prepared else ("", b"")
    return NewSample(subject=name, modality="finger", template=blob, template_version=f"LCFP{FORMAT_VERSION}/{MATCHER_VERSION}",
                     quality=60, sha256=hashlib.sha256(name.encode() + blob).hexdigest(), finger_position=position,
                     prepared=data, prepared_format=fmt)


def test_store_keeps_them_deletes_them_with_the_subject_and_backfills(tmp_path):
    ts = _templates(12)
    with GalleryStore(tmp_path / "g", create=True) as st:
        assert SCHEMA_VERSION >= 4
        ids = st.add_samples([_sample(f"s{i // 4}", t, 1 + i % 4, prepared=i % 2 == 0) for i, t in enumerate(ts)])
        fmt = finger_format()
        assert sorted(st.prepared(ids, fmt)) == ids[::2]
        assert st.prepared(ids, "another-matcher") == {}
        assert st.unprepared_count("finger", fmt) == 6
        assert [s.id for s in st.unprepared("finger", fmt)] == ids[1::2]
        # the loaded templates hold the same cylinders whether stored or computed
        loaded = load_finger_templates(st, ids)
        for sid, t in zip(ids, ts):
            assert _same(cylinders(loaded[sid]), cylinders(Template.from_bytes(t.to_bytes())))
        assert backfill(st, batch=4) == 6
        assert st.unprepared_count("finger", fmt) == 0 and backfill(st) == 0
        stored = st.prepared(ids, fmt)
        for sid, t in zip(ids, ts):
            assert _same(cylinders_from_bytes(stored[sid]), cylinders(Template.from_bytes(t.to_bytes())))
        # a row of an older format is replaced by the back-fill, not kept beside it
        st.con.execute("UPDATE prepared SET format='old' WHERE sample_id=?", (ids[0],))
        assert st.unprepared_count("finger", fmt) == 1 and backfill(st) == 1
        assert st.con.execute("SELECT COUNT(*) FROM prepared").fetchone()[0] == 12
        # rows of a sample deleted meanwhile are dropped
        deleted = st.delete_subject("s0")
        assert st.put_prepared([(deleted[0], fmt, b"x")]) == 0
        left = {r[0] for r in st.con.execute("SELECT sample_id FROM prepared")}
        assert left == set(ids) - set(deleted)
        assert st.integrity_problems() == []
    # nothing of the deleted subject's cylinders is left in the file's pages
    raw = (tmp_path / "g" / "gallery.sqlite").read_bytes()
    assert stored[deleted[1]][8:40] not in raw


def test_search_scores_the_same_with_stored_and_computed_cylinders(tmp_path):
    rng = np.random.default_rng(8)
    fingers = {f"s{i:02d}": {p: synthetic_finger_template(rng) for p in (1, 2)} for i in range(20)}
    probe = Probe("finger", Template.from_bytes(fingers["s05"][1].to_bytes()), finger_position=1)
    results = []
    for prepared in (True, False):
        with GalleryStore(tmp_path / f"g{prepared}", create=True) as st:
            st.add_samples([_sample(s, t, p, prepared) for s, fs in fingers.items() for p, t in fs.items()])
            assert st.unprepared_count("finger", finger_format()) == (0 if prepared else 40)
            r = Searcher(st, cache_bytes_per_finger=0).identify(probe, top=5)
            results.append([(c.subject, c.score) for c in r.candidates])
    assert results[0] == results[1] and results[0][0][0] == "s05"


def test_ingest_stores_them_and_check_and_reindex_say_so(tmp_path):
    from locard import app

    store = tmp_path / "s"
    with GalleryStore(store, create=True) as st:
        report = ingest(_source(tmp_path, fingers=2, bad=False), st)
        assert report.added == 4
        assert st.unprepared_count("finger", finger_format()) == 0
        for s in st.samples("finger"):
            data = st.prepared([s.id], finger_format())[s.id]
            assert _same(cylinders_from_bytes(data), cylinders(Template.from_bytes(s.template)))
    con = sqlite3.connect(store / "gallery.sqlite")
    con.execute("DELETE FROM prepared")
    con.commit()
    con.close()
    r = CliRunner().invoke(app, ["check", "--store", str(store)])
    assert r.exit_code == 0, r.output
    assert "4 samples have no stored cylinders" in r.output
    r = CliRunner().invoke(app, ["reindex", "--store", str(store)])
    assert r.exit_code == 0 and "stored the cylinders of 4 samples" in r.output, r.output
    r = CliRunner().invoke(app, ["check", "--store", str(store)])
    assert r.exit_code == 0 and "no stored cylinders" not in r.output, r.output


def test_index_build_reads_the_stored_cylinders(tmp_path, monkeypatch):
    from indexer.faiss_index import build_index, finger_codes
    from matcher.fingerprint import descriptors

    ts = _templates(8, seed=5)
    with GalleryStore(tmp_path / "g", create=True) as st:
        st.add_samples([_sample(f"s{i}", t, 1, prepared=i < 6) for i, t in enumerate(ts)])
        want = sum(len(finger_codes(Template.from_bytes(t.to_bytes()))) for t in ts)
        computed = []
        fill = descriptors._fill
        monkeypatch.setattr(descriptors, "_fill", lambda *a: (computed.append(1), fill(*a))[1])
        idx = build_index(st, "finger")
        assert idx.ntotal == want and len(computed) == 2  # only the two samples stored without them
