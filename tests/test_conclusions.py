"""ACE-V conclusions on remembered searches: blind verification, 409, disagreement, bureaus,
paging, the audit trail and retention (``api/conclusions.py``), through FastAPI's TestClient.

Fingerprints are the shipped synthetic samples; one small store for the module.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.database import MIGRATIONS, ApiDatabase
from api.keys import create_key
from api.service import ServiceConfig
from indexer.migrations import migrate
from .sample_prints import fp, needs_samples

pytestmark = needs_samples
DAY = 86_400.0


class Bench:
    """A store with three FR examiners (a, b, c), bureau, auditor and admin keys of FR and DE, and a
    global auditor."""

    def __init__(self, path: Path):
        self.path = path
        db = ApiDatabase(path)
        self.keys, self.ids = {}, {}
        for who, role, bureau, scope in [("a", "examiner", "FR", "bureau"), ("b", "examiner", "FR", "bureau"),
                                         ("c", "examiner", "FR", "bureau"), ("fr_bureau", "bureau", "FR", "bureau"),
                                         ("fr_auditor", "auditor", "FR", "bureau"),
                                         ("de", "examiner", "DE", "bureau"), ("de_bureau", "bureau", "DE", "bureau"),
                                         ("de_auditor", "auditor", "DE", "bureau"),
                                         ("eu_auditor", "auditor", "EU", "global")]:
            self.keys[who], rec = create_key(db, role, bureau, who, scope)
            self.ids[who] = rec.id
        self.app = create_app(ServiceConfig(store=path))
        self.client = TestClient(self.app)
        self.client.__enter__()

    def h(self, who: str) -> dict:
        return {"X-API-Key": self.keys[who]}

    def enrol(self, who: str, names: list[str], shared_with: str) -> str:
        r = self.client.post("/v1/subjects", headers=self.h(who), data={"shared_with": shared_with},
                             files=[("fingerprint", (f"{n}.png", fp(n), "image/png")) for n in names])
        assert r.status_code == 201, r.text
        return r.json()["subject"]["id"]

    def search(self, who: str, name: str, case: str = "") -> dict:
        r = self.client.post("/v1/search", headers=self.h(who), data={"case": case},
                             files=[("fingerprint", (f"{name}.png", fp(name), "image/png"))])
        assert r.status_code == 200, r.text
        return r.json()

    def conclude(self, who: str, search_id: str, subject: str, conclusion: str, note: str = ""):
        return self.client.post(f"/v1/searches/{search_id}/conclusions", headers=self.h(who),
                                json={"subject": subject, "conclusion": conclusion, "note": note})

    def of_search(self, who: str, search_id: str) -> dict:
        r = self.client.get(f"/v1/searches/{search_id}/conclusions", headers=self.h(who))
        assert r.status_code == 200, r.text
        return {c["subject"]: c for c in r.json()["candidates"]}

    def audit(self, who: str) -> list[dict]:
        entries, after = [], 0
        while True:
            page = self.client.get(f"/v1/audit?after={after}&limit=1000", headers=self.h(who)).json()
            entries += [e["record"] for e in page["entries"]]
            if page["next_after"] is None:
                return entries
            after = page["next_after"]


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    b = Bench(tmp_path_factory.mktemp("casework"))
    b.public = b.enrol("fr_bureau", ["0001_1", "0001_2"], "all")
    b.secret = b.enrol("fr_bureau", ["0002_1"], "none")  # FR only
    yield b
    b.client.__exit__(None, None, None)


def test_new_store_and_old_file_get_the_casework_tables(tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    con = sqlite3.connect(old / "api.sqlite", isolation_level=None)
    migrate(con, MIGRATIONS[:3], path=old / "api.sqlite")  # a file of the build before this one
    con.close()
    db = ApiDatabase(old)
    assert db.query("PRAGMA user_version")[0][0] == len(MIGRATIONS) == 4
    assert {"searches", "conclusions"} <= {r[0] for r in db.query("SELECT name FROM sqlite_master")}


def test_search_is_remembered_with_its_case_for_the_bureau_only(bench):
    res = bench.search("a", "0001_3", case="C-17")
    assert res["case"] == "C-17" and res["candidates"][0]["subject"] == bench.public
    sid = res["search_id"]
    r = bench.client.get(f"/v1/searches/{sid}", headers=bench.h("b"))  # another examiner of the bureau
    assert r.status_code == 200, r.text
    stored = r.json()
    assert stored["case"] == "C-17" and stored["examiner"] == bench.ids["a"] and stored["bureau"] == "FR"
    assert abs(stored["created"] - time.time()) < 300
    assert [(c["subject"], c["score"], c["rank"]) for c in stored["candidates"]] == \
        [(c["subject"], c["score"], c["rank"]) for c in res["candidates"]]
    assert stored["probes"] == res["probes"] and stored["threshold"] == res["threshold"]
    other = bench.client.get(f"/v1/searches/{sid}", headers=bench.h("de"))
    missing = bench.client.get("/v1/searches/srch_0000000000000000", headers=bench.h("de"))
    assert other.status_code == missing.status_code == 404
    assert other.json()["detail"].replace(sid, "X") == missing.json()["detail"].replace("srch_0000000000000000", "X")
    assert bench.client.get(f"/v1/searches/{sid}", headers=bench.h("fr_auditor")).status_code == 403
    long_case = bench.client.post("/v1/search", headers=bench.h("a"), data={"case": "x" * 201},
                                  files=[("fingerprint", ("p.png", fp("0001_3"), "image/png"))])
    assert long_case.status_code == 422


def test_blind_verification_then_verified(bench):
    sid = bench.search("a", "0001_3", case="C-1")["search_id"]
    note = "twelve minutiae in agreement around the core"
    r = bench.conclude("a", sid, bench.public, "identification", note)
    assert r.status_code == 201, r.text
    first = r.json()
    assert (first["kind"], first["status"], first["examiner"], first["case"], first["note"]) == \
        ("initial", "pending", bench.ids["a"], "C-1", note)
    again = bench.conclude("a", sid, bench.public, "exclusion")
    assert again.status_code == 409 and again.json()["type"].endswith("conclusion-exists")

    # b has not concluded: told that a conclusion awaits verification, not what it is
    seen = bench.of_search("b", sid)[bench.public]
    assert (seen["status"], seen["awaiting_verification"], seen["concluded_by_you"], seen["conclusions"]) == \
        ("pending", True, False, [])
    listed = bench.client.get("/v1/conclusions?case=C-1", headers=bench.h("b")).json()
    assert listed["total"] == 1 and listed["items"][0]["conclusions"] == []
    for text in (json.dumps(seen), json.dumps(listed)):
        assert "identification" not in text and note not in text and bench.ids["a"] not in text
    # a sees its own
    mine = bench.of_search("a", sid)[bench.public]
    assert mine["concluded_by_you"] and [c["id"] for c in mine["conclusions"]] == [first["id"]]

    r = bench.conclude("b", sid, bench.public, "identification", "agree")
    assert r.status_code == 201, r.text
    assert (r.json()["kind"], r.json()["status"]) == ("verification", "verified")
    for who in ("a", "b", "fr_auditor", "eu_auditor"):
        both = bench.of_search(who, sid)[bench.public]
        assert both["status"] == "verified" and not both["awaiting_verification"]
        assert [(c["examiner"], c["kind"], c["conclusion"]) for c in both["conclusions"]] == \
            [(bench.ids["a"], "initial", "identification"), (bench.ids["b"], "verification", "identification")]
    # a third examiner who has not concluded still sees no value
    assert bench.of_search("c", sid)[bench.public]["conclusions"] == []
    # candidates without a conclusion are listed too, in rank order
    everyone = bench.client.get(f"/v1/searches/{sid}/conclusions", headers=bench.h("b")).json()["candidates"]
    assert everyone[0]["subject"] == bench.public and all(c["status"] is None for c in everyone[1:])


def test_disagreement_is_flagged_and_listed_by_status(bench):
    sid = bench.search("b", "0002_2", case="C-2")["search_id"]
    assert bench.conclude("b", sid, bench.secret, "identification").json()["status"] == "pending"
    r = bench.conclude("a", sid, bench.secret, "exclusion", "different core")
    assert r.status_code == 201 and (r.json()["kind"], r.json()["status"]) == ("verification", "disagreement")
    third = bench.conclude("c", sid, bench.secret, "identification")
    assert third.json()["status"] == "disagreement"  # one differing conclusion keeps it flagged
    flagged = bench.client.get("/v1/conclusions?status=disagreement", headers=bench.h("fr_auditor")).json()
    assert [(i["search_id"], i["subject"]) for i in flagged["items"]] == [(sid, bench.secret)]
    assert [c["conclusion"] for c in flagged["items"][0]["conclusions"]] == \
        ["identification", "exclusion", "identification"]
    verified = bench.client.get("/v1/conclusions?status=verified", headers=bench.h("fr_auditor")).json()
    assert (sid, bench.secret) not in {(i["search_id"], i["subject"]) for i in verified["items"]}
    assert bench.client.get("/v1/conclusions?status=lost", headers=bench.h("a")).status_code == 422


def test_only_visible_candidates_of_own_bureau_searches(bench):
    lent = bench.enrol("de_bureau", ["0004_1"], "FR")  # DE's record, shared with FR
    sid = bench.search("a", "0004_2")["search_id"]
    assert bench.client.get(f"/v1/searches/{sid}", headers=bench.h("a")).json()["candidates"][0]["subject"] == lent
    # another bureau's examiner: the search does not exist for it
    theirs = bench.conclude("de", sid, lent, "identification")
    unknown = bench.conclude("de", "srch_0000000000000000", lent, "identification")
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json()["detail"].replace(sid, "X") == unknown.json()["detail"].replace("srch_0000000000000000", "X")
    assert bench.client.get(f"/v1/searches/{sid}/conclusions", headers=bench.h("de")).status_code == 404
    assert bench.client.get(f"/v1/searches/{sid}/conclusions", headers=bench.h("de_auditor")).status_code == 404
    # not a candidate, and a candidate no longer shared with FR: the same answer
    r = bench.client.put(f"/v1/subjects/{lent}/access", headers=bench.h("de_bureau"), json={"shared_with": []})
    assert r.status_code == 200
    hidden = bench.conclude("a", sid, lent, "identification")
    absent = bench.conclude("a", sid, "sub_0000000000000000", "identification")
    assert hidden.status_code == absent.status_code == 404
    assert hidden.json()["detail"].replace(lent, "X") == absent.json()["detail"].replace("sub_0000000000000000", "X")
    stored = bench.client.get(f"/v1/searches/{sid}", headers=bench.h("a")).json()
    assert lent not in json.dumps(stored) and [c["rank"] for c in stored["candidates"]] == \
        list(range(1, len(stored["candidates"]) + 1))
    assert lent not in json.dumps(bench.client.get(f"/v1/searches/{sid}/conclusions", headers=bench.h("a")).json())
    # roles and bodies
    assert bench.conclude("fr_bureau", sid, bench.public, "identification").status_code == 403
    assert bench.conclude("fr_auditor", sid, bench.public, "identification").status_code == 403
    assert bench.conclude("a", sid, bench.public, "match").status_code == 422
    assert bench.conclude("a", sid, bench.public, "exclusion", "n" * 2001).status_code == 422


def test_conclusions_page_in_sql_by_case(bench):
    made = set()
    for case in ("P-1", "P-2"):
        res = bench.search("c", "0001_4", case=case)
        assert len(res["candidates"]) >= 2
        for cand in res["candidates"]:
            assert bench.conclude("c", res["search_id"], cand["subject"], "inconclusive").status_code == 201
            made.add((case, res["search_id"], cand["subject"]))
    p1 = {m for m in made if m[0] == "P-1"}
    seen, offset = [], 0
    while True:
        page = bench.client.get(f"/v1/conclusions?case=P-1&offset={offset}&limit=1", headers=bench.h("c")).json()
        assert page["total"] == len(p1) and len(page["items"]) <= 1
        if not page["items"]:
            break
        seen += [(i["case"], i["search_id"], i["subject"]) for i in page["items"]]
        assert page["items"][0]["conclusions"][0]["conclusion"] == "inconclusive"
        offset += 1
    assert len(seen) == len(set(seen)) and set(seen) == p1
    everything = bench.client.get("/v1/conclusions?limit=1000", headers=bench.h("c")).json()
    cases = [i["case"] for i in everything["items"]]
    assert cases == sorted(cases) and {m[1:] for m in made} <= {(i["search_id"], i["subject"]) for i in everything["items"]}
    # b sees the same candidates, their values withheld
    blind = bench.client.get("/v1/conclusions?case=P-2&limit=1000", headers=bench.h("b")).json()
    assert blind["total"] == len(made - p1) and all(i["conclusions"] == [] and i["awaiting_verification"]
                                                    for i in blind["items"])
    # other bureaus: nothing of FR's; the global auditor: everything
    assert bench.client.get("/v1/conclusions?limit=1000", headers=bench.h("de")).json()["total"] == 0
    assert bench.client.get("/v1/conclusions?limit=1000", headers=bench.h("de_auditor")).json()["total"] == 0
    assert bench.client.get("/v1/conclusions?limit=1000",
                            headers=bench.h("eu_auditor")).json()["total"] == everything["total"]
    assert bench.client.get("/v1/conclusions?limit=0", headers=bench.h("c")).status_code == 422


def test_audit_trail_of_conclusions_and_reads(bench):
    sid = bench.search("a", "0001_3", case="C-audit")["search_id"]
    bench.conclude("a", sid, bench.public, "identification", "audit me")
    bench.conclude("a", sid, bench.public, "identification")  # 409
    bench.of_search("b", sid)  # blind read
    entries = bench.audit("fr_auditor")
    ours = [e for e in entries if e.get("search") == sid]
    done = [e for e in ours if e["action"] == "conclusion" and "outcome" not in e]
    assert [(e["key"], e["subject"], e["conclusion"], e["kind"], e["status"], e["note"], e["case"]) for e in done] == \
        [(bench.ids["a"], bench.public, "identification", "initial", "pending", "audit me", "C-audit")]
    assert any(e["action"] == "conclusion" and e.get("outcome") == "refused: 409" for e in ours)
    read = [e for e in ours if e["action"] == "conclusions-read" and e["key"] == bench.ids["b"]]
    assert read and read[-1]["shown"] == [] and {"search": sid, "subject": bench.public} in read[-1]["withheld"]
    assert any(e["action"] == "search-read" for e in entries)
    assert not [e for e in bench.audit("de_auditor") if e.get("search") == sid]  # FR's casework is FR's
    check = bench.client.get("/v1/audit/verify", headers=bench.h("fr_auditor")).json()
    assert check["intact"] is True and check["problems"] == []


def test_retention_expires_searches_without_conclusions_only(bench):
    """Runs last: the purge removes the module's other unconcluded searches."""
    from api.retention import Retention, purge

    kept = bench.search("a", "0001_3", case="R-1")["search_id"]
    assert bench.conclude("a", kept, bench.public, "inconclusive").status_code == 201
    dropped = bench.search("a", "0001_3", case="R-2")["search_id"]
    service = bench.app.state.service
    now = time.time()
    report = purge(service.db, service.gallery.call, bench.path, Retention(job_days=30), now + 29 * DAY)
    assert dropped not in report.searches
    report = purge(service.db, service.gallery.call, bench.path, Retention(job_days=30), now + 31 * DAY)
    assert dropped in report.searches and kept not in report.searches
    assert bench.client.get(f"/v1/searches/{dropped}", headers=bench.h("a")).status_code == 404
    assert bench.client.get(f"/v1/searches/{kept}", headers=bench.h("a")).status_code == 200
