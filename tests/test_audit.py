"""The one audit log (indexer.audit): CLI and API in one chain, anchoring, auditor scopes,
reads and refusals audited, and numbered migrations of both databases.

Every test here sets ``LOCARD_AUDIT_KEY`` to a key file under its own temporary folder,
so nothing is written to the user's ~/.config.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from indexer.audit import KEY_ENV, AuditKeyError, digest
from indexer.errors import StoreVersionError
from indexer.store import GalleryStore

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples" / "fingerprints" / "images"
needs_samples = pytest.mark.skipif(not (SAMPLES / "0001_1.png").is_file(),
                                   reason="data/samples/fingerprints (shipped sample prints) is missing")
runner = CliRunner()


def locard(*args: str):
    from locard import app

    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture(autouse=True)
def audit_key(tmp_path, monkeypatch):
    key = tmp_path / "keys" / "audit.key"
    monkeypatch.setenv(KEY_ENV, str(key))
    return key


def _store_with_entries(path: Path, n: int) -> Path:
    with GalleryStore(path, create=True) as st:
        log = st.audit()
        for i in range(n):
            log.append({"action": "test", "subject": f"s{i}", "bureau": "FR"})
    return path


def _attack(path: Path, *sql: str) -> None:
    """What someone with write access to the store folder can do: drop the triggers, then edit."""
    con = sqlite3.connect(path / "gallery.sqlite")
    con.execute("DROP TRIGGER audit_no_update")
    con.execute("DROP TRIGGER audit_no_delete")
    for s in sql:
        con.execute(s)
    con.commit()
    con.close()


# -- append-only and anchored --------------------------------------------------------------------
def test_triggers_refuse_update_and_delete(tmp_path):
    path = _store_with_entries(tmp_path / "s", 3)
    con = sqlite3.connect(path / "gallery.sqlite")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE audit SET record='{}' WHERE seq=2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("DELETE FROM audit WHERE seq=3")
    con.close()


def test_verify_detects_truncation_emptying_and_full_rewrite(tmp_path):
    base = _store_with_entries(tmp_path / "base", 30)
    res = locard("audit", "verify", "--store", base)
    assert res.exit_code == 0 and "intact: 30 entries, anchored up to entry 30" in res.output, res.output

    def copy(name):  # same store id, so the same anchor
        dst = tmp_path / name
        shutil.copytree(base, dst)
        return dst

    truncated = copy("truncated")
    _attack(truncated, "DELETE FROM audit WHERE seq > 10")
    res = locard("audit", "verify", "--store", truncated)
    assert res.exit_code == 1 and "20 entries at the end were removed" in res.output, res.output

    emptied = copy("emptied")
    _attack(emptied, "DELETE FROM audit")
    res = locard("audit", "verify", "--store", emptied)
    assert res.exit_code == 1 and "emptied" in res.output, res.output

    rewritten = copy("rewritten")
    con = sqlite3.connect(rewritten / "gallery.sqlite")
    rows = con.execute("SELECT seq, at, record FROM audit ORDER BY seq").fetchall()
    con.close()
    statements, prev = ["DELETE FROM audit"], "0" * 64
    for seq, at, record in rows:  # entry 5 changed, every hash recomputed: the chain itself is clean
        rec = json.loads(record)
        if seq == 5:
            rec["subject"] = "someone else"
        h = digest(prev, seq, at, rec)
        body = json.dumps(rec, sort_keys=True, separators=(",", ":")).replace("'", "''")
        statements.append(f"INSERT INTO audit(seq, at, action, subject, bureaus, record, prev, hash) VALUES "
                          f"({seq}, {at}, '{rec['action']}', '{rec['subject']}', ',FR,', '{body}', '{prev}', '{h}')")
        prev = h
    _attack(rewritten, *statements)
    res = locard("audit", "verify", "--store", rewritten)
    assert res.exit_code == 1 and "rewritten" in res.output and "entry 5" not in res.output, res.output

    # appending after the truncation does not move the anchor over the evidence
    with GalleryStore(truncated) as st:
        log = st.audit()
        for _ in range(25):
            log.append({"action": "test"})
        check = log.verify()
    assert not check.intact and check.anchored == 30 and "rewritten" in check.problems[-1]


def test_key_outside_the_store_and_private(tmp_path, audit_key):
    path = _store_with_entries(tmp_path / "s", 1)
    assert audit_key.stat().st_mode & 0o777 == 0o600
    anchors = list(audit_key.parent.glob("audit-*.anchor"))
    assert len(anchors) == 1
    with GalleryStore(path) as st:
        with pytest.raises(AuditKeyError, match="inside the store"):
            st.audit(key_file=path / "audit.key")
        os.chmod(audit_key, 0o644)
        with pytest.raises(AuditKeyError, match="readable by others"):
            st.audit().anchor()  # what the service and the CLI check before they write
        os.chmod(audit_key, 0o600)
    # another key (folder) has no anchor for this store: verify cannot vouch for the log
    res = locard("audit", "verify", "--store", path, "--audit-key-file", tmp_path / "other" / "k.key")
    assert res.exit_code == 1 and "no anchor" in res.output


def test_verify_over_http_detects_truncation(tmp_path):
    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.database import ApiDatabase
    from api.keys import create_key
    from api.service import ServiceConfig

    store = tmp_path / "store"
    key, _ = create_key(ApiDatabase(store), "auditor", "FR")
    h = {"X-API-Key": key}
    with TestClient(create_app(ServiceConfig(store=store))) as c:
        for _ in range(25):
            assert c.get("/v1/audit", headers=h).status_code == 200
        assert c.get("/v1/audit/verify", headers=h).json()["intact"] is True
        _attack(store, "DELETE FROM audit WHERE seq > 5")
        check = c.get("/v1/audit/verify", headers=h).json()
    assert check["intact"] is False and any("removed" in p for p in check["problems"])


# -- migrations ----------------------------------------------------------------------------------
# gallery.sqlite as written by main before numbered migrations (and before the encounters index)
OLD_GALLERY = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE subjects (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL UNIQUE, created REAL NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}');
CREATE TABLE encounters (id INTEGER PRIMARY KEY AUTOINCREMENT, subject_id INTEGER NOT NULL REFERENCES subjects(id),
    created REAL NOT NULL, source TEXT NOT NULL DEFAULT '');
CREATE TABLE samples (id INTEGER PRIMARY KEY AUTOINCREMENT, encounter_id INTEGER NOT NULL REFERENCES encounters(id),
    subject_id INTEGER NOT NULL REFERENCES subjects(id),
    modality TEXT NOT NULL CHECK (modality IN ('finger', 'face')),
    finger_position INTEGER NOT NULL DEFAULT 0 CHECK (finger_position BETWEEN 0 AND 10),
    template BLOB NOT NULL, template_version TEXT NOT NULL, quality INTEGER NOT NULL, sha256 TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL DEFAULT '', metadata TEXT NOT NULL DEFAULT '{}', created REAL NOT NULL);
CREATE INDEX samples_subject ON samples(subject_id);
CREATE INDEX samples_modality ON samples(modality, id);
CREATE TABLE changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL CHECK (op IN ('add', 'delete')),
    modality TEXT NOT NULL, sample_id INTEGER NOT NULL, at REAL NOT NULL);
CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, action TEXT NOT NULL,
    subject TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '{}');
INSERT INTO meta VALUES ('schema_version', '1'), ('created', '1700000000.0');
INSERT INTO subjects VALUES (1, 'alice', 1700000001.0, '{}');
INSERT INTO encounters VALUES (1, 1, 1700000001.0, 'src');
INSERT INTO samples VALUES (1, 1, 1, 'finger', 2, X'0102030405', 'LCFP1', 55, 'h-alice', 'a.png', '{}', 1700000001.0);
INSERT INTO changes VALUES (1, 'add', 'finger', 1, 1700000001.0);
INSERT INTO audit VALUES (1, 1700000002.0, 'delete_subject', 'bob', '{"samples": 2, "encounters": 1, "reason": "request 42"}');
"""


