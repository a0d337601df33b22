"""ANSI/NIST-ITL transactions over HTTP (issue 12): enrolment, search and batch jobs take a
transaction body and answer in transaction form on request; malformed ones are 422 with the
reader's or each record's message, oversized ones 413, every attempt audited.

Transactions are written here from the shipped sample prints (``data/samples/fingerprints``).
"""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.database import ApiDatabase
from api.extraction import Limits
from api.keys import create_key
from api.service import ServiceConfig
from .sample_prints import fp, needs_samples

pytestmark = needs_samples
TX = "application/x-ansi-nist"


def transaction(name: str, prints: dict[int, str], tcn: str | None = None) -> bytes:
    """A subject transaction of sample prints: ``{finger position: sample name}``."""
    from matcher.imageio import decode_image
    from matcher.interchange import FingerprintSample, write_subject_transaction

    return write_subject_transaction(name, [FingerprintSample(position=pos, pixels=decode_image(fp(s)).pixels)
                                            for pos, s in prints.items()], tcn=tcn)


def damaged(data: bytes, records: int) -> bytes:
    """``data`` with the WSQ start marker of its first ``records`` prints overwritten (same length)."""
    at = 0
    for _ in range(records):
        at = data.index(b"\xff\xa0\xff", at)
        data = data[:at] + b"XX" + data[at + 2:]
    return data


class World:
    def __init__(self, path, limits: Limits):
        db = ApiDatabase(path)
        self.keys = {role: create_key(db, role, "FR")[0] for role in ("bureau", "examiner", "auditor")}
        self.client = TestClient(create_app(ServiceConfig(store=path, limits=limits)))
        self.client.__enter__()

    def h(self, role: str = "bureau", **more) -> dict:
        return {"X-API-Key": self.keys[role], **more}

    def post(self, path: str, body: bytes, role: str = "bureau", accept: str | None = None, **params):
        headers = self.h(role, **{"Content-Type": TX}, **({"Accept": accept} if accept else {}))
        return self.client.post(path, headers=headers, content=body, params=params)

    def audit(self) -> list[dict]:
        return [e["record"] for e in self.client.get("/v1/audit?limit=1000", headers=self.h("auditor")).json()["entries"]]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = World(tmp_path_factory.mktemp("txapi"), Limits(max_images=6, max_request_bytes=2 * 1024 * 1024,
                                                       max_request_pixels=500_000))
    r = w.post("/v1/subjects", transaction("alice", {2: "0001_1", 7: "0002_1"}, tcn="ENR-A"), shared_with="all")
    assert r.status_code == 201, r.text
    w.alice = r.json()
    r = w.post("/v1/subjects", transaction("bob", {2: "0003_1", 7: "0004_1"}), accept=TX)
    assert r.status_code == 201, r.text
    w.bob_answer = r
    yield w
    w.client.__exit__(None, None, None)


def test_enrol_a_transaction_positions_from_records_answer_json_or_transaction(world):
    from matcher.interchange import read_transaction

    out = world.alice
    assert out["subject"]["reference"] == "alice" and out["subject"]["shared_with"] is None
    assert [(i["part"], i["index"], i["finger_position"], i["accepted"]) for i in out["images"]] == [
        ("transaction", 3, 2, True), ("transaction", 4, 7, True)]
    assert out["images"][0]["filename"] == "record 3 (Type-14, IDC 1)"
    assert out["subject"]["finger_samples"] == 2 and out["subject"]["encounters"] == 1
    r = world.bob_answer
    assert r.headers["content-type"] == TX
    tx = read_transaction(r.content)
    assert tx.subject_id == r.headers["x-locard-subject"] and tx.info.type_of_transaction == "SRE"
    bob = world.client.get(f"/v1/subjects/{tx.subject_id}", headers=world.h()).json()
    assert sorted(s["finger_position"] for s in bob["samples"]) == [2, 7] and bob["reference"] == "bob"
    enrolled = [e for e in world.audit() if e["action"] == "enrol" and e.get("outcome") == "enrolled"]
    assert {e["subject"] for e in enrolled} == {out["subject"]["id"], tx.subject_id}


