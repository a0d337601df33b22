"""Per-minutia local descriptors: Minutia Cylinder-Code (Cappelli, Ferrara & Maltoni, 2010).

A cylinder is a 3-D histogram centred on a minutia and rotated with it: ``NS x NS``
spatial cells of a disc of radius ``R`` pixels times ``ND`` cells of relative
direction.  Each cell sums Gaussian contributions of the neighbouring minutiae
(by distance to the cell centre and by the difference between their relative
direction and the cell's); a cell is set when that sum exceeds a small level.  Cells outside the
disc or outside the print area are *invalid* and take no part in comparisons, so
a partial print is compared on what both impressions show.

Being invariant to translation and rotation, cylinders give the fixed-length
vectors that 1:N search indexes: each minutia gives ``NS*NS*ND = 1536`` bits, of
which the index keeps a fixed sample of ``SHORTLIST_BITS`` cells inside the disc
(:func:`shortlist_codes`; bit sampling is the locality-sensitive hash of Hamming
space: the sampled distance estimates the whole one) and the comparator uses all.  How that
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

import struct
import zlib
from dataclasses import dataclass

import numpy as np
from numba import njit

from .template import MASK_BLOCK, Template

RADIUS = 70.0          # pixels at 500 ppi
NS = 16                # spatial cells along a side
ND = 6                 # direction cells
SIGMA_S = 28.0 / 3.0   # pixels
SIGMA_D = 2.0 * np.pi / 9.0
MU_PSI = 0.01
MIN_VALID_CELLS = 0.2  # share of the disc's cells that must lie in the print
MIN_NEIGHBOURS = 2
DESCRIPTOR_VERSION = f"mcc-binary-{NS}x{ND}-1"
#: Bits of a cylinder's shortlist code (:func:`shortlist_codes`, the vectors of the FAISS index).
SHORTLIST_BITS = 512
SHORTLIST_VERSION = f"{DESCRIPTOR_VERSION}/sample{SHORTLIST_BITS}-1"

_DELTA_S = 2.0 * RADIUS / NS
_DELTA_D = 2.0 * np.pi / ND
_idx = (np.arange(NS) - (NS - 1) / 2.0) * _DELTA_S
_CELL_I, _CELL_J = np.meshgrid(_idx, _idx, indexing="xy")  # (NS, NS): column offset, row offset
_IN_DISC = (_CELL_I ** 2 + _CELL_J ** 2) <= RADIUS ** 2
_DIR_CENTERS = -np.pi + (np.arange(ND) + 0.5) * _DELTA_D
_CELL_I_FLAT, _CELL_J_FLAT, _IN_DISC_FLAT = _CELL_I.ravel(), _CELL_J.ravel(), _IN_DISC.ravel()
_DISC_CELLS = int(_IN_DISC.sum())
# The sampled bits: the disc's bits (cells outside it are never set) in a fixed pseudo-random
# order, from integer arithmetic alone so that no library's random stream can change them.
_DISC_BITS = (np.flatnonzero(_IN_DISC_FLAT)[:, None] * ND + np.arange(ND)).ravel()
_SHORTLIST_POSITIONS = np.sort(_DISC_BITS[np.argsort((_DISC_BITS * 2654435761) % 2 ** 32,
                                                     kind="stable")][:SHORTLIST_BITS])


#: 64-bit words per packed cylinder.
WORDS = -(-NS * NS * ND // 64)
#: Stored form of a template's cylinders (:func:`cylinders_to_bytes`); it names the descriptor
#: version, so cylinders of another matcher are never read as this one's.
CYLINDERS_FORMAT = f"{DESCRIPTOR_VERSION}/zlib-1"
_CYL_MAGIC = b"LCCY"
_CYL_HEADER = struct.Struct("<4sHH")  # magic, format number, cylinders
_CYL_FORMAT_NUMBER = 1
# zlib level 6: ~3.2 kB a template of 46 minutiae (17.7 kB unpacked), read back in ~60 us
# where computing takes ~1.2 ms; level 9 saves 3 % for ten times the writing time.
_CYL_ZLIB_LEVEL = 6


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


@njit(cache=True)
def _fill(xs, ys, th, cos_t, sin_t, mask, bits, valid, ones, valid_cells, neighbours):
    """Cylinders of one template, written bit-packed into ``bits`` and ``valid`` (zeroed).

    Cell ``c`` (row-major over the ``NS x NS`` grid), direction ``k``: bit ``c * ND + k``,
    word ``b // 64``, bit ``b % 64`` of that word.  ``valid_cells[m]`` counts m's cells
    inside the disc and the print; ``neighbours[m]`` the other minutiae within
    ``RADIUS + 3 SIGMA_S``.
    """
    n = len(xs)
    inv2s2 = 1.0 / (2.0 * SIGMA_S * SIGMA_S)
    gs_norm = 1.0 / (SIGMA_S * np.sqrt(2.0 * np.pi))
    reach2 = (3.0 * SIGMA_S) ** 2
    support2 = (RADIUS + 3 * SIGMA_S) ** 2
    sq2 = np.sqrt(2.0) * SIGMA_D
    rows, cols = mask.shape
    near = np.empty(n, np.int64)
    cd = np.empty((n, ND))
    acc = np.empty(ND)
    for m in range(n):
        # The direction term depends on the pair (m, t) only, not on the cell: once per pair
        # within reach of the disc (a minutia beyond RADIUS + 3 sigma adds to no cell of it).
        n_near = 0
        for t in range(n):
            if t == m:
                continue
            if (xs[m] - xs[t]) ** 2 + (ys[m] - ys[t]) ** 2 > support2:
                continue
            near[n_near] = t
            dtheta = th[m] - th[t]
            dtheta = (dtheta + np.pi) % (2 * np.pi) - np.pi
            for k in range(ND):
                a = _DIR_CENTERS[k] - dtheta
                a = (a + np.pi) % (2 * np.pi) - np.pi
                # integral of the direction Gaussian over the cell's width
                cd[n_near, k] = 0.5 * (_erf((a + _DELTA_D / 2) / sq2) - _erf((a - _DELTA_D / 2) / sq2))
            n_near += 1
        neighbours[m] = n_near
        for c in range(NS * NS):
            if not _IN_DISC_FLAT[c]:
                continue
            # cell centre rotated with the minutia; valid when inside the print area
            px = xs[m] + _CELL_I_FLAT[c] * cos_t[m] - _CELL_J_FLAT[c] * sin_t[m]
            py = ys[m] + _CELL_I_FLAT[c] * sin_t[m] + _CELL_J_FLAT[c] * cos_t[m]
            r = int(np.floor(py / MASK_BLOCK))
            q = int(np.floor(px / MASK_BLOCK))
            if r < 0 or q < 0 or r >= rows or q >= cols or not mask[r, q]:
                continue
            valid_cells[m] += 1
            for k in range(ND):
                acc[k] = 0.0
            for i in range(n_near):
                t = near[i]
                dx = xs[t] - px
                dy = ys[t] - py
                d2 = dx * dx + dy * dy
                if d2 > reach2:
                    continue
                cs = gs_norm * np.exp(-d2 * inv2s2)
                for k in range(ND):
                    acc[k] += cs * cd[i, k]
            for k in range(ND):
                b = c * ND + k
                bit = np.uint64(1) << np.uint64(b % 64)
                valid[m, b // 64] |= bit
                if acc[k] > MU_PSI:
                    bits[m, b // 64] |= bit
                    ones[m] += 1


@njit(cache=True)
def _erf(x):
    # Abramowitz-Stegun 7.1.26, |error| < 1.5e-7: plenty for a histogram.
    s = 1.0 if x >= 0 else -1.0
    x = abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    y = 1.0 - (((((1.061405429 * t - 1.453152027) * t) + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * np.exp(-x * x)
    return s * y


def cylinders(template: Template) -> Cylinders:
    """Cylinders of a template (cached on the template object); ~0.3 ms for 40 minutiae."""
    cached = template._derived.get(DESCRIPTOR_VERSION)
    if cached is not None:
        return cached
    m = template.minutiae
    n = len(m)
    th = m["direction"].astype(np.float64)
    bits = np.zeros((n, WORDS), np.uint64)
    valid = np.zeros((n, WORDS), np.uint64)
    ones = np.zeros(n, np.int64)
    valid_cells = np.zeros(n, np.int64)
    neighbours = np.zeros(n, np.int64)
    _fill(m["x"].astype(np.float64), m["y"].astype(np.float64), th, np.cos(th), np.sin(th),
          np.ascontiguousarray(template.mask, np.bool_), bits, valid, ones, valid_cells, neighbours)
    usable = (valid_cells >= MIN_VALID_CELLS * _DISC_CELLS) & (neighbours >= MIN_NEIGHBOURS)
    out = Cylinders(bits, valid, usable, valid_cells == _DISC_CELLS, ones)
    template._derived[DESCRIPTOR_VERSION] = out
    return out


def cylinders_to_bytes(c: Cylinders) -> bytes:
    """Versioned, compressed bytes of a template's cylinders (format :data:`CYLINDERS_FORMAT`).

    Stored beside a gallery template so that a search reads them (~60 us) instead of
    recomputing them (~1.2 ms for 46 minutiae) when the template is not in memory.
    """
    n = len(c.usable)
    body = b"".join((np.ascontiguousarray(c.bits, "<u8").tobytes(), np.ascontiguousarray(c.valid, "<u8").tobytes(),
                     c.ones.astype("<u2").tobytes(), c.usable.astype(np.uint8).tobytes(),
                     c.full.astype(np.uint8).tobytes()))
    return _CYL_HEADER.pack(_CYL_MAGIC, _CYL_FORMAT_NUMBER, n) + zlib.compress(body, _CYL_ZLIB_LEVEL)


def cylinders_from_bytes(data: bytes) -> Cylinders:
    """Cylinders written by :func:`cylinders_to_bytes`.

    Raises
    ------
    ValueError
        Not such bytes, another format number, or a truncated or corrupt body.
    """
    if len(data) < _CYL_HEADER.size:
        raise ValueError("cylinder bytes too short for their header")
    magic, number, n = _CYL_HEADER.unpack_from(data)
    if magic != _CYL_MAGIC or number != _CYL_FORMAT_NUMBER:
        raise ValueError(f"not cylinder bytes of format {_CYL_FORMAT_NUMBER} (magic {magic!r}, format {number})")
    try:
        body = zlib.decompress(data[_CYL_HEADER.size:])
    except zlib.error as exc:
        raise ValueError(f"corrupt cylinder bytes: {exc}") from exc
    words = n * WORDS * 8
    if len(body) != 2 * words + 4 * n:
        raise ValueError(f"cylinder bytes hold {len(body)} bytes, {2 * words + 4 * n} expected for {n} cylinders")
    bits = np.frombuffer(body, "<u8", n * WORDS).reshape(n, WORDS).astype(np.uint64)
    valid = np.frombuffer(body, "<u8", n * WORDS, words).reshape(n, WORDS).astype(np.uint64)
    ones = np.frombuffer(body, "<u2", n, 2 * words).astype(np.int64)
    usable = np.frombuffer(body, np.uint8, n, 2 * words + 2 * n).astype(bool)
    full = np.frombuffer(body, np.uint8, n, 2 * words + 3 * n).astype(bool)
    return Cylinders(bits, valid, usable, full, ones)


def load_cylinders(template: Template, data: bytes | None) -> Cylinders:
    """Cache on ``template`` its cylinders read from ``data`` (:func:`cylinders_to_bytes` of the
    same template); computed instead when ``data`` is None, unreadable or of another size."""
    if data is not None and DESCRIPTOR_VERSION not in template._derived:
        try:
            c = cylinders_from_bytes(data)
        except ValueError:
            c = None
        if c is not None and len(c.usable) == len(template):
            template._derived[DESCRIPTOR_VERSION] = c
    return cylinders(template)


def shortlist_codes(template: Template) -> np.ndarray:
    """Shortlist codes of a template's usable cylinders: ``SHORTLIST_BITS`` sampled bits each.

    Returns
    -------
    (n_usable, SHORTLIST_BITS // 8) uint8
        Bit-packed (bit ``i`` of a row: sampled cell ``i``, little-endian bit order).
    """
    c = cylinders(template)
    cells = np.unpackbits(np.ascontiguousarray(c.bits[c.usable]).view(np.uint8), axis=1, bitorder="little")
    return np.packbits(cells[:, _SHORTLIST_POSITIONS], axis=1, bitorder="little")
