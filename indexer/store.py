"""The gallery store: one folder, SQLite (WAL) as the source of truth.

Layout of a store folder::

    gallery.sqlite          subjects, encounters, samples, the change log, the one audit log
    finger.index            FAISS cache of fingerprint descriptors (see faiss_index.py)
    face.index              FAISS cache of face embeddings

The SQLite file is the truth.  Every write that changes what search must see
(a sample added, a subject deleted) appends a row to ``changes`` in the same
transaction; each FAISS index file records the last change it contains, so opening
the store replays newer changes into it, or rebuilds it from the samples, and an
index can never disagree with the store after a crash.

Nothing is overwritten: a new image of a known subject is a new encounter with new
samples.  The only destructive operation is deleting a subject, which removes its
encounters and samples, logs one ``delete`` change per sample and records the
deletion in the audit log (:mod:`indexer.audit`).

The schema is built by numbered migrations (:data:`MIGRATIONS`, counted by
``PRAGMA user_version``, :mod:`indexer.migrations`); a store written by a newer
schema is refused (:class:`~indexer.errors.StoreVersionError`).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .audit import AuditLog, append_entry, create_chained_table, os_actor
from .errors import StoreError, StoreNotFoundError, StoreVersionError, SubjectNotFoundError
from .migrations import Migration, latest, migrate

DB_NAME = "gallery.sqlite"
MODALITIES = ("finger", "face")

#: ANSI/NIST-ITL finger position codes (0 = unknown, 1-10 = right thumb .. left little).
FINGER_POSITIONS = {
    0: "unknown", 1: "right thumb", 2: "right index", 3: "right middle", 4: "right ring",
    5: "right little", 6: "left thumb", 7: "left index", 8: "left middle", 9: "left ring",
    10: "left little",
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS subjects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS encounters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    subject_id INTEGER NOT NULL REFERENCES subjects(id),
    created REAL NOT NULL,
    source TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS samples (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    encounter_id INTEGER NOT NULL REFERENCES encounters(id),
    subject_id INTEGER NOT NULL REFERENCES subjects(id),
    modality TEXT NOT NULL CHECK (modality IN ('finger', 'face')),
    finger_position INTEGER NOT NULL DEFAULT 0 CHECK (finger_position BETWEEN 0 AND 10),
    template BLOB NOT NULL,
    template_version TEXT NOT NULL,
    quality INTEGER NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    source TEXT NOT NULL DEFAULT '',
    metadata TEXT NOT NULL DEFAULT '{}',
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS samples_subject ON samples(subject_id);
CREATE INDEX IF NOT EXISTS samples_modality ON samples(modality, id);
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL CHECK (op IN ('add', 'delete')),
    modality TEXT NOT NULL,
    sample_id INTEGER NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '{}'
);
INSERT OR IGNORE INTO meta VALUES ('schema_version', '1');
INSERT OR IGNORE INTO meta VALUES ('created', CAST((julianday('now') - 2440587.5) * 86400.0 AS TEXT));
"""


def _chained_audit(con: sqlite3.Connection) -> None:
    """Migration 3: a store id (names the audit anchor) and the one hash-chained audit log."""
    con.execute("INSERT OR IGNORE INTO meta VALUES ('store_id', lower(hex(randomblob(16))))")
    create_chained_table(con)


#: Numbered migrations (``PRAGMA user_version``); 1 is the schema as first shipped, whose
#: stores say ``schema_version`` 1 in ``meta`` and have user_version 0.
MIGRATIONS: list[Migration] = [
    (1, _SCHEMA),
    # shipped without a version: stores of that time get it here
    (2, "CREATE INDEX IF NOT EXISTS encounters_subject ON encounters(subject_id);"),
    (3, _chained_audit),
    # comparator arrays derived from a template, read by search instead of recomputed
    # (indexer.prepared); a cache: rows of another format are ignored and may be rewritten
    (4, """CREATE TABLE IF NOT EXISTS prepared (
    sample_id INTEGER PRIMARY KEY REFERENCES samples(id) ON DELETE CASCADE,
    format TEXT NOT NULL,
    data BLOB NOT NULL
);"""),
]
#: Schema version written by this build (the ``meta`` row follows it, so older builds refuse the file).
SCHEMA_VERSION = latest(MIGRATIONS)


