"""1:1 comparison: binary MCC local similarities consolidated by relaxation (LSS-R).

1. Local similarity of every minutia pair: how alike their cylinders are on the
   cells valid in both, ``1 - sqrt(|a xor b|) / (sqrt(|a|) + sqrt(|b|))`` with
   ``|.|`` a popcount (Cappelli, Ferrara & Maltoni 2010, binary MCC); zero when the
   pair shares too few valid cells.
2. The prints' relative rotation is estimated from the local similarities alone
   (cylinders are rotation-invariant): a histogram of the direction differences of
   each minutia's best match, weighted by similarity, peaks at it.  Pairs whose
   direction difference is more than 90 degrees from that rotation are dropped, so
   prints match at any rotation (a fixed gate around 0 rejects every true pair of a
   print turned by 180 degrees).
3. The ``min(nA, nB)`` most similar one-to-one pairs are relaxed: each pair's
   similarity is pulled up by pairs that agree with it geometrically (distances,
   direction differences and radial angles preserved; the distance tolerance grows in
   proportion beyond ``DIST_SCALE``, as skin stretches) and down otherwise.
4. The score is the mean relaxed similarity of the ``nP`` pairs whose similarity
   held up best under relaxation; those pairs are the evidence an examiner sees.
5. It is scaled by ``(min(min(nA, nB), SIZE_REF) / SIZE_REF) ** SIZE_EXPONENT``: when
   few minutiae can pair, a handful of chance agreements already make a high mean, and
   the impostor tail rises (generated impostors: 99.99th percentile 0.082 with fewer
   than 8 minutiae against 0.036 with 40 or more), so one threshold would give small
   templates (latents, dry and partial prints) many more false hits.
6. The raw score is normalised by each template's scores against a fixed cohort
   (:mod:`~matcher.fingerprint.cohort`): the mean of the two z-scores.  Raw scores
   lie in ``[0, 1]``; normalised ones are about 0 for a typical impostor pair and grow
   with the evidence (a good mate scores 15-40).

Higher is more alike.  All of it runs in one compiled
kernel over arrays prepared once per template, for 1:N re-ranking throughput.  The
pair geometry (distance, direction difference, radial angle) is computed in the
kernel from the minutiae's coordinates, only for the pairs relaxation looks at, and
rounded to float32 as the n x n matrices prepared before (locard-fp-3) were: a
prepared template holds per-minutia arrays only (~0.4 kB a minutia, not ~0.9 kB).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, types
from numba.extending import intrinsic

from .cohort import cohort_stats, normalise
from .descriptors import ND, _IN_DISC, cylinders
from .template import Template

#: Version of template + descriptor + comparator; calibrations are tied to it.
MATCHER_VERSION = "locard-fp-5"

MIN_MATCHABLE = 0.15         # share of a disc's cells valid in both cylinders
MAX_DIRECTION_DIFF = np.pi / 4   # from the estimated rotation, radians
ROTATION_BINS = 36               # 10-degree bins of the rotation histogram
MIN_NP, MAX_NP, MU_P, TAU_P = 4, 12, 20.0, 0.4
N_REL, W_R = 5, 0.5
#: Size normalisation (step 5): templates with fewer than SIZE_REF minutiae are scaled down.
#: Chosen on a generated 1000 x 4 set (seed 2), whole gallery: FNIR at FPIR 1 % 11.6 -> 8.0 %, rank-1 96.7 -> 96.8 %.
SIZE_REF, SIZE_EXPONENT = 30.0, 0.35
MU_1, TAU_1 = 8.0, -8.0 / 5.0
#: Pairs of pairs farther apart than this (px, the mean of the two distances) have their
#: distance difference divided by distance / DIST_SCALE: skin stretches in proportion to
#: distance, so a fixed 8 px tolerance is too tight across a distorted print.  Chosen on the
#: generated set of seed 2 (40 / 60 / 100 px; locard-fp-5).
DIST_SCALE = 60.0
MU_2, TAU_2 = np.pi / 20, -30.0
MU_3, TAU_3 = np.pi / 20, -30.0

# Beyond these a compatibility factor is below 1e-5: the pair contributes nothing.
CUT_1 = MU_1 + np.log(1e5) / -TAU_1
CUT_2 = MU_2 + np.log(1e5) / -TAU_2
CUT_3 = MU_3 + np.log(1e5) / -TAU_3

_MIN_COS = float(np.cos(MAX_DIRECTION_DIFF))
# the relaxation's pre-cuts on cosines, 1e-4 rad wide of CUT_2 and CUT_3 (far more than
# the float32 rounding of the exact tests), so they never drop a pair the exact tests keep
_COS_CUT_2 = float(np.cos(CUT_2 + 1e-4))
_COS_CUT_3 = float(np.cos(CUT_3 + 1e-4))
_MATCHABLE_CELLS = int(MIN_MATCHABLE * _IN_DISC.sum() * ND)


@dataclass(frozen=True)
class Comparison:
    """Result of comparing two templates."""

    score: float
    """Normalised similarity, higher = more alike (see the module docstring, step 6)."""
    pairs: np.ndarray
    """(k, 2) int: indices into the minutiae of template a and of template b, strongest first."""
    pair_scores: np.ndarray
    """(k,) float: relaxed similarity of each pair."""


@intrinsic
def _popcount(typingctx, x):
    """Hardware population count of a uint64 (llvm.ctpop)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


