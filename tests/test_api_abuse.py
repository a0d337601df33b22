"""The HTTP service under abuse: ZIP bombs, one key flooding the service, huge probes, malformed
manifests, bodies sent without a key, and worker processes left behind by a killed parent.

Requests that must be refused before their body is read go straight to the ASGI app with a
``receive`` that counts the chunks it hands out; the rest go through FastAPI's TestClient.
"""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.database import ApiDatabase
from api.extraction import Limits
from api.jobs import JOBS_DIR
from api.keys import create_key
from api.service import ServiceConfig
from .sample_prints import SAMPLES, png

ROOT = Path(__file__).resolve().parents[1]
MiB = 1024 * 1024



class Store:
    """A store with two bureau keys and two examiner keys of different bureaus."""

    def __init__(self, path: Path, **config):
        db = ApiDatabase(path)
        self.path = path
        self.keys = {name: create_key(db, role, bureau)[0]
                     for name, role, bureau in (("fr", "bureau", "FR"), ("de", "bureau", "DE"),
                                                ("fr_ex", "examiner", "FR"), ("de_ex", "examiner", "DE"))}
        self.app = create_app(ServiceConfig(store=path, **config))

    def h(self, name: str) -> dict:
        return {"X-API-Key": self.keys[name]}


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


# -- raw ASGI calls ---------------------------------------------------------------------------------
class Upload:
    """The ``receive`` side of one request: ``n`` chunks of ``size`` bytes, counted as handed out."""

    def __init__(self, n: int, size: int, *, gate: asyncio.Event | None = None, multipart: bool = True):
        self.n, self.size, self.gate = n, size, gate
        # the start of a well-formed multipart body, so that a parser reading it finds nothing wrong early
        self.head = b'--xx\r\nContent-Disposition: form-data; name="fingerprint"; filename="a"\r\n\r\n' \
            if multipart else b""
        self.handed = 0
        self.waiting = asyncio.Event()

    async def receive(self):
        if self.gate is not None:
            self.waiting.set()
            await self.gate.wait()
        if self.handed >= self.n:
            return {"type": "http.disconnect"}
        self.handed += 1
        body = (self.head if self.handed == 1 else b"") + b"0" * self.size
        return {"type": "http.request", "body": body, "more_body": self.handed < self.n}


async def asgi_call(app, method: str, path: str, headers: dict, upload: Upload) -> tuple[int, dict]:
    sent: dict = {}

    async def send(msg):
        if msg["type"] == "http.response.start":
            sent["status"] = msg["status"]
            sent["headers"] = {k.decode().lower(): v.decode() for k, v in msg["headers"]}

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
             "headers": [(k.lower().encode(), str(v).encode()) for k, v in headers.items()]}
    await app(scope, upload.receive, send)
    return sent["status"], sent["headers"]


MULTIPART = {"content-type": "multipart/form-data; boundary=xx"}


# -- item 2: ZIP bombs ------------------------------------------------------------------------------
def zip_of_zeros(entries: int, size: int) -> bytes:
    buf = io.BytesIO()
    zero = bytes(size)
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(entries):
            z.writestr(f"p{i:02d}.png", zero)
    return buf.getvalue()


def test_zip_bomb_is_refused_before_anything_is_written(tmp_path):
    bomb = zip_of_zeros(40, 16 * MiB)  # 640 MiB of zeros in well under 1 MB
    assert len(bomb) < 1 * MiB
    st = Store(tmp_path / "s")
    with TestClient(st.app) as c:
        r = c.post("/v1/jobs", headers=st.h("fr"), files=[("archive", ("bomb.zip", bomb, "application/zip"))])
        assert r.status_code in (413, 422), r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert folder_bytes(st.path / JOBS_DIR) <= 64 * 1024
        assert c.get("/metrics", headers=st.h("fr")).status_code == 200


def test_zip_with_a_high_compression_ratio_is_refused(tmp_path):
    """One 8 MiB entry (under the per-image and total limits) that deflates ~1000:1."""
    st = Store(tmp_path / "s")
    with TestClient(st.app) as c:
        r = c.post("/v1/jobs", headers=st.h("fr"),
                   files=[("archive", ("r.zip", zip_of_zeros(1, 8 * MiB), "application/zip"))])
        assert r.status_code == 422, r.text
        assert "ratio" in r.json()["detail"]
        assert folder_bytes(st.path / JOBS_DIR) == 0


def test_zip_total_uncompressed_size_is_limited(tmp_path):
    """Entries that compress only ~2:1 but together exceed the archive limit: 413, nothing written."""
    rng = np.random.default_rng(5)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for i in range(6):
            z.writestr(f"p{i}.bmp", (rng.integers(0, 16, 1 * MiB, dtype=np.uint8)).tobytes())
    st = Store(tmp_path / "s", limits=Limits(max_archive_bytes=4 * MiB))
    with TestClient(st.app) as c:
        r = c.post("/v1/jobs", headers=st.h("fr"), files=[("archive", ("big.zip", buf.getvalue()))])
        assert r.status_code == 413, r.text
        assert folder_bytes(st.path / JOBS_DIR) == 0


