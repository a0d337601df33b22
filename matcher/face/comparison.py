"""Comparison: cosine similarity of two face embeddings.

Embeddings are unit vectors, so the similarity is their inner product, in
[-1, 1] (higher = more alike) -- the same number a FAISS inner-product index
returns, so 1:1 and 1:N scores share one calibration.
"""

from __future__ import annotations

import numpy as np

from ..errors import TemplateError
from .template import FaceTemplate


def _as_template(x) -> FaceTemplate:
    from .pipeline import FaceResult  # the pipeline imports this module

    if isinstance(x, FaceTemplate):
        return x
    if isinstance(x, FaceResult):
        if x.template is None:
            raise TemplateError(f"cannot compare: {x.message}")
        return x.template
    if isinstance(x, (bytes, bytearray, memoryview)):
        return FaceTemplate.from_bytes(bytes(x))
    raise TypeError(f"expected FaceTemplate, FaceResult or template bytes, got {type(x).__name__}")


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine of the angle between two vectors (0 when either is zero)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise TemplateError(f"embeddings of different lengths: {a.shape[0]} and {b.shape[0]}")
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na > 0 and nb > 0 else 0.0


def compare(a, b) -> float:
    """Similarity of two faces, -1 to 1 (higher = more alike).

    Parameters
    ----------
    a, b : FaceTemplate, FaceResult or template bytes
        Made by the same model (compare :func:`matcher.face.calibration` thresholds
        with the score).

    Raises
    ------
    TemplateError
        Different models, a result with no face, or unreadable template bytes.
    """
    ta, tb = _as_template(a), _as_template(b)
    if ta.model != tb.model:
        raise TemplateError(f"templates from different models cannot be compared: {ta.model!r} vs {tb.model!r}")
    return cosine_similarity(ta.embedding, tb.embedding)
