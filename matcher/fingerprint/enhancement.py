"""Stage 4: contextual enhancement in the frequency domain.

Each block's spectrum is multiplied by a filter tuned to that block: a radial
band-pass around the local ridge frequency and an angular band-pass around the
local ridge normal, whose width grows where the orientation is uncertain.  The
result keeps the ridge wave and removes noise, scars and pores.  Output is a
float image whose sign separates ridges (negative: dark) from valleys.
"""

from __future__ import annotations

import numpy as np

from .stft import ANGLE, RADIUS, BlockSpectra, overlap_add


def enhance(spectra: BlockSpectra, block_normal: np.ndarray, block_frequency: np.ndarray,
            block_coherence: np.ndarray, radial_bandwidth: float = 0.4,
            min_angular_sigma: float = np.pi / 14, max_angular_sigma: float = np.pi / 8) -> np.ndarray:
    """Filter every block towards a clean ridge wave.

    Parameters
    ----------
    spectra : BlockSpectra
    block_normal : (by, bx) float, ridge-normal angle, radians in [0, pi)
    block_frequency : (by, bx) float, cycles per pixel
    block_coherence : (by, bx) float in [0, 1]
    radial_bandwidth : float
        Standard deviation of the radial Gaussian, as a fraction of the block frequency.
    min_angular_sigma, max_angular_sigma : float
        Angular standard deviation (radians) at coherence 1 and 0.

    Returns
    -------
    (H, W) float32 image: negative on ridges, positive in valleys.
    """
    f0 = block_frequency[..., None, None]
    radial = np.exp(-((RADIUS[None, None] - f0) ** 2) / (2 * (radial_bandwidth * f0) ** 2))
    d = np.abs(ANGLE[None, None] - block_normal[..., None, None])
    d = np.minimum(d, np.pi - d)
    sigma = max_angular_sigma - (max_angular_sigma - min_angular_sigma) * np.clip(block_coherence, 0, 1)
    angular = np.exp(-(d ** 2) / (2 * sigma[..., None, None] ** 2))
    filtered = spectra.spectra * (radial * angular).astype(np.float32)
    return overlap_add(filtered, spectra.shape)
