"""Master fingerprints: ridges grown by iterative oriented (Gabor) filtering.

Growth starts from a few random seeds on an empty canvas.  Each iteration filters the
image with the Gabor filter tuned to the local orientation and ridge period and
saturates the result to ``[-1, 1]``; ridges spread out from the seeds along the
orientation field and settle at the local period.  Where two growing fronts meet out
of phase a ridge ends or forks, which is where minutiae come from.

Spatially variant filtering is done with a bank: the image is filtered once per
(orientation, period) bin and every pixel blends the responses of the bins nearest
its own orientation and period.  An isotropic Gaussian envelope makes each Gabor
filter the product of two complex 1-D filters, so one bin costs two separable
convolutions instead of one 2-D convolution.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .area import Area, area_mask, sample_area
from .density import period_map
from .groundtruth import Minutiae, clean_ridge_map, extract_minutiae
from .orientation import Singularities, orientation_field, sample_singularities

#: Master canvas ``(H, W)``, pixels at 500 ppi.
MASTER_SHAPE = (416, 320)
#: Orientation bins of the filter bank (pi / 12 = 15 degrees apart).
ORIENTATION_BINS = 12
#: Standard deviation of the Gabor envelope, pixels: about half a ridge period, so a
#: filter sees two to three ridges and bends with the field.
GABOR_SIGMA = 3.6


@dataclass(frozen=True)
class Master:
    """A master fingerprint.

    Attributes
    ----------
    kind : str
        Class (see :data:`.orientation.CLASSES`).
    ridges : (H, W) float32 array
        Ridge pattern in ``[-1, 1]``; ridges are positive.
    mask : (H, W) float32 array
        Fingerprint area in ``[0, 1]``.
    orientation : (H, W) float32 array
        Ridge orientation, radians in ``[0, pi)``.
    period : (H, W) float32 array
        Ridge period, pixels.
    singularities : Singularities
    area : Area
    minutiae : Minutiae
        Ground-truth minutiae of the ridge pattern, master coordinates.
    """

    kind: str
    ridges: np.ndarray
    mask: np.ndarray
    orientation: np.ndarray
    period: np.ndarray
    singularities: Singularities
    area: Area
    minutiae: Minutiae


def _gabor_pair(angle: float, period: float, sigma: float) -> tuple[np.ndarray, ...]:
    """1-D factors of the even Gabor filter for ridges of orientation ``angle``.

    The wave runs across the ridges, along the normal ``(-sin, cos)``; with
    ``cos(a + b) = cos a cos b - sin a sin b`` the 2-D filter is
    ``cx (x) cy - sx (x) sy``.  Factors are scaled so that a unit-amplitude cosine at
    the tuned period gives a unit response.
    """
    radius = int(np.ceil(2.2 * sigma))
    t = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * (t / sigma) ** 2)
    k = 2 * np.pi / period
    kx, ky = -np.sin(angle) * k, np.cos(angle) * k
    cx, sx = g * np.cos(kx * t), g * np.sin(kx * t)
    cy, sy = g * np.cos(ky * t), g * np.sin(ky * t)
    # Response to cos(k.n) is half the sum of the envelope (cos^2 averages to 1/2).
    gain = 2.0 / (g.sum() ** 2)
    s = np.sqrt(gain)
    return tuple((f * s).astype(np.float32) for f in (cx, cy, sx, sy))


def _bin_weights(values: np.ndarray, centres: np.ndarray, periodic: float | None) -> list[np.ndarray]:
    """Linear (tent) interpolation weights of every pixel over evenly spaced bin centres.

    ``periodic`` is the period of the values (pi for orientations) or None; outside
    the range of non-periodic centres the nearest end bin takes all the weight.
    """
    if len(centres) == 1:
        return [np.ones(values.shape, np.float32)]
    step = float(centres[1] - centres[0])
    v = values.astype(np.float32)
    if periodic is None:
        v = np.clip(v, centres[0], centres[-1])
    # Each pixel lies between two neighbouring centres and only they get a weight: fill
    # those two (with the tent formula, bit for bit) instead of all n bins everywhere.
    n = len(centres)
    lower = np.floor((v - np.float32(centres[0])) / np.float32(step)).astype(np.int64)
    upper = lower + 1
    if periodic is not None:
        lower %= n
        upper %= n
    else:
        lower = np.minimum(lower, n - 1)
        upper = np.minimum(upper, n - 1)
    c32 = centres.astype(np.float32)
    weights = np.zeros((n, values.size), np.float32)
    pixel = np.arange(values.size)
    for which in (upper.ravel(), lower.ravel()):
        d = v.ravel() - c32[which]
        if periodic is not None:
            d = (d + periodic / 2) % periodic - periodic / 2
        weights[which, pixel] = np.maximum(0, 1 - np.abs(d) / step)
    return list(weights.reshape((n,) + values.shape))


def _support(used: np.ndarray, radius: int) -> tuple[tuple[slice, slice], tuple[slice, slice]] | None:
    """Bounding box of ``used`` and the same box grown by ``radius`` within the canvas.

    Returns ``(inner, crop)`` as pairs of slices, or None when no pixel is used.
    """
    rows, cols = np.flatnonzero(used.any(axis=1)), np.flatnonzero(used.any(axis=0))
    if rows.size == 0:
        return None
    h, w = used.shape
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    inner = (slice(y0, y1), slice(x0, x1))
    crop = (slice(max(0, y0 - radius), min(h, y1 + radius)), slice(max(0, x0 - radius), min(w, x1 + radius)))
    return inner, crop


def grow_ridges(orientation: np.ndarray, period: np.ndarray, rng: np.random.Generator,
                seeds: int = 14, iterations: int = 10, gain: float = 3.0,
                noise: float = 0.05) -> np.ndarray:
    """Grow a ridge pattern by iterative Gabor filtering from random seeds.

    Parameters
    ----------
    orientation : (H, W) array
        Ridge orientation, radians in ``[0, pi)``.
    period : (H, W) array
        Ridge period, pixels.
    rng : numpy.random.Generator
    seeds : int
        Number of random starting spots; fewer seeds give fewer meeting fronts and so
        fewer minutiae.
    noise : float
        Amplitude of the faint white-noise floor under the seeds.
    iterations : int
        Filtering rounds; each grows the ridges by about a filter radius.
    gain : float
        Amplification before saturation; above 1 it drives the pattern to binary.

    Returns
    -------
    (H, W) float32 array in ``[-1, 1]``, ridges positive.
    """
    h, w = orientation.shape
    # Seeds: random spots of either polarity.  Spots grow fastest; a faint noise floor
    # lets the whole canvas fill within a few rounds so no area stays blank.
    img = (rng.standard_normal((h, w)) * noise).astype(np.float32)
    ys = rng.integers(0, h, seeds)
    xs = rng.integers(0, w, seeds)
    img[ys, xs] = rng.choice([-1.0, 1.0], seeds) * 40.0
    img = cv2.GaussianBlur(img, (0, 0), 1.5)

    angles = np.arange(ORIENTATION_BINS) * np.pi / ORIENTATION_BINS
    lo, hi = float(period.min()), float(period.max())
    periods = np.array([lo]) if hi - lo < 0.3 else np.array([lo, hi])
    w_angle = _bin_weights(orientation, angles, periodic=np.pi)
    w_period = _bin_weights(period, periods, periodic=None)
    radius = int(np.ceil(2.2 * GABOR_SIGMA))
    bank = []
    for a, wa in zip(angles, w_angle):
        for p, wp in zip(periods, w_period):
            wgt = wa * wp
            support = _support(wgt > 0, radius)
            if support is not None:  # bins no pixel uses would cost a filtering each round
                inner, crop = support
                bank.append((_gabor_pair(a, p, GABOR_SIGMA), wgt[inner], inner, crop))

    for _ in range(iterations):
        out = np.zeros_like(img)
        for (cx, cy, sx, sy), wgt, inner, crop in bank:
            # Filter only the bin's bounding box plus the filter radius: an orientation
            # bin covers about 40 % of a print, and pixels of zero weight add nothing.
            # Inside the margin the result equals filtering the whole canvas.
            sub = img[crop]
            y, x = inner[0].start - crop[0].start, inner[1].start - crop[1].start
            keep = (slice(y, y + wgt.shape[0]), slice(x, x + wgt.shape[1]))
            even = cv2.sepFilter2D(sub, -1, cx, cy, borderType=cv2.BORDER_REFLECT)[keep]
            odd = cv2.sepFilter2D(sub, -1, sx, sy, borderType=cv2.BORDER_REFLECT)[keep]
            np.subtract(even, odd, out=even)
            np.multiply(even, wgt, out=even)
            out[inner] += even
        img = np.clip(out * gain, -1.0, 1.0)
    return img


def make_master(kind: str, rng: np.random.Generator, shape: tuple[int, int] = MASTER_SHAPE) -> Master:
    """Generate a master fingerprint of class ``kind``.

    Parameters
    ----------
    kind : str
        One of :data:`.orientation.CLASSES`.
    rng : numpy.random.Generator
        The only source of randomness: the same generator state gives the same master.
    shape : (int, int)
        ``(H, W)`` of the master canvas, pixels.
    """
    area = sample_area(shape, rng)
    centre, size = (area.cx, area.cy), area.size
    sing = sample_singularities(kind, centre, size, rng)
    theta = orientation_field(kind, shape, centre, size, sing, rng)
    period = period_map(shape, centre, size, rng)
    n_seeds = int(rng.integers(8, 20))
    ridges = grow_ridges(theta.astype(np.float32), period, rng, seeds=n_seeds)
    mask = area_mask(shape, area)
    ridges = clean_ridge_map(ridges)
    minutiae = extract_minutiae(ridges, mask, theta)
    return Master(kind, ridges, mask, theta.astype(np.float32), period, sing, area, minutiae)
