"""One shard: a normal locard store and its searcher, held by a Ray actor.

:class:`Shard` is plain Python (``ray.remote(Shard)`` makes the actor, in
:mod:`indexer.cluster.gallery`); everything it does goes through the single-store
code: :func:`indexer.ingest.ingest` enrols, :meth:`GalleryStore.add_samples` commits,
:meth:`Searcher.identify` scores, fuses and ranks.  Its constructor opens the store
from disk, so an actor Ray restarts after a crash or a lost node comes back with
everything that was committed.

A search over shards runs in two phases, so that its result is the one a single store
holding every subject would give (:mod:`indexer.cluster.merge`):

1. :meth:`Shard.neighbours` -- the stage-1 nearest neighbours of every probe sample in
   this shard (fingers: each cylinder's ``k`` nearest gallery cylinders; faces: the
   nearest embeddings), with which hits the search may keep (finger position, excluded
   subjects).  The coordinator merges the shards' lists into the whole gallery's,
   votes and cuts the shortlist as one store would.
2. :meth:`Shard.identify` -- :meth:`Searcher.identify` on the shard's part of that
   shortlist (:class:`ShardSearcher` takes it instead of its own stage 1); subjects
   live wholly in one shard, so per-subject fusion, evidence and pairs are local.

During a rebalance a subject may be stored on two shards for a while; each shard is
told the ring in force and hides the subjects it does not own under it (they take no
neighbour slot, no shortlist place and are not counted), so searches meanwhile still
see every subject exactly once.  Once a shard has deleted the subjects a rebalance
moved away, it refuses the phases of searches planned under an older ``cluster.json``
epoch (:class:`StaleEpochError`): such a search would neither find them here nor look
for them on their new shard, and the coordinator plans it again under the new epoch.
"""

from __future__ import annotations

import time
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from ..errors import ClusterError
from ..faiss_index import FINGER_LABEL_SHIFT, finger_codes, popcounts
from ..ingest import SourceItem, ingest
from ..ingest_report import IngestReport
from ..search import Probe, SearchResult, Searcher
from ..prepared import finger_format
from ..store import GalleryStore, NewSample
from .hashring import HashRing

#: A Hamming distance larger than any real one (1536-bit codes): marks an empty neighbour slot.
NO_DISTANCE = np.iinfo(np.int32).max
#: ``meta`` row of a shard's store: the epoch below which its searches are refused.
EPOCH_FLOOR_KEY = "cluster_epoch_floor"


class StaleEpochError(ClusterError):
    """A search phase planned under a ``cluster.json`` epoch older than what this shard
    already acted on (it deleted subjects that epoch moved away)."""


@dataclass(frozen=True)
class FingerNeighbours:
    """Stage 1 of one probe finger in one shard.

    Attributes
    ----------
    distances : (m, k) int32
        Hamming distances (bits) of each probe cylinder's nearest gallery cylinders,
        ascending; :data:`NO_DISTANCE` where the slot is empty.
    ids : (m, k) int64
        Local sample ids (-1 = empty).
    popcounts : (m, k) int64
        Set bits of each hit's code.
    probe_popcounts : (m,) int64
        Set bits of each probe cylinder.
    eligible : (m, k) bool
        The hit's sample may enter the shortlist (position agrees, subject not excluded).
    subjects : (m, k) int64
        Local subject id of each hit's sample (-1 = empty): a ten-print search preselects
        subjects over all its fingers (:func:`indexer.cluster.merge.tenprint_shortlists`).
    """

    distances: np.ndarray
    ids: np.ndarray
    popcounts: np.ndarray
    probe_popcounts: np.ndarray
    eligible: np.ndarray
    subjects: np.ndarray


@dataclass(frozen=True)
class FaceNeighbours:
    """Stage 1 of one probe face in one shard: similarities descending, local sample ids,
    and which hits belong to excluded subjects."""

    similarities: np.ndarray
    ids: np.ndarray
    excluded: np.ndarray


