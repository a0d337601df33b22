"""Fingerprint extraction and 1:1 comparison.

Public surface (stable for ``indexer/`` and ``benchmarks/``)::

    t = extract(data, ppi=500)          # bytes or uint8 array -> Template
    r = compare(t_a, t_b)               # -> Comparison(score, pairs)
    Template.from_bytes(t.to_bytes())   # versioned, compact storage
"""
