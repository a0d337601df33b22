"""HTTP service through FastAPI's TestClient: roles, bureaus, audit chain, problem details, limits.

Fingerprints are the shipped synthetic samples (``data/samples/fingerprints``); the face is
scikit-image's astronaut photo.  Each test module builds one small store.
"""

from __future__ import annotations

import io
import json
import sqlite3
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.database import ApiDatabase
from api.extraction import Limits
from api.keys import ROLES, create_key
from api.service import ServiceConfig
from .sample_prints import SAMPLES, fp, needs_samples, png

pytestmark = needs_samples



class World:
    """A store with keys for two bureaus (FR, DE) and a third (IT), and a few subjects."""

    def __init__(self, path: Path):
        self.path = path
        db = ApiDatabase(path)
        self.keys = {}
        for bureau in ("FR", "DE", "IT"):
            for role in ROLES:
                self.keys[(bureau, role)], _ = create_key(db, role, bureau, f"test {bureau} {role}")
        self.app = create_app(ServiceConfig(store=path, limits=Limits(max_images=6, max_image_pixels=4_000_000,
                                                                    max_request_bytes=8 * 1024 * 1024)))
        self.client = TestClient(self.app)
        self.client.__enter__()

    def h(self, bureau: str, role: str) -> dict:
        return {"X-API-Key": self.keys[(bureau, role)]}

    def enrol(self, bureau: str, names: list[str], shared_with: str, positions=None, faces=()) -> dict:
        files = [("fingerprint", (f"{n}.png", fp(n), "image/png")) for n in names]
        files += [("face", (f"face{i}.png", f, "image/png")) for i, f in enumerate(faces)]
        data = {} if shared_with is None else {"shared_with": shared_with}
        if positions:
            data["finger_position"] = [str(p) for p in positions]
        r = self.client.post("/v1/subjects", headers=self.h(bureau, "bureau"), files=files, data=data)
        assert r.status_code == 201, r.text
        return r.json()

    def search(self, bureau: str, name: str, role: str = "examiner", top: int = 10) -> dict:
        r = self.client.post("/v1/search", headers=self.h(bureau, role),
                             files=[("fingerprint", (f"{name}.png", fp(name), "image/png"))], data={"top": str(top)})
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("apistore"))
    w.public = w.enrol("FR", ["0001_1", "0001_2"], "all", positions=[2, 2])["subject"]["id"]
    w.secret = w.enrol("FR", ["0002_1", "0002_2"], None)["subject"]["id"]  # no rule sent: FR only
    w.shared = w.enrol("FR", ["0003_1", "0003_2"], "DE")["subject"]["id"]  # FR and DE
    w.german = w.enrol("DE", ["0004_1", "0004_2"], "all")["subject"]["id"]
    yield w
    w.client.__exit__(None, None, None)


# -- basics ---------------------------------------------------------------------------------------
def test_health_needs_no_key_and_openapi_lists_routes(world):
    assert world.client.get("/v1/health").json()["status"] == "ok"
    paths = world.client.get("/openapi.json").json()["paths"]
    for p in ("/v1/subjects", "/v1/search", "/v1/verify", "/v1/audit", "/v1/keys", "/v1/health"):
        assert p in paths


def test_enrolment_reports_quality_and_failed_images(world):
    files = [("fingerprint", ("good.png", fp("0005_1"), "image/png")),
             ("fingerprint", ("text.png", b"not an image at all", "image/png")),
             ("fingerprint", ("blank.png", png(__import__("numpy").full((300, 300), 255, "uint8")), "image/png"))]
    r = world.client.post("/v1/subjects", headers=world.h("FR", "bureau"), files=files,
                          data={"finger_position": ["7", "7", "8"], "reference": "case-17"})
    assert r.status_code == 201, r.text
    body = r.json()
    ok, text, blank = body["images"]
    assert ok["accepted"] and 0 <= ok["quality"] <= 100 and ok["sample_id"] and ok["finger_position"] == 7
    assert not text["accepted"] and text["error"] == "UnsupportedFormatError" and text["reason"]
    assert not blank["accepted"] and blank["error"] == "FailureToEnrol"
    assert body["subject"]["owner"] == "FR" and body["subject"]["reference"] == "case-17"
    assert body["subject"]["finger_samples"] == 1


