"""Numbered schema migrations of a SQLite file, counted by ``PRAGMA user_version``.

A database's ``user_version`` is the number of the last migration applied to it
(0: none, e.g. a file written before migrations were numbered).  :func:`migrate`
applies the missing ones in order, each in its own ``BEGIN IMMEDIATE`` transaction
that also sets ``user_version``, so a crash leaves the file at a whole step and the
next open goes on from there; two processes opening the same file at once apply
each step once.  A file whose version is newer than the code's last migration is
refused with :class:`~indexer.errors.StoreVersionError`.

Both databases of a store folder use this: ``gallery.sqlite`` (:mod:`indexer.store`)
and the service's ``api.sqlite`` (:mod:`api.database`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

from .errors import StoreVersionError

#: One step: its number (1, 2, ...) and SQL statements or a function of the open connection.
Migration = tuple[int, str | Callable[[sqlite3.Connection], None]]


def statements(sql: str) -> list[str]:
    """Split a SQL script into whole statements (``CREATE TRIGGER ... END;`` stays one).

    ``executescript`` would commit the surrounding transaction, so scripts run statement
    by statement inside it.
    """
    out, buf = [], ""
    for line in sql.splitlines(keepends=True):
        buf += line
        if sqlite3.complete_statement(buf):
            if buf.strip().strip(";").strip():
                out.append(buf.strip())
            buf = ""
    if buf.strip():
        raise ValueError(f"incomplete SQL statement: {buf.strip()[:80]!r}")
    return out


def latest(migrations: Sequence[Migration]) -> int:
    """Number of the last migration (checking that they are numbered 1..n in order)."""
    numbers = [n for n, _ in migrations]
    if numbers != list(range(1, len(numbers) + 1)):
        raise ValueError(f"migrations must be numbered 1..n in order, got {numbers}")
    return len(numbers)


def user_version(con: sqlite3.Connection) -> int:
    return int(con.execute("PRAGMA user_version").fetchone()[0])


def migrate(con: sqlite3.Connection, migrations: Sequence[Migration], *, path: str | Path) -> int:
    """Bring the database on ``con`` (autocommit mode) up to the last migration.

    Parameters
    ----------
    con : sqlite3.Connection
        Opened with ``isolation_level=None`` (transactions are explicit here).
    migrations : sequence of (number, SQL or callable)
    path : str or Path
        The file, for error messages.

    Returns
    -------
    int
        The schema version now (the last migration's number).

    Raises
    ------
    StoreVersionError
        The file was written by a newer build (its ``user_version`` is past the last
        migration this build knows).
    """
    last = latest(migrations)
    current = user_version(con)
    if current > last:
        raise StoreVersionError(f"{path} has schema version {current}, written by a newer locard "
                                f"(this build reads up to {last}): upgrade locard")
    for number, step in migrations[current:]:
        con.execute("BEGIN IMMEDIATE")
        try:
            # another process may have applied it while this one waited for the lock
            if user_version(con) < number:
                if callable(step):
                    step(con)
                else:
                    for stmt in statements(step):
                        con.execute(stmt)
                con.execute(f"PRAGMA user_version = {int(number)}")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return last