class ShardSearcher(Searcher):
    """A :class:`Searcher` whose stage 1 can be given from outside (the whole gallery's shortlist).

    Always ``order_free`` (ties at the ``k``-th neighbour settled by distance alone), as the
    coordinator settles them, so that its own searches, if any, agree with the cluster's.

    While :attr:`given` maps a probe (by identity) to its sample ids (fingers) or
    ``(ids, similarities)`` (faces), :meth:`identify` re-ranks exactly those instead of
    asking its own indexes; everything after stage 1 is :class:`Searcher`'s own.
    """

    given: dict | None = None

    def _finger_shortlist(self, probe, timings, exclude=frozenset()):
        if self.given is None:
            return super()._finger_shortlist(probe, timings, exclude)
        ids = np.asarray(self.given.get(id(probe), ()), np.int64)
        _, ok = self.hit_owners(probe, ids, exclude)  # the coordinator applied it; a hidden subject is excluded here
        return ids[ok].tolist()

    def _search_face(self, probe, timings, exclude=frozenset()):
        if self.given is None:
            return super()._search_face(probe, timings, exclude)
        ids, sims = self.given.get(id(probe)) or ([], [])
        owners = self.owners.get("face", {})
        keep = [j for j, s in enumerate(ids) if s in owners and owners[s][1] not in exclude]
        return [ids[j] for j in keep], np.asarray([sims[j] for j in keep], np.float64)