def test_search_finds_the_mated_subject_at_rank_1_with_pairs(world):
    res = world.search("FR", "0001_3")
    c = res["candidates"][0]
    assert c["subject"] == world.public and c["rank"] == 1 and c["hit"] is True
    ev = c["evidence"][0]
    assert ev["modality"] == "finger" and len(ev["pairs"]) >= 4 and ev["log_fmr"] > 0
    assert res["probes"][0]["accepted"] and res["threshold"] == pytest.approx(3.0)


def test_read_and_list(world):
    r = world.client.get(f"/v1/subjects/{world.public}", headers=world.h("DE", "examiner"))
    assert r.status_code == 200 and r.json()["finger_samples"] == 2
    assert [s["finger_position"] for s in r.json()["samples"]] == [2, 2]
    page = world.client.get("/v1/subjects?limit=2", headers=world.h("FR", "examiner")).json()
    assert len(page["items"]) == 2 and page["total"] >= 4


def test_verify_subject_and_two_images(world):
    r = world.client.post("/v1/verify", headers=world.h("FR", "examiner"), data={"subject": world.public},
                          files=[("fingerprint", ("p.png", fp("0001_4"), "image/png"))])
    assert r.status_code == 200, r.text
    assert r.json()["match"] is True and r.json()["comparisons"][0]["against"].startswith("sample:")
    r = world.client.post("/v1/verify", headers=world.h("FR", "examiner"), data={"subject": world.public},
                          files=[("fingerprint", ("p.png", fp("0006_1"), "image/png"))])
    assert r.json()["match"] is False
    r = world.client.post("/v1/verify/images", headers=world.h("FR", "examiner"),
                          files=[("image_a", ("a.png", fp("0007_1"))), ("image_b", ("b.png", fp("0007_2")))])
    assert r.status_code == 200 and r.json()["match"] is True and r.json()["comparisons"][0]["pairs"]


def test_face_enrol_and_search(world):
    from skimage import data

    face = png(data.astronaut())
    sub = world.enrol("FR", [], "all", faces=[face])["subject"]
    assert sub["face_samples"] == 1
    r = world.client.post("/v1/search", headers=world.h("FR", "examiner"),
                          files=[("face", ("f.png", png(data.astronaut()[::, ::-1].copy()), "image/png"))])
    assert r.status_code == 200, r.text
    assert r.json()["candidates"][0]["subject"] == sub["id"]


# -- problem details and limits -------------------------------------------------------------------
def _is_problem(r, status):
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return body


