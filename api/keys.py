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
_KEY = re.compile(r"^lk_([0-9a-f]{12})_([A-Za-z0-9_-]{20,100})$")
BUREAU_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class KeyRecord:
    """Who a valid key speaks for."""

    id: str
    role: str
    bureau: str
    label: str
    created: float
    revoked: float | None = None


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(db: ApiDatabase, role: str, bureau: str, label: str = "") -> tuple[str, KeyRecord]:
    """Make a new key; returns the key (shown once, never stored) and its record."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if not BUREAU_NAME.match(bureau):
        raise ValueError(f"bureau must be 1-64 letters, digits, '.', '_' or '-', got {bureau!r}")
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    now = time.time()
    with db.write() as con:
        con.execute("INSERT INTO keys(id, hash, role, bureau, label, created) VALUES (?, ?, ?, ?, ?, ?)",
                    (key_id, _hash(secret), role, bureau, label, now))
    return f"lk_{key_id}_{secret}", KeyRecord(key_id, role, bureau, label, now)


def authenticate(db: ApiDatabase, key: str | None) -> KeyRecord | None:
    """The record of a valid, unrevoked key, else ``None``."""
    m = _KEY.match(key or "")
    if m is None:
        return None
    rows = db.query("SELECT id, hash, role, bureau, label, created, revoked FROM keys WHERE id=?", (m[1],))
    if not rows:
        _hash(m[2])  # same work either way
        return None
    kid, h, role, bureau, label, created, revoked = rows[0]
    if not hmac.compare_digest(h, _hash(m[2])) or revoked is not None:
        return None
    return KeyRecord(kid, role, bureau, label, created)


def list_keys(db: ApiDatabase) -> list[KeyRecord]:
    return [KeyRecord(*r) for r in db.query(
        "SELECT id, role, bureau, label, created, revoked FROM keys ORDER BY created")]


def revoke_key(db: ApiDatabase, key_id: str) -> KeyRecord | None:
    """Revoke a key by id; ``None`` when there is no such unrevoked key."""
    with db.write() as con:
        n = con.execute("UPDATE keys SET revoked=? WHERE id=? AND revoked IS NULL", (time.time(), key_id)).rowcount
    if not n:
        return None
    return next(k for k in list_keys(db) if k.id == key_id)
