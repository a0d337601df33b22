"""Embeddings: one L2-normalised vector per aligned face, ready for inner-product search.

- SFace (OpenCV Zoo, 128-d) on the 112 x 112 crop of :mod:`.alignment`.
- dlib's ResNet descriptor (128-d) on dlib's own 150 x 150 chip, cut around dlib's
  5-point landmarks found inside the detector's box.

``flip=True`` also embeds the mirror image and averages the two (test-time
augmentation): the mean of a face and its mirror is less sensitive to which half of
the face the light or the pose favoured.  Cosine similarity of two unit vectors is
their inner product, so FAISS ``IndexFlatIP`` searches these directly.
"""

from __future__ import annotations

import importlib.resources
import json
from functools import lru_cache

import numpy as np

from .detection import Face
from .models import dlib_models, model_lock, sface_recognizer


def l2_normalise(v: np.ndarray) -> np.ndarray:
    """``v / |v|`` as ``float32`` (a zero vector stays zero)."""
    v = np.asarray(v, dtype=np.float64).ravel()
    n = np.linalg.norm(v)
    return (v / n if n > 0 else v).astype(np.float32)


@lru_cache(maxsize=None)
def embedding_means() -> dict[str, np.ndarray]:
    """Mean embedding of each model on a face set (``embedding_means.json``), by key.

    Keys: ``sface`` (one pass), ``sface_flip``, ``dlib_flip``.  See :func:`centre`.
    """
    text = importlib.resources.files(__package__).joinpath("embedding_means.json").read_text()
    d = json.loads(text)
    return {k: np.asarray(v, dtype=np.float64) for k, v in d["means"].items()}


def centre(v: np.ndarray, mean: np.ndarray, weight: float = 1.0) -> np.ndarray:
    """``v - weight * mean``, L2-normalised.

    Every face embedding shares a common component (the mean of SFace's unit vectors has
    length ~0.3): it adds the same amount to every score, genuine or impostor, and so narrows
    the gap between them.  Removing it spreads impostor scores around 0; on lfw_dev the EER
    fell from 0.55 % to 0.46 % (and by as much with a mean fitted on half the identities and
    measured on the other half: benchmarks/README.md).  ``weight`` below 1 removes only part
    of it: the mean is LFW's, and on the tightly cropped gray ORL faces full removal cost
    a genuine pair (see ``SFACE_CENTRE_WEIGHT`` in :mod:`.pipeline`).
    """
    return l2_normalise(np.asarray(v, dtype=np.float64) - weight * mean)


def sface_embedding(crop: np.ndarray, *, flip: bool = True) -> np.ndarray:
    """SFace embedding of a canonical crop.

    Parameters
    ----------
    crop : (112, 112, 3) uint8 array
        BGR crop from :func:`matcher.face.alignment.align_face`.
    flip : bool
        Average with the embedding of the mirrored crop.

    Returns
    -------
    (128,) float32 array, unit length.
    """
    rec = sface_recognizer()
    with model_lock():
        v = rec.feature(crop).ravel().astype(np.float64)
        if flip:
            v = v / np.linalg.norm(v) + _unit(rec.feature(np.ascontiguousarray(crop[:, ::-1])).ravel())
    return l2_normalise(v)


def _unit(v: np.ndarray) -> np.ndarray:
    v = v.astype(np.float64)
    return v / np.linalg.norm(v)


def dlib_chip(image: np.ndarray, face: Face) -> np.ndarray:
    """dlib's canonical 150 x 150 RGB chip (padding 0.25) for a detected face.

    dlib's 5-point predictor is run inside the detector's box; its landmarks (eye
    corners, nose base) are the ones dlib's descriptor was trained with.
    """
    shape_predictor, _ = dlib_models()  # first: says which extra to install when dlib is absent
    import dlib
    rgb = np.ascontiguousarray(image[:, :, ::-1])
    x, y, w, h = face.box
    rect = dlib.rectangle(int(round(x)), int(round(y)), int(round(x + w)), int(round(y + h)))
    with model_lock():
        shape = shape_predictor(rgb, rect)
    return dlib.get_face_chip(rgb, shape, 150, 0.25)


def dlib_embedding(image: np.ndarray, face: Face, *, flip: bool = True) -> np.ndarray:
    """dlib ResNet descriptor of a detected face.

    Parameters
    ----------
    image : (H, W, 3) uint8 array
        BGR pixels the face was found in.
    face : Face
    flip : bool
        Average with the descriptor of the mirrored chip.

    Returns
    -------
    (128,) float32 array, unit length (dlib's Euclidean distance then ranks pairs as
    cosine similarity does).
    """
    _, resnet = dlib_models()
    chip = dlib_chip(image, face)
    with model_lock():  # dlib's network keeps its activations between calls
        v = _unit(np.array(resnet.compute_face_descriptor(chip)))
        if flip:
            v = v + _unit(np.array(resnet.compute_face_descriptor(np.ascontiguousarray(chip[:, ::-1]))))
    return l2_normalise(v)
