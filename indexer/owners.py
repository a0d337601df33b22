"""Who owns each gallery sample, as arrays: stage-1 hits filtered and grouped by NumPy.

A searcher keeps ``sample id -> (subject id, name, finger position)`` as a dict
(:meth:`indexer.store.GalleryStore.sample_owners`); a ten-print search looks up every
sample its impressions voted for (up to 46 x 256 an impression at a million fingers), which a
Python loop over that dict did at ~1.3 us a hit.  :class:`OwnerColumns` holds the same
subject ids and positions in two arrays indexed by sample id (SQLite row ids are dense),
9 bytes a sample, kept up to date with the dict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

#: Subject id of a sample id no live sample has.
NO_SUBJECT = -1


class OwnerColumns:
    """Subject id and finger position of every live sample, indexed by sample id."""

    def __init__(self, owners: Mapping[int, tuple[int, str, int]] | None = None):
        self.subject = np.full(0, NO_SUBJECT, np.int64)
        self.position = np.zeros(0, np.int8)
        if owners:
            self.add(owners)

    def add(self, owners: Mapping[int, tuple[int, str, int]]) -> None:
        """Record samples: ``sample id -> (subject id, name, finger position)``."""
        if not owners:
            return
        ids = np.fromiter(owners.keys(), np.int64, len(owners))
        if ids.min() < 0:
            raise ValueError("sample ids are positive")
        need = int(ids.max()) + 1
        if need > len(self.subject):  # doubled, so a stream of enrolments copies O(n) in all
            size = max(need, 2 * len(self.subject))
            self.subject = np.concatenate([self.subject, np.full(size - len(self.subject), NO_SUBJECT, np.int64)])
            self.position = np.concatenate([self.position, np.zeros(size - len(self.position), np.int8)])
        self.subject[ids] = np.fromiter((o[0] for o in owners.values()), np.int64, len(owners))
        self.position[ids] = np.fromiter((o[2] for o in owners.values()), np.int8, len(owners))

    def remove(self, sample_ids: Iterable[int]) -> None:
        """Forget samples (deleted)."""
        ids = np.fromiter(sample_ids, np.int64)
        ids = ids[(ids >= 0) & (ids < len(self.subject))]
        self.subject[ids] = NO_SUBJECT
        self.position[ids] = 0

    def lookup(self, sample_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(subject ids, finger positions)`` of these samples; :data:`NO_SUBJECT` and 0 for
        ids no live sample has."""
        ids = np.asarray(sample_ids, np.int64)
        known = (ids >= 0) & (ids < len(self.subject))
        subject = np.full(ids.shape, NO_SUBJECT, np.int64)
        position = np.zeros(ids.shape, np.int8)
        subject[known] = self.subject[ids[known]]
        position[known] = self.position[ids[known]]
        return subject, position


def comparable(positions: np.ndarray, allowed: frozenset[int] | None) -> np.ndarray:
    """Which gallery positions a probe finger is compared with (``allowed`` from
    :func:`indexer.positions.comparable_positions`; unknown gallery positions always)."""
    if allowed is None:
        return np.ones(positions.shape, bool)
    return (positions == 0) | np.isin(positions, np.fromiter(allowed, np.int8))
