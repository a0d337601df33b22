"""Face quality 0-100 from detector confidence, face size, sharpness and pose.

Each factor is mapped to 0-1 by a clipped linear ramp between a level where the
embedding is known to suffer and one past which it stops improving; the score is
their weighted mean.  The ramps were set from the face sets in ``../shared/data``
(see ``benchmarks/README.md``): they are a ranking aid for enrolment ("retake this
photo"), not a calibrated probability.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

from .detection import Face

#: Weight of each factor in the score.
#: Detector confidence carries most: of the four it alone tracked genuine scores on the face
#: sets (Spearman 0.39 on ORL, 0.09 on LFW, where all images are good captures).
WEIGHTS = {"confidence": 0.4, "size": 0.2, "sharpness": 0.2, "pose": 0.2}


@dataclass(frozen=True)
class QualityFactors:
    """Each factor 0-1 (1 = no harm to recognition expected) and the raw measures."""

    confidence: float
    size: float
    sharpness: float
    pose: float
    eye_distance_px: float
    laplacian_variance: float
    yaw: float
    """Nose offset from the eye midline, in eye distances (0 = frontal, ~0.5 = profile)."""
    roll_deg: float

    def score(self) -> int:
        """Weighted mean of the factors, 0-100."""
        d = asdict(self)
        return int(round(100 * sum(w * d[k] for k, w in WEIGHTS.items())))


def _ramp(x: float, lo: float, hi: float) -> float:
    return float(np.clip((x - lo) / (hi - lo), 0.0, 1.0))


def sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian of the canonical crop (gray levels squared).

    Measured on the aligned crop, so faces of every size are compared at one scale.
    """
    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    return float(cv2.Laplacian(gray, cv2.CV_64F).var())


def pose_angles(landmarks: np.ndarray) -> tuple[float, float]:
    """``(yaw, roll_deg)`` estimated from the five landmarks.

    Yaw is the horizontal offset of the nose tip from the midpoint of the eyes, in the
    eye-line frame, divided by the eye distance; roll is the eye line's angle.
    """
    re, le, nose = landmarks[0], landmarks[1], landmarks[2]
    axis = le - re
    dist = float(np.linalg.norm(axis))
    if dist == 0:
        return 1.0, 0.0
    u = axis / dist
    yaw = float(np.dot(nose - (re + le) / 2, u) / dist)
    roll = float(np.degrees(np.arctan2(axis[1], axis[0])))
    return yaw, roll


def quality_factors(face: Face, crop: np.ndarray) -> QualityFactors:
    """Quality factors of a detected face and its canonical crop."""
    ied = face.eye_distance
    lap = sharpness(crop)
    yaw, roll = pose_angles(face.landmarks)
    return QualityFactors(
        # YuNet scores real faces 0.85-0.95; below 0.7 a find is often not a usable face
        confidence=_ramp(face.score, 0.7, 0.95),
        # SFace's crop puts the eyes 35 px apart: below ~12 px the crop is mostly upsampling.
        size=_ramp(ied, 12.0, 35.0),
        # log scale: blur lowers the variance by orders of magnitude
        # (LFW crops: 57-333 at the 5th-95th percentiles; a Gaussian blur of sigma 3 px gives ~7)
        sharpness=_ramp(np.log10(lap + 1.0), 1.3, 2.3),
        # yaw 0.45 is about a half profile, where one eye is hidden
        pose=_ramp(-abs(yaw), -0.45, -0.15) * _ramp(-abs(roll), -45.0, -20.0),
        eye_distance_px=ied,
        laplacian_variance=lap,
        yaw=yaw,
        roll_deg=roll,
    )


def face_quality(face: Face, crop: np.ndarray) -> int:
    """Quality 0-100 of a detected face (see :class:`QualityFactors`)."""
    return quality_factors(face, crop).score()
