"""The service's own SQLite file, ``api.sqlite``, beside the gallery in the store folder.

It holds what only the HTTP service needs and the gallery store does not know about:
API keys (hashes only), the owning bureau and access rule of each subject, batch
jobs with their probes and results, and the examiners' searches with the conclusions
recorded on them (:mod:`api.conclusions`).  (The audit log is the store's, in
``gallery.sqlite``: :mod:`indexer.audit`.)  The schema is built by numbered
migrations (:data:`MIGRATIONS`); a file written by a newer build is refused
(:class:`~indexer.errors.StoreVersionError`).  WAL mode, one
connection per thread, writes in ``BEGIN IMMEDIATE`` transactions so that several
threads or processes (``locard serve`` and ``locard keys``) can share the file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from indexer.migrations import Migration, latest, migrate
from indexer.store import connect, private_folder

DB_NAME = "api.sqlite"

# Migration 1: the schema as first shipped (files of that time say schema_version 1 in meta
# and have user_version 0, so this runs on them as a no-op).
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS keys (
    id TEXT PRIMARY KEY,
    hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('examiner', 'bureau', 'auditor', 'admin')),
    bureau TEXT NOT NULL,
    label TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    revoked REAL
);
CREATE TABLE IF NOT EXISTS access (
    subject TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    shared TEXT NOT NULL,
    reference TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    record TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    bureau TEXT NOT NULL,
    key_id TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    state TEXT NOT NULL,
    params TEXT NOT NULL,
    total INTEGER NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    cancel INTEGER NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS job_items (
    job_id TEXT NOT NULL REFERENCES jobs(id),
    idx INTEGER NOT NULL,
    label TEXT NOT NULL,
    path TEXT NOT NULL,
    modality TEXT NOT NULL,
    finger_position INTEGER NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    result TEXT,
    PRIMARY KEY (job_id, idx)
);
INSERT OR IGNORE INTO meta VALUES ('schema_version', '1');
"""

_CASEWORK = """
CREATE TABLE searches (
    id TEXT PRIMARY KEY,
    bureau TEXT NOT NULL,
    key_id TEXT NOT NULL,
    created REAL NOT NULL,
    case_ref TEXT NOT NULL DEFAULT '',
    result TEXT NOT NULL
);
CREATE INDEX searches_bureau_case ON searches(bureau, case_ref, created);
CREATE TABLE conclusions (
    id INTEGER PRIMARY KEY,
    search_id TEXT NOT NULL REFERENCES searches(id),
    subject TEXT NOT NULL,
    key_id TEXT NOT NULL,
    conclusion TEXT NOT NULL CHECK (conclusion IN ('identification', 'exclusion', 'inconclusive')),
    note TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('initial', 'verification')),
    UNIQUE (search_id, subject, key_id)
);
CREATE INDEX conclusions_pair ON conclusions(search_id, subject, created);
"""

#: Numbered migrations (``PRAGMA user_version``, :mod:`indexer.migrations`).
MIGRATIONS: list[Migration] = [
    (1, _SCHEMA),
    # keys: a bureau-scoped or global key (only auditors may be global)
    (2, "ALTER TABLE keys ADD COLUMN scope TEXT NOT NULL DEFAULT 'bureau' CHECK (scope IN ('bureau', 'global'));"),
    # the audit log moved to gallery.sqlite (indexer.audit: one log for CLI and API); the old
    # chain waits in audit_legacy until api.audit.carry_over_legacy copies it there and drops it
    (3, "ALTER TABLE audit RENAME TO audit_legacy;"),
    # the examiners' workbench (api.conclusions): each search remembered, and the ACE-V
    # conclusions recorded on its candidates
    (4, _CASEWORK),
]
SCHEMA_VERSION = latest(MIGRATIONS)


class ApiDatabase:
    """``api.sqlite`` of one store folder; one connection per thread."""

    def __init__(self, store: str | Path):
        self.path = private_folder(Path(store)) / DB_NAME
        self._local = threading.local()
        con = self.connection()
        migrate(con, MIGRATIONS, path=self.path)
        # older builds read this row and refuse a newer file instead of writing the old audit table
        con.execute("UPDATE meta SET value=? WHERE key='schema_version' AND value != ?",
                    (str(SCHEMA_VERSION), str(SCHEMA_VERSION)))

    def connection(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = connect(self.path)  # the gallery's settings: WAL, secure_delete, 0600
            self._local.con = con
        return con

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``: writers queue on SQLite's lock)."""
        con = self.connection()
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self.connection().execute(sql, params).fetchall()
