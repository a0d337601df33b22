"""Stage 5: binary ridges and their one-pixel-wide skeleton."""

from __future__ import annotations

import numpy as np
from skimage.morphology import remove_small_holes, remove_small_objects, skeletonize


def binarize(enhanced: np.ndarray, mask: np.ndarray, min_area_px: int = 30) -> np.ndarray:
    """Ridge pixels of the enhanced image inside the print.

    Parameters
    ----------
    enhanced : (H, W) float32, negative on ridges (see :func:`~matcher.fingerprint.enhancement.enhance`)
    mask : (H, W) bool foreground
    min_area_px : int
        Ridge fragments and valley holes smaller than this (pixels) are noise.

    Returns
    -------
    (H, W) bool, True on ridges.
    """
    ridges = (enhanced < 0) & mask
    ridges = remove_small_objects(ridges, max_size=min_area_px)
    ridges = remove_small_holes(ridges, max_size=min_area_px) & mask
    return ridges


def ridge_skeleton(ridges: np.ndarray) -> np.ndarray:
    """Thin binary ridges to 8-connected curves one pixel wide.

    Returns
    -------
    (H, W) bool skeleton.
    """
    return skeletonize(ridges)
