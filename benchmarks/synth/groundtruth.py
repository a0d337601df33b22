"""Ground-truth minutiae: found on the master's ridge skeleton, mapped into impressions.

Minutiae are read off the noise-free master, where they are unambiguous: the ridge
map is thinned to a one-pixel skeleton and the crossing number of each skeleton pixel
tells an ending (1) from a bifurcation (3).  Artefacts of thinning (spurs, specks)
are removed from the ridge map *before* minutiae are read, so what is rendered and
what is recorded agree.

Direction convention (see :mod:`benchmarks.synth`): radians from ``+x`` towards
``+y`` in image coordinates, in ``[0, 2 pi)``; an ending points into its ridge, a
bifurcation points along its two branches (away from the stem).  The angle is the
local orientation-field angle, turned to the side the skeleton runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from skimage.morphology import skeletonize

ENDING, BIFURCATION = 0, 1
TYPE_NAMES = ("ending", "bifurcation")

#: Ridge or valley specks smaller than this are removed before minutiae are read, px^2.
MIN_BLOB_AREA = 40
#: Minutiae closer than this to the edge of the fingerprint area are not recorded, px:
#: ridges cut by the edge end there, which is no minutia.
EDGE_MARGIN = 14.0
#: An ending and a bifurcation closer than this are a thinning spur, px.
SPUR_LENGTH = 7.0
#: Skeleton pixels followed to read a direction, px.
TRACE_STEPS = 9

# 8-neighbourhood in circular order (for the crossing number), as (dy, dx).
_RING = ((-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1))


@dataclass(frozen=True)
class Minutiae:
    """A set of minutiae, parallel arrays.

    Attributes
    ----------
    x, y : (n,) float64 arrays
        Position, pixels (column, row).
    direction : (n,) float64 array
        Radians in ``[0, 2 pi)``, convention in the module docstring.
    kind : (n,) int8 array
        :data:`ENDING` or :data:`BIFURCATION`.
    """

    x: np.ndarray
    y: np.ndarray
    direction: np.ndarray
    kind: np.ndarray

    def __len__(self) -> int:
        return len(self.x)

    def subset(self, keep: np.ndarray) -> "Minutiae":
        """The minutiae where ``keep`` (bool or index array) selects."""
        return Minutiae(self.x[keep], self.y[keep], self.direction[keep], self.kind[keep])

    def to_records(self) -> list[dict]:
        """JSON-ready list of ``{x, y, direction, type}``."""
        return [
            {"x": round(float(x), 2), "y": round(float(y), 2),
             "direction": round(float(d), 4), "type": TYPE_NAMES[int(k)]}
            for x, y, d, k in zip(self.x, self.y, self.direction, self.kind)
        ]

    @classmethod
    def from_records(cls, records: list[dict]) -> "Minutiae":
        """Inverse of :meth:`to_records`."""
        return cls(
            np.array([r["x"] for r in records], np.float64),
            np.array([r["y"] for r in records], np.float64),
            np.array([r["direction"] for r in records], np.float64),
            np.array([TYPE_NAMES.index(r["type"]) for r in records], np.int8),
        )


def clean_ridge_map(ridges: np.ndarray, min_area: int = MIN_BLOB_AREA) -> np.ndarray:
    """Remove ridge specks and fill valley pin-holes smaller than ``min_area`` px^2.

    Parameters
    ----------
    ridges : (H, W) float array in ``[-1, 1]``, ridges positive.

    Returns
    -------
    (H, W) float32 array, same sign convention, specks flipped in sign.
    """
    out = ridges.astype(np.float32, copy=True)
    for sign in (1.0, -1.0):
        binary = ((out * sign) > 0).astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
        small = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < min_area)
        small = small[small > 0]
        if len(small):
            hit = np.isin(labels, small)
            # Flip sign so the speck joins its surroundings; keep a clear margin from 0.
            out[hit] = -sign * np.maximum(np.abs(out[hit]), 0.5)
    return out


def crossing_numbers(skeleton: np.ndarray) -> np.ndarray:
    """Crossing number of every pixel of a one-pixel-wide skeleton (0 off it).

    ``CN = 1/2 sum |P_i - P_{i+1}|`` over the 8 neighbours in circular order: 1 at a
    ridge ending, 2 along a ridge, 3 at a bifurcation.
    """
    s = np.pad(skeleton.astype(np.int8), 1)
    h, w = skeleton.shape
    ring = [s[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w] for dy, dx in _RING]
    cn = sum(np.abs(ring[i] - ring[(i + 1) % 8]) for i in range(8)) // 2
    return np.where(skeleton, cn, 0)


def _trace(skel: np.ndarray, y0: int, x0: int, start: tuple[int, int], blocked: set,
           steps: int) -> tuple[float, float]:
    """Walk ``steps`` pixels along the skeleton from ``start``; vector from the origin."""
    h, w = skel.shape
    seen = set(blocked) | {(y0, x0), start}
    py, px = start
    for _ in range(steps - 1):
        nxt = None
        # 4-neighbours first so the walk does not cut corners onto a parallel branch.
        for dy, dx in ((-1, 0), (0, 1), (1, 0), (0, -1), (-1, 1), (1, 1), (1, -1), (-1, -1)):
            q = (py + dy, px + dx)
            if 0 <= q[0] < h and 0 <= q[1] < w and skel[q] and q not in seen:
                nxt = q
                break
        if nxt is None:
            break
        seen.add(nxt)
        py, px = nxt
    return float(px - x0), float(py - y0)


def _branch_starts(skel: np.ndarray, y: int, x: int) -> list[tuple[int, int]]:
    """One skeleton pixel per run of set pixels around ``(y, x)``."""
    h, w = skel.shape
    ring = [(y + dy, x + dx) for dy, dx in _RING]
    on = [0 <= q[0] < h and 0 <= q[1] < w and bool(skel[q]) for q in ring]
    starts = []
    for i in range(8):
        if on[i] and not on[i - 1]:
            # Prefer the 4-connected pixel of the run (even ring index).
            run = [i]
            j = (i + 1) % 8
            while on[j] and j != i:
                run.append(j)
                j = (j + 1) % 8
            pick = next((k for k in run if k % 2 == 0), run[0])
            starts.append(ring[pick])
    if not starts and any(on):
        starts = [ring[i] for i in range(8) if on[i]][:1]
    return starts


def _snap(angle: float, orientation: float) -> float:
    """The orientation-field direction (``orientation`` or its opposite) nearest ``angle``."""
    d = np.angle(np.exp(1j * (angle - orientation)))
    return float(np.mod(orientation + (0.0 if abs(d) <= np.pi / 2 else np.pi), 2 * np.pi))


def extract_minutiae(ridges: np.ndarray, mask: np.ndarray, orientation: np.ndarray) -> Minutiae:
    """Minutiae of a noise-free ridge map.

    Parameters
    ----------
    ridges : (H, W) float array
        Ridge pattern, ridges positive (already passed through :func:`clean_ridge_map`).
    mask : (H, W) float array
        Fingerprint area in ``[0, 1]``; minutiae within :data:`EDGE_MARGIN` px of its
        edge are dropped.
    orientation : (H, W) float array
        Ridge orientation, radians; gives the precise direction angle.

    Returns
    -------
    Minutiae
    """
    skel = skeletonize(ridges > 0)
    cn = crossing_numbers(skel)
    inside = cv2.distanceTransform((mask > 0.5).astype(np.uint8), cv2.DIST_L2, 5) > EDGE_MARGIN
    ys, xs = np.nonzero(((cn == 1) | (cn == 3)) & inside)
    kinds = np.where(cn[ys, xs] == 1, ENDING, BIFURCATION).astype(np.int8)

    # Thinning spurs: an ending right next to a bifurcation is a bump, not two minutiae.
    if len(xs):
        d = np.hypot(xs[:, None] - xs[None, :], ys[:, None] - ys[None, :])
        mixed = kinds[:, None] != kinds[None, :]
        spur = ((d < SPUR_LENGTH) & mixed).any(axis=1)
        keep = ~spur
        ys, xs, kinds = ys[keep], xs[keep], kinds[keep]

    directions = np.empty(len(xs))
    for i, (y, x, k) in enumerate(zip(ys, xs, kinds)):
        starts = _branch_starts(skel, int(y), int(x))
        vectors = [_trace(skel, int(y), int(x), s, set(starts) - {s}, TRACE_STEPS) for s in starts]
        if k == ENDING or len(vectors) < 3:
            vx, vy = vectors[0] if vectors else (1.0, 0.0)
        else:
            # The stem is the branch least parallel to the other two; point away from it.
            ang = [np.arctan2(v[1], v[0]) for v in vectors[:3]]
            gaps = [abs(np.angle(np.exp(1j * (ang[a] - ang[b])))) for a, b in ((1, 2), (0, 2), (0, 1))]
            stem = int(np.argmin(gaps))  # branch left out of the closest pair
            vx, vy = -vectors[stem][0], -vectors[stem][1]
        directions[i] = _snap(np.arctan2(vy, vx), float(orientation[y, x]))
    return Minutiae(xs.astype(np.float64), ys.astype(np.float64), directions, kinds)


def write_groundtruth(path: Path, header: dict, minutiae: Minutiae, extra: dict | None = None) -> None:
    """Write one impression's ground truth as JSON (``header`` + ``minutiae`` list)."""
    doc = dict(header)
    doc["direction_convention"] = (
        "radians in [0, 2pi), measured from +x towards +y in image coordinates (x right, y down, "
        "clockwise on screen); ending: along the ridge into its body; bifurcation: along the two "
        "branches, away from the stem"
    )
    if extra:
        doc.update(extra)
    doc["minutiae"] = minutiae.to_records()
    path.write_text(json.dumps(doc, separators=(",", ":")) + "\n")


def read_groundtruth(path: Path) -> tuple[dict, Minutiae]:
    """Read a file written by :func:`write_groundtruth`: ``(document, minutiae)``."""
    doc = json.loads(Path(path).read_text())
    return doc, Minutiae.from_records(doc["minutiae"])
