"""The store's one audit log: append-only, hash-chained, anchored outside the database.

Every action on a store is one entry of the ``audit`` table in ``gallery.sqlite``,
whoever does it: the HTTP service (actor: the API key's id, role and bureau) or the
command line (actor: the OS user, host and process id, role ``operator``).  Each
entry is a JSON record stored with ``hash = SHA-256(prev || canonical JSON of
{seq, at, record})``; the first entry's ``prev`` is 64 zeros.  SQLite triggers refuse
``UPDATE`` and ``DELETE`` on the table.

Threat model: someone who can write the store folder can drop the triggers and delete,
truncate or rewrite the log, recomputing every hash.  What they cannot reach is the
anchor: after each append the head ``(seq, hash)`` is written, with an HMAC-SHA256 under
a key they cannot read, to ``audit-<store id>.anchor`` beside the key file (default
``~/.config/locard/audit-<store id>.key``, mode 0600, set with ``--audit-key-file`` or
``LOCARD_AUDIT_KEY``; refused inside the store folder).  :meth:`AuditLog.verify` then
reports a log shorter than the anchor (truncated, emptied) or whose entry at the anchor's
sequence number has another hash (rewritten).  Not covered: entries appended after the
last anchor (a crash between commit and anchor leaves one), and an attacker who can also
write the key folder.

Entries name the bureaus they concern (``bureaus``: the actor's, and the owner of a
subject another bureau read) so that a bureau's auditor reads only those (SQL filter).
"""

from __future__ import annotations

import fcntl
import getpass
import hashlib
import hmac
import json
import logging
import os
import secrets
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import StoreError

log = logging.getLogger("locard.audit")

GENESIS = "0" * 64
KEY_ENV = "LOCARD_AUDIT_KEY"
_ANCHOR_CONTEXT = b"locard-audit-anchor-v1"
_ANCHOR_BYTES = 512  # the anchor file's size: JSON padded with spaces, rewritten in place

#: The table, its lookup indexes and the triggers that make it append-only.
SCHEMA = """
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    bureaus TEXT NOT NULL DEFAULT ',',
    record TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_action ON audit(action, seq);
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: entries cannot be changed'); END;
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: entries cannot be removed'); END;
"""


class AuditKeyError(StoreError):
    """The audit key file is unusable: unreadable, malformed, readable by others, or inside the store."""


@dataclass(frozen=True)
class AuditEntry:
    """One entry: sequence number, time (s since the epoch), the record, and its chain hashes."""

    seq: int
    at: float
    record: dict
    prev: str
    hash: str


@dataclass(frozen=True)
class Anchor:
    """The head of the log as last anchored: ``seq`` and ``hash`` of that entry, under an HMAC."""

    store: str
    seq: int
    hash: str
    at: float
    mac: str


@dataclass
class ChainCheck:
    """Result of :meth:`AuditLog.verify`: entries read, problems (empty: intact), anchored head."""

    entries: int
    problems: list[str] = field(default_factory=list)
    anchored: int = 0
    """Sequence number the anchor vouches for (0: none)."""
    last: int = 0

    @property
    def intact(self) -> bool:
        return not self.problems


# -- records and the chain ---------------------------------------------------------------------
def canonical(record: dict) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"))


