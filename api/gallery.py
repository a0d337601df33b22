"""The gallery store and its searcher, owned by one dedicated thread.

SQLite connections and the searcher's in-memory indexes belong to the thread that
made them, so every store operation of the service runs on one ``gallery`` thread:
writes are serialised (the store stays consistent under concurrent enrolments and
searches) and the event loop never blocks on them.  Image decoding and template
extraction, the expensive part, run in the general thread pool beforehand.

Before each search the searcher is brought up to the store's last change, so
enrolments and deletions (through the service or ``locard ingest``) are seen at once;
the caller's hidden set is read in that same step (see :meth:`Gallery.identify`).

With ``cluster`` (``locard serve --cluster``) the store folder is a cluster folder
(:mod:`indexer.cluster`): searches go to the sharded gallery, and the operations not
yet routed to shards (subject pages, enrolment, deletion, evidence) answer 501.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from indexer.search import Probe, SearchResult, Searcher
from indexer.store import GalleryStore, NewSample, Sample, Subject

T = TypeVar("T")


def not_on_cluster(what: str):
    """A 501 for an operation the sharded gallery does not offer through the service yet."""
    from .problems import TYPE_BASE, Problem

    raise Problem(501, f"{what} is not available yet when the service runs on a sharded gallery "
                       "(locard serve --cluster): use `locard ingest --cluster` to enrol",
                  type_=TYPE_BASE + "not-on-cluster")


class Gallery:
    def __init__(self, store: str | Path, *, shortlist: int | None = None, cluster: str | None = None):
        self.path = Path(store)
        self._shortlist = shortlist
        self.cluster = None
        if cluster:  # joined here, on the main thread, so an unreachable cluster fails at start-up
            from indexer.cluster.gallery import ClusterGallery

            kw = {"shortlist": self._shortlist} if self._shortlist else {}
            self.cluster = ClusterGallery(self.path, cluster, **kw)
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = ThreadPoolExecutor(1, thread_name_prefix="gallery")
        self._store: GalleryStore | None = None
        self._searcher: Searcher | None = None
        self._seen_change = -1
        self.call(lambda st: None)  # open (and create) now, so a bad store fails at start-up

    # -- running on the gallery thread ---------------------------------------------------------
    def _ensure(self) -> GalleryStore:
        if self._store is None:
            self._store = GalleryStore(self.path, create=True)
        return self._store

    def _run(self, fn: Callable[[GalleryStore], T]) -> T:
        return fn(self._ensure())

    def _submit(self, fn):
        with self._lock:
            if self._executor is None:  # closed, then used again (an app restarted in one process)
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="gallery")
            return self._executor.submit(self._run, fn)

    def call(self, fn: Callable[[GalleryStore], T]) -> T:
        """Run ``fn(store)`` on the gallery thread and wait (for worker threads)."""
        return self._submit(fn).result()

    async def acall(self, fn: Callable[[GalleryStore], T]) -> T:
        """Run ``fn(store)`` on the gallery thread without blocking the event loop."""
        return await asyncio.wrap_future(self._submit(fn))

    def close(self) -> None:
        """Close the store and stop the thread (a later call opens them again)."""
        def _close(st: GalleryStore) -> None:
            if self._searcher is not None:
                self._searcher.save()
            st.close()
            self._store = None
            self._searcher = None
            self._seen_change = -1
        if self._store is not None:
            self.call(_close)
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None

    # -- operations (each runs on the gallery thread) ------------------------------------------
    def _searcher_now(self, st: GalleryStore) -> Searcher:
        last = st.last_change()
        if self._searcher is None:
            kw = {"shortlist": self._shortlist} if self._shortlist else {}
            self._searcher = Searcher(st, **kw)
        elif last != self._seen_change:
            self._searcher.refresh()
        self._seen_change = last
        return self._searcher

    @staticmethod
    def add(samples: list[NewSample], source: str = "") -> Callable[[GalleryStore], list[int | None]]:
        return lambda st: st.add_samples(samples, encounter_source=source)

    def identify(self, probes: list[Probe], top: int, fmr: float,
                 hidden: Callable[[], AbstractSet[str]] = frozenset) -> Callable[[GalleryStore], SearchResult]:
        """A search that leaves out the subjects ``hidden()`` names.

        ``hidden`` is called on the gallery thread after the searcher has caught up with
        the store and right before it searches: every sample the search can see was
        stored before the call, and a subject's access rule is written before its
        samples, so no subject enrolled meanwhile escapes the hidden set.
        """
        def run(st: GalleryStore) -> SearchResult:
            if self.cluster is not None:  # a ClusterSearchResult: says whether every shard answered
                return self.cluster.identify(probes, top=top, fmr=fmr, exclude=frozenset(hidden()))
            s = self._searcher_now(st)
            s.fmr = fmr
            return s.identify(probes, top=top, exclude=frozenset(hidden()))
        return run

    def subject(self, name: str) -> Callable[[GalleryStore], tuple[Subject, list[Sample]]]:
        if self.cluster is not None:
            not_on_cluster("reading a subject")
        return lambda st: st.subject(name)

    def subjects(self, offset: int, limit: int, hidden: Callable[[], AbstractSet[str]] = frozenset
                 ) -> Callable[[GalleryStore], tuple[list[Subject], int]]:
        """One page of the subjects ``hidden()`` does not name, and how many there are in all.

        SQLite leaves the hidden ones out and cuts the page; ``hidden`` is read in the
        same gallery-thread step (see :meth:`identify`).
        """
        if self.cluster is not None:
            not_on_cluster("listing subjects")

        def run(st: GalleryStore) -> tuple[list[Subject], int]:
            names = hidden()
            return st.subjects(limit=limit, offset=offset, exclude=names), st.subject_count(exclude=names)
        return run

    def samples_with_templates(self, name: str) -> Callable[[GalleryStore], list[Sample]]:
        if self.cluster is not None:
            not_on_cluster("comparing with a subject's samples")

        def run(st: GalleryStore) -> list[Sample]:
            _, samples = st.subject(name)
            return list(st.samples(ids=[s.id for s in samples]))
        return run