def test_zip_entries_are_streamed_with_a_bounded_reader():
    """An entry is read in chunks and the read stops at the limit, whatever its header claims."""
    from api.jobs import read_entry

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("a.png", bytes(3 * MiB))
    with zipfile.ZipFile(buf) as z:
        info = z.infolist()[0]
        assert read_entry(z, info, 4 * MiB) == bytes(3 * MiB)
        with pytest.raises(Exception) as exc:
            read_entry(z, info, 1 * MiB)
        assert getattr(exc.value, "status", None) == 413


# -- item 7: per-key concurrency and the pixel budget -----------------------------------------------
def test_a_key_has_at_most_n_heavy_requests_in_flight(tmp_path):
    st = Store(tmp_path / "s", limits=Limits(max_concurrent_per_key=2))

    async def scenario():
        gate = asyncio.Event()
        held = [Upload(1, 10, gate=gate) for _ in range(2)]
        tasks = [asyncio.create_task(asgi_call(st.app, "POST", "/v1/search", {**st.h("fr_ex"), **MULTIPART}, u))
                 for u in held]
        await asyncio.wait_for(asyncio.gather(*(u.waiting.wait() for u in held)), 60)
        third = Upload(1, 10)
        status, headers = await asgi_call(st.app, "POST", "/v1/search", {**st.h("fr_ex"), **MULTIPART}, third)
        # another key is not held up by the first one's requests
        other = Upload(1, 10, gate=gate)
        other_task = asyncio.create_task(asgi_call(st.app, "POST", "/v1/search",
                                                   {**st.h("de_ex"), **MULTIPART}, other))
        await asyncio.wait_for(other.waiting.wait(), 60)
        gate.set()
        done = await asyncio.gather(*tasks, other_task)
        # once the first two are answered, the key may send again
        again = await asgi_call(st.app, "POST", "/v1/search", {**st.h("fr_ex"), **MULTIPART}, Upload(1, 10))
        return status, headers, third.handed, done, again

    status, headers, handed, done, again = asyncio.run(scenario())
    assert status == 429 and int(headers["retry-after"]) >= 1
    assert handed == 0  # refused before its body was read
    assert all(s != 429 for s, _ in done)
    assert again[0] != 429


def test_pixel_budget_per_request_is_checked_before_decoding(tmp_path, monkeypatch):
    import api.extraction

    decoded = []
    real = api.extraction.decode_image
    monkeypatch.setattr(api.extraction, "decode_image", lambda *a, **k: decoded.append(1) or real(*a, **k))
    big = png(np.zeros((3000, 3000), np.uint8))  # 9 Mpx each: under the per-image limit, 18 Mpx together
    st = Store(tmp_path / "s", limits=Limits(max_image_pixels=10_000_000, max_request_pixels=16_000_000),
               extract_processes=0)
    with TestClient(st.app) as c:
        files = [("fingerprint", (f"{i}.png", big, "image/png")) for i in range(2)]
        r = c.post("/v1/search", headers=st.h("fr_ex"), files=files)
        assert r.status_code == 413, r.text
        assert "pixels" in r.json()["detail"]
        r = c.post("/v1/subjects", headers=st.h("fr"), files=files)
        assert r.status_code == 413, r.text
        r = c.post("/v1/verify/images", headers=st.h("fr_ex"),
                   files=[("image_a", ("a.png", big)), ("image_b", ("b.png", big))])
        assert r.status_code == 413, r.text
        assert decoded == []
        # one such image is within the budget and is decoded
        r = c.post("/v1/search", headers=st.h("fr_ex"), files=files[:1])
        assert r.status_code != 413 and decoded


def test_serve_takes_the_new_limits():
    from typer.testing import CliRunner

    import locard

    out = CliRunner().invoke(locard.app, ["serve", "--help"], env={"COLUMNS": "200"}).output
    assert "--max-request-pixels" in out and "--max-concurrent-per-key" in out


# -- item 8: manifests and bodies without a key -----------------------------------------------------
@pytest.fixture()
def manifest_store(tmp_path):
    root = tmp_path / "probes"
    root.mkdir()
    (root / "ok.png").write_bytes((SAMPLES / "0001_3.png").read_bytes())
    st = Store(tmp_path / "s", manifest_root=root.resolve(), limits=Limits(max_image_bytes=1 * MiB))
    st.root = root
    return st