def digest(prev: str, seq: int, at: float, record: dict) -> str:
    """The chain hash of one entry (hex SHA-256)."""
    body = json.dumps({"seq": seq, "at": at, "record": record}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256((prev + body).encode()).hexdigest()


def bureaus_of(record: dict) -> list[str]:
    """Bureaus an entry concerns: its ``bureaus`` list, else the actor's bureau (none for the CLI)."""
    if "bureaus" in record:
        return sorted({str(b) for b in record["bureaus"] if b})
    return [record["bureau"]] if record.get("bureau") else []


def _scope_column(bureaus: Iterable[str]) -> str:
    # ",FR,DE,": one instr() finds a bureau; bureau names cannot hold commas (api.keys.BUREAU_NAME)
    return "," + "".join(f"{b}," for b in bureaus)


def os_actor() -> dict:
    """The actor of a command-line action: OS user, host and process id."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (containers)
        user = f"uid:{os.getuid()}"
    return {"user": user, "host": socket.gethostname(), "pid": os.getpid(), "role": "operator", "bureau": ""}


def append_entry(con: sqlite3.Connection, record: dict, *, at: float | None = None) -> AuditEntry:
    """Append one entry inside the caller's open write transaction (``BEGIN IMMEDIATE``).

    Holding SQLite's write lock while the last hash is read means concurrent writers
    (threads or processes) can never fork the chain.  The caller anchors the new head
    (:meth:`AuditLog.anchor`) after it commits.
    """
    record = json.loads(canonical(record))  # exactly what is stored (JSON types only)
    record["bureaus"] = bureaus_of(record)
    at = round(time.time() if at is None else at, 6)
    row = con.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    seq, prev = (row[0] + 1, row[1]) if row else (1, GENESIS)
    h = digest(prev, seq, at, record)
    con.execute("INSERT INTO audit(seq, at, action, subject, bureaus, record, prev, hash) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (seq, at, str(record.get("action", "")), str(record.get("subject") or ""),
                 _scope_column(record["bureaus"]), canonical(record), prev, h))
    return AuditEntry(seq, at, record, prev, h)


def create_chained_table(con: sqlite3.Connection) -> None:
    """Migration step: the chained ``audit`` table, carrying over the unchained one it replaces.

    Stores written before this log kept deletions in an unchained ``audit`` table
    (id, at, action, subject, detail) with no actor.  Its rows become the first chained
    entries, in their order and with their times, action ``delete_subject`` renamed
    ``delete``, the old row id kept under ``carried_over``; the old table is then dropped.
    """
    from .migrations import statements

    old = con.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='audit'").fetchone()
    if old:
        con.execute("ALTER TABLE audit RENAME TO audit_unchained")
    for stmt in statements(SCHEMA):
        con.execute(stmt)
    if not old:
        return
    for rid, at, action, subject, detail in con.execute(
            "SELECT id, at, action, subject, detail FROM audit_unchained ORDER BY id").fetchall():
        try:
            detail = json.loads(detail)
        except ValueError:
            pass
        append_entry(con, {"action": "delete" if action == "delete_subject" else action, "subject": subject,
                           "detail": detail, "role": "operator", "bureau": "", "user": None,
                           "carried_over": {"from": "gallery.sqlite table audit (unchained)", "id": rid}}, at=at)
    con.execute("DROP TABLE audit_unchained")


# -- key and anchor files ----------------------------------------------------------------------
def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "locard"


def key_path(store_id: str, key_file: str | Path | None = None) -> Path:
    """The key file: ``key_file``, else ``$LOCARD_AUDIT_KEY``, else ``~/.config/locard/audit-<store id>.key``."""
    chosen = key_file or os.environ.get(KEY_ENV)
    return Path(chosen).expanduser() if chosen else config_dir() / f"audit-{store_id}.key"


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def read_key(path: Path) -> bytes | None:
    """The key in ``path`` (``None`` when there is no such file)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    if st.st_mode & 0o077:
        raise AuditKeyError(f"audit key {path} is readable by others (mode {st.st_mode & 0o777:o}); "
                            "`chmod 600` it")
    try:
        key = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise AuditKeyError(f"audit key {path} is unreadable or not hex: {exc}") from exc
    if len(key) < 32:
        raise AuditKeyError(f"audit key {path} is shorter than 32 bytes")
    return key


def load_or_create_key(path: Path) -> bytes:
    """The key in ``path``, made (32 random bytes, mode 0600, folder 0700) when absent."""
    key = read_key(path)
    if key is not None:
        return key
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    try:
        os.link(tmp, path)  # fails if another process made the key first: use theirs
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return read_key(path)


def _anchor_mac(key: bytes, store: str, seq: int, h: str) -> str:
    msg = b"\0".join([_ANCHOR_CONTEXT, store.encode(), str(seq).encode(), h.encode()])
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def read_anchor(path: Path) -> Anchor:
    d = json.loads(path.read_text())
    return Anchor(str(d["store"]), int(d["seq"]), str(d["hash"]), float(d["at"]), str(d["mac"]))


# -- the log -----------------------------------------------------------------------------------
class AuditLog:
    """The audit log of one store (``gallery.sqlite``); one SQLite connection per thread.

    Parameters
    ----------
    db_file : Path
        The store's ``gallery.sqlite``, already migrated (open it through
        :meth:`indexer.store.GalleryStore.audit`).
    key_file : path, optional
        The HMAC key of the anchor (see the module docstring for the default).
    """

    def __init__(self, db_file: str | Path, *, key_file: str | Path | None = None):
        self.path = Path(db_file)
        self.store = self.path.parent
        self._local = threading.local()
        row = self._con().execute("SELECT value FROM meta WHERE key='store_id'").fetchone()
        if row is None:
            raise StoreError(f"{self.path} has no store id (open it with GalleryStore first)")
        self.store_id: str = row[0]
        self.key_path = key_path(self.store_id, key_file)
        if _inside(self.key_path, self.store):
            raise AuditKeyError(f"the audit key {self.key_path} must not be inside the store folder "
                                f"{self.store}: whoever can rewrite the log could then rewrite its anchor")
        self.anchor_path = self.key_path.with_name(f"audit-{self.store_id}.anchor")
        self._key: bytes | None = None
        self._lock_path = self.key_path.with_name(f"audit-{self.store_id}.lock")

    def _con(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            con.execute("PRAGMA journal_mode=WAL")
            con.execute("PRAGMA synchronous=NORMAL")
            self._local.con = con
        return con

    def close(self) -> None:
        """Close this thread's connection."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    # -- writing -------------------------------------------------------------------------------
    def append(self, record: dict) -> AuditEntry:
        """Append one entry (durable when this returns) and anchor the new head."""
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            entry = append_entry(con, record)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        self._anchor_after_commit()
        return entry

    def append_all(self, records: list[tuple[dict, float | None]]) -> list[AuditEntry]:
        """Append several ``(record, at)`` entries in one transaction (``at`` None: now), then anchor."""
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            entries = [append_entry(con, r, at=at) for r, at in records]
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        self._anchor_after_commit()
        return entries

    def _anchor_after_commit(self) -> None:
        # the entry is recorded: a damaged anchor must not turn the action into an error after
        # the fact; it stays as it is and verify reports it (a bad key fails at start, anchor())
        try:
            self.anchor()
        except (AuditKeyError, OSError) as exc:
            log.error("audit entry recorded but not anchored: %s", exc)

    def anchor(self) -> Anchor | None:
        """Write the current head to the anchor file (never backwards, never over evidence).

        The anchor is left as it is when the log no longer holds the entry it vouches for
        (truncated or rewritten): moving it on would hide exactly what it is there to show.
        """
        if self._key is None:
            self._key = load_or_create_key(self.key_path)
        key = self._key
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # appenders in other processes anchor one at a time
            row = self._con().execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
            if row is None:
                return None
            current = self._current_anchor(key)
            if current is not None:
                if current.seq >= row[0]:
                    return current
                at_seq = self._con().execute("SELECT hash FROM audit WHERE seq=?", (current.seq,)).fetchone()
                if at_seq is None or at_seq[0] != current.hash:
                    log.error("audit log %s no longer holds the anchored entry %d: anchor kept; "
                              "`locard audit verify` reports it", self.path, current.seq)
                    return current
            new = Anchor(self.store_id, int(row[0]), row[1], round(time.time(), 6),
                         _anchor_mac(key, self.store_id, int(row[0]), row[1]))
            # one fixed-size write in place, under the lock: a rename per append cost ~3 ms here
            payload = json.dumps(new.__dict__).encode().ljust(_ANCHOR_BYTES)
            fd_anchor = os.open(self.anchor_path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                os.pwrite(fd_anchor, payload, 0)
            finally:
                os.close(fd_anchor)
            return new
        finally:
            os.close(fd)

    def _current_anchor(self, key: bytes) -> Anchor | None:
        """The anchor on file if it is there and genuine; a damaged one raises (kept as evidence)."""
        if not self.anchor_path.exists():
            return None
        try:
            a = read_anchor(self.anchor_path)
        except (OSError, ValueError, KeyError) as exc:
            raise AuditKeyError(f"audit anchor {self.anchor_path} is unreadable ({exc}); "
                                "`locard audit verify` reports it") from exc
        if a.store != self.store_id or not hmac.compare_digest(a.mac, _anchor_mac(key, a.store, a.seq, a.hash)):
            raise AuditKeyError(f"audit anchor {self.anchor_path} does not carry a valid MAC for this store")
        return a

    # -- reading -------------------------------------------------------------------------------
    def entries(self, *, after: int = 0, limit: int = 100, bureau: str | None = None) -> list[AuditEntry]:
        """Entries after ``after``, oldest first; with ``bureau``, only those that concern it."""
        if bureau is None:
            rows = self._con().execute("SELECT seq, at, record, prev, hash FROM audit WHERE seq > ? "
                                       "ORDER BY seq LIMIT ?", (after, limit)).fetchall()
        else:
            rows = self._con().execute("SELECT seq, at, record, prev, hash FROM audit WHERE seq > ? "
                                       "AND instr(bureaus, ?) > 0 ORDER BY seq LIMIT ?",
                                       (after, f",{bureau},", limit)).fetchall()
        return [AuditEntry(r[0], r[1], json.loads(r[2]), r[3], r[4]) for r in rows]

    def entries_since(self, after: int, action: str) -> list[AuditEntry]:
        """Entries of one action after ``after`` (an index lookup)."""
        rows = self._con().execute("SELECT seq, at, record, prev, hash FROM audit WHERE action=? AND seq > ? "
                                   "ORDER BY seq", (action, after)).fetchall()
        return [AuditEntry(r[0], r[1], json.loads(r[2]), r[3], r[4]) for r in rows]

    def verify(self) -> ChainCheck:
        """Recompute the chain and compare its head with the anchor."""
        check = ChainCheck(entries=0)
        problems = check.problems
        prev, expect_seq = GENESIS, 1
        hashes_at: dict[int, str] = {}
        anchor, anchor_problem = self._anchor_for_verify()
        for seq, at, action, subject, bureaus, record, stored_prev, h in self._con().execute(
                "SELECT seq, at, action, subject, bureaus, record, prev, hash FROM audit ORDER BY seq"):
            check.entries += 1
            check.last = seq
            if seq != expect_seq:
                problems.append(f"entry {seq}: expected sequence number {expect_seq} (entries removed or inserted)")
            if stored_prev != prev:
                problems.append(f"entry {seq}: its prev hash does not match entry {seq - 1}'s hash")
            try:
                rec = json.loads(record)
            except ValueError:
                problems.append(f"entry {seq}: record is not JSON")
                rec = record
            if digest(stored_prev, seq, at, rec) != h:
                problems.append(f"entry {seq}: hash does not match its content (entry altered)")
            elif isinstance(rec, dict) and (action, subject, bureaus) != (
                    str(rec.get("action", "")), str(rec.get("subject") or ""), _scope_column(bureaus_of(rec))):
                problems.append(f"entry {seq}: its action, subject or bureaus columns differ from its record")
            if anchor is not None and seq == anchor.seq:
                hashes_at[seq] = h
            prev, expect_seq = h, seq + 1
        if anchor_problem:
            if check.entries or not anchor_problem.startswith("no anchor"):
                problems.append(anchor_problem)
        elif anchor is not None:
            check.anchored = anchor.seq
            if anchor.seq > check.last:
                problems.append(f"the log ends at entry {check.last} but its anchor vouches for entry {anchor.seq}: "
                                f"{anchor.seq - check.last} entries at the end were removed"
                                + (" (the log was emptied)" if check.entries == 0 else ""))
            elif hashes_at.get(anchor.seq) != anchor.hash:
                problems.append(f"entry {anchor.seq} is not the entry its anchor vouches for: the log was rewritten")
        return check

    def _anchor_for_verify(self) -> tuple[Anchor | None, str]:
        try:
            key = read_key(self.key_path)
        except AuditKeyError as exc:
            return None, str(exc)
        if not self.anchor_path.exists():
            return None, (f"no anchor at {self.anchor_path}: truncation, emptying or rewriting of the log cannot "
                          "be ruled out (the service writes it on each append; give its key with "
                          f"--audit-key-file or {KEY_ENV})")
        if key is None:
            return None, f"no audit key at {self.key_path}: the anchor {self.anchor_path} cannot be checked"
        try:
            return self._current_anchor(key), ""
        except AuditKeyError as exc:
            return None, str(exc)
