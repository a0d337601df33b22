"""Stage 0: bring an image to the working resolution of every later stage."""

from __future__ import annotations

import cv2
import numpy as np

#: Resolution every stage works at, in pixels per inch.
WORKING_PPI = 500.0


def rescale_to_working_ppi(image: np.ndarray, ppi: float) -> np.ndarray:
    """Resample a gray image captured at ``ppi`` to :data:`WORKING_PPI`.

    Parameters
    ----------
    image : (H, W) uint8 array
    ppi : float
        Capture resolution, pixels per inch (e.g. 569 for FVC2002 DB2).

    Returns
    -------
    (H', W') uint8 array at 500 ppi; the input itself when ``ppi`` is 500.
    """
    if ppi <= 0:
        raise ValueError(f"ppi must be positive, got {ppi}")
    scale = WORKING_PPI / float(ppi)
    if abs(scale - 1.0) < 1e-3:
        return image
    h, w = image.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(image, size, interpolation=interp)
