"""Alignment: warp a face onto the canonical crop an embedding model was trained on.

A similarity transform (rotation, uniform scale, shift) maps the five detected
landmarks onto the model's reference points in the least-squares sense (Umeyama
1991), the same estimate OpenCV's ``FaceRecognizerSF.alignCrop`` makes.  Unlike
``alignCrop``, the warp replicates edge pixels instead of filling black where the
crop reaches past the image: on tight crops (ORL) the black corners otherwise
become part of the "face" the model sees.
"""

from __future__ import annotations

import cv2
import numpy as np

#: SFace / ArcFace reference landmarks in the 112 x 112 crop, pixels
#: (right eye, left eye, nose tip, right and left mouth corners).
SFACE_REFERENCE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)
SFACE_CROP_SIZE = 112


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform taking ``src`` points onto ``dst``.

    Parameters
    ----------
    src, dst : (n, 2) float arrays
        Corresponding points, pixels.

    Returns
    -------
    (2, 3) float array
        Affine matrix ``M`` with ``dst ~ M @ [x, y, 1]``.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    s0, d0 = src - mu_s, dst - mu_d
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    # reflection guard: a mirrored face must not be "aligned" by flipping it
    fix = np.diag([1.0, np.sign(np.linalg.det(u) * np.linalg.det(vt)) or 1.0])
    rot = u @ fix @ vt
    var_s = (s0 ** 2).sum() / len(src)
    scale = float((sig * np.diag(fix)).sum() / var_s) if var_s > 0 else 1.0
    shift = mu_d - scale * rot @ mu_s
    return np.hstack([scale * rot, shift[:, None]])


def align_face(
    image: np.ndarray, landmarks: np.ndarray, *, reference: np.ndarray = SFACE_REFERENCE,
    size: int = SFACE_CROP_SIZE,
) -> np.ndarray:
    """Canonical ``size x size`` crop of the face whose landmarks are given.

    Parameters
    ----------
    image : (H, W, 3) uint8 array
        BGR pixels the landmarks refer to.
    landmarks : (5, 2) float array
        Pixels, in :data:`matcher.face.detection.LANDMARK_NAMES` order.
    reference : (5, 2) float array
        Where the landmarks go in the crop, pixels.
    size : int
        Side of the square crop, pixels.

    Returns
    -------
    (size, size, 3) uint8 array
    """
    m = similarity_transform(landmarks, reference)
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
