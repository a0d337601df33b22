"""Merging the shards' answers into the one a single store would give (pure functions).

Stage 1 of a search is not local to a subject: a probe cylinder's ``k`` nearest
gallery cylinders, and so the votes and the shortlist, depend on the whole gallery.
The shards' neighbour lists are therefore merged into the whole gallery's ``k``
nearest (the indexes are exact below 300,000 cylinders / 200,000 faces per shard,
:func:`indexer.faiss_index.default_factory`), voted on with the single store's own
:func:`indexer.votes.finger_votes` and cut to the shortlist; each shard then
re-ranks its part (phase 2).  Subjects live wholly in one shard, so the final merge of
candidates is a sort by fused score.

Samples are named across shards by a key ``local id * MAX_SHARDS + shard slot`` (the
shard's position in ``cluster.json``).

Ties: binary cylinders are sparse and their Hamming distances small integers, so
several gallery cylinders often lie at a list's ``k``-th distance, and which of them a
plain FAISS search returns follows storage order: one store's tail of candidates then
depends on the order its samples were enrolled in (measured in benchmarks/README.md,
Sharded gallery).  The shards and the merge settle such ties by distance alone
(:func:`~indexer.votes.order_free_neighbours`), so the merged answer is the one a
single store searched with ``Searcher(order_free=True)`` gives.  Left to order: samples
with exactly equal votes at the shortlist's cut, subjects with exactly equal fused and
raw scores at the list's end (sorted by name here).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..search import Candidate
from ..votes import finger_votes, order_free_neighbours, preselect_subjects
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


def merge_finger_neighbours(parts: Sequence[tuple[int, FingerNeighbours]], k: int
                            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The whole gallery's ``k`` nearest cylinders of each probe cylinder, from every shard's.

    Parameters
    ----------
    parts : sequence of (slot, FingerNeighbours)
        One entry per shard that holds finger samples (same probe, so same rows).

    Returns
    -------
    distances : (m, k) int32
        Ascending; :data:`NO_DISTANCE` in empty slots.
    keys : (m, k) int64
        Cluster-wide sample keys (-1 = empty).
    popcounts : (m, k) int64
    eligible : (m, k) bool
    subjects : (m, k) int64
        Cluster-wide subject keys (a subject lives wholly in one shard), -1 = none.
    """
    d = np.concatenate([p.distances for _, p in parts], axis=1)
    keys = np.concatenate([shard_key(p.ids, s) for s, p in parts], axis=1)
    pops = np.concatenate([p.popcounts for _, p in parts], axis=1)
    eligible = np.concatenate([p.eligible for _, p in parts], axis=1)
    subjects = np.concatenate([shard_key(p.subjects, s) for s, p in parts], axis=1)
    order = np.argsort(d, axis=1, kind="stable")[:, :k]
    d, keys, pops, eligible, subjects = (np.take_along_axis(a, order, 1) for a in (d, keys, pops, eligible, subjects))
    return d, np.where(d < NO_DISTANCE, keys, -1), pops, eligible, subjects


def _finger_votes(parts: Sequence[tuple[int, FingerNeighbours]], k: int
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Votes of one probe finger over the whole gallery: ``(keys, votes, eligible, subject keys)``,
    votes descending (what ``Searcher(order_free=True)._finger_votes`` gives one store)."""
    d, keys, pops, eligible, subjects = merge_finger_neighbours(parts, 2 * k + 1)
    d, keys, pops = order_free_neighbours(d, keys, pops, k)
    sids, votes = finger_votes(d, keys, parts[0][1].probe_popcounts, pops)
    # each voted key's own row: its first place among the merged hits
    flat = keys.ravel()
    uniq, first = np.unique(flat, return_index=True)
    at = first[np.searchsorted(uniq, sids)]
    return sids, votes, eligible.ravel()[at], subjects.ravel()[at]


def finger_shortlist(parts: Sequence[tuple[int, FingerNeighbours]], k: int, shortlist: int) -> list[int]:
    """The whole gallery's shortlist of one probe finger, from every shard's neighbours.

    The shards' ``2k + 1`` nearest are merged (:func:`merge_finger_neighbours`), their
    ties at the ``k``-th distance settled by :func:`~indexer.votes.order_free_neighbours`,
    voted on with :func:`~indexer.votes.finger_votes` and cut to ``shortlist`` eligible
    samples: what one store searched with ``Searcher(order_free=True)`` does.

    Returns
    -------
    list of int
        Cluster-wide keys, most votes first.
    """
    if not parts:
        return []
    sids, _, ok, _ = _finger_votes(parts, k)
    return sids[ok][:shortlist].tolist()


def tenprint_shortlists(fingers: dict[int, Sequence[tuple[int, FingerNeighbours]]], k: int, subjects: int
                        ) -> dict[int, list[int]]:
    """The whole gallery's re-ranking lists of a probe of several fingers, from every shard's
    neighbours: the ``subjects`` subjects the fingers' votes favour together
    (:func:`~indexer.votes.preselect_subjects`), then per finger every eligible sample of
    theirs it voted for, as one store's ``Searcher._tenprint_shortlists`` does.

    Parameters
    ----------
    fingers : dict
        Probe index -> that finger's ``(slot, FingerNeighbours)`` per shard.

    Returns
    -------
    dict
        Probe index -> cluster-wide sample keys, most votes first.
    """
    voted, per_finger = {}, []
    for p, parts in fingers.items():
        if not parts:
            continue
        sids, votes, ok, subj = _finger_votes(parts, k)
        voted[p] = (sids[ok], subj[ok])
        per_finger.append((subj[ok], votes[ok]))
    chosen = preselect_subjects(per_finger, subjects)
    return {p: sids[np.isin(subj, chosen)].tolist() for p, (sids, subj) in voted.items()}


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
