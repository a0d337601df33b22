"""Stage 1 of a fingerprint search: votes for gallery samples from their cylinders' neighbours.

Every usable MCC cylinder of the probe asks the binary FAISS index for its
``k_per_minutia`` nearest gallery cylinders; each hit votes for its sample, a sample keeps
its best vote per probe cylinder, and the votes are summed (:func:`finger_votes`).  The
shortlist is the samples with the most votes (:class:`indexer.search.Searcher`, and merged
across shards in :mod:`indexer.cluster.merge`).
"""

from __future__ import annotations

import numpy as np

#: Gallery cylinders a probe cylinder votes for.  With VOTE_POWER, 64 -> 256 left 9 instead of
#: 17 of 1,500 mated probes' mates out of a 200-sample shortlist (generated seed 2, 500 fingers).
DEFAULT_K_PER_MINUTIA = 256
#: Stage-1 votes are the MCC-style similarity to this power: a close hit outweighs many loose
#: ones, which grow in number with k and the gallery (same test: 13 -> 9 at k = 256).
VOTE_POWER = 4


def finger_votes(distances: np.ndarray, ids: np.ndarray, probe_popcounts: np.ndarray | None = None,
                 gallery_popcounts: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Stage-1 votes per sample from the k-NN lists of the probe's cylinders.

    Parameters
    ----------
    distances : (m, k) int
        Hamming distances, bits, each row ascending.
    ids : (m, k) int64
        Sample ids (-1 = none).
    probe_popcounts : (m,) int, optional
        Set bits of each probe cylinder.
    gallery_popcounts : (m, k) int, optional
        Set bits of each hit.  With both, a hit weighs its MCC-style similarity
        ``1 - d / (|a| + |b|)`` (a sparse cylinder is near everything in raw Hamming
        distance; normalising stops sparse distractors from collecting votes) to the
        power :data:`VOTE_POWER`.
        Without, ``1 - d / d_k`` (``d_k``: the row's k-th distance).

    Returns
    -------
    sample_ids, votes : arrays, votes descending
        A sample keeps its best vote per probe cylinder; votes are summed over cylinders.
    """
    m, k = ids.shape
    if m == 0 or k == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    d = distances.astype(np.float64)
    if probe_popcounts is not None and gallery_popcounts is not None:
        w = np.clip(1.0 - d / np.maximum(np.asarray(probe_popcounts, np.float64)[:, None] + gallery_popcounts, 1.0),
                    0.0, None) ** VOTE_POWER
    else:
        dk = np.maximum(d[:, -1:], 1.0)
        w = 1.0 - d / dk
    w = np.clip(w, 0.0, None)
    rows = np.repeat(np.arange(m), k)
    sid, w = ids.ravel(), w.ravel()
    ok = (sid >= 0) & (w > 0)
    rows, sid, w = rows[ok], sid[ok], w[ok]
    if len(sid) == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    # best vote per (probe cylinder, sample)
    key = sid * m + rows
    order = np.lexsort((-w, key))
    key, sid, w = key[order], sid[order], w[order]
    first = np.ones(len(key), bool)
    first[1:] = key[1:] != key[:-1]
    sid, w = sid[first], w[first]
    uniq, inv = np.unique(sid, return_inverse=True)
    votes = np.bincount(inv, weights=w)
    order = np.argsort(-votes, kind="stable")
    return uniq[order], votes[order]


def order_free_neighbours(distances: np.ndarray, ids: np.ndarray, popcounts: np.ndarray, k: int
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's ``k`` nearest hits with ties settled by distance alone, never by storage order.

    Keeps every hit within the row's ``k``-th distance, or, when more than ``2k`` lie
    within it, only those strictly nearer: either way the set depends on the distances
    only.  Binary cylinders are sparse and their Hamming distances small integers, so
    ties at the ``k``-th place are common, and which tied hits FAISS returns follows
    storage order.

    Parameters
    ----------
    distances : (m, w) int
        Ascending per row, ``w >= min(2k + 1, n)`` (all ``n`` gallery vectors when fewer).
    ids, popcounts : (m, w)
        Of each hit (-1 = empty slot).
    k : int

    Returns
    -------
    distances, ids, popcounts : (m, w)
        The hits not kept have id -1 and popcount 0.
    """
    if distances.shape[1] <= k:
        return distances, ids, popcounts
    live = ids >= 0
    dk = np.where(live, distances, np.iinfo(np.int64).max)[:, k - 1:k]
    within = live & (distances <= dk)
    keep = np.where(within.sum(axis=1, keepdims=True) <= 2 * k, within, live & (distances < dk))
    return distances, np.where(keep, ids, -1), np.where(keep, popcounts, 0)


def preselect_subjects(fingers: list[tuple[np.ndarray, np.ndarray]], n: int) -> np.ndarray:
    """The ``n`` subjects a probe of several fingers re-ranks: those its fingers' votes favour
    together (:meth:`indexer.search.Searcher._tenprint_shortlists`).

    A subject's share from one probe finger is its best sample's votes over that finger's
    best votes, so each finger weighs the same whatever its minutiae count; shares are
    summed over the fingers (at most one per finger).

    Parameters
    ----------
    fingers : list of (subject ids, votes)
        Per probe finger, the owners of the samples it voted for (eligible ones only) and
        the votes, descending.
    n : int

    Returns
    -------
    (<= n,) int64 array
        Subject ids, largest share first; ties by subject id.
    """
    subjects, shares = [], []
    for subj, votes in fingers:
        if len(subj) == 0:
            continue
        u, first = np.unique(subj, return_index=True)  # votes descend: a subject's first sample is its best
        best = np.asarray(votes, np.float64)[first]
        subjects.append(u)
        shares.append(best / best.max())
    if not subjects:
        return np.zeros(0, np.int64)
    u, inv = np.unique(np.concatenate(subjects), return_inverse=True)
    total = np.bincount(inv, weights=np.concatenate(shares))  # summed in finger order
    return u[np.lexsort((u, -total))[:n]]