def test_search_with_a_transaction_answers_a_search_response(world):
    from matcher.interchange import read_search_response, read_transaction

    probe = transaction("unknown", {2: "0001_3", 7: "0002_3"}, tcn="PROBE-1")
    r = world.post("/v1/search", probe, role="examiner", accept=f"{TX}, application/json;q=0.5", top=3)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == TX
    tx = read_transaction(r.content)
    assert tx.info.control_reference == "PROBE-1" and tx.info.control_number == r.headers["x-locard-search"]
    candidates = read_search_response(tx)
    assert candidates[0].subject == world.alice["subject"]["id"] and candidates[0].hit
    assert len(candidates) <= 3
    # JSON by default (application/octet-stream body), the same ranking, kept for casework
    r = world.client.post("/v1/search", headers=world.h("examiner", **{"Content-Type": "application/octet-stream"}),
                          content=probe, params={"top": 3, "case": "C-1"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert [c["subject"] for c in out["candidates"]] == [c.subject for c in candidates]
    assert out["control_number"] == "PROBE-1" and out["case"] == "C-1"
    assert [(p["part"], p["finger_position"]) for p in out["probes"]] == [("transaction", 2), ("transaction", 7)]
    stored = world.client.get(f"/v1/searches/{out['search_id']}", headers=world.h("examiner")).json()
    assert stored["control_number"] == "PROBE-1"
    search = next(e for e in world.audit() if e.get("request_id") == out["search_id"])
    assert search["tcn"] == "PROBE-1" and len(search["probes"]) == 2


def _wait(world, jid: str) -> dict:
    t0 = time.time()
    while time.time() - t0 < 120:
        job = world.client.get(f"/v1/jobs/{jid}", headers=world.h()).json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {jid} still {job['state']}")


def test_batch_jobs_of_transactions(world):
    from matcher.interchange import read_search_response, read_transaction

    alice, bob = world.alice["subject"]["id"], world.bob_answer.headers["x-locard-subject"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("b.an2", transaction("q", {2: "0003_2", 7: "0004_2"}, tcn="JOB-B"))
        z.writestr("a.an2", transaction("q", {2: "0001_2"}, tcn="JOB-A"))
        z.writestr("junk.an2", damaged(transaction("q", {2: "0001_4"}), 1))
    r = world.client.post("/v1/jobs", headers=world.h(), files=[("archive", ("tx.zip", buf.getvalue()))])
    assert r.status_code == 202, r.text
    job = _wait(world, r.json()["id"])
    assert (job["state"], job["done"], job["failed"]) == ("done", 2, 1)
    res = world.client.get(f"/v1/jobs/{job['id']}/results", headers=world.h()).json()
    a, b, junk = res["items"]
    assert (a["control_number"], a["candidates"][0]["subject"]) == ("JOB-A", alice)
    assert (b["control_number"], b["candidates"][0]["subject"]) == ("JOB-B", bob)
    assert junk["state"] == "failed" and "record 3 (Type-14, IDC 1)" in junk["error"]
    # each item reports the threshold its hits were judged by: two fingers fused are not one
    from indexer.fusion import decision_threshold

    assert a["threshold"] == pytest.approx(decision_threshold(1e-3, 1)) and junk["threshold"] is None
    assert b["threshold"] == pytest.approx(decision_threshold(1e-3, 2)) != pytest.approx(3.0)
    assert res["threshold"] is None  # the items differ
    assert all(c["hit"] == (c["score"] >= b["threshold"]) for c in b["candidates"])
    r = world.client.get(f"/v1/jobs/{job['id']}/results", headers=world.h(Accept=TX), params={"item": 1})
    assert r.status_code == 200 and r.headers["content-type"] == TX
    tx = read_transaction(r.content)
    assert tx.info.control_reference == "JOB-B" and read_search_response(tx)[0].subject == bob
    assert world.client.get(f"/v1/jobs/{job['id']}/results", headers=world.h(Accept=TX)).status_code == 422
    assert world.client.get(f"/v1/jobs/{job['id']}/results", headers=world.h(Accept=TX),
                            params={"item": 2}).status_code == 409
    # the body itself as a job of one probe (an asynchronous search)
    r = world.post("/v1/jobs", transaction("q", {7: "0002_2"}, tcn="JOB-C"), top=2)
    assert r.status_code == 202, r.text
    job = _wait(world, r.json()["id"])
    r = world.client.get(f"/v1/jobs/{job['id']}/results", headers=world.h(Accept="application/octet-stream"))
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    assert read_transaction(r.content).info.control_reference == "JOB-C"
    assert read_search_response(read_transaction(r.content))[0].subject == alice


def test_malformed_transactions_are_422_with_messages(world):
    good = transaction("carol", {2: "0005_1", 7: "0006_1"})
    r = world.post("/v1/subjects", good[:len(good) // 2])
    assert r.status_code == 422 and r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"].endswith("unreadable-transaction") and "record" in r.json()["detail"]
    r = world.post("/v1/search", b"\x00 not a transaction", role="examiner")
    assert r.status_code == 422 and "not an ANSI/NIST-ITL transaction" in r.json()["detail"]
    from matcher.interchange import write_search_response

    r = world.post("/v1/search", write_search_response([]), role="examiner")  # readable, no image
    assert r.status_code == 422 and "holds no fingerprint or face image" in r.json()["detail"]
    # every record unusable: one message per record
    r = world.post("/v1/subjects", damaged(good, 2))
    assert r.status_code == 422, r.text
    images = r.json()["images"]
    assert [(i["index"], i["accepted"], i["error"]) for i in images] == [
        (3, False, "UnsupportedFormatError"), (4, False, "UnsupportedFormatError")]
    assert all(i["reason"] for i in images)
    r = world.post("/v1/search", damaged(good, 2), role="examiner")
    assert r.status_code == 422 and len(r.json()["images"]) == 2
    # one record damaged: the other is enrolled, the damaged one listed
    r = world.post("/v1/subjects", damaged(good, 1))
    assert r.status_code == 201, r.text
    assert [(i["finger_position"], i["accepted"]) for i in r.json()["images"]] == [(2, False), (7, True)]
    outcomes = [e.get("outcome", "") for e in world.audit()]
    assert "refused: 422" in outcomes and "refused: no usable image" in outcomes


def test_transaction_limits_are_413(world):
    before = len(world.audit())
    r = world.post("/v1/subjects", b"1.001:" + bytes(3 * 1024 * 1024))  # body over 2 MiB
    assert r.status_code == 413 and r.json()["type"].endswith("request-too-large")
    seven = transaction("many", {p: f"000{p}_1" for p in range(1, 8)})
    r = world.post("/v1/subjects", seven)
    assert r.status_code == 413 and "7 images" in r.json()["detail"]
    five = transaction("big", {p: f"000{p}_1" for p in range(1, 6)})  # 5 x 288 x 384 = 0.55 Mpx > 0.5
    r = world.post("/v1/search", five, role="examiner")
    assert r.status_code == 413 and "declare 0.6 million pixels" in r.json()["detail"]
    understated = five.replace(b"14.006:288", b"14.006:001")  # HLL 1 px: the WSQ headers still count
    assert understated.count(b"14.006:001") == 5
    r = world.post("/v1/search", understated, role="examiner")
    assert r.status_code == 413 and "hold 0.6 million pixels" in r.json()["detail"]
    refused = [e for e in world.audit()[before:] if e.get("outcome") == "refused: 413"]
    assert [e["action"] for e in refused] == ["enrol", "search", "search"]
    assert not any(e.get("outcome") == "enrolled" for e in world.audit()[before:])


def test_a_latent_is_set_aside_at_enrolment():
    """NIST's reference latent/exemplar transaction: the raw Type-14 is enrolled, the latent listed."""
    from pathlib import Path

    nist = Path(__file__).resolve().parents[2] / "shared" / "data" / "nist" / "jnbis_reference" / "an2"
    if not (nist / "type-13-14-latent-match.an2").is_file():
        pytest.skip(f"NIST reference transactions absent: {nist}")
    import tempfile

    w = World(Path(tempfile.mkdtemp(prefix="locard-txapi-")), Limits())
    try:
        r = w.post("/v1/subjects", (nist / "type-13-14-latent-match.an2").read_bytes())
        assert r.status_code == 201, r.text
        images = {i["filename"]: i for i in r.json()["images"]}
        latent = images["record 3 (Type-13, IDC 1)"]
        assert not latent["accepted"] and latent["error"] == "SetAside" and "latent" in latent["reason"]
        assert images["record 4 (Type-14, IDC 2)"]["accepted"] and images["record 4 (Type-14, IDC 2)"]["finger_position"] == 8
    finally:
        w.client.__exit__(None, None, None)
