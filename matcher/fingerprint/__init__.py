"""Fingerprint extraction and 1:1 comparison.

Public surface (stable for ``indexer/`` and ``benchmarks/``)::

    t = extract(data, ppi=500)          # bytes or uint8 array -> Template
    r = compare(t_a, t_b)               # -> Comparison(score, pairs, pair_scores)
    Template.from_bytes(t.to_bytes())   # versioned, compact storage
    cohort_stats(t)                     # score-normalisation statistics, stored with the template
    run_pipeline(image, ppi)            # every intermediate representation
"""

from .cohort import cohort_stats
from .comparison import MATCHER_VERSION, Comparison, compare
from .minutiae import MINUTIA_DTYPE, MinutiaType
from .pipeline import Extraction, extract, run_pipeline
from .template import FORMAT_VERSION, Template

__all__ = [
    "MATCHER_VERSION", "Comparison", "compare", "MINUTIA_DTYPE", "MinutiaType",
    "Extraction", "extract", "run_pipeline", "FORMAT_VERSION", "Template", "cohort_stats",
]
