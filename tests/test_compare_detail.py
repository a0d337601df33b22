"""``POST /v1/compare``: both sides of a comparison as data for the workbench's compare view
(``api/comparison.py``), through FastAPI's TestClient.

Fingerprints are the shipped synthetic samples; the face is scikit-image's astronaut photo.
"""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from api.database import ApiDatabase
from api.extraction import image_path
from api.keys import create_key
from api.service import ServiceConfig
from .sample_prints import fp, needs_samples, png

pytestmark = needs_samples


def decoded(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from skimage import data

    path = tmp_path_factory.mktemp("compare")
    db = ApiDatabase(path)
    keys = {(b, r): create_key(db, r, b)[0] for b in ("FR", "DE") for r in ("examiner", "bureau", "auditor")}
    client = TestClient(create_app(ServiceConfig(store=path)))
    client.__enter__()

    def h(bureau, role="examiner"):
        return {"X-API-Key": keys[(bureau, role)]}

    def enrol(files, shared):
        r = client.post("/v1/subjects", headers=h("FR", "bureau"), files=files, data={"shared_with": shared})
        assert r.status_code == 201, r.text
        return r.json()["subject"]

    class W:
        pass
    w = W()
    w.path, w.client, w.h = path, client, h
    w.print_subject = enrol([("fingerprint", ("a.png", fp("0001_1"))), ("fingerprint", ("b.png", fp("0001_2")))], "all")
    w.secret = enrol([("fingerprint", ("s.png", fp("0002_1")))], "none")["id"]
    w.face_subject = enrol([("face", ("f.png", png(data.astronaut())))], "all")["id"]
    w.face_probe = png(data.astronaut()[::, ::-1].copy())
    yield w
    client.__exit__(None, None, None)


def compare(w, bureau="FR", role="examiner", **kw):
    files = kw.pop("files", [("fingerprint", ("p.png", fp("0001_3"), "image/png"))])
    return w.client.post("/v1/compare", headers=w.h(bureau, role), files=files, data=kw)


def test_fingerprint_sides_minutiae_pairs_and_score(world):
    r = compare(world, subject=world.print_subject["id"])
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["modality"] == "finger" and out["subject"] == world.print_subject["id"]
    assert out["sample_id"] in {s["sample_id"] for s in world.print_subject["samples"]}
    assert out["log_fmr"] > 3 and out["decision_fmr_1e3"] is True and out["score"] > 5  # cohort-normalised
    for side in ("probe", "gallery"):
        s = out[side]
        assert s["ppi"] == 500 and s["image_note"] is None and s["enhanced_note"] is None
        assert decoded(s["image_png"]).shape == (s["height"], s["width"])
        enhanced = decoded(s["enhanced_png"])
        assert enhanced.shape == (s["height"], s["width"]) and enhanced.min() < 80 and enhanced.max() == 255
        assert len(s["minutiae"]) >= 4
        for m in s["minutiae"]:
            assert 0 <= m["x"] < s["width"] and 0 <= m["y"] < s["height"]
            assert 0 <= m["direction"] < 2 * np.pi + 1e-6 and m["type"] in (1, 2) and 0 <= m["quality"] <= 100
    pairs = out["pairs"]
    assert len(pairs) >= 4 and len({p for p, _ in pairs}) == len(pairs) == len({g for _, g in pairs})
    assert all(p < len(out["probe"]["minutiae"]) and g < len(out["gallery"]["minutiae"]) for p, g in pairs)
    # the evidence PNG is drawn from the same pieces: same sample, same score
    ev = world.client.post("/v1/evidence", headers=world.h("FR"), data={"subject": world.print_subject["id"]},
                           files=[("fingerprint", ("p.png", fp("0001_3"), "image/png"))])
    assert int(ev.headers["x-locard-sample"]) == out["sample_id"]
    assert float(ev.headers["x-locard-score"]) == pytest.approx(out["score"], abs=1e-6)
    assert int(ev.headers["x-locard-pairs"]) == len(pairs)


def test_given_sample_and_a_non_mate(world):
    other = [s["sample_id"] for s in world.print_subject["samples"]][1]
    r = compare(world, subject=world.print_subject["id"], sample_id=str(other))
    assert r.status_code == 200 and r.json()["sample_id"] == other
    r = compare(world, subject=world.print_subject["id"], files=[("fingerprint", ("n.png", fp("0006_1")))])
    assert r.status_code == 200 and r.json()["decision_fmr_1e3"] is False and r.json()["log_fmr"] < 3
    assert compare(world, subject=world.print_subject["id"], sample_id="999999").status_code == 404


def test_gallery_image_missing_or_changed_is_said_not_hidden(world, tmp_path):
    sample = world.print_subject["samples"][0]
    path = image_path(world.path, sample["image_sha256"])
    original = path.read_bytes()
    moved = tmp_path / "moved"
    path.rename(moved)
    try:
        out = compare(world, subject=world.print_subject["id"], sample_id=str(sample["sample_id"])).json()
        g = out["gallery"]
        assert g["image_png"] is None and g["image_note"] == "gallery image not reachable"
        assert g["enhanced_png"] is None and g["enhanced_note"] and len(g["minutiae"]) >= 4
        assert out["probe"]["image_png"] and out["pairs"]
        path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))  # one bit differs
        g = compare(world, subject=world.print_subject["id"], sample_id=str(sample["sample_id"])).json()["gallery"]
        assert g["image_png"] is None and "SHA-256" in g["image_note"]
    finally:
        moved.replace(path)


