"""The fingerprint matcher's shipped calibration: score <-> false match rate.

``calibration.json`` (default, accurate extraction) and ``calibration-fast.json``
(fast extraction) beside this module hold the impostor score distributions measured
with this matcher version and that extraction mode (see each file's ``source`` field
for the data and command): the two modes find different minutiae, so the same score
means a different false match rate.  Thresholds ("decide at FMR 0.1 %"), fusion with other matchers and
expected false hits in a gallery all read it through :func:`calibration`.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from ..calibration import Calibration
from .comparison import MATCHER_VERSION

#: Extraction mode -> shipped calibration file.
CALIBRATION_FILES = {"accurate": "calibration.json", "fast": "calibration-fast.json"}


def calibration_version(mode: str = "accurate") -> str:
    """Version a calibration of ``mode`` must carry: the comparator's and the extraction mode."""
    if mode not in CALIBRATION_FILES:
        raise ValueError(f"mode must be one of {tuple(CALIBRATION_FILES)}, got {mode!r}")
    return f"{MATCHER_VERSION}+{mode}"


@lru_cache(maxsize=2)
def calibration(mode: str = "accurate") -> Calibration:
    """The calibration measured for :data:`MATCHER_VERSION` and extraction ``mode``.

    Raises
    ------
    RuntimeError
        When the shipped file belongs to another matcher version or mode (scores
        would be misread), with the command that re-measures it.
    """
    name = CALIBRATION_FILES.get(mode)
    expected = calibration_version(mode)
    cal = Calibration.from_json(resources.files(__package__).joinpath(name).read_text())
    if cal.version != expected:
        raise RuntimeError(
            f"matcher/fingerprint/{name} was measured with {cal.version}, this is "
            f"{expected}: re-measure it with `locard bench calibrate-fingerprint GENERATED_SET --mode {mode}`")
    return cal


def threshold_at(fmr: float, mode: str = "accurate") -> float:
    """Score threshold whose measured false match rate is at most ``fmr`` (e.g. 0.001)."""
    return calibration(mode).threshold(fmr)
