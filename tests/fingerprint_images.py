"""Fingerprint-like images the tests make themselves.

Parallel ridges ``cos(2 pi x / period + phase)`` where every listed point adds a
phase vortex ``+-atan2``: a dislocation of the ridge pattern, i.e. one ridge that
ends (or splits) exactly there.  Ground truth for free.
"""

from __future__ import annotations

import numpy as np


def ridge_image(size: tuple[int, int] = (320, 320), period: float = 9.0, angle: float = 0.3,
                points: list[tuple[float, float, int]] | None = None, margin: int = 25,
                noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """uint8 gray image: dark ridges on a light background, white border of ``margin`` px.

    points : list of (x, y, sign); sign +1/-1 selects the vortex direction.
    """
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    u = xx * np.cos(angle) + yy * np.sin(angle)
    phase = 2 * np.pi * u / period
    for x0, y0, sign in points or []:
        phase += sign * np.arctan2(yy - y0, xx - x0)
    img = 128 + 90 * np.cos(phase)
    if noise:
        img += np.random.default_rng(seed).normal(0, noise, img.shape)
    img[:margin] = img[-margin:] = 255
    img[:, :margin] = img[:, -margin:] = 255
    return np.clip(img, 0, 255).astype(np.uint8)


DEFAULT_POINTS = [(90.0, 80.0, 1), (160.0, 95.0, -1), (235.0, 80.0, 1), (100.0, 160.0, -1),
                  (175.0, 165.0, 1), (240.0, 150.0, -1), (95.0, 240.0, 1), (170.0, 235.0, -1),
                  (240.0, 230.0, 1)]
OTHER_POINTS = [(80.0, 120.0, -1), (150.0, 70.0, 1), (230.0, 110.0, -1), (120.0, 190.0, 1),
                (200.0, 180.0, -1), (250.0, 250.0, 1), (90.0, 250.0, -1), (160.0, 250.0, 1)]