def test_faces_compare_as_aligned_crops(world):
    r = compare(world, subject=world.face_subject, files=[("face", ("f.png", world.face_probe, "image/png"))])
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["modality"] == "face" and out["pairs"] == [] and out["decision_fmr_1e3"] is True
    for side in ("probe", "gallery"):
        s = out[side]
        assert s["ppi"] is None and s["minutiae"] == [] and s["enhanced_png"] is None
        assert decoded(s["image_png"]).shape == (112, 112, 3) == (s["height"], s["width"], 3)
    # a face probe against a subject with prints only
    r = compare(world, subject=world.print_subject["id"], files=[("face", ("f.png", world.face_probe))])
    assert r.status_code == 404 and "no face sample" in r.json()["detail"]


def test_access_roles_and_bad_requests(world):
    hidden = compare(world, bureau="DE", subject=world.secret)
    missing = compare(world, bureau="DE", subject="sub_0000000000000000")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"].replace(world.secret, "X") == missing.json()["detail"].replace(
        "sub_0000000000000000", "X")
    assert compare(world, subject=world.secret).status_code == 200  # FR's own
    assert compare(world, role="bureau", subject=world.secret).status_code == 403
    assert compare(world, role="auditor", subject=world.secret).status_code == 403
    both = [("fingerprint", ("p.png", fp("0001_3"))), ("face", ("f.png", world.face_probe))]
    assert compare(world, subject=world.secret, files=both).status_code == 422
    assert world.client.post("/v1/compare", headers=world.h("FR"), data={"subject": world.secret}).status_code == 422
    assert compare(world, files=[("fingerprint", ("p.png", fp("0001_3")))]).status_code == 422  # no subject
    assert compare(world, subject=world.secret, files=[("fingerprint", ("x.png", b"not an image"))]).status_code == 415


def test_compare_is_audited_without_image_content(world):
    compare(world, subject=world.print_subject["id"])
    page = world.client.get("/v1/audit?limit=1000", headers=world.h("FR", "auditor")).json()["entries"]
    entries = [e["record"] for e in page if e["record"]["action"] == "compare"]
    assert entries
    e = entries[-1]
    import hashlib

    assert e["subject"] == world.print_subject["id"] and e["probes"] == [hashlib.sha256(fp("0001_3")).hexdigest()]
    assert e["sample"] and e["pairs"] >= 4 and e["gallery_image"] == "source"
    assert "image_png" not in json.dumps(page)
