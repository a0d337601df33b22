"""Comparator arrays kept in the store beside each finger template.

A search re-ranks its shortlist with the 1:1 comparator, which needs each gallery
template's cylinders.  Only a share of the gallery fits the searcher's memory budget
(:data:`indexer.search.CACHE_BYTES_PER_FINGER`); a template outside it used to be
decoded and its cylinders computed again (~1.2 ms for 46 minutiae: 70 % of a ten-print
search at 1,100 subjects).  Enrolment now stores them compressed (~3.2 kB a finger,
:func:`matcher.fingerprint.descriptors.cylinders_to_bytes`) and search reads them
(~0.1 ms with the template).  The rows are a cache of the template: one of another
format (a matcher change) is ignored, recomputed on use, and rewritten by
:func:`backfill` (``locard reindex``).
"""

from __future__ import annotations

from .store import GalleryStore


def finger_format() -> str:
    """Stored format of finger samples' prepared arrays (faces have none: an embedding is compared as is)."""
    from matcher.fingerprint.descriptors import CYLINDERS_FORMAT

    return CYLINDERS_FORMAT


def finger_prepared(template) -> tuple[str, bytes]:
    """``(format, bytes)`` of a finger template's stored comparator arrays (its cylinders)."""
    from matcher.fingerprint.descriptors import CYLINDERS_FORMAT, cylinders, cylinders_to_bytes

    return CYLINDERS_FORMAT, cylinders_to_bytes(cylinders(template))


def load_finger_templates(store: GalleryStore, ids: list[int]) -> dict[int, object]:
    """Decoded finger templates of these samples, their cylinders read from the store
    (computed for a sample with none of the current format)."""
    from matcher.fingerprint import Template
    from matcher.fingerprint.descriptors import load_cylinders

    stored = store.prepared(ids, finger_format())
    out = {}
    for s in store.samples("finger", ids=ids):
        t = Template.from_bytes(s.template)
        load_cylinders(t, stored.get(s.id))
        out[s.id] = t
    return out


def backfill(store: GalleryStore, *, batch: int = 1000) -> int:
    """Write the current format's prepared arrays of every finger sample that lacks them
    (a store enrolled before they were kept, or by an older matcher).  Rows written."""
    from matcher.fingerprint import Template

    fmt = finger_format()
    written, after = 0, 0
    while True:
        samples = store.unprepared("finger", fmt, after=after, limit=batch)
        if not samples:
            return written
        # computed before the write transaction, so that the store's lock is held briefly
        rows = [(s.id, *finger_prepared(Template.from_bytes(s.template))) for s in samples]
        written += store.put_prepared(rows)
        after = samples[-1].id
