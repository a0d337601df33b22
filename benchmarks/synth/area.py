"""Shape of the fingerprint area (the part of the finger that carries ridges).

SFinGe builds it from four ellipse quarters; a super-ellipse with a flatter bottom
(where the finger meets the first crease or the sensor edge) looks alike and has one
formula.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Area:
    """Fingerprint area: centre ``(x, y)``, half-width, half-heights above/below, pixels."""

    cx: float
    cy: float
    half_width: float
    half_top: float
    half_bottom: float
    exponent: float

    @property
    def size(self) -> tuple[float, float]:
        """Width and height, pixels."""
        return 2 * self.half_width, self.half_top + self.half_bottom


def sample_area(shape: tuple[int, int], rng: np.random.Generator) -> Area:
    """Draw an area that fits a master canvas of ``shape = (H, W)`` pixels."""
    h, w = shape
    half_width = rng.uniform(0.36, 0.44) * w
    half_top = rng.uniform(0.36, 0.44) * h
    half_bottom = rng.uniform(0.42, 0.48) * h
    cy = 0.5 * h + 0.5 * (half_top - half_bottom) + rng.normal(0, 4)
    return Area(0.5 * w + rng.normal(0, 4), cy, half_width, half_top, half_bottom,
                rng.uniform(2.2, 3.2))


def area_mask(shape: tuple[int, int], area: Area, soft: float = 3.0) -> np.ndarray:
    """Soft mask of the area: 1 inside, 0 outside, a ramp of about ``soft`` pixels.

    Returns
    -------
    (H, W) float32 array in ``[0, 1]``
    """
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    dx = np.abs(xs - area.cx) / area.half_width
    half_h = np.where(ys < area.cy, area.half_top, area.half_bottom)
    dy = np.abs(ys - area.cy) / half_h
    radius = (dx**area.exponent + dy**area.exponent) ** (1.0 / area.exponent)
    # (1 - radius) times the mean half-size is roughly the distance to the edge in pixels.
    scale = 0.5 * (area.half_width + half_h)
    return np.clip(0.5 + (1.0 - radius) * scale / (2 * soft), 0, 1).astype(np.float32)
