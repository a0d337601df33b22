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
