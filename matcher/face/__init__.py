"""Face detection, alignment, embedding, quality and 1:1 comparison.

Public surface (the same shape as :mod:`matcher.fingerprint`)::

    r = extract(data)                    # bytes or uint8 array -> FaceResult
    r.found, r.faces_found, r.face       # "no face found" is a result, not an error
    s = compare(r_a, r_b)                # cosine similarity, -1..1
    s >= calibration().threshold(0.001)  # decide at FMR 0.1 %
    FaceTemplate.from_bytes(r.template.to_bytes())

Stages, one module each: :mod:`.detection` (YuNet), :mod:`.alignment` (similarity
warp to the canonical crop), :mod:`.embedding` (SFace, dlib), :mod:`.quality`,
:mod:`.comparison`, :mod:`.template`, :mod:`.pipeline`; :mod:`.models` locates the
model files inside their packages.
"""

from __future__ import annotations

import importlib.resources
from functools import lru_cache

from ..calibration import Calibration
from .comparison import compare
from .detection import Face, detect_faces
from .pipeline import DEFAULT_MODE, MODES, FaceIndexError, FaceResult, extract
from .template import FaceTemplate

__all__ = [
    "DEFAULT_MODE", "MODES", "Face", "FaceIndexError", "FaceResult", "FaceTemplate",
    "calibration", "compare", "detect_faces", "extract",
]


@lru_cache(maxsize=None)
def calibration(mode: str = DEFAULT_MODE) -> Calibration:
    """Measured impostor-score table of a mode's pipeline: thresholds at target FMRs.

    ``calibration().threshold(0.001)`` is the score at FMR 0.1 %.  The table names the
    model (``Calibration.version`` equals the templates' model id) and the data it was
    measured on (``Calibration.source``).
    """
    if mode not in MODES:
        raise ValueError(f"unknown face mode {mode!r}; choose one of {', '.join(MODES)}")
    text = importlib.resources.files(__name__).joinpath(f"calibration_{mode}.json").read_text()
    cal = Calibration.from_json(text)
    if cal.version != MODES[mode]:
        raise ValueError(f"calibration_{mode}.json is for {cal.version}, the pipeline is {MODES[mode]}")
    return cal
