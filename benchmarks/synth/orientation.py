"""Fingerprint classes, their singular points and the ridge orientation field.

The field follows the zero-pole model of Sherlock and Monro: each core adds half the
argument of ``z - core`` and each delta subtracts half the argument of ``z - delta``,
so the field turns by +pi around a core and -pi around a delta.  Adding any smooth
function to it keeps those singularities, which is how the dome over the cores and
the small random irregularities of real fingers are added without moving them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: The five Henry classes the generator draws from.
CLASSES = ("arch", "tented_arch", "left_loop", "right_loop", "whorl")

#: Natural class frequencies (Wilson, Candela and Watson, 1994, as used by SFinGe).
NATURAL_DISTRIBUTION = {
    "arch": 0.037,
    "tented_arch": 0.029,
    "left_loop": 0.338,
    "right_loop": 0.317,
    "whorl": 0.279,
}


@dataclass(frozen=True)
class Singularities:
    """Cores and deltas of a master, ``(n, 2)`` arrays of ``(x, y)`` pixels."""

    cores: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    deltas: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))


def sample_singularities(
    kind: str, centre: tuple[float, float], size: tuple[float, float], rng: np.random.Generator
) -> Singularities:
    """Place the cores and deltas of a class inside a fingerprint area.

    Parameters
    ----------
    kind : str
        One of :data:`CLASSES`.  A *left loop* has its delta on the right (ridges
        enter and leave on the left), a *right loop* the mirror image.
    centre : (float, float)
        Centre ``(x, y)`` of the fingerprint area, pixels.
    size : (float, float)
        Width and height of the fingerprint area, pixels.
    rng : numpy.random.Generator

    Returns
    -------
    Singularities
    """
    cx, cy = centre
    w, h = size
    if kind == "arch":
        return Singularities()
    # Cores sit a little above the centre of the area, deltas 60-130 px below them.
    core = np.array([cx + rng.normal(0, 0.05 * w), cy - 0.08 * h + rng.normal(0, 0.05 * h)])
    if kind == "tented_arch":
        delta = core + [rng.normal(0, 6), rng.uniform(50, 80)]
        return Singularities(core[None], delta[None])
    if kind in ("left_loop", "right_loop"):
        side = 1.0 if kind == "left_loop" else -1.0
        delta = core + [side * rng.uniform(0.25, 0.4) * w, rng.uniform(0.2, 0.32) * h]
        return Singularities(core[None], delta[None])
    if kind == "whorl":
        # Two cores close together (a circle or a double loop), a delta on each side.
        tilt = rng.uniform(-0.6, 0.6)
        half = rng.uniform(8, 22)
        offset = half * np.array([np.cos(tilt), np.sin(tilt)])
        cores = np.stack([core - offset, core + offset])
        drop = rng.uniform(0.2, 0.3) * h
        deltas = np.array(
            [
                [core[0] - rng.uniform(0.3, 0.42) * w, core[1] + drop + rng.normal(0, 8)],
                [core[0] + rng.uniform(0.3, 0.42) * w, core[1] + drop + rng.normal(0, 8)],
            ]
        )
        return Singularities(cores, deltas)
    raise ValueError(f"unknown fingerprint class {kind!r}; expected one of {', '.join(CLASSES)}")


def zero_pole_field(shape: tuple[int, int], sing: Singularities, base: float = 0.0) -> np.ndarray:
    """Orientation of the zero-pole model on a pixel grid.

    Parameters
    ----------
    shape : (int, int)
        ``(H, W)`` of the grid, pixels.
    sing : Singularities
    base : float
        Orientation far from all singularities, radians.

    Returns
    -------
    (H, W) float64 array
        Ridge orientation, radians, not yet wrapped to ``[0, pi)``.
    """
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    theta = np.full(shape, base)
    for cx, cy in sing.cores:
        theta += 0.5 * np.arctan2(ys - cy, xs - cx)
    for dx, dy in sing.deltas:
        theta -= 0.5 * np.arctan2(ys - dy, xs - dx)
    return theta


def arch_field(shape: tuple[int, int], centre: tuple[float, float], size: tuple[float, float],
               rng: np.random.Generator) -> np.ndarray:
    """Orientation of a plain arch: flat ridges with a hump across the middle.

    The hump is the slope of a Gaussian bump whose height peaks a little below the
    centre of the area, so ridges rise on the left and fall on the right.

    Returns
    -------
    (H, W) float64 array
        Ridge orientation, radians.
    """
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    cx, cy = centre
    w, h = size
    width = rng.uniform(0.18, 0.3) * w
    peak_y = cy + rng.uniform(-0.05, 0.15) * h
    strength = rng.uniform(1.2, 2.2) * np.exp(-(((ys - peak_y) / (0.3 * h)) ** 2))
    u = (xs - cx) / width
    return np.arctan(strength * u * np.exp(-0.5 * u * u))


def dome_term(shape: tuple[int, int], centre_x: float, top_of_cores: float, width: float,
              strength: float) -> np.ndarray:
    """Smooth term bending the ridges above the cores into a dome, radians.

    Negative (rising to the right) left of ``centre_x``, positive right of it, fading
    out below ``top_of_cores`` so the singular region keeps the zero-pole shape.
    """
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    above = 1.0 / (1.0 + np.exp((ys - top_of_cores) / 25.0))
    return strength * np.tanh((xs - centre_x) / width) * above


def smooth_random_field(shape: tuple[int, int], amplitude: float, wavelength: float,
                        rng: np.random.Generator, terms: int = 4) -> np.ndarray:
    """A smooth random scalar field: a sum of a few plane waves.

    Parameters
    ----------
    shape : (int, int)
        ``(H, W)`` of the grid.
    amplitude : float
        Standard deviation of the field (in whatever unit the caller needs).
    wavelength : float
        Typical wavelength of the variation, pixels.
    rng : numpy.random.Generator
    terms : int
        Number of plane waves.

    Returns
    -------
    (H, W) float64 array
    """
    ys, xs = np.arange(shape[0], dtype=np.float64), np.arange(shape[1], dtype=np.float64)
    out = np.zeros(shape)
    for _ in range(terms):
        angle = rng.uniform(0, np.pi)
        k = 2 * np.pi / (wavelength * rng.uniform(0.7, 1.4))
        u, v = k * np.cos(angle) * xs, k * np.sin(angle) * ys + rng.uniform(0, 2 * np.pi)
        # sin(u + v) = sin u cos v + cos u sin v: two outer products, not H x W sines
        out += np.outer(np.cos(v), np.sin(u)) + np.outer(np.sin(v), np.cos(u))
    return out * amplitude * np.sqrt(2.0 / terms)


def orientation_field(kind: str, shape: tuple[int, int], centre: tuple[float, float],
                      size: tuple[float, float], sing: Singularities,
                      rng: np.random.Generator) -> np.ndarray:
    """Full orientation field of a master of class ``kind``.

    Returns
    -------
    (H, W) float64 array
        Ridge orientation in ``[0, pi)``, radians (image coordinates, clockwise).
    """
    if kind == "arch":
        theta = arch_field(shape, centre, size, rng)
    else:
        theta = zero_pole_field(shape, sing)
        top = float(sing.cores[:, 1].min()) - 20.0
        theta += dome_term(shape, float(sing.cores[:, 0].mean()), top, 0.35 * size[0],
                           rng.uniform(0.15, 0.45))
    # Real ridge flow is never as regular as a formula.
    theta += smooth_random_field(shape, 0.06, 160.0, rng)
    return np.mod(theta, np.pi)
