"""Ridge-period map of a master fingerprint.

Real fingers at 500 ppi show an inter-ridge distance of about 8 to 11 pixels that
drifts slowly across the finger, with wider spacing towards the tip and the flanks.
"""

from __future__ import annotations

import numpy as np

from .orientation import smooth_random_field

#: Range every period map is clipped to, pixels at 500 ppi.
PERIOD_RANGE = (8.0, 11.0)


def period_map(shape: tuple[int, int], centre: tuple[float, float], size: tuple[float, float],
               rng: np.random.Generator) -> np.ndarray:
    """Ridge period at every pixel.

    Parameters
    ----------
    shape : (int, int)
        ``(H, W)`` of the master canvas, pixels.
    centre : (float, float)
        Centre ``(x, y)`` of the fingerprint area, pixels.
    size : (float, float)
        Width and height of the fingerprint area, pixels.
    rng : numpy.random.Generator

    Returns
    -------
    (H, W) float32 array
        Ridge period (distance between ridge centres), pixels, in :data:`PERIOD_RANGE`.
    """
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]].astype(np.float64)
    # The grown pattern settles about half a pixel wider than the filters are tuned to.
    base = rng.uniform(8.2, 9.4)
    # Normalised distance from the centre: ridges spread out towards the edges.
    r2 = ((xs - centre[0]) / (0.5 * size[0])) ** 2 + ((ys - centre[1]) / (0.5 * size[1])) ** 2
    period = base + rng.uniform(0.2, 0.8) * np.clip(r2, 0, 1.5)
    period += smooth_random_field(shape, 0.35, 220.0, rng)
    return np.clip(period, *PERIOD_RANGE).astype(np.float32)