def test_store_written_by_the_old_schema_migrates(tmp_path):
    path = tmp_path / "old"
    path.mkdir()
    con = sqlite3.connect(path / "gallery.sqlite")
    con.executescript(OLD_GALLERY)
    con.close()
    with GalleryStore(path) as st:
        assert st.con.execute("PRAGMA user_version").fetchone()[0] == 4
        assert st.con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "4"
        assert st.con.execute("SELECT 1 FROM sqlite_master WHERE name='encounters_subject'").fetchone()
        assert st.con.execute("SELECT COUNT(*) FROM prepared").fetchone()[0] == 0  # filled by `locard reindex`
        sub, samples = st.subject("alice")
        assert sub.encounters == 1 and samples[0].sha256 == "h-alice"
        assert next(st.samples(ids=[1])).template == b"\x01\x02\x03\x04\x05"
        entries = st.audit().entries()
        assert not st.con.execute("SELECT 1 FROM sqlite_master WHERE name='audit_unchained'").fetchone()
    assert len(entries) == 1
    e = entries[0]
    assert e.at == 1700000002.0 and e.record["action"] == "delete" and e.record["subject"] == "bob"
    assert e.record["detail"]["reason"] == "request 42" and e.record["carried_over"]["id"] == 1
    with GalleryStore(path) as st:  # opening again changes nothing
        assert len(st.audit().entries()) == 1