@njit(cache=True)
def _wrap(a):
    """Difference of two angles in [-pi, pi) brought back to [-pi, pi) (no fmod: hot loop)."""
    if a >= np.pi:
        return a - 2 * np.pi
    if a < -np.pi:
        return a + 2 * np.pi
    return a


@njit(cache=True)
def _z(v, mu, tau):
    return 1.0 / (1.0 + np.exp(-tau * (v - mu)))


@njit(cache=True)
def _valid_counts(valid, full):
    """Valid cells of each cylinder that is not full (0 for full ones: not needed)."""
    out = np.zeros(len(full), np.int64)
    for i in range(len(full)):
        if not full[i]:
            for w in range(valid.shape[1]):
                out[i] += _popcount(valid[i, w])
    return out


@njit(cache=True)
def _against_full(bits_f, i, bits_p, valid_p, j):
    """Cylinder ``i`` of ``bits_f`` wholly valid against cylinder ``j`` of ``bits_p``: the set
    bits of ``i`` on ``j``'s valid cells, and how many cells differ there."""
    on = 0
    differ = 0
    for w in range(bits_f.shape[1]):
        x = bits_f[i, w] & valid_p[j, w]
        on += _popcount(x)
        differ += _popcount(x ^ bits_p[j, w])
    return on, differ


@njit(cache=True)
def _local_similarities(bits_a, valid_a, use_a, full_a, ones_a, ua, bits_b, valid_b, use_b, full_b, ones_b, ub,
                        min_common, min_cos):
    """``ua``, ``ub``: (n, 2) unit direction vectors; pairs with cos(angle) < min_cos are skipped."""
    na, nw = bits_a.shape
    nb = bits_b.shape[0]
    sim = np.zeros((na, nb))
    valid_count_a = _valid_counts(valid_a, full_a)
    valid_count_b = _valid_counts(valid_b, full_b)
    for i in range(na):
        if not use_a[i]:
            continue
        for j in range(nb):
            if not use_b[j] or ua[i, 0] * ub[j, 0] + ua[i, 1] * ub[j, 1] < min_cos:
                continue
            if full_a[i] and full_b[j]:
                # both discs wholly valid: the common cells are the disc, one popcount a word
                px = 0
                for w in range(nw):
                    px += _popcount(bits_a[i, w] ^ bits_b[j, w])
                den = np.sqrt(ones_a[i]) + np.sqrt(ones_b[j])
                if den > 0:
                    sim[i, j] = 1.0 - np.sqrt(px) / den
                continue
            if full_a[i] or full_b[j]:
                # one disc wholly valid: the common cells are the other's valid cells, where
                # its bits are all of its bits (set bits are valid): two popcounts a word
                if full_a[i]:
                    common, pb_ = valid_count_b[j], ones_b[j]
                    pa_, px = _against_full(bits_a, i, bits_b, valid_b, j)
                else:
                    common, pa_ = valid_count_a[i], ones_a[i]
                    pb_, px = _against_full(bits_b, j, bits_a, valid_a, i)
                if common < min_common:
                    continue
                den = np.sqrt(pa_) + np.sqrt(pb_)
                if den > 0:
                    sim[i, j] = 1.0 - np.sqrt(px) / den
                continue
            common = 0
            pa_ = 0
            pb_ = 0
            px = 0
            for w in range(nw):
                v = valid_a[i, w] & valid_b[j, w]
                x = bits_a[i, w] & v
                y = bits_b[j, w] & v
                common += _popcount(v)
                pa_ += _popcount(x)
                pb_ += _popcount(y)
                px += _popcount(x ^ y)
            if common < min_common:
                continue
            den = np.sqrt(pa_) + np.sqrt(pb_)
            if den > 0:
                sim[i, j] = 1.0 - np.sqrt(px) / den
    return sim


