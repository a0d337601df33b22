"""The service's audit log: append-only and hash-chained.

Each entry is a JSON record (who: key id, role, bureau; when; what: action, subject,
probe image hashes, candidates returned, outcome) stored with
``hash = SHA-256(prev_hash || canonical JSON of {seq, at, record})``; the first
entry's ``prev`` is 64 zeros.  Changing, removing or reordering any entry breaks
every hash after it, which :func:`verify_chain` (``locard audit verify``) reports.

Appends take SQLite's write lock (``BEGIN IMMEDIATE``) before reading the last hash,
so concurrent writers (threads or processes) can never fork the chain.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass

from .database import ApiDatabase

GENESIS = "0" * 64


def _digest(prev: str, seq: int, at: float, record: dict) -> str:
    body = json.dumps({"seq": seq, "at": at, "record": record}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256((prev + body).encode()).hexdigest()


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: float
    record: dict
    prev: str
    hash: str


class AuditLog:
    def __init__(self, db: ApiDatabase):
        self.db = db

    def append(self, record: dict) -> AuditEntry:
        record = json.loads(json.dumps(record, sort_keys=True))  # exactly what is stored
        at = round(time.time(), 6)
        with self.db.write() as con:
            row = con.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
            h = _digest(prev, seq, at, record)
            con.execute("INSERT INTO audit(seq, at, record, prev, hash) VALUES (?, ?, ?, ?, ?)",
                        (seq, at, json.dumps(record, sort_keys=True, separators=(",", ":")), prev, h))
        return AuditEntry(seq, at, record, prev, h)

    def entries(self, *, after: int = 0, limit: int = 100) -> list[AuditEntry]:
        rows = self.db.query("SELECT seq, at, record, prev, hash FROM audit WHERE seq > ? ORDER BY seq LIMIT ?",
                             (after, limit))
        return [AuditEntry(r[0], r[1], json.loads(r[2]), r[3], r[4]) for r in rows]

    def verify(self) -> tuple[int, list[str]]:
        return verify_chain(self.db)


def verify_chain(db: ApiDatabase) -> tuple[int, list[str]]:
    """Recompute the chain; returns (entries checked, problems)."""
    problems: list[str] = []
    prev, expect_seq, n = GENESIS, 1, 0
    for seq, at, record, stored_prev, h in db.connection().execute(
            "SELECT seq, at, record, prev, hash FROM audit ORDER BY seq"):
        n += 1
        if seq != expect_seq:
            problems.append(f"entry {seq}: expected sequence number {expect_seq} (entries removed or inserted)")
        if stored_prev != prev:
            problems.append(f"entry {seq}: its prev hash does not match entry {seq - 1}'s hash")
        try:
            rec = json.loads(record)
        except ValueError:
            problems.append(f"entry {seq}: record is not JSON")
            rec = record
        if _digest(stored_prev, seq, at, rec) != h:
            problems.append(f"entry {seq}: hash does not match its content (entry altered)")
        prev, expect_seq = h, seq + 1
    return n, problems