def test_newer_files_are_refused(tmp_path):
    from api.database import ApiDatabase

    store = _store_with_entries(tmp_path / "store", 0)
    ApiDatabase(store)
    for name in ("gallery.sqlite", "api.sqlite"):
        con = sqlite3.connect(store / name)
        con.execute("PRAGMA user_version = 99")
        con.close()
    with pytest.raises(StoreVersionError, match="newer locard"):
        GalleryStore(store)
    with pytest.raises(StoreVersionError, match="newer locard"):
        ApiDatabase(store)


def test_old_api_database_migrates_and_its_chain_is_carried_over(tmp_path):
    from api.audit import carry_over_legacy, open_log
    from api.database import MIGRATIONS, ApiDatabase
    from api.keys import authenticate, create_key

    # api.sqlite as main wrote it: migration 1's SQL, user_version 0, a key and a two-entry chain
    store = tmp_path / "store"
    store.mkdir()
    con = sqlite3.connect(store / "api.sqlite")
    con.executescript(MIGRATIONS[0][1])
    prev = "0" * 64
    for seq, rec in ((1, {"key": "k1", "role": "bureau", "bureau": "DE", "action": "enrol", "subject": "sub_1"}),
                     (2, {"key": "k2", "role": "examiner", "bureau": "FR", "action": "search"})):
        h = digest(prev, seq, 1700000000.0 + seq, rec)
        con.execute("INSERT INTO audit VALUES (?, ?, ?, ?, ?)",
                    (seq, 1700000000.0 + seq, json.dumps(rec, sort_keys=True, separators=(",", ":")), prev, h))
        prev = h
    con.commit()
    con.close()
    db = ApiDatabase(store)
    assert db.query("PRAGMA user_version")[0][0] == len(MIGRATIONS)
    key, rec = create_key(db, "auditor", "FR", scope="global")
    assert authenticate(db, key).scope == "global"
    log = open_log(store)
    assert carry_over_legacy(db, log) == 2
    assert carry_over_legacy(db, log) == 0  # once
    assert not db.query("SELECT 1 FROM sqlite_master WHERE name IN ('audit', 'audit_legacy')")
    entries = log.entries()
    assert [e.record["carried_over"]["seq"] for e in entries[:2]] == [1, 2]
    assert entries[0].record["carried_over"]["record"]["subject"] == "sub_1" and entries[0].at == 1700000001.0
    assert entries[2].record["action"] == "migration" and entries[2].record["legacy_chain_intact"] is True
    assert [e.seq for e in log.entries(bureau="DE")] == [1]  # carried entries keep their bureau
    assert log.verify().intact


