"""Wires the extraction stages; every intermediate can be handed back for inspection.

Two modes share the first stages (image bytes -> 500 ppi gray -> orientation field ->
foreground mask) and the quality estimate:

- ``accurate`` (the default): the minutiae network's maps -> minutiae
  (:mod:`.network`, :mod:`.learned_minutiae`);
- ``fast``: block spectra -> ridge frequency -> enhanced image -> binary ridges ->
  skeleton -> minutiae (the classical chain, several times cheaper, for bulk work).

Templates of the two modes are comparable, but each mode has its own score
calibration (:mod:`.calibration`): enrol a gallery and search it in the same mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import FailureToEnrol
from ..imageio import decode_image
from .enhancement import enhance
from .frequency import ridge_frequency
from .learned_minutiae import detect_learned_minutiae
from .minutiae import detect_minutiae
from .network import minutia_maps
from .orientation import OrientationField, orientation_field
from .quality import image_quality, nfiq2_score
from .resolution import WORKING_PPI, rescale_to_working_ppi
from .segmentation import foreground_mask
from .skeleton import binarize, ridge_skeleton
from .stft import block_spectra
from .template import Template, block_mask

#: Fewest minutiae a usable print yields.
MIN_MINUTIAE = 4
#: Smallest print area, in pixels at 500 ppi (about 5 x 5 mm).
MIN_FOREGROUND_PX = 100 * 100
#: Image kept around the print's bounding box for the minutiae network, pixels at 500 ppi:
#: a few ridge periods of context for minutiae near the edge of the print.
NETWORK_CONTEXT_PX = 32
#: Extraction modes; the first is the default.
MODES = ("accurate", "fast")


@dataclass(frozen=True)
class Extraction:
    """Every representation the pipeline produced, for debugging and for examiners."""

    image: np.ndarray
    """(H, W) uint8 at 500 ppi."""
    orientation: OrientationField
    mask: np.ndarray
    """(H, W) bool foreground."""
    template: Template
    mode: str
    """``accurate`` or ``fast``: which of the stages below ran (the others are None)."""
    maps: np.ndarray | None = None
    """accurate: (H, W, 4) float32 network maps (see :func:`.network.minutia_maps`)."""
    block_frequency: np.ndarray | None = None
    """fast: (by, bx) ridge frequency, cycles per pixel, one value per STFT block."""
    enhanced: np.ndarray | None = None
    """fast: (H, W) float32, negative on ridges."""
    ridges: np.ndarray | None = None
    """fast: (H, W) bool binary ridges."""
    skeleton: np.ndarray | None = None
    """fast: (H, W) bool."""


def _at_blocks(a: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    return a[np.ix_(np.clip(rows, 0, a.shape[0] - 1), np.clip(cols, 0, a.shape[1] - 1))]


def run_pipeline(image: np.ndarray, ppi: float = WORKING_PPI, quality: str = "estimate",
                 mode: str = "accurate") -> Extraction:
    """Run every stage on a gray image and keep all intermediates.

    Parameters
    ----------
    image : (H, W) uint8 gray image
    ppi : float
        Capture resolution; the image is rescaled to 500 ppi first.
    quality : {"estimate", "nfiq2"}
        Image quality: the fast built-in estimate, or NIST NFIQ 2 through ``nbis-py``
        (about 45 ms more; falls back to the estimate for images NFIQ 2 refuses).
    mode : {"accurate", "fast"}
        Minutiae from the network (default) or from the classical skeleton chain.

    Raises
    ------
    FailureToEnrol
        When the image holds no usable print (blank, too small an area, too few minutiae).
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if quality not in ("estimate", "nfiq2"):
        raise ValueError(f"quality must be 'estimate' or 'nfiq2', got {quality!r}")
    img = rescale_to_working_ppi(image, ppi)
    field = orientation_field(img)
    mask = foreground_mask(field.energy, field.coherence)
    area = int(mask.sum())
    if area < MIN_FOREGROUND_PX:
        raise FailureToEnrol(
            f"no fingerprint found: print area is {area} pixels at 500 ppi, "
            f"at least {MIN_FOREGROUND_PX} are needed", quality=0)
    smooth_coh = cv2.GaussianBlur(field.coherence, (0, 0), 6)
    if mode == "accurate":
        maps = _maps_over_print(img, mask)
        minutiae = detect_learned_minutiae(maps, mask)
        stages = {"maps": maps}
    else:
        stages = _classical_chain(img, field, mask, smooth_coh)
        minutiae = stages.pop("minutiae")
    score = image_quality(smooth_coh, mask)
    if quality == "nfiq2":
        nfiq2 = nfiq2_score(img)
        score = score if nfiq2 is None else nfiq2
    if len(minutiae) < MIN_MINUTIAE:
        raise FailureToEnrol(f"only {len(minutiae)} minutiae found; at least {MIN_MINUTIAE} are needed",
                             quality=score)
    template = Template(minutiae=minutiae, width=img.shape[1], height=img.shape[0],
                        quality=score, mask=block_mask(mask), extractor=mode)
    return Extraction(img, field, mask, template, mode, **stages)


