"""Image -> face template: decode, detect, choose a face, align, embed, rate.

Two modes, each a fixed pipeline with its own model id and calibration:

``"sface"`` (default)
    YuNet detection, SFace embedding of the canonical crop, centred
    (:func:`matcher.face.embedding.centre`).  One network pass: ~25 ms a face on one core.
``"fusion"``
    SFace of the crop and of its mirror image, centred, concatenated with dlib's ResNet
    descriptor (also with its mirror, centred), each scaled by the square root of its
    weight, so that the inner product of two fused vectors is the weighted mean of the
    two cosines.  About 6x slower (four network passes, dlib's is the larger); lower
    EER on lfw_dev (0.33 % against 0.45 %) and ORL, not better everywhere
    (``benchmarks/README.md``, section Face).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import LocardError
from ..imageio import decode_image
from .alignment import align_face
from .detection import SCORE_THRESHOLD, Face, as_bgr, detect_faces, primary_face_index
from .embedding import centre, dlib_embedding, embedding_means, l2_normalise, sface_embedding
from .quality import QualityFactors, quality_factors
from .template import FaceTemplate

#: Mode name -> model id stored in templates and calibration tables.
MODES = {
    "sface": "sface-2021dec-int8bq+centred0.6/2",
    "fusion": "sface-2021dec-int8bq+dlib-resnet-v1+flip+centred/1",
}
DEFAULT_MODE = "sface"
#: Weight of SFace's cosine in the fused score (dlib's gets the rest); chosen on lfw_dev.
FUSION_SFACE_WEIGHT = 0.6
#: Share of the mean embedding removed in the default mode.  Chosen on lfw_dev and att_orl
#: (measured, EER %): weight 1 gives 0.45 / 1.06, 0.6 gives 0.49 / 1.00, 0 gives 0.55 / 0.94;
#: 0.6 keeps lfw_dev under 0.5 % and ORL level with the plain YuNet+SFace pipeline.
SFACE_CENTRE_WEIGHT = 0.6


class FaceIndexError(LocardError, IndexError):
    """A face index was asked for that the image does not have."""


@dataclass(frozen=True)
class FaceResult:
    """What :func:`extract` found in one image.

    Attributes
    ----------
    faces : tuple of Face
        Every face found, largest first (pixel coordinates of the upright image).
    face_index : int or None
        Index in :attr:`faces` of the face that was embedded; ``None`` when none was.
    template : FaceTemplate or None
        Embedding, model id and quality of that face.
    quality_factors : QualityFactors or None
    message : str
        ``"ok"`` or why nothing was embedded (``"no face found"``).
    """

    faces: tuple[Face, ...]
    face_index: int | None
    template: FaceTemplate | None
    quality_factors: QualityFactors | None = None
    message: str = "ok"
    image_shape: tuple[int, ...] = field(default=())

    @property
    def found(self) -> bool:
        """Whether a face was embedded."""
        return self.template is not None

    @property
    def faces_found(self) -> int:
        return len(self.faces)

    @property
    def face(self) -> Face | None:
        """The embedded face."""
        return None if self.face_index is None else self.faces[self.face_index]

    @property
    def embedding(self) -> np.ndarray | None:
        """Unit-length ``float32`` vector of the embedded face."""
        return None if self.template is None else self.template.embedding

    @property
    def quality(self) -> int:
        """0-100; 0 when no face was embedded."""
        return 0 if self.template is None else self.template.quality


def embed_face(bgr: np.ndarray, face: Face, *, mode: str = DEFAULT_MODE, centred: bool = True
               ) -> tuple[np.ndarray, QualityFactors]:
    """Embedding and quality factors of one detected face.

    Parameters
    ----------
    bgr : (H, W, 3) uint8 array
    face : Face
        Found in ``bgr``.
    mode : str
        A key of :data:`MODES`.
    centred : bool
        Subtract the shipped mean embeddings (false only to fit new means).

    Returns
    -------
    (d,) float32 unit vector, QualityFactors
        ``d`` is 128 for ``"sface"``, 256 for ``"fusion"``.
    """
    if mode not in MODES:
        raise ValueError(f"unknown face mode {mode!r}; choose one of {', '.join(MODES)}")
    crop = align_face(bgr, face.landmarks)
    means = embedding_means() if centred else {}

    def maybe_centre(v, key):
        return centre(v, means[key], SFACE_CENTRE_WEIGHT if key == "sface" else 1.0) if centred else v

    if mode == "sface":
        vec = maybe_centre(sface_embedding(crop, flip=False), "sface")
    else:
        w = FUSION_SFACE_WEIGHT
        s = maybe_centre(sface_embedding(crop, flip=True), "sface_flip")
        d = maybe_centre(dlib_embedding(bgr, face, flip=True), "dlib_flip")
        vec = l2_normalise(np.concatenate([np.sqrt(w) * s, np.sqrt(1 - w) * d]))
    return vec, quality_factors(face, crop)


def extract(
    data: bytes | np.ndarray,
    *,
    face: str | int = "primary",
    mode: str = DEFAULT_MODE,
    score_threshold: float = SCORE_THRESHOLD,
) -> FaceResult:
    """Find the faces in an image and embed one of them.

    Parameters
    ----------
    data : bytes or ndarray
        Encoded image (JPEG, PNG, PGM, GIF, BMP, WebP, TIFF; the format is read from the
        bytes, EXIF orientation applied) or ``uint8`` pixels, ``(H, W)`` gray or
        ``(H, W, 3)`` BGR.
    face : "primary", "largest" or int
        Which face to embed: the primary one (the largest, unless a face nearer the image
        centre is not much smaller: :func:`matcher.face.detection.primary_face_index`), the
        largest, or an index into the faces sorted largest first.
    mode : str
        ``"sface"`` (default) or ``"fusion"`` (see the module docstring).
    score_threshold : float
        Detector confidence (0-1) a face needs.

    Returns
    -------
    FaceResult
        With ``found`` false and ``message`` ``"no face found"`` when there is no face
        (not an exception).

    Raises
    ------
    matcher.errors.ImageError
        Empty, corrupt, unsupported, too large (decompression-bomb guard) or too small input.
    FaceIndexError
        ``face`` is an index the image has no face for.
    """
    if mode not in MODES:
        raise ValueError(f"unknown face mode {mode!r}; choose one of {', '.join(MODES)}")
    if isinstance(data, np.ndarray):
        bgr = as_bgr(data)
    else:
        bgr = decode_image(bytes(data), color=True).pixels
    faces = tuple(detect_faces(bgr, score_threshold=score_threshold))
    if not faces:
        return FaceResult(faces=(), face_index=None, template=None, message="no face found", image_shape=bgr.shape)
    if face == "primary":
        index = primary_face_index(list(faces), bgr.shape)
    elif face == "largest":
        index = 0
    elif isinstance(face, (int, np.integer)) and not isinstance(face, bool):
        index = int(face)
        if not 0 <= index < len(faces):
            raise FaceIndexError(f"face {index} was asked for; the image has {len(faces)} face(s), numbered from 0")
    else:
        raise ValueError(f"face must be 'primary', 'largest' or an index, got {face!r}")
    vec, factors = embed_face(bgr, faces[index], mode=mode)
    template = FaceTemplate(model=MODES[mode], embedding=vec, quality=factors.score())
    return FaceResult(faces=faces, face_index=index, template=template, quality_factors=factors,
                      image_shape=bgr.shape)
