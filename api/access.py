"""Who may see a subject: its owning bureau and its access rule.

Every subject enrolled through the service gets a row in ``access`` (owner, and
``*`` for all bureaus or a JSON list of bureau names).  Subjects put in the store
another way (``locard ingest``) have no row: they belong to the service's
``default_bureau`` and are shared with all bureaus.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

from .database import ApiDatabase

ALL = "*"


@dataclass(frozen=True)
class AccessRule:
    owner: str
    shared_with: tuple[str, ...] | None
    """``None``: every bureau; else the bureaus besides the owner that may see the record."""
    reference: str = ""

    def visible_to(self, bureau: str) -> bool:
        return self.shared_with is None or bureau == self.owner or bureau in self.shared_with


def _rule(owner: str, shared: str, reference: str) -> AccessRule:
    return AccessRule(owner, None if shared == ALL else tuple(json.loads(shared)), reference)


class AccessRules:
    """The ``access`` table."""

    def __init__(self, db: ApiDatabase, default_bureau: str):
        self.db = db
        self.default = AccessRule(default_bureau, None)

    def set(self, subject: str, owner: str, shared_with: tuple[str, ...] | None, reference: str = "") -> None:
        shared = ALL if shared_with is None else json.dumps(sorted(set(shared_with)))
        with self.db.write() as con:
            con.execute("INSERT INTO access(subject, owner, shared, reference, created) VALUES (?, ?, ?, ?, ?) "
                        "ON CONFLICT(subject) DO UPDATE SET shared=excluded.shared",
                        (subject, owner, shared, reference, time.time()))

    def get(self, subject: str) -> AccessRule:
        rows = self.db.query("SELECT owner, shared, reference FROM access WHERE subject=?", (subject,))
        return _rule(*rows[0]) if rows else self.default

    def remove(self, subject: str) -> None:
        with self.db.write() as con:
            con.execute("DELETE FROM access WHERE subject=?", (subject,))

    def hidden_from(self, bureau: str) -> set[str]:
        """Subjects with a rule that does not let ``bureau`` see them."""
        rows = self.db.query("SELECT subject, owner, shared, reference FROM access WHERE shared != ? AND owner != ?",
                             (ALL, bureau))
        return {r[0] for r in rows if not _rule(*r[1:]).visible_to(bureau)}

    def visible(self, subject: str, bureau: str) -> bool:
        return self.get(subject).visible_to(bureau)