def _maps_over_print(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The network's maps, computed over the print's bounding box plus :data:`NETWORK_CONTEXT_PX`
    (the network's cost grows with its input; background far from the print holds no minutiae).
    Outside the box the maps are zero."""
    rows, cols = np.nonzero(mask)
    h, w = mask.shape
    y0, y1 = max(0, rows.min() - NETWORK_CONTEXT_PX), min(h, rows.max() + 1 + NETWORK_CONTEXT_PX)
    x0, x1 = max(0, cols.min() - NETWORK_CONTEXT_PX), min(w, cols.max() + 1 + NETWORK_CONTEXT_PX)
    if (y0, y1, x0, x1) == (0, h, 0, w):
        return minutia_maps(img)
    maps = np.zeros((h, w, 4), np.float32)
    maps[y0:y1, x0:x1] = minutia_maps(np.ascontiguousarray(img[y0:y1, x0:x1]))
    return maps


def _classical_chain(img: np.ndarray, field: OrientationField, mask: np.ndarray, smooth_coh: np.ndarray) -> dict:
    """The fast mode's stages: spectra, frequency, enhancement, skeleton, minutiae."""
    spectra = block_spectra(img)
    rows, cols = spectra.block_centers()
    normal = np.mod(_at_blocks(field.theta, rows, cols) + np.pi / 2, np.pi)
    coherence = _at_blocks(smooth_coh, rows, cols)
    weight = _at_blocks(mask.astype(np.float32), rows, cols) * coherence
    frequency = ridge_frequency(spectra, normal, weight)
    enhanced = enhance(spectra, normal, frequency, coherence)
    ridges = binarize(enhanced, mask)
    skeleton = ridge_skeleton(ridges)
    fg_freq = frequency[weight > 0.2]
    period = float(1.0 / np.median(fg_freq)) if fg_freq.size else 9.0
    minutiae = detect_minutiae(skeleton, mask, field.theta, smooth_coh, ridge_period=period)
    return {"block_frequency": frequency, "enhanced": enhanced, "ridges": ridges, "skeleton": skeleton,
            "minutiae": minutiae}


def extract(data: bytes | np.ndarray, ppi: float = WORKING_PPI, quality: str = "estimate",
            mode: str = "accurate") -> Template:
    """Extract a fingerprint template from encoded image bytes or a gray array.

    Parameters
    ----------
    data : bytes or (H, W) uint8 array
        TIFF, PNG, BMP, PGM or JPEG bytes (format sniffed from the bytes), or pixels.
    ppi : float
        Capture resolution in pixels per inch (FVC2002 DB2: 569).
    quality : {"estimate", "nfiq2"}
        How ``Template.quality`` is measured (see :func:`run_pipeline`).
    mode : {"accurate", "fast"}
        Network minutiae (default) or the classical chain (see :func:`run_pipeline`).

    Raises
    ------
    matcher.errors.ImageError
        Bytes that are not a readable image (empty, truncated, text, too large).
    matcher.errors.FailureToEnrol
        An image without a usable print (for example all white).
    """
    if isinstance(data, np.ndarray):
        if data.ndim != 2 or data.dtype != np.uint8:
            raise ValueError(f"expected a (H, W) uint8 array, got {data.shape} {data.dtype}")
        image = data
    else:
        image = decode_image(bytes(data)).pixels
    return run_pipeline(image, ppi, quality, mode).template