def test_bad_inputs_are_4xx_problems(world):
    h = world.h("FR", "examiner")
    c = world.client
    _is_problem(c.post("/v1/search", headers=h, files=[("fingerprint", ("x", b"hello"))]), 415)
    _is_problem(c.post("/v1/search", headers=h, files=[("fingerprint", ("x", b""))]), 415)
    _is_problem(c.post("/v1/search", headers=h, files=[("fingerprint", ("x", fp("0001_1")[:300]))]), 422)
    _is_problem(c.post("/v1/search", headers=h, data={"top": "5"}), 422)
    _is_problem(c.post("/v1/search", headers=h, data={"top": "0"},
                       files=[("fingerprint", ("x", fp("0001_3")))]), 422)
    _is_problem(c.post("/v1/search", headers=h, files=[("fingerprint", (f"{i}", fp("0001_3"))) for i in range(7)]), 413)
    big = png(__import__("numpy").zeros((2100, 2100), "uint8"))  # 4.4 Mpx > 4 Mpx limit
    _is_problem(c.post("/v1/search", headers=h, files=[("fingerprint", ("big.png", big))]), 413)
    _is_problem(c.post("/v1/search", headers=h, files=[("fingerprint", ("x", b"0" * (9 * 1024 * 1024)))]), 413)
    _is_problem(c.post("/v1/search", headers=h, data={"finger_position": ["11"]},
                       files=[("fingerprint", ("x", fp("0001_3")))]), 422)
    mid = png(__import__("numpy").zeros((1500, 1500), "uint8"))  # 2.25 Mpx, but 9 Mpx at 500 ppi from 250
    _is_problem(c.post("/v1/search", headers=h, data={"ppi": "250"}, files=[("fingerprint", ("m.png", mid))]), 413)
    _is_problem(c.post("/v1/search", headers=h, data={"ppi": "60"}, files=[("fingerprint", ("x", fp("0001_3")))]), 422)
    def chunked():  # no Content-Length: the limit is counted as the body arrives
        yield b'--xx\r\nContent-Disposition: form-data; name="fingerprint"; filename="a"\r\n\r\n'
        for _ in range(90):
            yield b"0" * 100_000
        yield b"\r\n--xx--\r\n"
    _is_problem(c.post("/v1/search", headers={**h, "Content-Type": "multipart/form-data; boundary=xx"},
                       content=chunked()), 413)
    _is_problem(c.get("/v1/subjects?limit=100000", headers=h), 422)
    _is_problem(c.get("/v1/nowhere", headers=h), 404)
    body = _is_problem(c.get("/v1/subjects", headers={"X-API-Key": "lk_000000000000_" + "a" * 43}), 401)
    assert "X-API-Key" in body["detail"]


# -- role matrix -----------------------------------------------------------------------------------
def _routes(w: World):
    """(method, path, request kwargs, roles allowed, status expected for an allowed role)."""
    probe = {"files": [("fingerprint", ("p.png", fp("0001_3"), "image/png"))]}
    return [
        ("GET", "/v1/subjects", {}, {"examiner", "bureau"}, 200),
        ("GET", f"/v1/subjects/{w.public}", {}, {"examiner", "bureau"}, 200),
        ("POST", "/v1/subjects", {"files": [("fingerprint", ("e.png", b"junk"))]}, {"bureau"}, 422),
        ("DELETE", "/v1/subjects/sub_doesnotexist", {}, {"bureau"}, 404),
        ("POST", "/v1/subjects/sub_doesnotexist/encounters", probe, {"bureau"}, 404),
        ("PUT", f"/v1/subjects/{w.public}/access", {"json": {"shared_with": None}}, {"bureau"}, 200),
        ("POST", "/v1/search", probe, {"examiner", "bureau"}, 200),
        ("POST", "/v1/verify", {**probe, "data": {"subject": w.public}}, {"examiner"}, 200),
        ("POST", "/v1/verify/images", {"files": [("image_a", fp("0001_3")), ("image_b", fp("0001_4"))]},
         {"examiner"}, 200),
        ("POST", "/v1/evidence", {**probe, "data": {"subject": w.public}}, {"examiner"}, 200),
        ("POST", "/v1/compare", {**probe, "data": {"subject": w.public}}, {"examiner"}, 200),
        ("GET", "/v1/searches/srch_unknown", {}, {"examiner"}, 404),
        ("POST", "/v1/searches/srch_unknown/conclusions",
         {"json": {"subject": w.public, "conclusion": "identification"}}, {"examiner"}, 404),
        ("GET", "/v1/searches/srch_unknown/conclusions", {}, {"examiner", "auditor"}, 404),
        ("GET", "/v1/conclusions", {}, {"examiner", "auditor"}, 200),
        ("GET", "/v1/whoami", {}, set(ROLES), 200),
        ("POST", "/v1/jobs", probe, {"bureau"}, 202),
        ("POST", "/v1/jobs/manifest", {"json": {"probes": [{"path": "x.png"}]}}, {"bureau"}, 422),
        ("GET", "/v1/jobs/job_unknown", {}, {"bureau"}, 404),
        ("GET", "/v1/jobs/job_unknown/results", {}, {"bureau"}, 404),
        ("DELETE", "/v1/jobs/job_unknown", {}, {"bureau"}, 404),
        ("GET", "/v1/audit", {}, {"auditor"}, 200),
        ("GET", "/v1/audit/verify", {}, {"auditor"}, 200),
        ("GET", "/v1/keys", {}, {"admin"}, 200),
        ("POST", "/v1/keys", {"json": {"role": "examiner", "bureau": "IT"}}, {"admin"}, 201),
        ("DELETE", "/v1/keys/000000000000", {}, {"admin"}, 404),
        ("GET", "/metrics", {}, set(ROLES), 200),
    ]


