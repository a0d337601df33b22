"""Score normalisation against a fixed cohort: the comparator's last stage.

A raw comparison score does not mean the same for every template: a print with many
minutiae, or with faint spurious ones, meets every other print with more chance
agreement than a clean one, so its impostor scores sit higher and one threshold lets
through far more of its false matches.  Each template is therefore compared, once,
with a fixed cohort of impostor templates shipped with the package (prints made by
the project's generator, of a seed no figure is reported on); the mean and standard
deviation of those scores describe that template's impostor distribution.  The
score of a pair is the mean of its two z-scores::

    score(a, b) = ((raw - mean_a) / sd_a + (raw - mean_b) / sd_b) / 2

the gallery side (Z-norm) and the probe side (T-norm) at once.  The
statistics are stored in the template (format 3) at enrolment, so a gallery is not
compared with the cohort again when it is loaded; a template whose statistics were
taken against another cohort or matcher version gets new ones on first use.

Only the default ``accurate`` mode is normalised.  The ``fast`` mode, for bulk work,
keeps raw scores: measuring the statistics costs some 30 ms a template, as much as the
fast extraction itself, and on FVC2002 B its EERs went from 1.43 / 1.79 / 1.43 / 1.07 %
to 1.43 / 1.79 / 2.14 / 1.43 % with a cohort of its own (nothing on generated data
argued for it).

The cohort file (``cohort-accurate.lcfc``) is versioned::

    magic b"LCFC", format u16 (= 1), count u32, then per template: length u32 + LCFP bytes

Build it with ``locard bench cohort-fingerprint GENERATED_SET``, then re-calibrate.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import TemplateError
from .template import CohortStats, Template

COHORT_MAGIC = b"LCFC"
COHORT_FORMAT = 1
#: Extraction modes whose scores are normalised, and their cohort files.
COHORT_FILES = {"accurate": "cohort-accurate.lcfc"}
#: The statistics of a template whose mode is not normalised: they leave its scores raw.
RAW = CohortStats("raw", 0.0, 1.0)
#: Standard deviations below this (raw score units) are raised to it: a template with
#: almost no minutiae scores ~0 against the whole cohort, and dividing by its tiny
#: spread would turn any chance agreement into a huge z-score.  About half the median
#: spread measured on generated prints (0.0025, seed 2); 1 % of those templates are below it.
SD_FLOOR = 0.0012


@dataclass(frozen=True)
class Cohort:
    """The shipped impostor cohort of one extraction mode, packed for the 1:N kernel."""

    identifier: str
    """``<matcher version>+<mode>:<first 12 hex digits of the file's SHA-256>``."""
    packed: object
    size: int


def cohort_path(mode: str) -> Path:
    if mode not in COHORT_FILES:
        raise ValueError(f"extraction mode {mode!r} has no cohort (its scores stay raw); "
                         f"modes with one: {sorted(COHORT_FILES)}")
    return Path(__file__).resolve().parent / COHORT_FILES[mode]


def write_cohort(templates: list[Template], path: str | Path) -> None:
    """Write a cohort file (templates are stored without cohort statistics)."""
    parts = [COHORT_MAGIC, struct.pack("<HI", COHORT_FORMAT, len(templates))]
    for t in templates:
        b = t.to_bytes(with_cohort=False)
        parts += [struct.pack("<I", len(b)), b]
    Path(path).write_bytes(b"".join(parts))


def read_cohort(data: bytes) -> list[Template]:
    """Templates of a cohort file's bytes.

    Raises
    ------
    TemplateError
        Not a cohort file, a newer format, or damaged.
    """
    if len(data) < 10 or data[:4] != COHORT_MAGIC:
        raise TemplateError("not a locard cohort file (missing the LCFC magic)")
    version, n = struct.unpack_from("<HI", data, 4)
    if version != COHORT_FORMAT:
        raise TemplateError(f"cohort file format {version}; this build reads format {COHORT_FORMAT}")
    off, out = 10, []
    for _ in range(n):
        if off + 4 > len(data):
            raise TemplateError("cohort file truncated")
        (k,) = struct.unpack_from("<I", data, off)
        out.append(Template.from_bytes(data[off + 4: off + 4 + k]))
        off += 4 + k
    if off != len(data):
        raise TemplateError(f"cohort file damaged: {len(data) - off} bytes after the last template")
    return out


@lru_cache(maxsize=None)
def load_cohort(mode: str) -> Cohort:
    """The shipped cohort of extraction ``mode`` (read and prepared once per process)."""
    from .comparison import MATCHER_VERSION, pack_templates

    path = cohort_path(mode)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TemplateError(f"the fingerprint cohort of mode {mode!r} is missing ({path}); "
                            f"rebuild it: locard bench cohort-fingerprint GENERATED_SET --mode {mode}") from None
    templates = read_cohort(data)
    ident = f"{MATCHER_VERSION}+{mode}:{hashlib.sha256(data).hexdigest()[:12]}"
    return Cohort(ident, pack_templates(templates, raw=True), len(templates))


def stats_from_scores(scores: np.ndarray, identifier: str) -> CohortStats:
    """Mean and floored standard deviation of a template's raw scores against a cohort.

    Rounded to float32, as the template stores them: a template scores the same fresh
    from extraction and read back from a store.
    """
    s = np.asarray(scores, np.float64)
    return CohortStats(identifier, float(np.float32(s.mean())), float(np.float32(max(s.std(), SD_FLOOR))))


def cohort_stats(t: Template) -> CohortStats:
    """The template's statistics against the cohort of its extraction mode.

    Taken from the template when they were measured against the current cohort,
    else measured now (one raw comparison per cohort template, some 10-30 ms) and
    kept on the template, so that :meth:`Template.to_bytes` stores them.  A mode
    without a cohort gets :data:`RAW` (nothing measured, nothing stored).
    """
    if t.extractor not in COHORT_FILES:
        return RAW
    cohort = load_cohort(t.extractor)
    if t.cohort is not None and t.cohort.cohort == cohort.identifier:
        return t.cohort
    from .comparison import raw_scores  # here, off the path of every comparison: it costs ~1 us

    t.cohort = stats_from_scores(raw_scores(t, cohort.packed), cohort.identifier)
    return t.cohort


def normalise(raw: np.ndarray | float, a: CohortStats, mean_b: np.ndarray | float,
              sd_b: np.ndarray | float) -> np.ndarray | float:
    """Mean of the two z-scores of raw scores of ``a`` against templates ``b``."""
    return 0.5 * ((raw - a.mean) / a.sd + (raw - mean_b) / sd_b)
