"""The service's own SQLite file, ``api.sqlite``, beside the gallery in the store folder.

It holds what only the HTTP service needs and the gallery store does not know about:
API keys (hashes only), the owning bureau and access rule of each subject, the
hash-chained audit log, and batch jobs with their probes and results.  WAL mode, one
connection per thread, writes in ``BEGIN IMMEDIATE`` transactions so that several
threads or processes (``locard serve`` and ``locard keys``) can share the file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from indexer.store import connect, private_folder

DB_NAME = "api.sqlite"
SCHEMA_VERSION = 1

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
"""


class ApiDatabase:
    """``api.sqlite`` of one store folder; one connection per thread."""

    def __init__(self, store: str | Path):
        self.path = private_folder(Path(store)) / DB_NAME
        self._local = threading.local()
        con = self.connection()
        with self.write() as c:
            for stmt in filter(str.strip, _SCHEMA.split(";")):
                c.execute(stmt)
            row = c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is None:
                c.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
            elif int(row[0]) > SCHEMA_VERSION:
                raise RuntimeError(f"{self.path} was written by a newer locard (schema {row[0]})")
        del con

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
