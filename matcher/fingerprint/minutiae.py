"""Stage 6: minutiae from the ridge skeleton.

Candidates are skeleton pixels with crossing number 1 (ridge ending) or 3
(bifurcation).  Each is traced along its ridge(s) for a few pixels; the traces
give its direction and expose the artefacts of skeletons (spurs, bridges, short
islands, broken ridges), which are removed.  Direction convention, that of
ANSI/NIST-ITL and ISO/IEC 19794-2 (the minutia points along the gap between the
two branches of its "Y", so a ridge ending and the valley bifurcation it becomes
under ridge/valley inversion point the same way):

- ending: from the tip into the ridge body;
- bifurcation: from the fork between the two branches, away from the stem.

Angles are radians in ``[0, 2*pi)``, measured from the image x axis towards the
image y axis (rows grow downwards).  Positions are pixels at 500 ppi.
"""

from __future__ import annotations

from enum import IntEnum

import cv2
import numpy as np
from numba import njit

#: Structured dtype of a minutiae array.
MINUTIA_DTYPE = np.dtype([
    ("x", np.float32),          # column, pixels at 500 ppi
    ("y", np.float32),          # row, pixels at 500 ppi
    ("direction", np.float32),  # radians in [0, 2 pi)
    ("type", np.uint8),         # MinutiaType
    ("quality", np.uint8),      # 0-100
])


class MinutiaType(IntEnum):
    """ISO/IEC 19794-2 minutia type codes."""

    UNKNOWN = 0
    ENDING = 1
    BIFURCATION = 2


# 8-neighbourhood in cyclic order, starting east, then clockwise on screen.
_DY = np.array([0, 1, 1, 1, 0, -1, -1, -1], dtype=np.int64)
_DX = np.array([1, 1, 0, -1, -1, -1, 0, 1], dtype=np.int64)


