"""A subject enrolled while a search is under way never reaches a bureau that may not see it.

The hidden set (subjects the caller's bureau may not see) must be as new as the gallery
the search runs on.  The hook below enrols another bureau's private subject the moment
the hidden set has been read, the widest window a concurrent enrolment can hit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.database import ApiDatabase
from api.extraction import Limits
from api.keys import create_key
from api.service import ServiceConfig
from indexer.store import GalleryStore, NewSample

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples" / "fingerprints" / "images"
pytestmark = pytest.mark.skipif(not (SAMPLES / "0001_1.png").is_file(),
                                reason="data/samples/fingerprints (shipped sample prints) is missing")


def _finger_sample(subject: str, image: str) -> NewSample:
    from matcher.fingerprint import FORMAT_VERSION, MATCHER_VERSION, extract

    t = extract((SAMPLES / f"{image}.png").read_bytes())
    return NewSample(subject=subject, modality="finger", template=t.to_bytes(),
                     template_version=f"LCFP{FORMAT_VERSION}/{MATCHER_VERSION}", quality=t.quality,
                     sha256=f"race-{subject}-{image}", finger_position=0)


def test_subject_enrolled_between_hidden_set_and_search_does_not_leak(tmp_path):
    db = ApiDatabase(tmp_path)
    keys = {b: create_key(db, "bureau", b, f"race {b}")[0] for b in ("FR", "DE")}
    app = create_app(ServiceConfig(store=tmp_path, limits=Limits(max_images=4)))
    secret = "sub_de00000000000001"
    samples = [_finger_sample(secret, "0002_1"), _finger_sample(secret, "0002_2")]
    with TestClient(app) as client:
        r = client.post("/v1/subjects", headers={"X-API-Key": keys["FR"]}, data={"shared_with": "all"},
                        files=[("fingerprint", ("a.png", (SAMPLES / "0001_1.png").read_bytes(), "image/png"))])
        assert r.status_code == 201, r.text
        service = app.state.service
        real = service.access.hidden_from
        fired = []

        def hidden_then_enrol(bureau: str) -> set[str]:
            hidden = real(bureau)
            if not fired:  # DE enrols a private subject right after FR's hidden set was read
                fired.append(bureau)
                service.access.set(secret, "DE", ())
                with GalleryStore(tmp_path) as st:
                    st.add_samples(samples, encounter_source="api:DE")
            return hidden

        service.access.hidden_from = hidden_then_enrol
        r = client.post("/v1/search", headers={"X-API-Key": keys["FR"]}, data={"top": "10"},
                        files=[("fingerprint", ("p.png", (SAMPLES / "0002_3.png").read_bytes(), "image/png"))])
        assert r.status_code == 200, r.text
        assert fired == ["FR"]
        assert secret not in json.dumps(r.json())
        # the enrolment did happen: DE finds its own subject at rank 1
        r = client.post("/v1/search", headers={"X-API-Key": keys["DE"]}, data={"top": "10"},
                        files=[("fingerprint", ("p.png", (SAMPLES / "0002_3.png").read_bytes(), "image/png"))])
        assert r.json()["candidates"][0]["subject"] == secret


def test_subject_list_page_is_cut_in_sql(tmp_path):
    """Listing one page costs the same at 20 and at 2,000 subjects (SQLite VM steps on the
    gallery connection); it used to read every subject with its counts, then page in Python."""
    import numpy as np

    from matcher.face import FaceTemplate

    rng = np.random.default_rng(0)
    cost, totals = {}, {}
    for n in (20, 2000):
        path = tmp_path / str(n)
        path.mkdir()
        with GalleryStore(path, create=True) as st:
            samples = []
            for i in range(n):
                v = rng.normal(size=128).astype(np.float32)
                t = FaceTemplate("test-model/1", v / np.linalg.norm(v), 80)
                samples.append(NewSample(subject=f"s{i:05d}", modality="face", template=t.to_bytes(),
                                         template_version=t.model, quality=80, sha256=f"{n}-{i}"))
            st.add_samples(samples)
        db = ApiDatabase(path)
        key = create_key(db, "examiner", "FR", "list")[0]
        app = create_app(ServiceConfig(store=path))
        with TestClient(app) as client:
            service = app.state.service
            service.sweeper.stop()  # its start-up sweep reads every sample: let it finish, not count
            service.access.set("s00001", "DE", ())  # hidden from FR: left out of page and total
            steps = [0]

            def tick():
                steps[0] += 1
                return 0
            service.gallery.call(lambda st: st.con.set_progress_handler(tick, 100))
            r = client.get("/v1/subjects?offset=1&limit=3", headers={"X-API-Key": key})
            service.gallery.call(lambda st: st.con.set_progress_handler(None, 0))
            assert r.status_code == 200, r.text
            body = r.json()
            assert [s["id"] for s in body["items"]] == ["s00002", "s00003", "s00004"]
            totals[n] = body["total"]
            cost[n] = steps[0]
    assert totals == {20: 19, 2000: 1999}
    assert cost[2000] <= 2 * cost[20] + 2, cost


def test_a_broken_calibration_is_a_server_problem_not_the_callers(tmp_path, monkeypatch):
    """A calibration measured for another matcher version makes searches fail loudly (503),
    never answer on raw scores, and never blame the request (4xx)."""
    import matcher.fingerprint.calibration as fpcal

    from indexer.fusion import load_calibration

    db = ApiDatabase(tmp_path)
    key = create_key(db, "bureau", "FR", "cal")[0]
    app = create_app(ServiceConfig(store=tmp_path, limits=Limits(max_images=4)))
    with TestClient(app) as client:
        r = client.post("/v1/subjects", headers={"X-API-Key": key}, data={"shared_with": "all"},
                        files=[("fingerprint", ("a.png", (SAMPLES / "0001_1.png").read_bytes(), "image/png"))])
        assert r.status_code == 201, r.text
        monkeypatch.setattr(fpcal, "MATCHER_VERSION", "another-matcher/7")
        for cache in (load_calibration, fpcal.calibration):
            cache.cache_clear()
        try:
            r = client.post("/v1/search", headers={"X-API-Key": key},
                            files=[("fingerprint", ("p.png", (SAMPLES / "0001_2.png").read_bytes(), "image/png"))])
        finally:
            for cache in (load_calibration, fpcal.calibration):
                cache.cache_clear()
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert "another-matcher/7" in r.json()["detail"]