@njit(cache=True)
def _rotation(sim, ua, ub):
    """Estimated rotation from a to b as (cos, sin): the similarity-weighted mode of the
    direction differences of each row's best match (circular, smoothed over 3 bins)."""
    na, nb = sim.shape
    hist = np.zeros(ROTATION_BINS)
    best_d = np.zeros(na)
    best_w = np.zeros(na)
    for i in range(na):
        w, bj = 0.0, -1
        for j in range(nb):
            if sim[i, j] > w:
                w, bj = sim[i, j], j
        if bj < 0:
            continue
        d = np.arctan2(ua[i, 0] * ub[bj, 1] - ua[i, 1] * ub[bj, 0], ua[i, 0] * ub[bj, 0] + ua[i, 1] * ub[bj, 1])
        best_d[i], best_w[i] = d, w * w
        k = int((d + np.pi) / (2 * np.pi) * ROTATION_BINS) % ROTATION_BINS
        hist[k] += w * w
    peak, top = 0, -1.0
    for k in range(ROTATION_BINS):
        v = hist[k - 1] + 2 * hist[k] + hist[(k + 1) % ROTATION_BINS]
        if v > top:
            peak, top = k, v
    if top <= 0.0:
        return 1.0, 0.0
    # refine: circular mean of the differences in the peak's three bins
    centre = (peak + 0.5) * 2 * np.pi / ROTATION_BINS - np.pi
    c, s = 0.0, 0.0
    for i in range(na):
        if best_w[i] > 0 and abs(_wrap(best_d[i] - centre)) <= 1.5 * 2 * np.pi / ROTATION_BINS:
            c += best_w[i] * np.cos(best_d[i])
            s += best_w[i] * np.sin(best_d[i])
    r = np.hypot(c, s)
    if r == 0.0:
        return np.cos(centre), np.sin(centre)
    return c / r, s / r


@njit(cache=True)
def _gate(sim, ua, ub, rc, rs, min_cos):
    """Zero the pairs whose direction difference is far from the rotation (rc, rs)."""
    na, nb = sim.shape
    for i in range(na):
        # a's direction turned by the rotation
        x = rc * ua[i, 0] - rs * ua[i, 1]
        y = rs * ua[i, 0] + rc * ua[i, 1]
        for j in range(nb):
            if x * ub[j, 0] + y * ub[j, 1] < min_cos:
                sim[i, j] = 0.0


@njit(cache=True)
def _distances_from(x, y, r, out):
    """``out[s]`` = distance from point r to point s > r, pixels, float32 (a branch-free
    loop over contiguous arrays, which the compiler turns into SIMD)."""
    for s in range(r + 1, len(x)):
        dx = x[s] - x[r]
        dy = y[s] - y[r]
        out[s] = np.float32(np.sqrt(dx * dx + dy * dy))


@njit(cache=True)
def _wrap_mod(a):
    """``(a + pi) % (2 pi) - pi`` bit for bit, without fmod when ``a + pi`` is within one turn
    of [0, 2 pi) (always, for directions in [-pi, 2 pi)): there the remainder is an exact
    subtraction or the same addition."""
    u = a + np.pi
    if 0.0 <= u < 2 * np.pi:
        pass
    elif 2 * np.pi <= u < 4 * np.pi:
        u -= 2 * np.pi
    elif -2 * np.pi <= u < 0.0:
        u += 2 * np.pi
    else:
        u = u % (2 * np.pi)
    return u - np.pi


