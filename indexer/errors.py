"""Typed errors of the indexer (gallery store, FAISS indexes, ingest, search).

All derive from :class:`matcher.errors.LocardError`, so a service maps every one of
them to a 4xx/5xx answer with its message and never to a traceback.
"""

from __future__ import annotations

from matcher.errors import LocardError


class StoreError(LocardError):
    """The gallery store cannot be opened or used."""


class StoreNotFoundError(StoreError, FileNotFoundError):
    """No store at the given path (and creating one was not asked for)."""


class StoreVersionError(StoreError):
    """The store's schema was written by a version this build cannot read."""


class SubjectNotFoundError(StoreError, KeyError):
    """No subject with that name or id."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else "subject not found"


class IndexFileError(StoreError):
    """A FAISS index file is unreadable, of an unknown format, or for other data.

    Index files are caches: opening the store rebuilds them from SQLite when this happens.
    """


class IndexMismatchError(StoreError):
    """An index does not hold exactly what the store says it should (``locard check``)."""


class ProbeError(LocardError, ValueError):
    """A search probe that cannot be used (no usable sample in any of its images)."""


class CalibrationError(LocardError):
    """A matcher's shipped calibration is missing, unreadable, or for another matcher version.

    Scores cannot be put on the ``-log10 FMR`` scale without it: searching on raw scores
    would silently change every threshold, so this is an error, not a fallback.
    """


class ClusterError(LocardError):
    """The sharded gallery (:mod:`indexer.cluster`) cannot be used: Ray missing or unreachable,
    or a cluster configuration that does not fit the request."""


class ShardUnavailableError(ClusterError):
    """A shard did not acknowledge a write in time (its actor is down or restarting): nothing
    unacknowledged may be taken as stored; writing it again is safe (samples are keyed by SHA-256)."""
