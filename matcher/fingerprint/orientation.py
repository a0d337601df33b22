"""Stage 2: ridge orientation field and its coherence, from image gradients.

Orientation is the local ridge direction in radians, in ``[0, pi)``, measured from
the image x axis towards the image y axis (rows grow downwards).  Computed the
classic way (Kass & Witkin; Bazen & Gerez): averaged squared gradients, then a
second smoothing of the doubled-angle vector field so that noise and small
scars do not flip the field.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class OrientationField:
    """Dense orientation field, one value per pixel."""

    theta: np.ndarray
    """(H, W) float32, ridge orientation in radians in [0, pi)."""
    coherence: np.ndarray
    """(H, W) float32 in [0, 1]: 1 = perfectly parallel ridges, 0 = no dominant direction."""
    energy: np.ndarray
    """(H, W) float32, smoothed gradient energy (gray levels squared), for segmentation."""


def orientation_field(image: np.ndarray, gradient_sigma: float = 1.0, block_sigma: float = 7.0,
                      smooth_sigma: float = 10.0) -> OrientationField:
    """Estimate the ridge orientation at every pixel.

    Parameters
    ----------
    image : (H, W) uint8 or float32 array, 500 ppi
    gradient_sigma : float
        Pre-smoothing before the Sobel gradients, pixels.
    block_sigma : float
        Gaussian window over which squared gradients are averaged, pixels.
    smooth_sigma : float
        Gaussian smoothing of the doubled-angle vectors, pixels (about one ridge period).

    Returns
    -------
    OrientationField
    """
    img = image.astype(np.float32)
    if gradient_sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), gradient_sigma)
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3)
    gxx = cv2.GaussianBlur(gx * gx, (0, 0), block_sigma)
    gyy = cv2.GaussianBlur(gy * gy, (0, 0), block_sigma)
    gxy = cv2.GaussianBlur(gx * gy, (0, 0), block_sigma)
    c2 = gxx - gyy
    s2 = 2.0 * gxy
    energy = gxx + gyy
    coherence = np.sqrt(c2 * c2 + s2 * s2) / np.maximum(energy, 1e-6)
    # Smooth the doubled-angle field, weighted by how reliable each estimate is.
    c2s = cv2.GaussianBlur(c2, (0, 0), smooth_sigma)
    s2s = cv2.GaussianBlur(s2, (0, 0), smooth_sigma)
    # The gradient is normal to the ridges: ridge orientation = gradient angle + pi/2.
    theta = (0.5 * np.arctan2(s2s, c2s) + np.pi / 2).astype(np.float32)
    theta = np.mod(theta, np.pi).astype(np.float32)
    return OrientationField(theta=theta, coherence=np.clip(coherence, 0, 1).astype(np.float32),
                            energy=energy.astype(np.float32))
