"""API keys: created once, stored only as SHA-256 hashes, each with a role and a bureau.

A key reads ``lk_<id>_<secret>``: ``id`` (public, 12 hex digits) finds the row and
``secret`` (32 random bytes, URL-safe base64) is checked against its hash in constant
time.  The secret has 256 bits of entropy, so a plain SHA-256 is enough (no password
stretching is needed for machine-generated secrets).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from .database import ApiDatabase

ROLES = ("examiner", "bureau", "auditor", "admin")
SCOPES = ("bureau", "global")
_KEY = re.compile(r"^lk_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")
BUREAU_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_KEY_IN_TEXT = re.compile(r"lk_([0-9a-f]{12})_[A-Za-z0-9_-]{20,100}")


@dataclass(frozen=True)
class KeyRecord:
    """Who a valid key speaks for."""

    id: str
    role: str
    bureau: str
    label: str
    created: float
    revoked: float | None = None
    scope: str = "bureau"
    """``global``: an auditor that reads every bureau's audit entries; else its own bureau's only."""


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(db: ApiDatabase, role: str, bureau: str, label: str = "",
               scope: str = "bureau") -> tuple[str, KeyRecord]:
    """Make a new key; returns the key (shown once, never stored) and its record.

    ``scope="global"`` is for auditors only: every other role acts for its bureau alone.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    if scope == "global" and role != "auditor":
        raise ValueError(f"only an auditor key can be global, not a {role} key")
    if not BUREAU_NAME.match(bureau):
        raise ValueError(f"bureau must be 1-64 letters, digits, '.', '_' or '-', got {bureau!r}")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    now = time.time()
    with db.write() as con:
        con.execute("INSERT INTO keys(id, hash, role, bureau, label, created, scope) VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (key_id, _hash(secret), role, bureau, label, now, scope))
    return f"lk_{key_id}_{secret}", KeyRecord(key_id, role, bureau, label, now, scope=scope)


def key_id_of(key: str | None) -> str | None:
    """The public id part of a presented key (never its secret); ``None`` if it is not key-shaped."""
    m = _KEY.match(key or "")
    return m[1] if m else None


def redact_keys(text: str) -> str:
    """``text`` with the secret of every key-shaped token in it replaced (the public id kept)."""
    return _KEY_IN_TEXT.sub(r"lk_\1_[redacted]", text)


def lookup(db: ApiDatabase, key_id: str) -> KeyRecord | None:
    """The record of a key id, revoked or not (for the audit of a refused key)."""
    rows = db.query("SELECT id, role, bureau, label, created, revoked, scope FROM keys WHERE id=?", (key_id,))
    return KeyRecord(*rows[0]) if rows else None


def authenticate(db: ApiDatabase, key: str | None) -> KeyRecord | None:
    """The record of a valid, unrevoked key, else ``None``."""
    m = _KEY.match(key or "")
    if m is None:
        return None
    rows = db.query("SELECT id, hash, role, bureau, label, created, revoked, scope FROM keys WHERE id=?", (m[1],))
    if not rows:
        _hash(m[2])  # same work either way
        return None
    kid, h, role, bureau, label, created, revoked, scope = rows[0]
    if not hmac.compare_digest(h, _hash(m[2])) or revoked is not None:
        return None
    return KeyRecord(kid, role, bureau, label, created, scope=scope)


def list_keys(db: ApiDatabase) -> list[KeyRecord]:
    return [KeyRecord(*r) for r in db.query(
        "SELECT id, role, bureau, label, created, revoked, scope FROM keys ORDER BY created")]


def revoke_key(db: ApiDatabase, key_id: str) -> KeyRecord | None:
    """Revoke a key by id; ``None`` when there is no such unrevoked key."""
    with db.write() as con:
        n = con.execute("UPDATE keys SET revoked=? WHERE id=? AND revoked IS NULL", (time.time(), key_id)).rowcount
    if not n:
        return None
    return next(k for k in list_keys(db) if k.id == key_id)