def _concrete(w: World, method: str, path: str) -> str:
    """The matrix's path for a schema path template."""
    return (path.replace("{subject_id}", w.public if "access" in path or method == "get" else "sub_doesnotexist")
            .replace("{job_id}", "job_unknown").replace("{search_id}", "srch_unknown")
            .replace("{key_id}", "000000000000"))


def test_role_matrix(world):
    """Every route x every role x no key: 401 without a key, 403 with the wrong role."""
    routes = _routes(world)
    paths = {(m, p) for m, p, *_ in routes}
    schema_paths = world.client.get("/openapi.json").json()["paths"]
    for path, ops in schema_paths.items():
        for method in ops:
            if path == "/v1/health":
                continue
            assert (method.upper(), _concrete(world, method, path)) in paths, \
                f"route {method.upper()} {path} is missing from the matrix"
    failures = []
    for method, path, kw, allowed, ok_status in routes:
        r = world.client.request(method, path, **kw)
        if r.status_code != 401:
            failures.append(f"{method} {path} without key: {r.status_code}")
        for role in ROLES:
            r = world.client.request(method, path, headers=world.h("FR", role), **kw)
            want = ok_status if role in allowed else 403
            if r.status_code != want:
                failures.append(f"{method} {path} as {role}: {r.status_code} (wanted {want}) {r.text[:200]}")
    assert not failures, "\n".join(failures)


def test_whoami_lists_exactly_what_the_role_may_call(world):
    """The workbench shows what /v1/whoami lists: it must be what the role checks let through."""
    schema_paths = world.client.get("/openapi.json").json()["paths"]
    template = {(m.upper(), _concrete(world, m, p)): p for p, ops in schema_paths.items() for m in ops}
    for role in ROLES:
        me = world.client.get("/v1/whoami", headers=world.h("FR", role)).json()
        assert (me["role"], me["bureau"], me["scope"]) == (role, "FR", "bureau")
        listed = {(o["method"], o["path"]) for o in me["operations"]}
        allowed = {(m, template[(m, p)]) for m, p, _, roles, _ in _routes(world) if role in roles}
        assert listed == allowed | {("GET", "/v1/health")}, role


