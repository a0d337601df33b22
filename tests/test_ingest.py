"""Ingest: bad files reported and skipped, resume by SHA-256, durability under SIGKILL."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from indexer.faiss_index import check_index
from indexer.ingest import ingest, scan_source
from indexer.store import GalleryStore

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples" / "fingerprints"
pytestmark = pytest.mark.skipif(not (SAMPLES / "labels.csv").is_file(),
                                reason="data/samples/fingerprints (shipped sample prints) is missing")


def _source(tmp_path: Path, fingers: int, bad: bool = True) -> Path:
    """A source folder: ``fingers`` x 2 good sample prints, plus bad files when asked."""
    src = tmp_path / "src"
    (src / "images").mkdir(parents=True)
    rows = []
    for it in scan_source(SAMPLES):
        if int(it.identity) <= fingers and it.path.stem.endswith(("_1", "_2")):
            shutil.copy(it.path, src / "images" / it.path.name)
            rows.append({"file": f"images/{it.path.name}", "identity": it.identity, "ppi": "500",
                         "finger_position": "2", "site": "lab"})
    if bad:
        good = (src / "images" / "0001_1.png").read_bytes()
        (src / "images" / "truncated.png").write_bytes(good[: len(good) // 3])
        (src / "images" / "empty.png").write_bytes(b"")
        (src / "images" / "notes.png").write_bytes(b"this is not an image\n" * 10)
        (src / "images" / "blank.png").write_bytes(_blank_png())
        rows += [{"file": f"images/{n}", "identity": "bad", "ppi": "500", "finger_position": "2", "site": "lab"}
                 for n in ("truncated.png", "empty.png", "notes.png", "blank.png", "missing.png")]
    with (src / "labels.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["file", "identity", "ppi", "finger_position", "site"])
        w.writeheader()
        w.writerows(rows)
    return src


def _blank_png() -> bytes:
    import cv2
    import numpy as np

    ok, buf = cv2.imencode(".png", np.full((300, 300), 255, np.uint8))
    return buf.tobytes()


def test_bad_files_reported_rest_lands_and_resume(tmp_path):
    src = _source(tmp_path, fingers=3)
    st = GalleryStore(tmp_path / "store", create=True)
    rep = ingest(src, st, workers=1)
    assert rep.added == 6
    assert rep.failed == 5
    with rep.error_report.open() as fh:
        rows = list(csv.DictReader(fh))
    by_file = {Path(r["file"]).name: r for r in rows}
    assert set(by_file) == {"truncated.png", "empty.png", "notes.png", "blank.png", "missing.png"}
    assert by_file["missing.png"]["error"] == "UnreadableFile"
    assert by_file["empty.png"]["error"] == "EmptyImageError"
    assert by_file["blank.png"]["error"] == "FailureToEnrol"
    assert all(r["reason"] for r in rows)
    sub, samples = st.subject("0001")
    assert samples[0].finger_position == 2 and samples[0].metadata == {"site": "lab", "ppi": 500.0}
    assert len(samples[0].sha256) == 64
    assert check_index(st, "finger") == []
    # a second run skips everything already stored and retries only the failures
    rep2 = ingest(src, st, workers=1)
    assert rep2.added == 0 and rep2.skipped == 6 and rep2.failed == 5
    st.close()


def test_cli_ingest_parallel_workers(tmp_path):
    from locard import app

    src = _source(tmp_path, fingers=2)
    out = tmp_path / "errors.csv"
    r = CliRunner().invoke(app, ["ingest", str(src), "--store", str(tmp_path / "s"), "--workers", "2",
                                 "--errors", str(out)])
    assert r.exit_code == 0, r.output
    assert "4 added" in r.output and "5 failed" in r.output
    assert out.is_file() and len(out.read_text().splitlines()) == 6


def test_folder_of_images_without_labels(tmp_path):
    src = tmp_path / "imgs"
    (src / "0001").mkdir(parents=True)
    shutil.copy(SAMPLES / "images" / "0001_1.png", src / "0001" / "a.png")
    shutil.copy(SAMPLES / "images" / "0002_1.png", src / "0002_1.png")
    items = scan_source(src)
    assert sorted((it.identity, it.modality) for it in items) == [("0001", "finger"), ("0002_1", "finger")]


def test_sigkill_mid_ingest_loses_nothing_committed(tmp_path):
    """Kill -9 an ingest while it commits; every committed sample survives, check passes, resume ends it."""
    src = _source(tmp_path, fingers=16, bad=False)
    store = tmp_path / "store"
    code = ("import sys; from indexer.store import GalleryStore; from indexer.ingest import ingest; "
            "st = GalleryStore(sys.argv[2], create=True); "
            "ingest(sys.argv[1], st, workers=1, commit_every=1)")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-c", code, str(src), str(store)], cwd=ROOT, env=env)
    db = store / "gallery.sqlite"
    seen = 0
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if db.exists():
                try:
                    con = sqlite3.connect(db, timeout=1)
                    seen = con.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
                    con.close()
                except sqlite3.OperationalError:
                    pass
                if seen >= 3:
                    break
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the ingest finished before it could be killed"
    st = GalleryStore(store)
    committed = st.count("finger")
    assert committed >= seen >= 3
    assert committed < 32
    assert st.integrity_problems() == []
    # the index file was never written (the kill came first) or is behind: check passes,
    # and opening the store builds or replays it
    from locard import app

    r = CliRunner().invoke(app, ["check", "--store", str(store)])
    assert r.exit_code == 0, r.output
    from indexer.faiss_index import open_index

    open_index(st, "finger")
    assert check_index(st, "finger") == []
    rep = ingest(src, st, workers=1)
    assert rep.skipped == committed and rep.added == 32 - committed
    assert st.count("finger") == 32 and check_index(st, "finger") == []
    r = CliRunner().invoke(app, ["check", "--store", str(store)])
    assert r.exit_code == 0, r.output
    st.close()