def test_forget_deleted_keeps_a_rule_made_after_the_deletion(tmp_path):
    from api.access import AccessRules
    from api.audit import forget_deleted, open_log
    from api.database import ApiDatabase

    db = ApiDatabase(tmp_path / "store")
    rules = AccessRules(db, "central")
    log = open_log(tmp_path / "store")
    rules.set("gone", "FR", ())
    rules.set("reborn", "FR", ())
    time.sleep(0.01)
    log.append({"action": "delete", "subject": "gone"})
    log.append({"action": "delete", "subject": "reborn"})
    time.sleep(0.01)
    db.query("DELETE FROM access WHERE subject='reborn'")  # a new subject of that name, enrolled after
    rules.set("reborn", "DE", ())
    assert forget_deleted(db, log) == 1
    assert rules.get("gone").owner == "central" and rules.get("reborn").owner == "DE"
    assert forget_deleted(db, log) == 0


# -- one log for CLI and API; scopes; reads and refusals -----------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from tests.test_api import World

    keys = tmp_path_factory.mktemp("keys")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(KEY_ENV, str(keys / "audit.key"))
        w = World(tmp_path_factory.mktemp("auditstore"))
        w.public = w.enrol("FR", ["0001_1"], "all")["subject"]["id"]
        w.private = w.enrol("DE", ["0004_1", "0004_2"], None)
        w.doomed = w.enrol("DE", ["0005_1"], "all")["subject"]["id"]
        yield w
        w.client.__exit__(None, None, None)


def _all_entries(world, h) -> list[dict]:
    out, after = [], 0
    while True:
        page = world.client.get(f"/v1/audit?after={after}&limit=1000", headers=h).json()
        out += page["entries"]
        if page["next_after"] is None:
            return out
        after = page["next_after"]


def _log_rows(world, action: str) -> list[dict]:
    con = sqlite3.connect(world.path / "gallery.sqlite")
    rows = [json.loads(r[0]) for r in con.execute("SELECT record FROM audit WHERE action=? ORDER BY seq", (action,))]
    con.close()
    return rows


@needs_samples
def test_cli_and_api_write_one_chain_with_their_actors(world, tmp_path):
    from api.audit import open_log

    api_con = sqlite3.connect(world.path / "api.sqlite")
    assert not api_con.execute("SELECT 1 FROM sqlite_master WHERE name='audit'").fetchone()  # no second log
    assert api_con.execute("SELECT COUNT(*) FROM access WHERE subject=?", (world.doomed,)).fetchone()[0] == 1
    key_file = world.app.state.service.audit.key_path  # the service's key: the CLI anchors the same log
    res = locard("subjects", "delete", world.doomed, "--store", world.path, "--yes", "--reason", "request 7",
                 "--audit-key-file", key_file)
    assert res.exit_code == 0, res.output
    folder = tmp_path / "src"
    folder.mkdir()
    shutil.copy(SAMPLES / "0006_1.png", folder / "p6.png")
    res = locard("ingest", folder, "--store", world.path, "--workers", "1", "--audit-key-file", key_file)
    assert res.exit_code == 0, res.output
    delete = [r for r in _log_rows(world, "delete") if r["subject"] == world.doomed][-1]
    ingest = _log_rows(world, "ingest")[-1]
    for rec in (delete, ingest):
        assert rec["user"] == getpass.getuser() and rec["pid"] and rec["host"] and rec["role"] == "operator"
    assert delete["reason"] == "request 7" and ingest["added"] == 1 and ingest["outcome"] == "done"
    enrol = _log_rows(world, "enrol")[0]
    assert enrol["key"] and enrol["bureau"] == "FR"  # the API's entries, in the same table
    # the next request drops the deleted subject's access row
    assert world.client.get("/v1/subjects", headers=world.h("DE", "examiner")).status_code == 200
    assert api_con.execute("SELECT COUNT(*) FROM access WHERE subject=?", (world.doomed,)).fetchone()[0] == 0
    api_con.close()
    check = open_log(world.path, key_file).verify()
    assert check.intact and check.anchored == check.last, check.problems