# -- bureaus ----------------------------------------------------------------------------------------
def test_restricted_record_never_reaches_another_bureau(world):
    c = world.client
    # FR sees its own restricted record; DE and IT never do
    assert world.search("FR", "0002_3")["candidates"][0]["subject"] == world.secret
    n_fr = world.search("FR", "0002_3")["gallery_subjects"]
    for bureau in ("DE", "IT"):
        for role in ("examiner", "bureau"):
            res = world.search(bureau, "0002_3", role=role, top=100)
            assert world.secret not in json.dumps(res)
            total = c.get("/v1/subjects?limit=1", headers=world.h(bureau, role)).json()["total"]
            assert res["gallery_subjects"] == total < n_fr
        h = world.h(bureau, "examiner")
        page = c.get("/v1/subjects?limit=1000", headers=h).json()
        assert world.secret not in json.dumps(page)
        hidden = c.get(f"/v1/subjects/{world.secret}", headers=h)
        absent = c.get("/v1/subjects/sub_0000000000000000", headers=h)
        assert hidden.status_code == absent.status_code == 404
        assert hidden.json()["detail"].replace(world.secret, "X") == absent.json()["detail"].replace(
            "sub_0000000000000000", "X")
        v = c.post("/v1/verify", headers=h, data={"subject": world.secret},
                   files=[("fingerprint", ("p.png", fp("0002_3")))])
        assert v.status_code == 404 and world.secret not in json.dumps(v.json()).replace(
            f"no subject {world.secret!r}", "")
        hb = world.h(bureau, "bureau")
        assert c.delete(f"/v1/subjects/{world.secret}", headers=hb).status_code == 404
        assert c.put(f"/v1/subjects/{world.secret}/access", headers=hb,
                     json={"shared_with": None}).status_code == 404
        ev = c.post("/v1/evidence", headers=h, data={"subject": world.secret},
                    files=[("fingerprint", ("p.png", fp("0002_3")))])
        assert ev.status_code == 404
    # shared with DE only: DE sees it, IT does not
    assert world.search("DE", "0003_3")["candidates"][0]["subject"] == world.shared
    assert world.shared not in json.dumps(world.search("IT", "0003_3", top=100))
    # only the owner changes access or deletes
    r = c.put(f"/v1/subjects/{world.shared}/access", headers=world.h("DE", "bureau"), json={"shared_with": None})
    assert r.status_code == 403
    assert c.delete(f"/v1/subjects/{world.german}", headers=world.h("FR", "bureau")).status_code == 403


def test_owner_changes_access_and_deletes(world):
    c = world.client
    sub = world.enrol("FR", ["0008_1"], "none")["subject"]["id"]
    assert c.get(f"/v1/subjects/{sub}", headers=world.h("IT", "examiner")).status_code == 404
    r = c.put(f"/v1/subjects/{sub}/access", headers=world.h("FR", "bureau"), json={"shared_with": ["IT"]})
    assert r.status_code == 200 and r.json()["shared_with"] == ["IT"]
    assert c.get(f"/v1/subjects/{sub}", headers=world.h("IT", "examiner")).status_code == 200
    assert c.delete(f"/v1/subjects/{sub}", headers=world.h("FR", "bureau")).json()["samples"] == 1
    assert c.get(f"/v1/subjects/{sub}", headers=world.h("FR", "examiner")).status_code == 404
    assert sub not in json.dumps(world.search("FR", "0008_2", top=100))


# -- audit ------------------------------------------------------------------------------------------
def test_audit_log_records_actions_and_detects_tampering(world, tmp_path):
    c = world.client
    h = world.h("FR", "auditor")
    entries = []
    after = 0
    while True:
        page = c.get(f"/v1/audit?after={after}&limit=50", headers=h).json()
        entries += page["entries"]
        if page["next_after"] is None:
            break
        after = page["next_after"]
    actions = {e["record"]["action"] for e in entries}
    assert {"enrol", "search", "verify"} <= actions
    search = next(e["record"] for e in entries if e["record"]["action"] == "search")
    assert search["key"] and search["bureau"] and len(search["probes"][0]) == 64 and "candidates" in search
    assert c.get("/v1/audit/verify", headers=h).json()["intact"] is True
    # tamper with a copy of the log
    import shutil

    copy = tmp_path / "copy"
    copy.mkdir()
    src = sqlite3.connect(world.path / "gallery.sqlite")  # the one audit log is the store's
    dst = sqlite3.connect(copy / "gallery.sqlite")
    src.backup(dst)
    src.close()
    runner = CliRunner()
    from locard import app

    res = runner.invoke(app, ["audit", "verify", "--store", str(copy)])
    assert res.exit_code == 0 and "intact" in res.output
    for trigger in ("audit_no_update", "audit_no_delete"):  # an attacker with the file can drop them
        dst.execute(f"DROP TRIGGER {trigger}")
    rec = json.loads(dst.execute("SELECT record FROM audit WHERE seq=2").fetchone()[0])
    rec["candidates"] = []
    dst.execute("UPDATE audit SET record=? WHERE seq=2", (json.dumps(rec, sort_keys=True, separators=(",", ":")),))
    dst.commit()
    res = runner.invoke(app, ["audit", "verify", "--store", str(copy)])
    assert res.exit_code == 1 and "entry 2" in res.output
    dst.execute("UPDATE audit SET record=(SELECT record FROM audit WHERE seq=1) WHERE seq=2")
    dst.execute("DELETE FROM audit WHERE seq=3")
    dst.commit()
    res = runner.invoke(app, ["audit", "verify", "--store", str(copy)])
    assert res.exit_code == 1 and "entry 4" in res.output
    dst.close()
    shutil.rmtree(copy)