@dataclass(frozen=True)
class Sample:
    """One stored sample: a template extracted from one image.

    Attributes
    ----------
    id : int
        Sample id (never reused; also the id in the FAISS indexes).
    subject : str
        Subject name (the ``identity`` it was ingested under).
    subject_id, encounter_id : int
    modality : str
        ``"finger"`` or ``"face"``.
    finger_position : int
        ANSI/NIST-ITL finger position code, 0 (unknown) to 10.
    quality : int
        0-100.
    sha256 : str
        SHA-256 of the source image bytes (hex).
    source : str
        Where the image came from (a path or reference).
    metadata : dict
    template : bytes
        Versioned template bytes of the modality's matcher.
    template_version : str
    """

    id: int
    subject: str
    subject_id: int
    encounter_id: int
    modality: str
    finger_position: int
    quality: int
    sha256: str
    source: str
    metadata: dict = field(default_factory=dict)
    template: bytes = b""
    template_version: str = ""


@dataclass(frozen=True)
class NewSample:
    """A sample to add (see :meth:`GalleryStore.add_samples`)."""

    subject: str
    modality: str
    template: bytes
    template_version: str
    quality: int
    sha256: str
    finger_position: int = 0
    source: str = ""
    metadata: dict = field(default_factory=dict)
    prepared: bytes = b""
    """Comparator arrays derived from ``template`` (:mod:`indexer.prepared`), or empty."""
    prepared_format: str = ""


@dataclass(frozen=True)
class Subject:
    """A subject with the counts of what is stored for it."""

    id: int
    name: str
    created: float
    encounters: int
    finger_samples: int
    face_samples: int
    metadata: dict = field(default_factory=dict)


def private_files() -> None:
    """From now on this process creates files and folders for its own user only (umask 077).

    Called by every process that opens a store, so that whatever module writes into
    the store folder (SQLite and its ``-wal``/``-shm``, FAISS index files, images,
    job files, key files) creates it 0600 (folders 0700) without a chmod of its own.
    Only ever tightens the mask.
    """
    old = os.umask(0o077)  # never widens, even for a moment
    os.umask(old | 0o077)


def private_folder(path: Path) -> Path:
    """Create ``path`` (and its parents) readable by this user only (0700); returns it."""
    private_files()
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def connect(path: Path) -> sqlite3.Connection:
    """Open one of the store's SQLite files: WAL, deleted content zeroed, 0600.

    ``secure_delete`` overwrites what a deletion frees (a deleted subject's templates
    leave no bytes in the database pages); :func:`checkpoint` then empties the WAL,
    which still holds the older page images.  Files of older stores are made 0600
    when opened.
    """
    private_files()
    for suffix in ("", "-wal", "-shm"):
        try:
            path.with_name(path.name + suffix).chmod(0o600)
        except OSError:  # absent, or another user's file: SQLite says what it cannot open
            pass
    con = sqlite3.connect(path, timeout=30.0, isolation_level=None)  # explicit transactions
    con.execute("PRAGMA secure_delete=ON")
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a commit survives a process kill
    con.execute("PRAGMA foreign_keys=ON")
    return con


def checkpoint(con: sqlite3.Connection) -> bool:
    """Copy the WAL into the database file and truncate it to 0 bytes.

    Returns
    -------
    bool
        False when a reader of another connection kept part of the WAL in use (it
        stays until the next checkpoint that completes).
    """
    busy, _, _ = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    return not busy