@njit(cache=True)
def _direction_difference(p, i, k):
    """Direction of i minus direction of k, wrapped to [-pi, pi), float32."""
    return np.float32(_wrap_mod(p[i, 2] - p[k, 2]))


@njit(cache=True)
def _radial_angle(p, i, k):
    """Angle of k seen from i relative to i's direction, wrapped to [-pi, pi), float32."""
    return np.float32(_wrap_mod(p[i, 2] - np.arctan2(p[k, 1] - p[i, 1], p[k, 0] - p[i, 0])))


@njit(cache=True)
def _relax(sim, pa_xyt, pb_xyt, n_p):
    """LSS-R; the pair geometry of each template from its (n, 3) x, y, direction rows."""
    na, nb = sim.shape
    n_r = min(na, nb)
    pa = np.empty(n_r, np.int64)
    pb = np.empty(n_r, np.int64)
    lam0 = np.empty(n_r, np.float64)
    # Greedy one-to-one selection of the strongest pairs, without sorting the whole
    # matrix: keep each row's best free column, take the best row, repair rows that
    # wanted the column just taken.
    used_b = np.zeros(nb, np.bool_)
    best_j = np.full(na, -1, np.int64)
    best_v = np.zeros(na)
    for i in range(na):
        for j in range(nb):
            if sim[i, j] > best_v[i]:
                best_v[i] = sim[i, j]
                best_j[i] = j
    k = 0
    while k < n_r:
        i = np.argmax(best_v)
        if best_v[i] <= 0.0:
            break
        j = best_j[i]
        pa[k], pb[k], lam0[k] = i, j, best_v[i]
        k += 1
        used_b[j] = True
        best_v[i] = 0.0
        best_j[i] = -1
        for r in range(na):
            if best_j[r] == j and best_v[r] >= 0.0:
                best_v[r] = 0.0
                best_j[r] = -1
                for c in range(nb):
                    if not used_b[c] and sim[r, c] > best_v[r]:
                        best_v[r] = sim[r, c]
                        best_j[r] = c
        best_v[i] = -1.0  # row i is paired
    n_r = k
    if n_r < 2:
        return 0.0, np.zeros((0, 2), np.int64), lam0[:0]
    pa, pb, lam0 = pa[:n_r], pb[:n_r], lam0[:n_r]
    xa, ya = pa_xyt[pa, 0], pa_xyt[pa, 1]  # the paired minutiae's positions, contiguous
    xb, yb = pb_xyt[pb, 0], pb_xyt[pb, 1]
    dist_a = np.empty(n_r, np.float32)
    dist_b = np.empty(n_r, np.float32)
    rho = np.zeros((n_r, n_r))
    # each pair's rotation from a to b (cos, sin), for cheap pre-cuts of d2 and d3 (below)
    turn = np.empty((n_r, 2))
    for r in range(n_r):
        turn[r, 0] = np.cos(pa_xyt[pa[r], 2] - pb_xyt[pb[r], 2])
        turn[r, 1] = np.sin(pa_xyt[pa[r], 2] - pb_xyt[pb[r], 2])
    for r in range(n_r):
        i1, j1 = pa[r], pb[r]
        _distances_from(xa, ya, r, dist_a)
        _distances_from(xb, yb, r, dist_b)
        turn_c, turn_s = turn[r, 0], turn[r, 1]
        for s in range(r + 1, n_r):
            i2, j2 = pa[s], pb[s]
            # each factor is a falling sigmoid: skip the exps once one is negligible
            d1 = abs(dist_a[s] - dist_b[s]) / max(1.0, (dist_a[s] + dist_b[s]) / (2 * DIST_SCALE))
            if d1 > CUT_1:
                continue
            # d2 is the difference of the two pairs' rotations: when its cosine says it is
            # clearly above CUT_2, skip the exact (float32, wrapped) test
            if turn_c * turn[s, 0] + turn_s * turn[s, 1] < _COS_CUT_2:
                continue
            d2 = abs(_wrap(_direction_difference(pa_xyt, i1, i2) - _direction_difference(pb_xyt, j1, j2)))
            if d2 > CUT_2:
                continue
            # d3 is the angle between a's vector r -> s and b's turned by pair r's rotation:
            # when its cosine says it is clearly above CUT_3, skip the two arctan2s
            bx, by = xb[s] - xb[r], yb[s] - yb[r]
            dot = (xa[s] - xa[r]) * (turn_c * bx - turn_s * by) + (ya[s] - ya[r]) * (turn_s * bx + turn_c * by)
            if dot < _COS_CUT_3 * dist_a[s] * dist_b[s]:
                continue
            d3 = abs(_wrap(_radial_angle(pa_xyt, i1, i2) - _radial_angle(pb_xyt, j1, j2)))
            if d3 > CUT_3:
                continue
            v = _z(d1, MU_1, TAU_1) * _z(d2, MU_2, TAU_2) * _z(d3, MU_3, TAU_3)
            rho[r, s] = v
            rho[s, r] = v
    lam = lam0.copy()
    nxt = np.empty(n_r)
    for _ in range(N_REL):
        for r in range(n_r):
            acc = 0.0
            for q in range(n_r):
                acc += rho[r, q] * lam[q]
            nxt[r] = W_R * lam[r] + (1 - W_R) * acc / (n_r - 1)
        lam, nxt = nxt, lam
    eff = lam / lam0
    sel = np.argsort(-eff)[: min(n_p, n_r)]
    score = lam[sel].sum() / n_p
    keep = sel[np.argsort(-lam[sel])]
    pairs = np.empty((len(keep), 2), np.int64)
    pairs[:, 0] = pa[keep]
    pairs[:, 1] = pb[keep]
    return score, pairs, lam[keep]