class Shard:
    """A shard's store and searcher (the body of the Ray actor).

    Parameters
    ----------
    name : str
        Shard name (as in ``cluster.json``).
    store : path
        Its store folder (created when absent).
    """

    def __init__(self, name: str, store: str | Path):
        self.name = name
        self.store = GalleryStore(store, create=True)
        # phase 2 re-ranks what the coordinator gives: the whole gallery's per-finger shortlists
        # or ten-print preselection (merge.finger_shortlist, merge.tenprint_shortlists)
        self.searcher = ShardSearcher(self.store, order_free=True, tenprint_subjects=0)
        self._hidden_key = None
        self._hidden: tuple[frozenset, frozenset, int, int] = (frozenset(), frozenset(), 0, 0)
        # searches planned under an older epoch are refused (module docstring); kept in the
        # store's meta table, so that a restarted actor refuses them too
        row = self.store.con.execute("SELECT value FROM meta WHERE key=?", (EPOCH_FLOOR_KEY,)).fetchone()
        self.epoch_floor = int(row[0]) if row else 0
        self.started = time.time()

    # -- state ---------------------------------------------------------------------------------
    def _sync(self) -> None:
        if self.store.last_change() != getattr(self, "_seen", -1):
            self.searcher.refresh()
            self._seen = self.store.last_change()

    def info(self) -> dict:
        """Counts, the node it runs on and when the actor (re)started."""
        self._sync()
        try:
            import ray

            node = ray.get_runtime_context().get_node_id()
        except Exception:  # noqa: BLE001 - outside Ray (tests of the class itself)
            node = None
        idx = self.searcher.indexes.get("finger")
        return {"name": self.name, "subjects": self.store.subject_count(), "finger_samples": self.store.count("finger"),
                "face_samples": self.store.count("face"), "finger_vectors": idx.ntotal if idx is not None else 0,
                "last_change": self.store.last_change(), "node": node, "started": self.started}

    def _hidden_sets(self, ring: HashRing | None) -> tuple[frozenset, frozenset, int, int]:
        """Subjects this shard holds but does not own under ``ring``: (names, sample ids,
        finger vectors, face samples); cached per ring and store change."""
        if ring is None or self.name not in ring.shards:
            return frozenset(), frozenset(), 0, 0
        key = (ring, self.store.last_change())
        if key != self._hidden_key:
            names, ids, faces = set(), set(), 0
            for m, owners in self.searcher.owners.items():
                for sid, (_, name, _) in owners.items():
                    if ring.owner(name) != self.name:
                        names.add(name)
                        ids.add(sid)
                        faces += m == "face"
            vectors = 0
            idx = self.searcher.indexes.get("finger")
            if ids and idx is not None:
                labels = faiss.vector_to_array(idx.index.id_map)
                vectors = int(np.isin(labels // FINGER_LABEL_SHIFT, np.fromiter(ids, np.int64)).sum())
            self._hidden_key, self._hidden = key, (frozenset(names), frozenset(ids), vectors, faces)
        return self._hidden

    # -- writing -------------------------------------------------------------------------------
    def ingest(self, items: list[SourceItem], actor: dict | None = None) -> IngestReport:
        """:func:`indexer.ingest.ingest` of items routed here; durable when this returns.

        With ``actor`` (who ran it), the ingest is recorded in this store's audit log."""
        report = ingest(items, self.store, workers=1)
        if actor is not None:
            self.store.audit().append({**actor, "action": "ingest", "shard": self.name, "images": len(items),
                                       "added": report.added, "skipped": report.skipped, "failed": report.failed,
                                       "set_aside": report.set_aside})
        self._sync()
        return report

    def add_samples(self, samples: list[NewSample], encounter_source: str = "") -> list[int | None]:
        """:meth:`GalleryStore.add_samples` (one transaction, committed when this returns)."""
        ids = self.store.add_samples(samples, encounter_source=encounter_source)
        self._sync()
        return ids

    def owners(self) -> dict[int, str]:
        """Finger sample id -> subject name (what a test compares neighbour lists by)."""
        self._sync()
        return {sid: o[1] for sid, o in self.searcher.owners.get("finger", {}).items()}

    def names(self) -> list[str]:
        """Every subject stored here, by name."""
        return [s.name for s in self.store.subjects()]

    def names_not_owned(self, ring: HashRing) -> list[str]:
        """Subjects stored here whose owner under ``ring`` is another shard."""
        return [s.name for s in self.store.subjects() if ring.owner(s.name) != self.name]

    def export_subjects(self, names: list[str]) -> list[tuple[str, list[NewSample]]]:
        """The samples of ``names`` as ``(encounter source, samples)`` per encounter, templates included."""
        out = []
        for name in names:
            _, samples = self.store.subject(name)
            by_encounter: dict[int, list[NewSample]] = {}
            ids = [s.id for s in samples]
            fmt = finger_format()
            prepared = self.store.prepared(ids, fmt)
            for s in self.store.samples(ids=ids):
                by_encounter.setdefault(s.encounter_id, []).append(NewSample(
                    subject=name, modality=s.modality, template=s.template, template_version=s.template_version,
                    quality=s.quality, sha256=s.sha256, finger_position=s.finger_position, source=s.source,
                    metadata=s.metadata, prepared=prepared.get(s.id, b""),
                    prepared_format=fmt if s.id in prepared else ""))
            for eid, group in sorted(by_encounter.items()):
                row = self.store.con.execute("SELECT source FROM encounters WHERE id=?", (eid,)).fetchone()
                out.append((row[0] if row else "", group))
        return out

    def import_subjects(self, encounters: list[tuple[str, list[NewSample]]]) -> int:
        """Store exported encounters (samples already here, same SHA-256, are skipped); samples added."""
        added = 0
        for source, group in encounters:
            added += sum(i is not None for i in self.store.add_samples(group, encounter_source=source))
        self._sync()
        return added

    def delete_subjects(self, names: list[str], reason: str, actor: dict, epoch: int | None = None) -> int:
        """Delete subjects (each recorded in the store's audit log, then anchored); samples deleted.

        With ``epoch`` (a rebalance deleting what that epoch moved away), searches planned
        under an older epoch are refused from now on (:class:`StaleEpochError`)."""
        if epoch is not None and epoch > self.epoch_floor:  # before the deletion; one call at a time
            self.store.con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (EPOCH_FLOOR_KEY, str(epoch)))
            self.epoch_floor = epoch
        n = sum(len(self.store.delete_subject(name, reason=reason, actor=actor)) for name in names)
        if names:
            self.store.audit().anchor()
        self._sync()
        return n

    # -- search --------------------------------------------------------------------------------
    def _check_epoch(self, epoch: int | None) -> None:
        if epoch is not None and epoch < self.epoch_floor:
            raise StaleEpochError(f"shard {self.name} deleted subjects moved away at epoch {self.epoch_floor}; "
                                  f"the search was planned at epoch {epoch}")

    def neighbours(self, searches: list[list[Probe]], k_finger: int, k_face: int, exclude: AbstractSet[str],
                   ring: HashRing | None, epoch: int | None = None, tenprint_nprobe: int | None = None
                   ) -> tuple[int, list[list[FingerNeighbours | FaceNeighbours | None]]]:
        """Stage 1 of each probe sample of each search, in this shard (phase 1, module docstring).

        Parameters
        ----------
        k_finger, k_face : int
            Neighbours per probe cylinder / per probe face over the whole gallery (a shard
            returns up to ``2 k_finger + 1`` / ``k_face``, fewer when it holds fewer).
        exclude : set of str
            Subjects the searches must not see (their hits are marked not eligible).
        ring : HashRing, optional
            The ring in force: subjects owned by another shard are hidden.
        epoch : int, optional
            The ``cluster.json`` epoch the search was planned under.
        tenprint_nprobe : int, optional
            Inverted lists visited for the fingers of a search of several fingers (as
            :class:`indexer.search.Searcher` does).

        Returns
        -------
        finger_samples : int
            Finger samples the searches see here (the penetration's denominator).
        neighbours : list (per search) of lists (per probe sample)
            None where this shard has nothing of the sample's modality.

        Raises
        ------
        StaleEpochError
            ``epoch`` is older than a rebalance this shard already deleted subjects for.
        """
        self._check_epoch(epoch)
        self._sync()
        hidden_names, hidden_ids, hidden_vectors, hidden_faces = self._hidden_sets(ring)
        out = []
        for probes in searches:
            row = []
            nprobe = tenprint_nprobe if sum(p.modality == "finger" for p in probes) > 1 else None
            for probe in probes:
                if probe.modality == "finger":
                    row.append(self._finger_neighbours(probe, k_finger, exclude, hidden_ids, hidden_vectors, nprobe))
                elif probe.modality == "face":
                    row.append(self._face_neighbours(probe, k_face, exclude, hidden_ids, hidden_faces))
                else:
                    row.append(None)  # identify raises the ProbeError in phase 2
            out.append(row)
        hidden_fingers = sum(1 for sid in hidden_ids if sid in self.searcher.owners.get("finger", {}))
        return self.searcher.n_samples.get("finger", 0) - hidden_fingers, out

    def _finger_neighbours(self, probe, k, exclude, hidden_ids, hidden_vectors, nprobe=None) -> FingerNeighbours | None:
        idx = self.searcher.indexes.get("finger")
        codes = finger_codes(probe.template)
        if idx is None or idx.ntotal == 0 or len(codes) == 0:
            return None
        # 2k + 1 nearest: what the coordinator needs to settle ties at the k-th distance
        # over the whole gallery (votes.order_free_neighbours)
        k = 2 * k + 1
        d, ids, pops = idx.search_finger(codes, min(k + hidden_vectors, idx.ntotal), nprobe)
        d = np.where(ids >= 0, d, NO_DISTANCE).astype(np.int32)
        if hidden_ids:
            dead = np.isin(ids, np.fromiter(hidden_ids, np.int64))
            ids, d = np.where(dead, -1, ids), np.where(dead, NO_DISTANCE, d)
            order = np.argsort(d, axis=1, kind="stable")
            d, ids, pops = (np.take_along_axis(a, order, 1) for a in (d, ids, pops))
        d, ids, pops = d[:, :k], ids[:, :k], pops[:, :k]
        subjects, eligible = self.searcher.hit_owners(probe, ids, exclude)
        return FingerNeighbours(d, ids, pops, popcounts(codes), eligible, subjects)

    def _face_neighbours(self, probe, k, exclude, hidden_ids, hidden_faces) -> FaceNeighbours | None:
        from ..errors import ProbeError

        idx = self.searcher.indexes.get("face")
        if idx is None or idx.ntotal == 0:
            return None
        if idx.model and probe.template.model != idx.model:
            raise ProbeError(f"probe face template is from {probe.template.model}, the gallery's from {idx.model}")
        s, i = idx.search(np.asarray(probe.template.embedding, np.float32)[None, :],
                          min(k + hidden_faces, idx.ntotal))
        s, i = s[0], i[0]
        keep = np.array([x >= 0 and x not in hidden_ids for x in i.tolist()], bool)
        s, i = s[keep][:k], i[keep][:k]
        owners = self.searcher.owners["face"]
        excluded = np.array([owners.get(x, (0, "", 0))[1] in exclude for x in i.tolist()], bool)
        return FaceNeighbours(s, i, excluded)

    def excluded_faces(self, exclude: AbstractSet[str]) -> int:
        """Face samples of the subjects in ``exclude`` stored here (the whole gallery's face ``k`` grows by it)."""
        self._sync()
        faces = self.searcher._samples_by_name().get("face", {})
        return sum(faces.get(n, 0) for n in exclude)

    def identify(self, searches: list[list[Probe]], given: list[dict[int, object]], top: int, fmr: float,
                 exclude: AbstractSet[str], ring: HashRing | None, epoch: int | None = None) -> list[SearchResult]:
        """Phase 2: :meth:`Searcher.identify` of each search on the shortlist ``given``
        (per search: probe index -> sample ids, or ``(ids, similarities)`` for faces);
        :class:`StaleEpochError` as :meth:`neighbours`."""
        self._check_epoch(epoch)
        self._sync()
        hidden_names = self._hidden_sets(ring)[0]
        out = []
        self.searcher.fmr = fmr
        try:
            for probes, g in zip(searches, given):
                self.searcher.given = {id(p): g.get(i, ()) for i, p in enumerate(probes)}
                out.append(self.searcher.identify(probes, top=top, exclude=frozenset(exclude) | hidden_names))
        finally:
            self.searcher.given = None
        return out