class GalleryStore:
    """The SQLite side of a store folder.

    Parameters
    ----------
    path : str or Path
        The store folder.
    create : bool
        Create the folder and an empty store when absent; otherwise raise
        :class:`StoreNotFoundError`.

    Notes
    -----
    One writer at a time (SQLite's lock); readers never block it (WAL).  Use as a
    context manager or call :meth:`close`.
    """

    def __init__(self, path: str | Path, *, create: bool = False):
        self.path = Path(path)
        db = self.path / DB_NAME
        if not db.exists():
            if not create:
                raise StoreNotFoundError(
                    f"no locard store at {self.path} (expected {db}); "
                    "`locard ingest SOURCE --store PATH` creates one")
            private_folder(self.path)
        try:
            self.con = connect(db)
            self._init_schema()
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open {db}: {exc}") from exc

    # -- lifecycle ---------------------------------------------------------------------------
    def _init_schema(self) -> None:
        # the meta row is what builds before numbered migrations wrote and read: honour it too
        has_meta = self.con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
        row = has_meta and self.con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row and int(row[0]) > SCHEMA_VERSION:
            raise StoreVersionError(f"store schema {row[0]} was written by a newer locard (this build reads up "
                                    f"to {SCHEMA_VERSION}): upgrade locard")
        migrate(self.con, MIGRATIONS, path=self.path / DB_NAME)
        self.con.execute("UPDATE meta SET value=? WHERE key='schema_version' AND value != ?",
                         (str(SCHEMA_VERSION), str(SCHEMA_VERSION)))

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "GalleryStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- writing -----------------------------------------------------------------------------
    def add_samples(self, samples: Iterable[NewSample], *, encounter_source: str = "") -> list[int | None]:
        """Add samples in one transaction (durable when this returns).

        Samples of one subject in one call share one new encounter.  A sample whose
        ``sha256`` is already stored is skipped (its entry in the result is ``None``).

        Returns
        -------
        list of int or None
            The new sample ids, in input order.
        """
        samples = list(samples)
        out: list[int | None] = []
        con = self.con
        now = time.time()
        con.execute("BEGIN IMMEDIATE")
        try:
            encounters: dict[str, int] = {}
            for s in samples:
                if s.modality not in MODALITIES:
                    raise ValueError(f"modality must be one of {MODALITIES}, got {s.modality!r}")
                if not 0 <= int(s.finger_position) <= 10:
                    raise ValueError(f"finger position must be 0-10 (ANSI/NIST), got {s.finger_position}")
                if con.execute("SELECT 1 FROM samples WHERE sha256=?", (s.sha256,)).fetchone():
                    out.append(None)
                    continue
                row = con.execute("SELECT id FROM subjects WHERE name=?", (s.subject,)).fetchone()
                if row is None:
                    sid = con.execute("INSERT INTO subjects(name, created) VALUES (?, ?)",
                                      (s.subject, now)).lastrowid
                else:
                    sid = row[0]
                eid = encounters.get(s.subject)
                if eid is None:
                    eid = con.execute("INSERT INTO encounters(subject_id, created, source) VALUES (?, ?, ?)",
                                      (sid, now, encounter_source)).lastrowid
                    encounters[s.subject] = eid
                sample_id = con.execute(
                    "INSERT INTO samples(encounter_id, subject_id, modality, finger_position, template, "
                    "template_version, quality, sha256, source, metadata, created) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (eid, sid, s.modality, int(s.finger_position), sqlite3.Binary(s.template),
                     s.template_version, int(s.quality), s.sha256, s.source,
                     json.dumps(s.metadata, sort_keys=True), now)).lastrowid
                con.execute("INSERT INTO changes(op, modality, sample_id, at) VALUES ('add', ?, ?, ?)",
                            (s.modality, sample_id, now))
                if s.prepared:
                    con.execute("INSERT INTO prepared(sample_id, format, data) VALUES (?, ?, ?)",
                                (sample_id, s.prepared_format, sqlite3.Binary(s.prepared)))
                out.append(sample_id)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return out

    def delete_subject(self, subject: str | int, *, reason: str = "", actor: dict | None = None) -> list[int]:
        """Delete a subject, its encounters and samples; record it in the audit log.

        The audit entry (action ``delete``, by ``actor``: default the OS user,
        :func:`~indexer.audit.os_actor`) is written in the same transaction as the
        deletion; the caller anchors it (:meth:`indexer.audit.AuditLog.anchor`).

        Returns
        -------
        list of int
            Ids of the deleted samples (the indexes drop them on their next sync).

        Raises
        ------
        SubjectNotFoundError
        """
        con = self.con
        now = time.time()
        con.execute("BEGIN IMMEDIATE")
        try:
            sid, name = self._subject_row(subject)
            rows = con.execute("SELECT id, modality FROM samples WHERE subject_id=?", (sid,)).fetchall()
            for sample_id, modality in rows:
                con.execute("INSERT INTO changes(op, modality, sample_id, at) VALUES ('delete', ?, ?, ?)",
                            (modality, sample_id, now))
            con.execute("DELETE FROM samples WHERE subject_id=?", (sid,))
            n_enc = con.execute("DELETE FROM encounters WHERE subject_id=?", (sid,)).rowcount
            con.execute("DELETE FROM subjects WHERE id=?", (sid,))
            append_entry(con, {**(actor if actor is not None else os_actor()), "action": "delete",
                               "subject": name, "samples": len(rows), "encounters": n_enc, "reason": reason})
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        checkpoint(con)  # the WAL still holds the deleted pages as they were
        return [r[0] for r in rows]

    # -- reading -----------------------------------------------------------------------------
    def _subject_row(self, subject: str | int) -> tuple[int, str]:
        if isinstance(subject, int):
            row = self.con.execute("SELECT id, name FROM subjects WHERE id=?", (subject,)).fetchone()
        else:
            row = self.con.execute("SELECT id, name FROM subjects WHERE name=?", (subject,)).fetchone()
        if row is None:
            raise SubjectNotFoundError(f"no subject {subject!r} in the store at {self.path}")
        return row

    def last_change(self) -> int:
        """Sequence number of the newest change (0 for a store never written)."""
        return int(self.con.execute("SELECT COALESCE(MAX(seq), 0) FROM changes").fetchone()[0])

    def changes_since(self, seq: int, modality: str) -> list[tuple[int, str, int]]:
        """``(seq, op, sample_id)`` of the changes of one modality after ``seq``, oldest first."""
        return self.con.execute(
            "SELECT seq, op, sample_id FROM changes WHERE seq>? AND modality=? ORDER BY seq",
            (seq, modality)).fetchall()

    def known_hashes(self) -> set[str]:
        """SHA-256 of every stored source image."""
        return {r[0] for r in self.con.execute("SELECT sha256 FROM samples")}

    def count(self, modality: str | None = None) -> int:
        if modality is None:
            return int(self.con.execute("SELECT COUNT(*) FROM samples").fetchone()[0])
        return int(self.con.execute("SELECT COUNT(*) FROM samples WHERE modality=?", (modality,)).fetchone()[0])

    def subject_count(self, *, exclude: Iterable[str] = ()) -> int:
        """Subjects stored, leaving out those named in ``exclude`` (names not stored count for nothing)."""
        n = int(self.con.execute("SELECT COUNT(*) FROM subjects").fetchone()[0])
        exclude = sorted(set(exclude))
        if exclude:  # one index lookup per excluded name, not a pass over every subject
            n -= int(self.con.execute("SELECT COUNT(*) FROM subjects WHERE name IN (SELECT value FROM json_each(?))",
                                      (json.dumps(exclude),)).fetchone()[0])
        return n

    def sample_ids(self, modality: str) -> list[int]:
        return [r[0] for r in self.con.execute("SELECT id FROM samples WHERE modality=? ORDER BY id", (modality,))]

    _SAMPLE_COLS = ("s.id, sub.name, s.subject_id, s.encounter_id, s.modality, s.finger_position, s.quality, "
                    "s.sha256, s.source, s.metadata")

    def _sample(self, row, template: bytes = b"", version: str = "") -> Sample:
        return Sample(id=row[0], subject=row[1], subject_id=row[2], encounter_id=row[3], modality=row[4],
                      finger_position=row[5], quality=row[6], sha256=row[7], source=row[8],
                      metadata=json.loads(row[9]), template=template, template_version=version)

    def samples(self, modality: str | None = None, *, ids: Iterable[int] | None = None,
                with_templates: bool = True, batch: int = 2000) -> Iterator[Sample]:
        """Stored samples, by id, optionally of one modality or with the given ids."""
        cols = self._SAMPLE_COLS + (", s.template, s.template_version" if with_templates else "")
        base = f"SELECT {cols} FROM samples s JOIN subjects sub ON sub.id = s.subject_id"

        def make(r):
            return self._sample(r, bytes(r[10]), r[11]) if with_templates else self._sample(r)

        if ids is not None:
            ids = list(ids)
            for i in range(0, len(ids), 500):
                chunk = ids[i:i + 500]
                q = base + f" WHERE s.id IN ({','.join('?' * len(chunk))}) ORDER BY s.id"
                for r in self.con.execute(q, chunk):
                    yield make(r)
            return
        last = 0
        while True:
            if modality is None:
                rows = self.con.execute(base + " WHERE s.id>? ORDER BY s.id LIMIT ?", (last, batch)).fetchall()
            else:
                rows = self.con.execute(base + " WHERE s.id>? AND s.modality=? ORDER BY s.id LIMIT ?",
                                        (last, modality, batch)).fetchall()
            if not rows:
                return
            for r in rows:
                yield make(r)
            last = rows[-1][0]

    def prepared(self, ids: Iterable[int], fmt: str) -> dict[int, bytes]:
        """``sample id -> prepared bytes`` of format ``fmt`` for those of ``ids`` that have them."""
        ids = list(ids)
        out = {}
        for i in range(0, len(ids), 500):
            chunk = ids[i:i + 500]
            q = f"SELECT sample_id, data FROM prepared WHERE format=? AND sample_id IN ({','.join('?' * len(chunk))})"
            out.update((r[0], bytes(r[1])) for r in self.con.execute(q, [fmt, *chunk]))
        return out

    def unprepared(self, modality: str, fmt: str, *, after: int = 0, limit: int = 1000) -> list[Sample]:
        """Samples of ``modality`` with no prepared bytes of format ``fmt`` (templates
        included), by id from ``after`` on, at most ``limit``."""
        q = (f"SELECT {self._SAMPLE_COLS}, s.template, s.template_version FROM samples s "
             "JOIN subjects sub ON sub.id = s.subject_id LEFT JOIN prepared p ON p.sample_id = s.id AND p.format = ? "
             "WHERE s.modality = ? AND s.id > ? AND p.sample_id IS NULL ORDER BY s.id LIMIT ?")
        return [self._sample(r, bytes(r[10]), r[11]) for r in self.con.execute(q, (fmt, modality, after, limit))]

    def unprepared_count(self, modality: str, fmt: str) -> int:
        """Samples of ``modality`` with no prepared bytes of format ``fmt``."""
        return int(self.con.execute(
            "SELECT COUNT(*) FROM samples s LEFT JOIN prepared p ON p.sample_id = s.id AND p.format = ? "
            "WHERE s.modality = ? AND p.sample_id IS NULL", (fmt, modality)).fetchone()[0])

    def put_prepared(self, rows: Iterable[tuple[int, str, bytes]]) -> int:
        """Write ``(sample id, format, bytes)`` rows in one transaction, replacing a sample's
        row of another format; rows of samples deleted meanwhile are dropped.  Rows written."""
        con = self.con
        n = 0
        con.execute("BEGIN IMMEDIATE")
        try:
            for sid, fmt, data in rows:
                n += con.execute("INSERT OR REPLACE INTO prepared(sample_id, format, data) "
                                 "SELECT id, ?, ? FROM samples WHERE id = ?",
                                 (fmt, sqlite3.Binary(data), sid)).rowcount
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return n

    _SUBJECT_COLS = ("sub.id, sub.name, sub.created, sub.metadata, "
                     "(SELECT COUNT(*) FROM encounters e WHERE e.subject_id=sub.id), "
                     "(SELECT COUNT(*) FROM samples s WHERE s.subject_id=sub.id AND s.modality='finger'), "
                     "(SELECT COUNT(*) FROM samples s WHERE s.subject_id=sub.id AND s.modality='face')")

    @staticmethod
    def _subject(r) -> Subject:
        return Subject(id=r[0], name=r[1], created=r[2], metadata=json.loads(r[3]), encounters=r[4],
                       finger_samples=r[5], face_samples=r[6])

    def subjects(self, *, limit: int | None = None, offset: int = 0, exclude: Iterable[str] = ()) -> list[Subject]:
        """Subjects by name, one page (``offset``, ``limit``) cut by SQLite.

        Parameters
        ----------
        exclude : iterable of str
            Names to leave out before the page is cut (records the caller may not see).
        """
        exclude = sorted(set(exclude))
        where = " WHERE sub.name NOT IN (SELECT value FROM json_each(?))" if exclude else ""
        q = f"SELECT {self._SUBJECT_COLS} FROM subjects sub{where} ORDER BY sub.name LIMIT ? OFFSET ?"
        params = ((json.dumps(exclude),) if exclude else ()) + (-1 if limit is None else limit, offset)
        return [self._subject(r) for r in self.con.execute(q, params).fetchall()]

    def subject(self, subject: str | int) -> tuple[Subject, list[Sample]]:
        """One subject and its samples (without template bytes)."""
        sid, name = self._subject_row(subject)
        sub = self._subject(self.con.execute(f"SELECT {self._SUBJECT_COLS} FROM subjects sub WHERE sub.id=?",
                                             (sid,)).fetchone())
        rows = self.con.execute(
            f"SELECT {self._SAMPLE_COLS} FROM samples s JOIN subjects sub ON sub.id=s.subject_id "
            "WHERE s.subject_id=? ORDER BY s.id", (sid,)).fetchall()
        return sub, [self._sample(r) for r in rows]

    def sample_owners(self, modality: str, *, ids: Iterable[int] | None = None) -> dict[int, tuple[int, str, int]]:
        """``sample id -> (subject id, subject name, finger position)`` for one modality
        (only the samples ``ids`` names, when given)."""
        q = ("SELECT s.id, s.subject_id, sub.name, s.finger_position FROM samples s "
             "JOIN subjects sub ON sub.id=s.subject_id WHERE s.modality=?")
        if ids is None:
            return {r[0]: (r[1], r[2], r[3]) for r in self.con.execute(q, (modality,))}
        q += " AND s.id IN (SELECT value FROM json_each(?))"
        return {r[0]: (r[1], r[2], r[3]) for r in self.con.execute(q, (modality, json.dumps(list(ids))))}

    def audit(self, *, key_file: str | Path | None = None) -> AuditLog:
        """The store's audit log (:mod:`indexer.audit`), anchored with ``key_file``'s key."""
        return AuditLog(self.path / DB_NAME, key_file=key_file)

    def integrity_problems(self) -> list[str]:
        """SQLite's own integrity check plus the store's invariants (empty when all is well)."""
        problems = []
        res = [r[0] for r in self.con.execute("PRAGMA integrity_check")]
        if res != ["ok"]:
            problems += [f"sqlite: {r}" for r in res]
        orphan = self.con.execute(
            "SELECT COUNT(*) FROM samples s LEFT JOIN subjects sub ON sub.id=s.subject_id WHERE sub.id IS NULL"
        ).fetchone()[0]
        if orphan:
            problems.append(f"{orphan} samples belong to no subject")
        orphan = self.con.execute(
            "SELECT COUNT(*) FROM prepared p LEFT JOIN samples s ON s.id=p.sample_id WHERE s.id IS NULL").fetchone()[0]
        if orphan:
            problems.append(f"{orphan} prepared rows belong to no sample")
        # every live sample must have an 'add' change, and no 'delete' after it
        missing = self.con.execute(
            "SELECT COUNT(*) FROM samples s WHERE NOT EXISTS (SELECT 1 FROM changes c "
            "WHERE c.sample_id=s.id AND c.op='add')").fetchone()[0]
        if missing:
            problems.append(f"{missing} samples have no 'add' change (the indexes could miss them)")
        return problems
