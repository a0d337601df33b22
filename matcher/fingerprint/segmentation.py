"""Stage 1: separate the fingerprint area (foreground) from the background.

A pixel belongs to the print when the local gradient energy is high *and* the
gradients agree on a direction (ridges), which rejects both flat background and
the isotropic sensor noise of capacitive scanners.  The mask is then cleaned
morphologically and reduced to the main connected area, with holes filled.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy import ndimage


def foreground_mask(energy: np.ndarray, coherence: np.ndarray, *, relative_threshold: float = 0.08,
                    min_coherence: float = 0.15, close_px: int = 15, erode_px: int = 4) -> np.ndarray:
    """Foreground mask from the orientation stage's energy and coherence maps.

    Parameters
    ----------
    energy : (H, W) float32
        Smoothed gradient energy (:class:`~matcher.fingerprint.orientation.OrientationField`).
    coherence : (H, W) float32 in [0, 1]
    relative_threshold : float
        Energy threshold as a fraction of the 95th percentile energy.
    min_coherence : float
        Coherence below which a pixel is not considered ridge area.
    close_px, erode_px : int
        Morphological closing (fills gaps between ridges) and final erosion, pixels.

    Returns
    -------
    (H, W) bool array, True on the print. All False for a blank image.
    """
    ref = float(np.percentile(energy, 95))
    if ref < 4.0:  # gray levels^2: a flat image (all white, all black) has no print at all
        return np.zeros(energy.shape, dtype=bool)
    smooth_coh = cv2.GaussianBlur(coherence, (0, 0), 8)
    fg = (energy > relative_threshold * ref) & (smooth_coh > min_coherence)
    fg = fg.astype(np.uint8)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (close_px, close_px))
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, k)
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, k)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=8)
    if n <= 1:
        return np.zeros(energy.shape, dtype=bool)
    # Keep components that are at least a fifth of the largest (a print can be split by a crease).
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.flatnonzero(areas >= 0.2 * areas.max()) + 1
    mask = np.isin(labels, keep)
    mask = ndimage.binary_fill_holes(mask)
    if erode_px > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * erode_px + 1, 2 * erode_px + 1))
        mask = cv2.erode(mask.astype(np.uint8), k).astype(bool)
    return mask