def test_keys_cli_and_admin_api(world, tmp_path):
    from locard import app

    runner = CliRunner()
    res = runner.invoke(app, ["keys", "create", "--role", "auditor", "--bureau", "NL", "--store", str(world.path)])
    assert res.exit_code == 0, res.output
    key = res.stdout.strip().splitlines()[0]
    assert key.startswith("lk_")
    assert world.client.get("/v1/audit", headers={"X-API-Key": key}).status_code == 200
    # only the hash is stored
    raw = (world.path / "api.sqlite").read_bytes()
    assert key.encode() not in raw and key.split("_", 2)[2].encode() not in raw
    assert runner.invoke(app, ["keys", "create", "--role", "god", "--bureau", "NL",
                               "--store", str(world.path)]).exit_code == 2
    # admin API: create, list, revoke
    h = world.h("FR", "admin")
    made = world.client.post("/v1/keys", headers=h, json={"role": "examiner", "bureau": "NL"})
    assert made.status_code == 201
    new = made.json()
    assert world.client.get("/v1/subjects", headers={"X-API-Key": new["key"]}).status_code == 200
    assert new["record"]["id"] in {k["id"] for k in world.client.get("/v1/keys", headers=h).json()}
    assert world.client.delete(f"/v1/keys/{new['record']['id']}", headers=h).status_code == 200
    assert world.client.get("/v1/subjects", headers={"X-API-Key": new["key"]}).status_code == 401
    audit = world.client.get("/v1/audit?limit=1000", headers=world.h("FR", "auditor")).json()["entries"]
    assert {"key-create", "key-revoke"} <= {e["record"]["action"] for e in audit}


# -- evidence ---------------------------------------------------------------------------------------
def test_evidence_png_with_source_and_blank_canvas(world, tmp_path):
    import numpy as np
    from PIL import Image

    r = world.client.post("/v1/evidence", headers=world.h("FR", "examiner"), data={"subject": world.public},
                          files=[("fingerprint", ("p.png", fp("0001_3"), "image/png"))])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png" and r.headers["x-locard-gallery-image"] == "source"
    assert int(r.headers["x-locard-pairs"]) >= 4
    img = np.asarray(Image.open(io.BytesIO(r.content)))
    (tmp_path / "evidence.png").write_bytes(r.content)
    assert img.shape[1] >= 2 * 250 and img.ndim == 3
    # the gallery file gone: minutiae on a blank canvas, said in the header
    sub = world.client.get(f"/v1/subjects/{world.german}", headers=world.h("DE", "examiner")).json()
    sha = sub["samples"][0]["image_sha256"]
    from api.extraction import image_path

    path = image_path(world.path, sha)
    moved = tmp_path / "moved"
    path.rename(moved)
    try:
        r = world.client.post("/v1/evidence", headers=world.h("DE", "examiner"),
                              data={"subject": world.german, "sample_id": str(sub["samples"][0]["sample_id"])},
                              files=[("fingerprint", ("p.png", fp("0004_3"), "image/png"))])
        assert r.status_code == 200 and r.headers["x-locard-gallery-image"] == "blank"
    finally:
        moved.rename(path)
    r = world.client.post("/v1/evidence", headers=world.h("FR", "examiner"),
                          data={"subject": world.public, "sample_id": "999999"},
                          files=[("fingerprint", ("p.png", fp("0001_3"), "image/png"))])
    assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json")