def crossing_numbers(skeleton: np.ndarray) -> np.ndarray:
    """Crossing number of every skeleton pixel (0 elsewhere).

    Half the number of 0/1 transitions around the 8-neighbourhood: 1 at a ridge
    ending, 2 along a ridge, 3 at a bifurcation.
    """
    s = np.pad(skeleton.astype(np.int8), 1)
    h, w = skeleton.shape
    nb = [s[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy, dx in zip(_DY, _DX)]
    cn = sum(np.abs(nb[i] - nb[(i + 1) % 8]) for i in range(8)) // 2
    return np.where(skeleton, cn, 0).astype(np.int8)


@njit(cache=True)
def _branch_starts(skel, y, x):
    """Neighbours of (y, x) where a branch starts: a set pixel after an unset one in cyclic order."""
    h, w = skel.shape
    vals = np.zeros(8, np.int64)
    for k in range(8):
        yy, xx = y + _DY[k], x + _DX[k]
        if 0 <= yy < h and 0 <= xx < w and skel[yy, xx]:
            vals[k] = 1
    starts = np.empty(8, np.int64)
    n = 0
    for k in range(8):
        if vals[k] == 1 and vals[(k + 7) % 8] == 0:
            starts[n] = k
            n += 1
    return starts[:n]


@njit(cache=True)
def _trace(skel, cn, y0, x0, k0, max_len):
    """Follow a ridge from (y0, x0) leaving through neighbour k0.

    Returns (y, x, steps, stop): stop is 0 = length reached, 1 = hit an ending,
    3 = hit a bifurcation, 9 = dead end.
    """
    h, w = skel.shape
    py, px = y0, x0
    y, x = y0 + _DY[k0], x0 + _DX[k0]
    hist_y = np.full(4, -1, np.int64)
    hist_x = np.full(4, -1, np.int64)
    hist_y[0], hist_x[0] = y0, x0
    steps = 1
    while steps < max_len:
        c = cn[y, x]
        if c == 1:
            return y, x, steps, 1
        if c >= 3:
            return y, x, steps, 3
        # next pixel: a set neighbour not among the last few visited, 4-neighbours first
        best = -1
        for pref in range(2):
            for k in range(pref, 8, 2):
                yy, xx = y + _DY[k], x + _DX[k]
                if not (0 <= yy < h and 0 <= xx < w) or not skel[yy, xx]:
                    continue
                seen = False
                for j in range(4):
                    if hist_y[j] == yy and hist_x[j] == xx:
                        seen = True
                if yy == py and xx == px:
                    seen = True
                # skip pixels adjacent to the previous one (corner shortcuts)
                if abs(yy - py) <= 1 and abs(xx - px) <= 1:
                    seen = True
                if not seen:
                    best = k
                    break
            if best >= 0:
                break
        if best < 0:
            return y, x, steps, 9
        for j in range(3, 0, -1):
            hist_y[j], hist_x[j] = hist_y[j - 1], hist_x[j - 1]
        hist_y[0], hist_x[0] = py, px
        py, px = y, x
        y, x = y + _DY[best], x + _DX[best]
        steps += 1
    return y, x, steps, 0


@njit(cache=True)
def _trace_all(skel, cn, ys, xs, max_len):
    """Trace up to 3 branches of each candidate: (n, 3, 4) array of (y, x, steps, stop)."""
    n = len(ys)
    out = np.full((n, 3, 4), -1, np.int64)
    for i in range(n):
        starts = _branch_starts(skel, ys[i], xs[i])
        for b in range(min(3, len(starts))):
            y, x, steps, stop = _trace(skel, cn, ys[i], xs[i], starts[b], max_len)
            out[i, b, 0] = y
            out[i, b, 1] = x
            out[i, b, 2] = steps
            out[i, b, 3] = stop
    return out


def _angle_diff(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Absolute difference of angles, radians in [0, pi]."""
    d = np.mod(a - b, 2 * np.pi)
    return np.minimum(d, 2 * np.pi - d)


def detect_minutiae(skeleton: np.ndarray, mask: np.ndarray, orientation: np.ndarray,
                    coherence: np.ndarray, *, ridge_period: float = 9.0, border_px: float = 8.0,
                    trace_px: int = 12) -> np.ndarray:
    """Find, clean and describe the minutiae of a ridge skeleton.

    Parameters
    ----------
    skeleton : (H, W) bool, one-pixel-wide ridges
    mask : (H, W) bool foreground
    orientation : (H, W) float, ridge orientation, radians in [0, pi)
    coherence : (H, W) float in [0, 1]
    ridge_period : float
        Typical ridge period of this print, pixels; scales the artefact rules.
    border_px : float
        Minutiae closer than this to the edge of the print are dropped (pixels).
    trace_px : int
        How far each ridge is followed to measure direction, pixels.

    Returns
    -------
    Structured array of :data:`MINUTIA_DTYPE`.
    """
    cn = crossing_numbers(skeleton)
    ys, xs = np.nonzero((cn == 1) | (cn == 3))
    if len(ys) == 0:
        return np.zeros(0, MINUTIA_DTYPE)
    kind = np.where(cn[ys, xs] == 1, MinutiaType.ENDING, MinutiaType.BIFURCATION).astype(np.uint8)
    skel8 = skeleton.astype(np.uint8)
    traces = _trace_all(skel8, cn, ys.astype(np.int64), xs.astype(np.int64), int(max(trace_px, 2 * ridge_period)))
    keep = np.ones(len(ys), bool)
    index = {(int(y), int(x)): i for i, (y, x) in enumerate(zip(ys, xs))}

    spur = 0.9 * ridge_period
    island = 1.6 * ridge_period
    bridge = 1.1 * ridge_period
    for i in range(len(ys)):
        for b in range(3):
            ty, tx, steps, stop = traces[i, b]
            if steps < 0 or stop not in (1, 3):
                continue
            j = index.get((int(ty), int(tx)))
            if j is None or j == i:
                continue
            if kind[i] == MinutiaType.ENDING and stop == 3 and steps <= spur:
                keep[i] = keep[j] = False  # spur hanging off a ridge
            elif kind[i] == MinutiaType.ENDING and stop == 1 and steps <= island:
                keep[i] = keep[j] = False  # short island
            elif kind[i] == MinutiaType.BIFURCATION and stop == 3 and steps <= bridge:
                keep[i] = keep[j] = False  # bridge or hole between ridges

    # Directions from the traces.
    direction = np.zeros(len(ys), np.float64)
    for i in range(len(ys)):
        vec = []
        for b in range(3):
            ty, tx, steps, _ = traces[i, b]
            if steps > 0:
                vec.append(np.arctan2(ty - ys[i], tx - xs[i]))
        if not vec:
            keep[i] = False
            continue
        if kind[i] == MinutiaType.ENDING:
            direction[i] = vec[0]  # the trace runs from the tip into the ridge
        elif len(vec) == 3:
            v = np.array(vec)
            # the stem is the branch farthest from the other two; point away from it
            gaps = [_angle_diff(v[(k + 1) % 3], v[(k + 2) % 3]) for k in range(3)]
            direction[i] = v[int(np.argmin(gaps))] + np.pi
        else:
            keep[i] = False
    # Snap to the (smoother) orientation field, keeping the traced sense.
    theta = orientation[ys, xs].astype(np.float64)
    snapped = np.where(_angle_diff(theta, direction) <= np.pi / 2, theta, theta + np.pi)
    direction = np.mod(np.where(coherence[ys, xs] > 0.3, snapped, direction), 2 * np.pi)

    # Broken ridges: two endings facing each other across a short gap.
    e = np.flatnonzero(keep & (kind == MinutiaType.ENDING))
    if len(e) > 1:
        p = np.stack([xs[e], ys[e]], 1).astype(np.float64)
        d = np.linalg.norm(p[:, None] - p[None], axis=2)
        ii, jj = np.nonzero(np.triu(d < 1.6 * ridge_period, 1))
        for a, b in zip(ii, jj):
            facing = _angle_diff(direction[e[a]], direction[e[b]] + np.pi) < np.pi / 5
            # a gap in one ridge: b lies straight ahead of a's tip, opposite a's direction
            link = np.arctan2(p[b, 1] - p[a, 1], p[b, 0] - p[a, 0])
            aligned = _angle_diff(direction[e[a]] + np.pi, link) < np.pi / 4
            if facing and aligned:
                keep[e[a]] = keep[e[b]] = False

    dist = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, 3)[1:-1, 1:-1]
    keep &= dist[ys, xs] >= border_px

    out = np.zeros(int(keep.sum()), MINUTIA_DTYPE)
    out["x"] = xs[keep]
    out["y"] = ys[keep]
    out["direction"] = direction[keep]
    out["type"] = kind[keep]
    q = np.clip(coherence[ys, xs], 0, 1) * np.clip(dist[ys, xs] / (3 * ridge_period), 0, 1)
    out["quality"] = np.round(100 * q[keep]).astype(np.uint8)
    return out
