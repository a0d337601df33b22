"""Face detection: every face in an image, with its box, five landmarks and confidence.

YuNet (OpenCV Zoo) finds faces from about 10 px to the whole frame.  Two things it
does badly are handled here:

- a face that fills the frame with no background around it (ORL-style tight
  crops): YuNet's anchors need some context, so when nothing is found the image is
  framed in a border of edge-replicated pixels and searched again;
- very large photos: detection cost grows with the pixel count, so the search runs on
  a copy whose longer side is at most :data:`MAX_DETECTION_SIDE`, and boxes are scaled
  back to the input's pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .models import model_lock, yunet_detector

#: Longer side, in pixels, of the copy that detection runs on.
MAX_DETECTION_SIDE = 960
#: Default detector confidence a face needs (YuNet's zoo default 0.9 misses faces on LFW).
SCORE_THRESHOLD = 0.6
#: Border added on every side, as a share of the longer image side, for the second search.
BORDER_FRACTION = 0.3
#: Smallest box area, as a share of the image area, of a face the second search may return.
#: That search exists for faces filling the frame (ORL boxes cover 0.46-0.87 of the image);
#: smaller finds there are mostly texture the border made face-like (seen on a coffee cup).
FRAME_FILLING_AREA = 0.4

LANDMARK_NAMES = ("right_eye", "left_eye", "nose_tip", "right_mouth", "left_mouth")
"""Landmark order (the subject's right eye is on the viewer's left)."""


@dataclass(frozen=True)
class Face:
    """One detected face, in the pixel coordinates of the image it was found in.

    Attributes
    ----------
    box : (4,) float array
        ``x, y, width, height`` in pixels.
    landmarks : (5, 2) float array
        ``x, y`` in pixels, in :data:`LANDMARK_NAMES` order.
    score : float
        Detector confidence, 0-1.
    """

    box: np.ndarray
    landmarks: np.ndarray
    score: float

    @property
    def area(self) -> float:
        """Box area in square pixels."""
        return float(self.box[2] * self.box[3])

    @property
    def eye_distance(self) -> float:
        """Distance between the eye centres, in pixels."""
        return float(np.linalg.norm(self.landmarks[0] - self.landmarks[1]))

    def to_yunet_row(self) -> np.ndarray:
        """The ``(15,) float32`` row OpenCV's ``FaceRecognizerSF.alignCrop`` expects."""
        return np.concatenate([self.box, self.landmarks.ravel(), [self.score]]).astype(np.float32)

    def shifted(self, dx: float, dy: float, scale: float = 1.0) -> "Face":
        """The same face with coordinates ``(p * scale) + (dx, dy)``."""
        off = np.array([dx, dy])
        box = np.concatenate([self.box[:2] * scale + off, self.box[2:] * scale])
        return Face(box=box, landmarks=self.landmarks * scale + off, score=self.score)


def as_bgr(image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` BGR ``uint8`` view of a gray or BGR image (the models take 3 channels)."""
    if image.dtype != np.uint8:
        raise ValueError(f"expected a uint8 image, got {image.dtype}")
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    raise ValueError(f"expected (H, W) or (H, W, 3) pixels, got shape {image.shape}")


def _run_yunet(bgr: np.ndarray, score_threshold: float) -> list[Face]:
    h, w = bgr.shape[:2]
    scale = min(1.0, MAX_DETECTION_SIDE / max(h, w))
    small = bgr if scale == 1.0 else cv2.resize(bgr, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    det = yunet_detector()
    with model_lock():
        det.setInputSize((small.shape[1], small.shape[0]))
        _, rows = det.detect(small)
    if rows is None:
        return []
    faces = [
        Face(box=r[:4].astype(np.float64), landmarks=r[4:14].astype(np.float64).reshape(5, 2), score=float(r[14]))
        for r in rows if r[14] >= score_threshold
    ]
    return [f.shifted(0.0, 0.0, 1.0 / scale) for f in faces] if scale != 1.0 else faces


def detect_faces(
    image: np.ndarray, *, score_threshold: float = SCORE_THRESHOLD, border_fraction: float = BORDER_FRACTION,
) -> list[Face]:
    """Find every face, largest first.

    Parameters
    ----------
    image : (H, W) or (H, W, 3) uint8 array
        Gray or BGR pixels.
    score_threshold : float
        Smallest detector confidence (0-1) kept.
    border_fraction : float
        When nothing is found, search again inside a replicated border this share of the
        longer side wide, for a face filling the frame (0 disables the second search).

    Returns
    -------
    list of Face
        Coordinates in ``image``'s pixels (landmarks may lie outside it when the face was
        cut by the frame), sorted by decreasing box area.
    """
    bgr = as_bgr(image)
    faces = _run_yunet(bgr, score_threshold)
    if not faces and border_fraction > 0:
        pad = int(round(border_fraction * max(bgr.shape[:2])))
        framed = cv2.copyMakeBorder(bgr, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        area = bgr.shape[0] * bgr.shape[1]
        faces = [f.shifted(-pad, -pad) for f in _run_yunet(framed, score_threshold)
                 if f.area >= FRAME_FILLING_AREA * area]
    return sorted(faces, key=lambda f: -f.area)


#: Spread, as a share of the image diagonal, of the centre weighting of :func:`primary_face_index`.
CENTRE_SPREAD = 0.2


def primary_face_index(faces: list[Face], image_shape: tuple[int, ...], spread: float = CENTRE_SPREAD) -> int:
    """Index of the face a portrait or press photo is about.

    The largest face wins unless another face, nearer the middle of the frame, is not much
    smaller: each box area is weighted by ``exp(-(d / spread)^2)``, ``d`` the distance of the
    box centre from the image centre in image diagonals.  On LFW a bystander nearer the camera
    at the edge of the photo is otherwise picked over the centred subject (3 of 1,490 lfw_dev
    images; benchmarks/README.md).

    Parameters
    ----------
    faces : list of Face
        Non-empty.
    image_shape : tuple
        ``(H, W[, C])`` of the image the faces were found in.
    """
    h, w = image_shape[:2]
    diag = float(np.hypot(w, h))
    weights = []
    for f in faces:
        cx, cy = f.box[0] + f.box[2] / 2, f.box[1] + f.box[3] / 2
        d = float(np.hypot(cx - w / 2, cy - h / 2)) / diag
        weights.append(f.area * np.exp(-((d / spread) ** 2)))
    return int(np.argmax(weights))
