"""The service's side of the store's one audit log (:mod:`indexer.audit`, in ``gallery.sqlite``).

The HTTP service appends to the same hash-chained, anchored log as the command line,
with the API key's id, role and bureau as actor.  Two things here only the service
can do, because only it sees both ``gallery.sqlite`` and ``api.sqlite``:

- :func:`carry_over_legacy`: builds before this one kept the service's own chain in
  ``api.sqlite``; its entries are copied into the store's log once (each as a
  ``carried-over`` entry holding the old record with its old seq, time and hashes, so
  the old chain stays checkable), then the old table is dropped.
- :func:`forget_deleted`: a subject deleted by ``locard subjects delete`` (which must
  not know the service's tables) leaves its access rule behind; the service follows
  the log's ``delete`` entries and removes the rules made before each deletion, so
  a later subject of the same name never inherits a dead subject's rule.
"""

from __future__ import annotations

import json
from pathlib import Path

from indexer.audit import AuditLog, bureaus_of, digest, GENESIS, os_actor
from indexer.store import GalleryStore

from .database import ApiDatabase

_CURSOR = "audit_deletions_seen"


def open_log(store: str | Path, key_file: str | Path | None = None) -> AuditLog:
    """The audit log of the store folder (the gallery is created and migrated when needed)."""
    with GalleryStore(store, create=True) as st:
        return st.audit(key_file=key_file)


def legacy_problems(rows: list[tuple]) -> list[str]:
    """Chain check of the old ``api.sqlite`` log (same hash rule), for the carry-over summary."""
    problems, prev, expect = [], GENESIS, 1
    for seq, at, record, stored_prev, h in rows:
        if seq != expect:
            problems.append(f"entry {seq}: expected sequence number {expect}")
        try:
            rec = json.loads(record)
        except ValueError:
            rec = record
        if stored_prev != prev or digest(stored_prev, seq, at, rec) != h:
            problems.append(f"entry {seq}: hash chain broken")
        prev, expect = h, seq + 1
    return problems


def carry_over_legacy(db: ApiDatabase, log: AuditLog) -> int:
    """Copy the old ``api.sqlite`` audit entries into the store's log once; returns how many.

    Idempotent: entries already carried (found by their old sequence number) are not
    copied again, so a crash between the copy and dropping the old table is harmless.
    """
    if not db.query("SELECT 1 FROM sqlite_master WHERE type='table' AND name='audit_legacy'"):
        return 0
    rows = db.query("SELECT seq, at, record, prev, hash FROM audit_legacy ORDER BY seq")
    done = max((e.record["carried_over"]["seq"] for e in log.entries_since(0, "carried-over")
                if e.record.get("carried_over", {}).get("from") == "api.sqlite"), default=0)
    todo = [r for r in rows if r[0] > done]
    if todo:
        records = []
        for seq, at, record, prev, h in todo:
            try:
                rec = json.loads(record)
            except ValueError:
                rec = {"unreadable": record}
            records.append(({"action": "carried-over", "subject": rec.get("subject") or "",
                             "bureaus": bureaus_of(rec), "role": "operator", "bureau": "",
                             "carried_over": {"from": "api.sqlite", "seq": seq, "at": at, "prev": prev, "hash": h,
                                              "record": rec}}, at))
        problems = legacy_problems(rows)
        records.append(({**os_actor(), "action": "migration", "from": "api.sqlite audit (the service's own chain)",
                         "entries": len(rows), "legacy_chain_intact": not problems, "problems": problems[:100]},
                        None))
        log.append_all(records)
    with db.write() as con:
        con.execute("DROP TABLE audit_legacy")
    return len(todo)


def forget_deleted(db: ApiDatabase, log: AuditLog) -> int:
    """Remove the access rules of subjects deleted since the last call (by anyone); returns how many.

    A rule made after a deletion belongs to a new subject of that name and is kept.
    """
    row = db.query("SELECT value FROM meta WHERE key=?", (_CURSOR,))
    seen = int(row[0][0]) if row else 0
    deleted = log.entries_since(seen, "delete")
    if not deleted:
        return 0
    n = 0
    with db.write() as con:
        for e in deleted:
            n += con.execute("DELETE FROM access WHERE subject=? AND created <= ?",
                             (str(e.record.get("subject", "")), e.at)).rowcount
        con.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                    (_CURSOR, str(deleted[-1].seq)))
    return n