def test_manifest_path_with_a_nul_byte_or_control_character_is_422(manifest_store):
    st = manifest_store
    with TestClient(st.app) as c:
        for path in ("ok.png\x00.txt", "ok\x00", "ok\n.png", "ok\x1b.png"):
            r = c.post("/v1/jobs/manifest", headers=st.h("fr"), json={"probes": [{"path": path}]})
            assert r.status_code == 422, (path, r.status_code, r.text)


def test_manifest_takes_at_most_10000_probes(manifest_store):
    st = manifest_store
    with TestClient(st.app) as c:
        r = c.post("/v1/jobs/manifest", headers=st.h("fr"), json={"probes": [{"path": "ok.png"}] * 10_001})
        assert r.status_code == 422, r.text
        r = c.post("/v1/jobs/manifest", headers=st.h("fr"), json={"probes": [{"path": "ok.png"}] * 3})
        assert r.status_code == 202, r.text


def test_manifest_file_is_size_checked_before_it_is_read(manifest_store):
    st = manifest_store
    huge = st.root / "huge.png"
    with open(huge, "wb") as f:  # sparse: 2 GiB on paper, nothing on disk
        f.truncate(2 * 1024 * MiB)
    with TestClient(st.app) as c:
        r = c.post("/v1/jobs/manifest", headers=st.h("fr"), json={"probes": [{"path": "huge.png"}]})
        assert r.status_code in (413, 422), r.text
        assert "huge.png" in r.json()["detail"]


def test_manifest_file_that_grows_after_submission_is_not_read_whole(manifest_store):
    """The runner checks the size again and reads at most the limit (+1 byte)."""
    import tracemalloc

    st = manifest_store
    grows = st.root / "grows.png"
    grows.write_bytes((SAMPLES / "0001_3.png").read_bytes())
    c = TestClient(st.app)  # no lifespan: the job runner does not start yet
    r = c.post("/v1/jobs/manifest", headers=st.h("fr"), json={"probes": [{"path": "grows.png"}]})
    assert r.status_code == 202, r.text
    jid = r.json()["id"]
    with open(grows, "r+b") as f:
        f.truncate(512 * MiB)
    runner = st.app.state.service.jobs
    job = runner._next_job()
    tracemalloc.start()
    try:
        runner._run(*job)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 64 * MiB, peak
    res = runner.results("FR", jid)
    assert res.items[0].state == "failed" and "TooLarge" in res.items[0].error
    st.app.state.service.close()


def test_no_key_no_body(tmp_path):
    """A request without a valid key is answered 401 before its 60 MiB body is received."""
    st = Store(tmp_path / "s")
    for headers in ({}, {"X-API-Key": "lk_000000000000_" + "a" * 43}):
        up = Upload(60, MiB)
        status, h = asyncio.run(asgi_call(st.app, "POST", "/v1/search",
                                          {**headers, **MULTIPART, "content-length": 60 * MiB}, up))
        assert status == 401 and "apikey" in h.get("www-authenticate", "").lower()
        assert up.handed == 0, f"{up.handed} MiB received before the 401"


def test_oversized_body_is_refused_before_it_is_read(tmp_path):
    st = Store(tmp_path / "s", limits=Limits(max_request_bytes=8 * MiB))
    up = Upload(60, MiB)
    status, _ = asyncio.run(asgi_call(st.app, "POST", "/v1/search",
                                      {**st.h("fr_ex"), **MULTIPART, "content-length": 60 * MiB}, up))
    assert status == 413 and up.handed == 0
    up = Upload(60, MiB)  # chunked: counted as it arrives, refused once past the limit
    status, _ = asyncio.run(asgi_call(st.app, "POST", "/v1/search", {**st.h("fr_ex"), **MULTIPART}, up))
    assert status == 413 and up.handed <= 9


# -- item 9: workers die with their parent ----------------------------------------------------------
PARENT = textwrap.dedent("""
    import importlib, os, sys, time
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import get_context
    module, name = sys.argv[1].split(":")
    pool = ProcessPoolExecutor(2, mp_context=get_context("spawn"),
                               initializer=getattr(importlib.import_module(module), name))
    pids = set()
    while len(pids) < 2:  # a task runs after its worker's initializer: both workers are set up
        pids |= {f.result() for f in [pool.submit(os.getpid) for _ in range(50)]}
        time.sleep(0.05)
    print(" ".join(map(str, sorted(pids))), flush=True)
    time.sleep(600)
""")


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize("initializer", ["api.extraction:worker_init", "indexer.ingest:_init_worker"])
def test_workers_exit_when_their_parent_is_killed(initializer):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, initializer], cwd=ROOT, stdout=subprocess.PIPE,
                              text=True)
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2
        assert all(_alive(p) for p in pids)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(_alive(p) for p in pids):
            time.sleep(0.2)
        left = [p for p in pids if _alive(p)]
    finally:
        parent.kill()
    for p in left:
        os.kill(p, signal.SIGKILL)
    assert not left, f"worker processes {left} outlived their parent"

