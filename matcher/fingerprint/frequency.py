"""Stage 3: local ridge frequency, read off the block spectra.

Per block, the power-weighted mean radius of the spectrum inside the plausible
ridge band and near the ridge-normal direction, then smoothed across blocks so
that a smudged block borrows its neighbours' value.
"""

from __future__ import annotations

import cv2
import numpy as np

from .stft import ANGLE, RADIUS, BlockSpectra

#: Plausible ridge frequencies at 500 ppi, cycles per pixel (periods 4.5 to 16 pixels).
MIN_FREQUENCY = 1 / 16
MAX_FREQUENCY = 1 / 4.5


def ridge_frequency(spectra: BlockSpectra, block_normal: np.ndarray, block_weight: np.ndarray,
                    smooth_blocks: float = 1.5) -> np.ndarray:
    """Ridge frequency per block.

    Parameters
    ----------
    spectra : BlockSpectra
    block_normal : (by, bx) float array
        Ridge-normal angle per block, radians in [0, pi).
    block_weight : (by, bx) float array
        Reliability per block (0 outside the print); steers the smoothing.
    smooth_blocks : float
        Gaussian smoothing across blocks, in blocks.

    Returns
    -------
    (by, bx) float32, cycles per pixel, within [MIN_FREQUENCY, MAX_FREQUENCY].
    """
    power = np.abs(spectra.spectra) ** 2
    band = (RADIUS >= MIN_FREQUENCY) & (RADIUS <= MAX_FREQUENCY)
    d = np.abs(ANGLE[None, None] - block_normal[..., None, None])
    d = np.minimum(d, np.pi - d)
    sector = (d < np.pi / 6) & band[None, None]
    w = np.where(sector, power, 0.0)
    w = w * w  # squaring favours the spectral peak over the diffuse background
    total = w.sum(axis=(2, 3))
    f = (w * RADIUS[None, None]).sum(axis=(2, 3)) / np.maximum(total, 1e-12)
    default = 1 / 9.0
    f = np.where(total > 0, f, default)
    # Reliability-weighted smoothing across the block grid.
    wt = (block_weight * (total > 0)).astype(np.float32)
    num = cv2.GaussianBlur((f * wt).astype(np.float32), (0, 0), smooth_blocks)
    den = cv2.GaussianBlur(wt, (0, 0), smooth_blocks)
    fs = np.where(den > 1e-6, num / np.maximum(den, 1e-6), default)
    return np.clip(fs, MIN_FREQUENCY, MAX_FREQUENCY).astype(np.float32)