@needs_samples
def test_auditors_see_their_bureau_unless_global(world):
    de_private = world.private["subject"]["id"]
    hashes = [i["image_sha256"] for i in world.private["images"]]
    world.search("DE", "0004_3")
    fr = json.dumps(_all_entries(world, world.h("FR", "auditor")))
    assert de_private not in fr and not any(h in fr for h in hashes)
    assert world.public in fr
    de = json.dumps(_all_entries(world, world.h("DE", "auditor")))
    assert de_private in de and all(h in de for h in hashes)
    res = locard("keys", "create", "--role", "auditor", "--bureau", "FR", "--global", "--store", world.path)
    assert res.exit_code == 0, res.output
    everything = json.dumps(_all_entries(world, {"X-API-Key": res.stdout.strip().splitlines()[0]}))
    assert de_private in everything and all(h in everything for h in hashes)
    assert locard("keys", "create", "--role", "examiner", "--bureau", "FR", "--global",
                  "--store", world.path).exit_code == 2
    made = world.client.post("/v1/keys", headers=world.h("FR", "admin"),
                             json={"role": "bureau", "bureau": "FR", "scope": "global"})
    assert made.status_code == 422


def _wait_job(c, h, jid):
    for _ in range(600):
        job = c.get(f"/v1/jobs/{jid}", headers=h).json()
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.1)
    raise AssertionError("job did not finish")


@needs_samples
def test_reads_and_refusals_are_audited(world):
    c = world.client
    fr_e = world.h("FR", "examiner")
    fr_key = world.keys[("FR", "examiner")]
    assert c.get(f"/v1/subjects/{world.public}", headers=fr_e).status_code == 200
    assert c.get("/v1/subjects?limit=5", headers=fr_e).status_code == 200
    assert c.get("/v1/subjects/sub_nope", headers=fr_e).status_code == 404
    # refusals: no key, not a key, a wrong secret for FR's key id, a role that may not
    assert c.get("/v1/subjects").status_code == 401
    assert c.get("/v1/subjects", headers={"X-API-Key": "nonsense"}).status_code == 401
    wrong = fr_key[:fr_key.rindex("_") + 1] + "x" * 43
    assert c.get("/v1/subjects", headers={"X-API-Key": wrong}).status_code == 401
    assert c.delete(f"/v1/subjects/{world.public}", headers=fr_e).status_code == 403
    # a batch job with an unusable probe, then its results
    h = world.h("FR", "bureau")
    r = c.post("/v1/jobs", headers=h, files=[("fingerprint", ("junk.png", b"junk"))])
    assert r.status_code == 202, r.text
    jid = r.json()["id"]
    _wait_job(c, h, jid)
    assert c.get(f"/v1/jobs/{jid}/results", headers=h).status_code == 200
    fr_a = world.h("FR", "auditor")
    assert c.get("/v1/audit?limit=1", headers=fr_a).status_code == 200
    entries = [e["record"] for e in _all_entries(world, fr_a)]
    fr_id = fr_key.split("_")[1]

    def find(**kv):
        return [e for e in entries if all(e.get(k) == v for k, v in kv.items())]

    assert find(action="read", subject=world.public, key=fr_id, outcome="read")
    assert find(action="read", subject="sub_nope", outcome="not-found")
    listed = find(action="list", key=fr_id)
    assert listed and listed[-1]["limit"] == 5 and listed[-1]["subjects"]
    assert find(action="refused", status=401, key=fr_id, bureau="FR")  # FR's auditor sees attempts on FR's key
    assert find(action="refused", status=403, key=fr_id, path=f"/v1/subjects/{world.public}")
    assert find(action="search", batch=True, outcome="failed: UnsupportedFormatError")
    assert find(action="batch-results", job=jid)
    assert find(action="audit-read", limit=1)
    # refusals without a known key concern no bureau: a global auditor reads them
    con = sqlite3.connect(world.path / "gallery.sqlite")
    anonymous = [json.loads(r[0]) for r in con.execute("SELECT record FROM audit WHERE action='refused'")]
    raw = b"".join((world.path / n).read_bytes() for n in os.listdir(world.path) if n.startswith("gallery.sqlite"))
    con.close()
    assert {e["reason"] for e in anonymous if e["status"] == 401} >= {"no key", "not a key",
                                                                      "unknown key or wrong secret"}
    assert wrong.split("_", 2)[2].encode() not in raw and fr_key.split("_", 2)[2].encode() not in raw
