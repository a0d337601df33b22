"""End to end against a real ``locard serve`` process on 127.0.0.1.

Keys are made with ``locard keys create``; the server is started with ``locard serve``;
requests go over HTTP with httpx.  Real prints (FVC2002 DB1_B) and faces (LFW, 10
identities) from ``../shared/data`` are used when present (those tests skip with the
reason otherwise); the shipped generated prints always run.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from api.local import start_server

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples" / "fingerprints" / "images"
SHARED = ROOT.parent / "shared" / "data"
FVC = SHARED / "fingerprint" / "fvc2002_db1_b" / "images"
LFW = SHARED / "face" / "lfw_original_10ids" / "images"


def _locard(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "locard", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=True)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    store = tmp_path_factory.mktemp("e2e-store")
    store.mkdir(exist_ok=True)
    keys = {}
    for role, bureau in (("bureau", "FR"), ("examiner", "FR"), ("examiner", "DE"), ("auditor", "FR")):
        keys[(role, bureau)] = _locard("keys", "create", "--role", role, "--bureau", bureau,
                                       "--store", str(store)).stdout.strip()
    # the concurrency test below sends up to 8 requests at once with one key (the default allows 2)
    server = start_server(store, "--max-concurrent-per-key", "8", log_path=store / "server.log", timeout=90)
    client = httpx.Client(base_url=server.base_url, timeout=120)
    yield client, keys, store
    client.close()
    server.stop()


def _enrol(client, key, files, shared="all"):
    r = client.post("/v1/subjects", headers={"X-API-Key": key}, files=files, data={"shared_with": shared})
    assert r.status_code == 201, r.text
    return r.json()["subject"]["id"]


def _rank1(client, key, files):
    r = client.post("/v1/search", headers={"X-API-Key": key}, files=files)
    assert r.status_code == 200, r.text
    return r.json()["candidates"][0]["subject"]


def test_generated_prints_end_to_end(server):
    client, keys, store = server
    ids = {}
    for finger in ("0011", "0012", "0013"):
        ids[finger] = _enrol(client, keys[("bureau", "FR")],
                             [("fingerprint", (f"{finger}_1.png", (SAMPLES / f"{finger}_1.png").read_bytes()))])
    probe = [("fingerprint", ("p.png", (SAMPLES / "0012_3.png").read_bytes()))]
    assert _rank1(client, keys[("examiner", "FR")], probe) == ids["0012"]
    # the health route answers while a search is running (extraction runs off the event loop)
    import threading

    done = []
    th = threading.Thread(target=lambda: done.append(_rank1(client, keys[("examiner", "FR")], probe)))
    th.start()
    t0 = time.time()
    assert client.get("/v1/health").status_code == 200
    health_s = time.time() - t0
    th.join()
    assert done == [ids["0012"]] and health_s < 2.0
    # problem details over the wire
    r = client.post("/v1/search", headers={"X-API-Key": keys[("examiner", "FR")]},
                    files=[("fingerprint", ("x", b"junk"))])
    assert r.status_code == 415 and r.headers["content-type"].startswith("application/problem+json")
    assert client.get("/v1/subjects").status_code == 401
    r = client.get("/v1/audit/verify", headers={"X-API-Key": keys[("auditor", "FR")]})
    assert r.json()["intact"] is True


@pytest.mark.skipif(not FVC.is_dir(), reason=f"real prints absent: {FVC} (../shared/data is not on this machine)")
def test_real_fingerprints_rank1(server):
    client, keys, _ = server
    ids = {}
    for finger in range(101, 109):
        ids[finger] = _enrol(client, keys[("bureau", "FR")],
                             [("fingerprint", (f"{finger}_1.tif", (FVC / f"{finger}_1.tif").read_bytes())),
                              ("fingerprint", (f"{finger}_2.tif", (FVC / f"{finger}_2.tif").read_bytes()))])
    for finger in (101, 104, 107):
        got = _rank1(client, keys[("examiner", "FR")],
                     [("fingerprint", ("p.tif", (FVC / f"{finger}_5.tif").read_bytes()))])
        assert got == ids[finger], f"finger {finger}: rank 1 is {got}, not {ids[finger]}"


@pytest.mark.skipif(not LFW.is_dir(), reason=f"real faces absent: {LFW} (../shared/data is not on this machine)")
def test_real_faces_rank1_and_bureau_restriction(server):
    client, keys, _ = server
    people = ["Colin_Powell", "Tony_Blair", "Hugo_Chavez", "Gerhard_Schroeder"]
    ids = {}
    for p in people:
        ids[p] = _enrol(client, keys[("bureau", "FR")],
                        [("face", (f"{p}_1.jpg", (LFW / p / f"{p}_0001.jpg").read_bytes()))],
                        shared="none" if p == "Tony_Blair" else "all")
    for p in people:
        probe = [("face", ("q.jpg", (LFW / p / f"{p}_0002.jpg").read_bytes()))]
        assert _rank1(client, keys[("examiner", "FR")], probe) == ids[p]
    probe = [("face", ("q.jpg", (LFW / "Tony_Blair" / "Tony_Blair_0002.jpg").read_bytes()))]
    r = client.post("/v1/search", headers={"X-API-Key": keys[("examiner", "DE")]}, files=probe, data={"top": "100"})
    assert r.status_code == 200 and ids["Tony_Blair"] not in r.text


def test_concurrent_enrolments_and_searches_keep_the_store_consistent(server):
    from concurrent.futures import ThreadPoolExecutor

    client, keys, store = server
    kb, ke = keys[("bureau", "FR")], keys[("examiner", "FR")]
    fingers = ["0014", "0015", "0016", "0010", "0009", "0008"]

    def enrol(f):
        return f, _enrol(client, kb, [("fingerprint", (f"{f}_1.png", (SAMPLES / f"{f}_1.png").read_bytes())),
                                      ("fingerprint", (f"{f}_2.png", (SAMPLES / f"{f}_2.png").read_bytes()))])

    def search(f):
        r = client.post("/v1/search", headers={"X-API-Key": ke},
                        files=[("fingerprint", ("p.png", (SAMPLES / "0012_4.png").read_bytes()))])
        return r.status_code

    with ThreadPoolExecutor(8) as pool:
        enrolled = pool.map(enrol, fingers)
        searched = pool.map(search, fingers)
        ids = dict(enrolled)
        assert list(searched) == [200] * len(fingers)
    for f in fingers:
        assert _rank1(client, ke, [("fingerprint", ("p.png", (SAMPLES / f"{f}_3.png").read_bytes()))]) == ids[f]
    check = subprocess.run([sys.executable, "-m", "locard", "check", "--store", str(store)], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stdout + check.stderr
    r = client.get("/v1/audit/verify", headers={"X-API-Key": keys[("auditor", "FR")]})
    assert r.json()["intact"] is True


def test_batch_job_survives_a_killed_server(tmp_path):
    store = tmp_path / "store"
    store.mkdir()
    key = _locard("keys", "create", "--role", "bureau", "--bureau", "FR", "--store", str(store)).stdout.strip()
    h = {"X-API-Key": key}
    server = start_server(store, timeout=90)
    client = httpx.Client(base_url=server.base_url, timeout=120)
    try:
        sub = _enrol(client, key, [("fingerprint", ("a.png", (SAMPLES / "0005_1.png").read_bytes()))])
        probes = [("fingerprint", (f"p{i}.png", (SAMPLES / f"0005_{2 + i % 3}.png").read_bytes())) for i in range(40)]
        r = client.post("/v1/jobs", headers=h, files=probes, data={"top": "3"})
        assert r.status_code == 202, r.text
        jid = r.json()["id"]
        t0 = time.time()
        while client.get(f"/v1/jobs/{jid}", headers=h).json()["done"] < 2 and time.time() - t0 < 120:
            time.sleep(0.05)
    finally:
        server.crash()
        client.close()
    import sqlite3

    con = sqlite3.connect(store / "api.sqlite")
    done_at_kill = con.execute("SELECT done FROM jobs WHERE id=?", (jid,)).fetchone()[0]
    con.close()
    assert 2 <= done_at_kill < 40, f"the server was to be killed mid-job (done {done_at_kill})"
    server = start_server(store, timeout=90)
    client = httpx.Client(base_url=server.base_url, timeout=120)
    try:
        t0 = time.time()
        while (job := client.get(f"/v1/jobs/{jid}", headers=h).json())["state"] not in ("done", "failed"):
            assert time.time() - t0 < 180, job
            time.sleep(0.3)
        assert job["state"] == "done" and job["done"] == 40 and job["failed"] == 0, job
        items = client.get(f"/v1/jobs/{jid}/results", headers=h).json()["items"]
        assert len(items) == 40 and all(i["candidates"][0]["subject"] == sub for i in items)
    finally:
        server.stop()
        client.close()
