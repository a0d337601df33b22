"""Image quality 0-100 on the NFIQ 2 scale (higher is better).

A fast estimate from what extraction already computed: how clear and parallel
the ridges are (orientation coherence over the foreground) and how large the
print is.  It is not NFIQ 2 (whose features and trained model it lacks); it only
lands on the same 0-100 scale, blank = 0 and a clean full print near 90.
"""

from __future__ import annotations

import numpy as np

#: Foreground area (pixels at 500 ppi) at and above which size no longer limits quality.
FULL_AREA_PX = 250 * 250


def image_quality(coherence: np.ndarray, mask: np.ndarray) -> int:
    """Quality score 0-100.

    Parameters
    ----------
    coherence : (H, W) float in [0, 1], smoothed orientation coherence
    mask : (H, W) bool foreground

    Returns
    -------
    int in [0, 100]; 0 when there is no foreground.
    """
    area = int(mask.sum())
    if area == 0:
        return 0
    clarity = float(np.mean(coherence[mask]))          # ~0.3 smudged, ~0.7 clean
    size = min(1.0, area / FULL_AREA_PX)
    score = 100.0 * np.clip((clarity - 0.15) / 0.6, 0, 1) * np.sqrt(size)
    return int(round(float(np.clip(score, 0, 100))))
