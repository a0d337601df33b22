"""The fingerprint matcher's shipped calibration: score <-> false match rate.

``calibration.json`` beside this module holds the impostor score distribution
measured with this matcher version (see its ``source`` field for the data and
command).  Thresholds ("decide at FMR 0.1 %"), fusion with other matchers and
expected false hits in a gallery all read it through :func:`calibration`.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from ..calibration import Calibration
from .comparison import MATCHER_VERSION

CALIBRATION_FILE = "calibration.json"


@lru_cache(maxsize=1)
def calibration() -> Calibration:
    """The calibration measured for :data:`MATCHER_VERSION`.

    Raises
    ------
    RuntimeError
        When the shipped file belongs to another matcher version (scores would be
        misread), with the command that re-measures it.
    """
    text = resources.files(__package__).joinpath(CALIBRATION_FILE).read_text()
    cal = Calibration.from_json(text)
    if cal.version != MATCHER_VERSION:
        raise RuntimeError(
            f"matcher/fingerprint/{CALIBRATION_FILE} was measured with {cal.version}, this is "
            f"{MATCHER_VERSION}: re-measure it with `locard bench fingerprint DATASET... "
            f"--save-calibration matcher/fingerprint/{CALIBRATION_FILE}`")
    return cal


def threshold_at(fmr: float) -> float:
    """Score threshold whose measured false match rate is at most ``fmr`` (e.g. 0.001)."""
    return calibration().threshold(fmr)