@njit(cache=True)
def _compare(bits_a, valid_a, use_a, full_a, ones_a, ua, xyt_a,
             bits_b, valid_b, use_b, full_b, ones_b, ub, xyt_b, min_common, min_cos):
    sim = _local_similarities(bits_a, valid_a, use_a, full_a, ones_a, ua,
                              bits_b, valid_b, use_b, full_b, ones_b, ub, min_common, -2.0)
    rc, rs = _rotation(sim, ua, ub)
    _gate(sim, ua, ub, rc, rs, min_cos)
    m = min(len(ua), len(ub))
    z = 1.0 / (1.0 + np.exp(-TAU_P * (m - MU_P)))
    n_p = int(MIN_NP + np.round(z * (MAX_NP - MIN_NP)))
    score, pairs, lam = _relax(sim, xyt_a, xyt_b, n_p)
    return score * (min(m, SIZE_REF) / SIZE_REF) ** SIZE_EXPONENT, pairs, lam


def prepare(t: Template):
    """Compute (once) and cache on the template the arrays the comparison kernel needs.

    Its cylinders (~1 ms for 40 minutiae) and the minutiae's unit direction vectors and
    coordinates.  Compare and search do it on first use; call it at enrolment or when
    loading a gallery so that the first comparisons do not pay for it.
    """
    p = t._derived.get(MATCHER_VERSION)
    if p is None:
        c = cylinders(t)
        m = t.minutiae
        xyt = np.stack([m[k].astype(np.float64) for k in ("x", "y", "direction")], 1)
        unit = np.stack([np.cos(xyt[:, 2]), np.sin(xyt[:, 2])], 1)
        p = (c.bits, c.valid, c.usable, c.full, c.ones, unit, xyt)
        t._derived[MATCHER_VERSION] = p
    return p


def compare(a: Template, b: Template) -> Comparison:
    """Compare two fingerprint templates.

    Returns
    -------
    Comparison
        Normalised score and the paired minutiae that support it.
    """
    sa, sb = cohort_stats(a), cohort_stats(b)
    if len(a) < 2 or len(b) < 2:
        return Comparison(float(normalise(0.0, sa, sb.mean, sb.sd)), np.zeros((0, 2), np.int64), np.zeros(0))
    raw, pairs, lam = _compare(*prepare(a), *prepare(b), _MATCHABLE_CELLS, _MIN_COS)
    return Comparison(float(normalise(raw, sa, sb.mean, sb.sd)), pairs, lam)


