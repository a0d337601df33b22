"""Per-minutia local descriptors: Minutia Cylinder-Code (Cappelli, Ferrara & Maltoni, 2010).

A cylinder is a 3-D histogram centred on a minutia and rotated with it: ``NS x NS``
spatial cells of a disc of radius ``R`` pixels times ``ND`` cells of relative
direction.  Each cell sums Gaussian contributions of the neighbouring minutiae
(by distance to the cell centre and by the difference between their relative
direction and the cell's); a cell is set when that sum exceeds a small level.  Cells outside the
disc or outside the print area are *invalid* and take no part in comparisons, so
a partial print is compared on what both impressions show.

Being invariant to translation and rotation, cylinders are the fixed-length
vectors that 1:N search indexes: each minutia gives ``NS*NS*ND = 1536`` bits
(``Cylinders.bits.view(np.uint8)``: 192 bytes, for FAISS binary indexes).  How that
space relates to the 1:1 score: the comparator's local similarity of two cylinders
is ``1 - sqrt(h) / (sqrt(|a|) + sqrt(|b|))`` where ``h`` is their Hamming distance on
the cells valid in both and ``|.|`` their set bits there; for two cylinders wholly
inside their prints that *is* a monotone function of the plain Hamming distance a
FAISS index computes.  The 1:1 score then keeps only minutia pairs that also agree
geometrically (:mod:`~matcher.fingerprint.comparison`), so a finger whose minutiae
have many near neighbours in Hamming space is a good candidate, and the
comparator decides.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from .template import Template

RADIUS = 70.0          # pixels at 500 ppi
NS = 16                # spatial cells along a side
ND = 6                 # direction cells
SIGMA_S = 28.0 / 3.0   # pixels
SIGMA_D = 2.0 * np.pi / 9.0
MU_PSI = 0.01
MIN_VALID_CELLS = 0.2  # share of the disc's cells that must lie in the print
MIN_NEIGHBOURS = 2
DESCRIPTOR_VERSION = f"mcc-binary-{NS}x{ND}-1"

_DELTA_S = 2.0 * RADIUS / NS
_DELTA_D = 2.0 * np.pi / ND
_idx = (np.arange(NS) - (NS - 1) / 2.0) * _DELTA_S
_CELL_I, _CELL_J = np.meshgrid(_idx, _idx, indexing="xy")  # (NS, NS): column offset, row offset
_IN_DISC = (_CELL_I ** 2 + _CELL_J ** 2) <= RADIUS ** 2
_DIR_CENTERS = -np.pi + (np.arange(ND) + 0.5) * _DELTA_D


#: 64-bit words per packed cylinder.
WORDS = -(-NS * NS * ND // 64)


@dataclass(frozen=True)
class Cylinders:
    """The binary cylinders of one template (bit-packed, ``WORDS`` uint64 per cylinder).

    Binary MCC: a cell's bit is set when its summed contribution exceeds ``MU_PSI``
    (the sigmoid of the float version used as a step), which Cappelli et al. found
    as accurate as float cells and which compares with popcounts.
    """

    bits: np.ndarray
    """(n, WORDS) uint64: cell bits, zero on invalid cells."""
    valid: np.ndarray
    """(n, WORDS) uint64: validity bits."""
    usable: np.ndarray
    """(n,) bool: cylinder has enough valid cells and neighbours to be compared."""
    full: np.ndarray
    """(n,) bool: every cell of the disc is valid (the print covers the whole cylinder)."""
    ones: np.ndarray
    """(n,) int64: number of set cells."""


def _pack(cells: np.ndarray) -> np.ndarray:
    n, d = cells.shape
    padded = np.zeros((n, WORDS * 64), np.uint8)
    padded[:, :d] = cells
    return np.packbits(padded, axis=1, bitorder="little").view("<u8").reshape(n, WORDS).astype(np.uint64)


@njit(cache=True)
def _fill(values, xs, ys, th, cx, cy, cell_ok, dir_centers, sigma_s, sigma_d, delta_d):
    n = len(xs)
    ncell = cx.shape[1]
    nd = len(dir_centers)
    inv2s2 = 1.0 / (2.0 * sigma_s * sigma_s)
    gs_norm = 1.0 / (sigma_s * np.sqrt(2.0 * np.pi))
    reach2 = (3.0 * sigma_s) ** 2
    sq2 = np.sqrt(2.0) * sigma_d
    for m in range(n):
        for c in range(ncell):
            if not cell_ok[m, c]:
                continue
            px, py = cx[m, c], cy[m, c]
            for t in range(n):
                if t == m:
                    continue
                dx = xs[t] - px
                dy = ys[t] - py
                d2 = dx * dx + dy * dy
                if d2 > reach2:
                    continue
                cs = gs_norm * np.exp(-d2 * inv2s2)
                dtheta = th[m] - th[t]
                dtheta = (dtheta + np.pi) % (2 * np.pi) - np.pi
                for k in range(nd):
                    a = dir_centers[k] - dtheta
                    a = (a + np.pi) % (2 * np.pi) - np.pi
                    # integral of the direction Gaussian over the cell's width
                    cd = 0.5 * (_erf((a + delta_d / 2) / sq2) - _erf((a - delta_d / 2) / sq2))
                    values[m, c * nd + k] += cs * cd


@njit(cache=True)
def _erf(x):
    # Abramowitz-Stegun 7.1.26, |error| < 1.5e-7: plenty for a histogram.
    s = 1.0 if x >= 0 else -1.0
    x = abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * np.exp(-x * x)
    return s * y


def cylinders(template: Template) -> Cylinders:
    """Cylinders of a template (cached on the template object)."""
    cached = template._derived.get(DESCRIPTOR_VERSION)
    if cached is not None:
        return cached
    m = template.minutiae
    n = len(m)
    xs = m["x"].astype(np.float64)
    ys = m["y"].astype(np.float64)
    th = m["direction"].astype(np.float64)
    cos, sin = np.cos(th)[:, None], np.sin(th)[:, None]
    ci, cj = _CELL_I.ravel()[None], _CELL_J.ravel()[None]
    cx = xs[:, None] + ci * cos - cj * sin     # cell centres rotated with the minutia
    cy = ys[:, None] + ci * sin + cj * cos
    cell_ok = _IN_DISC.ravel()[None] & template.in_print(cx, cy)
    values = np.zeros((n, NS * NS * ND), np.float64)
    _fill(values, xs, ys, th, cx, cy, cell_ok, _DIR_CENTERS, SIGMA_S, SIGMA_D, _DELTA_D)
    valid = np.repeat(cell_ok, ND, axis=1)
    on = (values > MU_PSI) & valid
    d2 = (xs[:, None] - xs[None]) ** 2 + (ys[:, None] - ys[None]) ** 2
    neighbours = ((d2 <= (RADIUS + 3 * SIGMA_S) ** 2).sum(1) - 1)
    usable = (cell_ok.sum(1) >= MIN_VALID_CELLS * _IN_DISC.sum()) & (neighbours >= MIN_NEIGHBOURS)
    full = cell_ok.sum(1) == _IN_DISC.sum()
    out = Cylinders(_pack(on), _pack(valid), usable, full, on.sum(1).astype(np.int64))
    template._derived[DESCRIPTOR_VERSION] = out
    return out
