"""Data protection of a store: deletion leaves nothing behind, refused images leave no file,
orphans are found, job results and images expire as configured, store files are private.

Fingerprints are the shipped synthetic samples (``data/samples/fingerprints``).
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.database import ApiDatabase
from api.extraction import IMAGES_DIR, Limits, enrol_image, image_path
from api.jobs import JOBS_DIR
from api.keys import create_key
from api.service import ServiceConfig
from indexer.store import GalleryStore
from .sample_prints import fp, needs_samples, png

pytestmark = needs_samples
DAY = 86_400.0



def sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def db_bytes(store: Path, name: str) -> bytes:
    """The raw bytes of a database file and its WAL."""
    return b"".join(p.read_bytes() for p in (store / name, store / f"{name}-wal") if p.exists())


def locard(*args: str):
    from locard import app

    return CliRunner().invoke(app, list(args))


class Service:
    """A store with a bureau key, served in-process (with its background threads when ``started``)."""

    def __init__(self, store: Path, started: bool = True, **config):
        self.store = store
        self.key, _ = create_key(ApiDatabase(store), "bureau", "FR")
        self.h = {"X-API-Key": self.key}
        self.app = create_app(ServiceConfig(store=store, **config))
        self.client = TestClient(self.app)
        self.started = started
        if started:
            self.client.__enter__()

    def close(self) -> None:
        if self.started:
            self.client.__exit__(None, None, None)
        else:
            self.app.state.service.close()

    def enrol(self, *images: bytes, reference: str = "", expect: int = 201) -> dict:
        r = self.client.post("/v1/subjects", headers=self.h, data={"reference": reference},
                             files=[("fingerprint", (f"{i}.png", d, "image/png")) for i, d in enumerate(images)])
        assert r.status_code == expect, r.text
        return r.json()

    def templates(self, subject: str) -> list[bytes]:
        with GalleryStore(self.store) as st:
            _, samples = st.subject(subject)
            return [s.template for s in st.samples(ids=[s.id for s in samples])]


@pytest.fixture
def service(tmp_path):
    s = Service(tmp_path / "store")
    yield s
    s.close()


def _distinctive(template: bytes, others: list[bytes]) -> bytes:
    """A 32-byte slice of ``template`` found in none of ``others``."""
    for start in range(len(template) // 2, len(template) - 32):
        piece = template[start:start + 32]
        if len(set(piece)) > 8 and not any(piece in o for o in others):
            return piece
    raise AssertionError("no distinctive slice in the template")


# -- 1. deletion -----------------------------------------------------------------------------------
def test_delete_removes_only_its_images_and_leaves_no_template_bytes(service):
    shared_img, own_img = fp("0001_1"), fp("0001_2")
    reference = "case-DP-4711-do-not-keep"
    gone = service.enrol(shared_img, own_img, reference=reference)["subject"]["id"]
    kept = service.enrol(shared_img, fp("0002_1"))["subject"]["id"]  # holds the same first image
    own_template = service.templates(gone)[1]
    piece = _distinctive(own_template, service.templates(kept))
    assert piece in db_bytes(service.store, "gallery.sqlite")  # the scan can see it before
    assert reference.encode() in db_bytes(service.store, "api.sqlite")
    assert image_path(service.store, sha(own_img)).is_file()

    r = service.client.delete(f"/v1/subjects/{gone}", headers=service.h)
    assert r.status_code == 200 and r.json()["samples"] == 2

    assert not image_path(service.store, sha(own_img)).exists()
    assert image_path(service.store, sha(shared_img)).is_file()  # the other subject still names it
    assert piece not in db_bytes(service.store, "gallery.sqlite")
    assert reference.encode() not in db_bytes(service.store, "api.sqlite")
    # the remaining subject is whole
    assert service.client.get(f"/v1/subjects/{kept}", headers=service.h).json()["finger_samples"] == 2
    assert len(service.templates(kept)) == 2


def test_cli_delete_removes_images_and_template_bytes(tmp_path):
    s = Service(tmp_path / "store")
    img = fp("0003_1")
    subject = s.enrol(img, fp("0003_2"))["subject"]["id"]
    piece = _distinctive(s.templates(subject)[0], [])
    s.close()
    r = locard("subjects", "delete", subject, "--store", str(s.store), "--yes", "--reason", "test")
    assert r.exit_code == 0, r.output
    assert "2 image files" in r.output
    assert files(s.store / IMAGES_DIR) == []
    assert piece not in db_bytes(s.store, "gallery.sqlite")


# -- 2. refused enrolments -------------------------------------------------------------------------
def test_refused_images_leave_no_file(service):
    blank = png(np.full((300, 300), 255, "uint8"))
    r = service.enrol(blank, b"junk, not an image", expect=422)
    assert [i["error"] for i in r["images"]] == ["FailureToEnrol", "UnsupportedFormatError"]
    assert files(service.store / IMAGES_DIR) == []
    # one usable image among refused ones: only that one is kept
    body = service.enrol(blank, fp("0004_1"))
    assert [i["accepted"] for i in body["images"]] == [False, True]
    assert files(service.store / IMAGES_DIR) == [image_path(service.store, sha(fp("0004_1")))]


def test_a_failed_commit_leaves_no_image(service, monkeypatch):
    import sqlite3

    def broken(self, *args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")
    monkeypatch.setattr(GalleryStore, "add_samples", broken)
    with pytest.raises(sqlite3.OperationalError):
        service.client.post("/v1/subjects", headers=service.h, files=[("fingerprint", ("a.png", fp("0004_2")))])
    assert files(service.store / IMAGES_DIR) == []


# -- 3. locard check and orphans -------------------------------------------------------------------
def _age(path: Path, seconds: float) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_check_reports_and_removes_orphans(tmp_path):
    s = Service(tmp_path / "store", started=False)  # no job runner: the job's probe file stays queued
    s.enrol(fp("0005_1"))
    job = s.client.post("/v1/jobs", headers=s.h, files=[("fingerprint", ("p.png", fp("0005_2")))])
    assert job.status_code == 202
    s.close()
    store = s.store
    kept = files(store / IMAGES_DIR) + files(store / JOBS_DIR)
    assert len(kept) == 2
    # what a crash leaves: an image extracted and placed but never committed, a pending image,
    # probe files of a job that was never recorded
    crashed = enrol_image(store, fp("0006_1"), "sub_x", "finger", 0, 500.0, Limits())
    assert not crashed.error and crashed.item.path.is_file()  # the pending file, written before any commit
    placed = image_path(store, sha(fp("0006_2")))
    placed.parent.mkdir(parents=True, exist_ok=True)
    placed.write_bytes(fp("0006_2"))
    lost_job = store / JOBS_DIR / "job_0000000000000000" / "000000"
    lost_job.parent.mkdir(parents=True)
    lost_job.write_bytes(b"probe")
    orphans = [crashed.item.path, placed, lost_job]
    for p in orphans:
        _age(p, 2 * 3600)
    young = image_path(store, sha(fp("0006_3")))  # an enrolment in flight right now
    young.parent.mkdir(parents=True, exist_ok=True)
    young.write_bytes(fp("0006_3"))

    r = locard("check", "--store", str(store))
    assert r.exit_code == 1, r.output
    for p in orphans:
        assert p.relative_to(store).as_posix() in r.output
    assert young.name not in r.output and "1 unreferenced files younger" in r.output
    assert all(p.exists() for p in orphans)  # only reported

    r = locard("check", "--store", str(store), "--remove-orphans")
    assert r.exit_code == 0, r.output
    assert "removed 3 orphan files" in r.output
    assert not any(p.exists() for p in orphans)
    assert all(p.exists() for p in kept) and young.exists()

    r = locard("check", "--store", str(store), "--remove-orphans", "--orphan-grace", "0")
    assert r.exit_code == 0 and not young.exists()
    assert sorted(files(store / IMAGES_DIR) + files(store / JOBS_DIR)) == sorted(kept)


# -- 4. retention ----------------------------------------------------------------------------------
def _wait_done(client, h, jid: str) -> None:
    deadline = time.monotonic() + 120
    while client.get(f"/v1/jobs/{jid}", headers=h).json()["state"] not in ("done", "failed", "cancelled"):
        assert time.monotonic() < deadline, "job did not finish"
        time.sleep(0.1)


def test_purge_expires_finished_jobs_and_only_configured_images(service):
    from api.retention import Retention, purge

    subject = service.enrol(fp("0007_1"))["subject"]["id"]
    jid = service.client.post("/v1/jobs", headers=service.h,
                              files=[("fingerprint", ("p.png", fp("0007_2")))]).json()["id"]
    _wait_done(service.client, service.h, jid)
    img = image_path(service.store, sha(fp("0007_1")))
    db = service.app.state.service.db
    call = service.app.state.service.gallery.call
    now = time.time()

    r = purge(db, call, service.store, Retention(job_days=30), now + 29 * DAY)
    assert r.jobs == [] and service.client.get(f"/v1/jobs/{jid}", headers=service.h).status_code == 200
    # by default images never expire, however old
    r = purge(db, call, service.store, Retention(job_days=30), now + 3650 * DAY)
    assert r.jobs == [jid] and r.images == [] and img.is_file()
    assert service.client.get(f"/v1/jobs/{jid}", headers=service.h).status_code == 404
    assert db.query("SELECT COUNT(*) FROM job_items WHERE job_id=?", (jid,)) == [(0,)]

    # unreferenced files go once older than the grace period, younger ones stay
    orphan = image_path(service.store, sha(b"orphan"))
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"orphan")
    r = purge(db, call, service.store, Retention(orphan_grace_s=3600), time.time() + 60)
    assert r.orphans == [] and orphan.exists()
    r = purge(db, call, service.store, Retention(orphan_grace_s=3600), time.time() + 3601)
    assert r.orphans == [orphan] and not orphan.exists() and img.is_file()

    r = purge(db, call, service.store, Retention(image_days=365), now + 364 * DAY)
    assert r.images == [] and img.is_file()
    r = purge(db, call, service.store, Retention(image_days=365), now + 366 * DAY)
    assert r.images == [img] and not img.exists()
    # the sample and its template stay
    assert service.client.get(f"/v1/subjects/{subject}", headers=service.h).json()["finger_samples"] == 1
    assert len(service.templates(subject)) == 1


def test_server_sweep_with_zero_day_job_retention(tmp_path):
    from api.retention import Retention

    s = Service(tmp_path / "store", retention=Retention(job_days=0, sweep_interval_s=0.2))
    try:
        jid = s.client.post("/v1/jobs", headers=s.h, files=[("fingerprint", ("p.png", fp("0008_2")))]).json()["id"]
        deadline = time.monotonic() + 120
        while s.client.get(f"/v1/jobs/{jid}", headers=s.h).status_code != 404:
            assert time.monotonic() < deadline, "the sweep never expired the finished job"
            time.sleep(0.1)
        assert files(s.store / JOBS_DIR) == []
    finally:
        s.close()


def test_purge_command(tmp_path):
    s = Service(tmp_path / "store")
    jid = s.client.post("/v1/jobs", headers=s.h, files=[("fingerprint", ("p.png", fp("0008_3")))]).json()["id"]
    _wait_done(s.client, s.h, jid)
    s.enrol(fp("0008_1"))
    s.close()
    r = locard("purge", "--store", str(s.store))
    assert r.exit_code == 0 and "purged 0 jobs, 0 image files" in r.output, r.output
    r = locard("purge", "--store", str(s.store), "--job-retention-days", "0")
    assert r.exit_code == 0 and "purged 1 jobs, 0 image files" in r.output, r.output
    assert len(files(s.store / IMAGES_DIR)) == 1


# -- 5. permissions --------------------------------------------------------------------------------
def test_store_files_are_private(tmp_path):
    old = os.umask(0o022)  # a usual login umask: group and others could read
    try:
        s = Service(tmp_path / "store", started=False)
        s.enrol(fp("0009_1"))
        s.client.post("/v1/search", headers=s.h, files=[("fingerprint", ("p.png", fp("0009_2")))])
        assert s.client.post("/v1/jobs", headers=s.h,
                             files=[("fingerprint", ("p.png", fp("0009_3")))]).status_code == 202
        store = s.store
        paths = [store] + sorted(store.rglob("*"))
        names = {p.relative_to(store).as_posix() for p in paths[1:]}
        for expected in ("gallery.sqlite", "gallery.sqlite-wal", "gallery.sqlite-shm", "api.sqlite",
                         "api.sqlite-wal", "api.sqlite-shm", IMAGES_DIR, JOBS_DIR):
            assert expected in names
        assert any(n.endswith(".index") for n in names)
        s.close()
    finally:
        os.umask(old)
    loose = [(p.relative_to(tmp_path).as_posix(), oct(stat.S_IMODE(p.stat().st_mode))) for p in paths
             if p.exists() and stat.S_IMODE(p.stat().st_mode) & 0o077]
    assert loose == []