# -- batch jobs -------------------------------------------------------------------------------------
def _wait(client, h, jid, timeout=120.0):
    import time

    t0 = time.time()
    while time.time() - t0 < timeout:
        job = client.get(f"/v1/jobs/{jid}", headers=h).json()
        if job["state"] in ("done", "cancelled", "failed"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {jid} still {job['state']} after {timeout} s")


def test_batch_job_multipart_archive_csv_and_bureau_filter(world):
    import zipfile

    c = world.client
    h = world.h("DE", "bureau")
    files = [("fingerprint", ("a.png", fp("0004_3"))), ("fingerprint", ("secret.png", fp("0002_3"))),
             ("fingerprint", ("junk.png", b"junk"))]
    r = c.post("/v1/jobs", headers=h, files=files, data={"top": "5"})
    assert r.status_code == 202, r.text
    jid = r.json()["id"]
    job = _wait(c, h, jid)
    assert job["state"] == "done" and job["total"] == 3 and job["done"] == 2 and job["failed"] == 1
    assert job["progress"] == 1.0
    res = c.get(f"/v1/jobs/{jid}/results", headers=h).json()
    a, secret, junk = res["items"]
    assert a["candidates"][0]["subject"] == world.german
    assert world.secret not in json.dumps(res)  # FR's restricted record never reaches DE
    assert junk["state"] == "failed" and "UnsupportedFormat" in junk["error"]
    csv_text = c.get(f"/v1/jobs/{jid}/results?format=csv", headers=h).text
    assert csv_text.startswith("index,label,state,error,rank,subject,score,hit") and world.german in csv_text
    assert world.secret not in csv_text
    # another bureau cannot see the job at all
    for role_h in (world.h("FR", "bureau"), world.h("IT", "bureau")):
        assert c.get(f"/v1/jobs/{jid}", headers=role_h).status_code == 404
        assert c.get(f"/v1/jobs/{jid}/results", headers=role_h).status_code == 404
    # ZIP archive
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("p/0001_3.png", fp("0001_3"))
        z.writestr("p/0003_4.png", fp("0003_4"))
    r = c.post("/v1/jobs", headers=h, files=[("archive", ("probes.zip", buf.getvalue(), "application/zip"))])
    assert r.status_code == 202, r.text
    job = _wait(c, h, r.json()["id"])
    res = c.get(f"/v1/jobs/{job['id']}/results", headers=h).json()
    assert [i["candidates"][0]["subject"] for i in res["items"]] == [world.public, world.shared]
    r = c.post("/v1/jobs", headers=h, files=[("archive", ("probes.zip", b"not a zip"))])
    assert r.status_code == 415
    # audit: one search entry per batch probe (the jobs are DE's: DE's auditor reads them)
    audit = c.get("/v1/audit?limit=1000", headers=world.h("DE", "auditor")).json()["entries"]
    assert sum(1 for e in audit if e["record"].get("batch")) >= 4


def test_batch_job_survives_restart_and_can_be_cancelled(tmp_path):
    store = tmp_path / "s"
    db = ApiDatabase(store)
    key, _ = create_key(db, "bureau", "FR")
    h = {"X-API-Key": key}
    first = create_app(ServiceConfig(store=store))
    c1 = TestClient(first)  # no lifespan: the job runner does not start ("server down")
    r = c1.post("/v1/subjects", headers=h, data={"shared_with": "all"},
                files=[("fingerprint", ("a.png", fp("0009_1")))])
    assert r.status_code == 201
    sub = r.json()["subject"]["id"]
    jid = c1.post("/v1/jobs", headers=h, files=[("fingerprint", ("p.png", fp("0009_2")))]).json()["id"]
    cancelled = c1.post("/v1/jobs", headers=h, files=[("fingerprint", ("p.png", fp("0009_3")))]).json()["id"]
    assert c1.delete(f"/v1/jobs/{cancelled}", headers=h).json()["state"] == "cancelled"
    assert c1.get(f"/v1/jobs/{jid}", headers=h).json()["state"] == "queued"
    first.state.service.close()
    second = create_app(ServiceConfig(store=store))
    with TestClient(second) as c2:
        job = _wait(c2, h, jid)
        assert job["state"] == "done"
        assert c2.get(f"/v1/jobs/{jid}/results", headers=h).json()["items"][0]["candidates"][0]["subject"] == sub
        assert c2.get(f"/v1/jobs/{cancelled}", headers=h).json()["state"] == "cancelled"


def test_manifest_job(tmp_path):
    store = tmp_path / "s"
    db = ApiDatabase(store)
    key, _ = create_key(db, "bureau", "FR")
    h = {"X-API-Key": key}
    app = create_app(ServiceConfig(store=store, manifest_root=SAMPLES.resolve()))
    with TestClient(app) as c:
        assert c.post("/v1/subjects", headers=h, files=[("fingerprint", ("a.png", fp("0010_1")))]).status_code == 201
        r = c.post("/v1/jobs/manifest", headers=h, json={"probes": [{"path": "0010_2.png", "label": "x"}]})
        assert r.status_code == 202, r.text
        job = _wait(c, h, r.json()["id"])
        assert job["done"] == 1
        bad = c.post("/v1/jobs/manifest", headers=h, json={"probes": [{"path": "../labels.csv"}]})
        assert bad.status_code == 422 and "manifest root" in bad.json()["detail"]


def test_metrics_in_prometheus_format(world):
    world.client.get("/v1/health")
    r = world.client.get("/metrics", headers=world.h("IT", "auditor"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    assert 'locard_http_requests_total{method="GET",route="/v1/health",status="200"}' in r.text
    assert "locard_http_request_seconds_bucket" in r.text and "locard_batch_jobs" in r.text


def test_new_encounter_only_by_the_owner(world):
    c = world.client
    sub = world.enrol("DE", ["0014_1"], "all")["subject"]["id"]
    files = [("fingerprint", ("b.png", fp("0014_2")))]
    assert c.post(f"/v1/subjects/{sub}/encounters", headers=world.h("FR", "bureau"), files=files).status_code == 403
    r = c.post(f"/v1/subjects/{sub}/encounters", headers=world.h("DE", "bureau"), files=files)
    assert r.status_code == 201, r.text
    assert r.json()["subject"]["encounters"] == 2 and r.json()["subject"]["finger_samples"] == 2
    hidden = c.post(f"/v1/subjects/{world.secret}/encounters", headers=world.h("DE", "bureau"), files=files)
    assert hidden.status_code == 404


def test_fused_finger_and_face_search(world):
    from skimage import data

    face = data.astronaut()
    sub = world.enrol("FR", ["0013_1"], "all", faces=[png(face)])["subject"]["id"]
    r = world.client.post("/v1/search", headers=world.h("FR", "examiner"),
                          files=[("fingerprint", ("p.png", fp("0013_2"))),
                                 ("face", ("f.png", png(face[8:, 8:].copy())))])
    assert r.status_code == 200, r.text
    top = r.json()["candidates"][0]
    assert top["subject"] == sub
    assert sorted(e["modality"] for e in top["evidence"]) == ["face", "finger"]
    assert top["score"] == pytest.approx(sum(e["log_fmr"] for e in top["evidence"]))
