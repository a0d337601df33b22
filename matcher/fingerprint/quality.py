"""Image quality 0-100 on the NFIQ 2 scale (higher is better).

Two measures:

- :func:`image_quality`, the default: a fast estimate from what extraction already
  computed, how clear and parallel the ridges are (mean orientation coherence over
  the print) and how large the print is, mapped onto the NFIQ 2 scale by a least
  squares fit to real NFIQ 2 scores of 391 images of the five real fingerprint sets
  in ``../shared/data`` (residual 12.8 points RMS, Spearman 0.77).  Not NFIQ 2.
- :func:`nfiq2_score`: NIST NFIQ 2 itself, opt-in because it costs about 45 ms.
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
    clarity = float(np.mean(coherence[mask]))          # ~0.3 smudged, ~0.8 clean
    size = np.sqrt(min(1.0, area / FULL_AREA_PX))
    # fitted to NFIQ 2 (see the module docstring); the interaction term dominates
    score = 32.89 - 176.77 * clarity - 47.86 * size + 272.3 * clarity * size
    return int(round(float(np.clip(score, 0, 100))))


def nfiq2_score(image: np.ndarray) -> int | None:
    """NIST NFIQ 2 score 0-100 of a 500-ppi gray image, through the ``nbis-py`` package.

    The real NFIQ 2 (its features and trained model), at about 45 ms more per image
    than extraction itself, so it is opt-in: ``extract(..., quality="nfiq2")``.
    Measured on the FVC2002 B sets, its Spearman rank correlation with
    :func:`image_quality` is 0.73 (benchmarks/README.md).

    Returns
    -------
    int, or None when NFIQ 2 could not score the image (it refuses some).

    Raises
    ------
    ImportError
        When ``nbis-py`` is not installed (``pip install -e '.[nfiq2]'``).
    """
    import cv2

    try:
        import nbis
    except ImportError as exc:
        raise ImportError("NFIQ 2 needs the nbis-py package: pip install -e '.[nfiq2]'") from exc
    ok, png = cv2.imencode(".png", image)
    settings = nbis.NbisExtractorSettings(min_quality=0.0, get_center=False, check_fingerprint=False,
                                          compute_nfiq2=True, ppi=500)
    try:
        result = nbis.new_nbis_extractor(settings).extract_minutiae(png.tobytes())
    except Exception:  # nbis raises its own error types for images NFIQ 2 refuses
        return None
    return int(round(result.quality().score))