@dataclass(frozen=True)
class PackedTemplates:
    """Many templates' prepared arrays concatenated, for one compiled 1:N loop.

    Calling the kernel once per gallery template would spend more time in Python
    dispatch than in comparing; packed, a probe is scored against the whole
    shortlist in one call.
    """

    arrays: tuple
    offsets: np.ndarray
    """(G+1,) int64: template g owns minutiae ``offsets[g]:offsets[g+1]``."""
    cohort_mean: np.ndarray | None = None
    """(G,) each template's cohort statistics (None when packed ``raw``, e.g. the cohort itself)."""
    cohort_sd: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.offsets) - 1


def pack_templates(templates: list[Template], *, raw: bool = False) -> PackedTemplates:
    """Concatenate the prepared arrays of ``templates`` (see :func:`compare_scores`).

    ``raw=True`` leaves out the cohort statistics: such a pack serves :func:`raw_scores` only.
    """
    parts = [prepare(t) for t in templates]
    sizes = np.array([len(t) for t in templates], np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    cat = tuple(np.ascontiguousarray(np.concatenate([p[k] for p in parts])) if parts else empty
                for k, empty in enumerate(_prepared_empty()))
    if raw:
        return PackedTemplates(cat, offsets)
    stats = [cohort_stats(t) for t in templates]
    return PackedTemplates(cat, offsets, np.array([c.mean for c in stats]), np.array([c.sd for c in stats]))


def _prepared_empty():
    from .descriptors import WORDS
    return (np.zeros((0, WORDS), np.uint64), np.zeros((0, WORDS), np.uint64), np.zeros(0, bool),
            np.zeros(0, bool), np.zeros(0, np.int64), np.zeros((0, 2)), np.zeros((0, 3)))


@njit(cache=True, nogil=True)
def _compare_many(bits_a, valid_a, use_a, full_a, ones_a, ua, xyt_a,
                  bits, valid, use, full, ones, u, xyt, offsets, min_common, min_cos):
    g_count = len(offsets) - 1
    out = np.zeros(g_count)
    for g in range(g_count):
        o0, o1 = offsets[g], offsets[g + 1]
        n = o1 - o0
        if n < 2:
            continue
        out[g] = _compare(bits_a, valid_a, use_a, full_a, ones_a, ua, xyt_a,
                          bits[o0:o1], valid[o0:o1], use[o0:o1], full[o0:o1], ones[o0:o1], u[o0:o1],
                          xyt[o0:o1], min_common, min_cos)[0]
    return out


def compare_scores(probe: Template, gallery: list[Template] | PackedTemplates, *,
                   threads: int = 1) -> np.ndarray:
    """Normalised scores of one probe against many templates (the 1:N re-ranking loop).

    Parameters
    ----------
    probe : Template
    gallery : list of Template, or their :func:`pack_templates` (pack once, score many probes)
    threads : int
        Split the gallery over this many threads (the compiled loop releases the GIL);
        worth it from a few thousand templates up.

    Returns
    -------
    (len(gallery),) float64 array, the same scores :func:`compare` gives.
    """
    packed = gallery if isinstance(gallery, PackedTemplates) else pack_templates(gallery)
    if packed.cohort_mean is None:
        raise ValueError("templates packed raw have no cohort statistics: pack them with raw=False")
    return normalise(raw_scores(probe, packed, threads=threads), cohort_stats(probe),
                     packed.cohort_mean, packed.cohort_sd)


def raw_scores(probe: Template, packed: PackedTemplates, *, threads: int = 1) -> np.ndarray:
    """Scores before cohort normalisation (steps 1-5), in [0, 1]; see :func:`compare_scores`."""
    if len(probe) < 2 or len(packed) == 0:
        return np.zeros(len(packed))
    p = prepare(probe)

    def score(g0: int, g1: int) -> np.ndarray:
        o0, o1 = packed.offsets[g0], packed.offsets[g1]
        return _compare_many(*p, *(a[o0:o1] for a in packed.arrays), packed.offsets[g0:g1 + 1] - o0,
                             _MATCHABLE_CELLS, _MIN_COS)

    threads = max(1, min(threads, len(packed)))
    if threads == 1:
        return score(0, len(packed))
    from concurrent.futures import ThreadPoolExecutor

    bounds = np.linspace(0, len(packed), threads + 1).astype(int)
    with ThreadPoolExecutor(threads) as pool:
        parts = list(pool.map(score, bounds[:-1], bounds[1:]))
    return np.concatenate(parts)
