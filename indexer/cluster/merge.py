"""Merging the shards' answers into the one a single store would give (pure functions).

Stage 1 of a search is not local to a subject: a probe cylinder's ``k`` nearest
gallery cylinders, and so the votes and the shortlist, depend on the whole gallery.
The shards' neighbour lists are therefore merged into the whole gallery's ``k``
nearest (the indexes are exact below 300,000 cylinders / 200,000 faces per shard,
:func:`indexer.faiss_index.default_factory`), voted on with the single store's own
:func:`indexer.search.finger_votes` and cut to the shortlist; each shard then
re-ranks its part (phase 2).  Subjects live wholly in one shard, so the final merge of
candidates is a sort by fused score.

Samples are named across shards by a key ``local id * MAX_SHARDS + shard slot`` (the
shard's position in ``cluster.json``).  Ties (equal Hamming distances at a list's
``k``-th place, equal votes at the shortlist's cut, equal fused scores) are broken by
shard slot and local id here and by storage order in a single store, so the two can
differ only where the order among equals decides.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..search import Candidate, finger_votes
from .shard import NO_DISTANCE, FaceNeighbours, FingerNeighbours

#: Upper bound on shard slots (keys are ``id * MAX_SHARDS + slot``).
MAX_SHARDS = 1024


def shard_key(ids: np.ndarray, slot: int) -> np.ndarray:
    """Cluster-wide keys of local sample ids (-1 stays -1)."""
    ids = np.asarray(ids, np.int64)
    return np.where(ids >= 0, ids * MAX_SHARDS + slot, -1)


def split_key(key: int) -> tuple[int, int]:
    """``(slot, local id)`` of a cluster-wide key."""
    return key % MAX_SHARDS, key // MAX_SHARDS


def finger_shortlist(parts: Sequence[tuple[int, FingerNeighbours]], k: int, shortlist: int) -> list[int]:
    """The whole gallery's shortlist of one probe finger, from every shard's neighbours.

    Parameters
    ----------
    parts : sequence of (slot, FingerNeighbours)
        One entry per shard that holds finger samples (same probe, so same rows).
    k : int
        Neighbours per probe cylinder over the whole gallery.
    shortlist : int
        Samples re-ranked.

    Returns
    -------
    list of int
        Cluster-wide keys, most votes first, only hits eligible for the shortlist.
    """
    if not parts:
        return []
    d = np.concatenate([p.distances for _, p in parts], axis=1)
    keys = np.concatenate([shard_key(p.ids, s) for s, p in parts], axis=1)
    pops = np.concatenate([p.popcounts for _, p in parts], axis=1)
    eligible = np.concatenate([p.eligible for _, p in parts], axis=1)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    d, keys, pops, eligible = (np.take_along_axis(a, order, 1) for a in (d, keys, pops, eligible))
    keys = np.where(d < NO_DISTANCE, keys, -1)
    ok = dict(zip(keys.ravel().tolist(), eligible.ravel().tolist()))
    sids, _ = finger_votes(d, keys, parts[0][1].probe_popcounts, pops)
    return [s for s in sids.tolist() if ok.get(s, False)][:shortlist]


def face_shortlist(parts: Sequence[tuple[int, FaceNeighbours]], k: int) -> list[tuple[int, float]]:
    """The whole gallery's ``k`` nearest faces of one probe face, excluded subjects then dropped.

    Returns
    -------
    list of (key, similarity)
        Most similar first.
    """
    if not parts:
        return []
    sims = np.concatenate([p.similarities for _, p in parts])
    keys = np.concatenate([shard_key(p.ids, s) for s, p in parts])
    excluded = np.concatenate([p.excluded for _, p in parts])
    order = np.argsort(-sims.astype(np.float64), kind="stable")[:k]
    return [(int(keys[i]), float(sims[i])) for i in order if not excluded[i]]


def merge_candidates(parts: Sequence[tuple[str, Sequence[Candidate]]], top: int) -> list[tuple[str, Candidate]]:
    """The best ``top`` candidates of the shards' lists, as ``(shard, candidate)``.

    A subject found on two shards (a rebalance copies before it deletes) appears once,
    with its better entry.  Order: fused score, then raw score, descending; then name.
    """
    best: dict[str, tuple[str, Candidate]] = {}
    for shard, cands in parts:
        for c in cands:
            cur = best.get(c.subject)
            if cur is None or (c.score, c.raw) > (cur[1].score, cur[1].raw):
                best[c.subject] = (shard, c)
    return sorted(best.values(), key=lambda sc: (-sc[1].score, -sc[1].raw, sc[1].subject))[:top]
