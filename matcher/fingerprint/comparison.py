"""1:1 comparison: MCC local similarities consolidated by relaxation (LSS-R).

1. Local similarity of every minutia pair: how alike their cylinders are on the
   cells valid in both (Cappelli et al. 2010, eq. 7), zero when the minutiae
   point more than 90 degrees apart or share too few cells.
2. The ``min(nA, nB)`` most similar one-to-one pairs are relaxed: each pair's
   similarity is pulled up by pairs that agree with it geometrically (distances,
   direction differences and radial angles preserved) and down otherwise.
3. The score is the mean relaxed similarity of the ``nP`` pairs whose similarity
   held up best under relaxation; those pairs are the evidence an examiner sees.

Scores lie in ``[0, 1]``; higher is more alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from .descriptors import ND, NS, _IN_DISC, cylinders
from .template import Template

#: Version of template + descriptor + comparator; calibrations are tied to it.
MATCHER_VERSION = "locard-fp-1"

MIN_MATCHABLE = 0.6          # share of a disc's cells valid in both cylinders
MAX_DIRECTION_DIFF = np.pi / 2
MIN_NP, MAX_NP, MU_P, TAU_P = 4, 12, 20.0, 0.4
N_REL, W_R = 5, 0.5
MU_1, TAU_1 = 5.0, -8.0 / 5.0
MU_2, TAU_2 = np.pi / 12, -30.0
MU_3, TAU_3 = np.pi / 12, -30.0

_MATCHABLE_CELLS = MIN_MATCHABLE * _IN_DISC.sum() * ND


@dataclass(frozen=True)
class Comparison:
    """Result of comparing two templates."""

    score: float
    """Similarity in [0, 1], higher = more alike."""
    pairs: np.ndarray
    """(k, 2) int: indices into the minutiae of template a and of template b, strongest first."""
    pair_scores: np.ndarray
    """(k,) float: relaxed similarity of each pair."""


def local_similarities(a: Template, b: Template) -> np.ndarray:
    """Local similarity of every minutia of ``a`` with every minutia of ``b``.

    Returns
    -------
    (nA, nB) float32 in [0, 1].
    """
    ca, cb = cylinders(a), cylinders(b)
    va, vb = ca.valid, cb.valid
    common = va @ vb.T
    na2 = (ca.values * ca.values) @ vb.T   # |a restricted to b's valid cells|^2
    nb2 = va @ (cb.values * cb.values).T
    dot = ca.values @ cb.values.T          # invalid cells are zero in both
    dist = np.sqrt(np.maximum(na2 + nb2 - 2 * dot, 0))
    denom = np.sqrt(na2) + np.sqrt(nb2)
    sim = np.where(denom > 0, 1 - dist / np.maximum(denom, 1e-9), 0.0)
    ta = a.minutiae["direction"][:, None].astype(np.float64)
    tb = b.minutiae["direction"][None, :].astype(np.float64)
    dtheta = np.abs((ta - tb + np.pi) % (2 * np.pi) - np.pi)
    ok = (common >= _MATCHABLE_CELLS) & (dtheta <= MAX_DIRECTION_DIFF)
    ok &= ca.usable[:, None] & cb.usable[None, :]
    return np.where(ok, sim, 0.0).astype(np.float32)


@njit(cache=True)
def _wrap(a):
    return (a + np.pi) % (2 * np.pi) - np.pi


@njit(cache=True)
def _z(v, mu, tau):
    return 1.0 / (1.0 + np.exp(-tau * (v - mu)))


@njit(cache=True)
def _relax(sim, xa, ya, ta, xb, yb, tb, n_p):
    na, nb = sim.shape
    n_r = min(na, nb)
    # one-to-one greedy preselection of the n_r most similar pairs
    order = np.argsort(-sim.ravel())
    used_a = np.zeros(na, np.bool_)
    used_b = np.zeros(nb, np.bool_)
    pa = np.empty(n_r, np.int64)
    pb = np.empty(n_r, np.int64)
    lam = np.empty(n_r, np.float64)
    k = 0
    for idx in order:
        if k == n_r:
            break
        i, j = idx // nb, idx % nb
        if sim[i, j] <= 0:
            break
        if used_a[i] or used_b[j]:
            continue
        used_a[i] = True
        used_b[j] = True
        pa[k], pb[k], lam[k] = i, j, sim[i, j]
        k += 1
    n_r = k
    if n_r < 2:
        return 0.0, pa[:0], pb[:0], lam[:0]
    pa, pb, lam0 = pa[:n_r], pb[:n_r], lam[:n_r].copy()
    rho = np.zeros((n_r, n_r))
    for r in range(n_r):
        i1, j1 = pa[r], pb[r]
        for s in range(r + 1, n_r):
            i2, j2 = pa[s], pb[s]
            da = np.hypot(xa[i2] - xa[i1], ya[i2] - ya[i1])
            db = np.hypot(xb[j2] - xb[j1], yb[j2] - yb[j1])
            d1 = abs(da - db)
            d2 = abs(_wrap(_wrap(ta[i1] - ta[i2]) - _wrap(tb[j1] - tb[j2])))
            ra = _wrap(ta[i1] - np.arctan2(ya[i2] - ya[i1], xa[i2] - xa[i1]))
            rb = _wrap(tb[j1] - np.arctan2(yb[j2] - yb[j1], xb[j2] - xb[j1]))
            d3 = abs(_wrap(ra - rb))
            v = _z(d1, MU_1, TAU_1) * _z(d2, MU_2, TAU_2) * _z(d3, MU_3, TAU_3)
            rho[r, s] = v
            rho[s, r] = v
    lam = lam0.copy()
    for _ in range(N_REL):
        support = rho @ lam
        lam = W_R * lam + (1 - W_R) * support / (n_r - 1)
    eff = lam / lam0
    sel = np.argsort(-eff)[: min(n_p, n_r)]
    score = lam[sel].sum() / n_p
    keep = sel[np.argsort(-lam[sel])]
    return score, pa[keep], pb[keep], lam[keep]


def _n_p(na: int, nb: int) -> int:
    z = 1.0 / (1.0 + np.exp(-TAU_P * (min(na, nb) - MU_P)))
    return int(MIN_NP + round(z * (MAX_NP - MIN_NP)))


def compare(a: Template, b: Template) -> Comparison:
    """Compare two fingerprint templates.

    Returns
    -------
    Comparison
        Score in [0, 1] and the paired minutiae that support it.
    """
    if len(a) == 0 or len(b) == 0:
        return Comparison(0.0, np.zeros((0, 2), np.int64), np.zeros(0))
    sim = local_similarities(a, b).astype(np.float64)
    ma, mb = a.minutiae, b.minutiae
    score, pa, pb, lam = _relax(
        sim,
        ma["x"].astype(np.float64), ma["y"].astype(np.float64), ma["direction"].astype(np.float64),
        mb["x"].astype(np.float64), mb["y"].astype(np.float64), mb["direction"].astype(np.float64),
        _n_p(len(a), len(b)))
    return Comparison(float(score), np.stack([pa, pb], 1), lam)
