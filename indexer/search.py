"""1:N identification: a probe (one or more samples) -> a ranked list of subjects.

Fingerprints, two stages:

1. **Shortlist** -- every usable MCC cylinder of the probe asks the binary FAISS
   index for its ``k_per_minutia`` nearest gallery cylinders (Hamming distance on
   their shortlist codes, 512 sampled bits of the 1536).  Each hit
   votes for its sample with the binary-MCC similarity ``1 - d / (|a| + |b|)`` (``d``
   the Hamming distance, ``|a|``, ``|b|`` the set bits of the two codes; the index
   label carries ``|b|``); a sample keeps only its best vote per probe minutia, and the
   votes are summed (:mod:`indexer.votes`).  The ``shortlist`` samples with the most votes go on.
2. **Re-rank** -- the 1:1 comparator scores the probe against each shortlisted
   template (:func:`matcher.fingerprint.comparison.compare_scores`); the paired
   minutiae are computed for the candidates returned.  Prepared gallery templates
   are cached within a memory budget per enrolled finger and read from the store
   when not cached (benchmarks/README.md, Search / memory).

The penetration rate is the share of the gallery's finger samples re-ranked.

Faces: the inner-product index returns the nearest embeddings (cosine).

Fusion: each probe finger (the probe samples of one known finger position count as
one finger) and each other probe sample contributes, per subject, its best-scoring
gallery sample; the scores go to ``-log10 FMR`` through the matcher calibrations (less
``log10 n`` for the best of ``n`` comparisons) and are summed per subject (:mod:`indexer.fusion`): a finger the subject lacks, or that
did not reach the subject's samples, adds nothing.  Gallery and probe finger
positions (ANSI/NIST codes) must agree when both are known; a probe position flagged
uncertain also meets the neighbouring fingers of its hand (:mod:`indexer.positions`).
The decision threshold depends on how many terms were fused: for ten-print probes it is
measured on generated impostor cards (:func:`~indexer.fusion.decision_threshold`).
"""

from __future__ import annotations

import math
import time
from collections import Counter, OrderedDict
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field

import numpy as np

from .errors import ProbeError
from .faiss_index import VectorIndex, build_index, catch_up, finger_codes, index_path, open_index, popcounts
from .fusion import SubjectTerms, TermScore, common_scale, expected_fpir, fusion_terms, probe_threshold
from .owners import NO_SUBJECT, OwnerColumns, comparable
from .positions import comparable_positions
from .prepared import load_finger_templates
from .store import GalleryStore
from .votes import DEFAULT_K_PER_MINUTIA, finger_votes, order_free_neighbours, preselect_subjects

DEFAULT_SHORTLIST = 200
#: Subjects a probe of several fingers re-ranks in full (:meth:`Searcher._tenprint_shortlists`).
DEFAULT_TENPRINT_SUBJECTS = 50
#: Inverted lists visited per query for such a probe (the index's own nprobe is 16): at 1,100
#: subjects every mate stayed first in the preselection with 4, and stage 1 took 207 ms a card
#: instead of 364 (benchmarks/README.md, Ten-print search).
DEFAULT_TENPRINT_NPROBE = 4
DEFAULT_FACE_K = 100
#: Memory the re-ranking cache may hold per enrolled finger: decoded gallery templates with
#: the comparator's prepared arrays (~20 kB for 42 minutiae), least recently used evicted
#: first and read again from the store when shortlisted (~0.1 ms CPU each with their stored
#: cylinders, :mod:`indexer.prepared`; ~1.2 ms where none are stored).  With the
#: index (~3 kB a finger) this keeps a searcher under 8 kB per finger (benchmarks/README.md,
#: Search / memory).
CACHE_BYTES_PER_FINGER = 4096
#: Changes a searcher replays in memory before it writes the index file again.
SAVE_EVERY = 1000


@dataclass(frozen=True)
class Probe:
    """One probe sample: a decoded template of one modality.

    Attributes
    ----------
    modality : str
        ``"finger"`` or ``"face"``.
    template : matcher.fingerprint.Template or matcher.face.FaceTemplate
    finger_position : int
        ANSI/NIST code, 0 = unknown (matches every gallery position).
    label : str
        Free text shown in results (e.g. the file name).
    position_uncertain : bool
        The position may be off by one finger of the same hand (slap segmentation):
        the neighbouring positions are searched too.
    """

    modality: str
    template: object
    finger_position: int = 0
    label: str = ""
    position_uncertain: bool = False


@dataclass(frozen=True)
class Evidence:
    """How one probe sample matched one gallery sample of a candidate.

    Attributes
    ----------
    probe : int
        Index of the probe sample.
    sample_id : int
    modality : str
    finger_position : int
        Of the gallery sample.
    score : float
        1:1 score (fingerprint: cohort-normalised, ~0 for impostors; face: cosine in [-1, 1]).
    log_fmr : float
        ``-log10 FMR`` of ``score``, less ``log10 n`` when it is the best of ``n``
        comparisons of the probe finger with the subject's samples (impressions, or
        neighbouring positions), floored at 0.
    pairs : (k, 2) int array or None
        Fingerprints: paired minutiae (probe index, gallery index).
    """

    probe: int
    sample_id: int
    modality: str
    finger_position: int
    score: float
    log_fmr: float
    pairs: np.ndarray | None = None

    def as_dict(self) -> dict:
        d = {"probe": self.probe, "sample_id": self.sample_id, "modality": self.modality,
             "finger_position": self.finger_position, "score": round(self.score, 6),
             "log_fmr": round(self.log_fmr, 4)}
        if self.pairs is not None:
            d["pairs"] = self.pairs.tolist()
        return d


@dataclass(frozen=True)
class Candidate:
    """One subject of a result list.

    Attributes
    ----------
    subject : str
    subject_id : int
    score : float
        Fused score: sum over probe samples of ``-log10 FMR``.
    raw : float
        Sum of the raw scores (tie-break; equals ``score`` ordering within one modality).
    evidence : list of Evidence
        Best gallery sample per probe sample.
    hit : bool or None
        ``score`` reaches the decision threshold.
    """

    subject: str
    subject_id: int
    score: float
    raw: float
    evidence: list[Evidence]
    hit: bool | None = None

    def as_dict(self) -> dict:
        return {"subject": self.subject, "subject_id": self.subject_id, "score": round(self.score, 4),
                "raw": round(self.raw, 6), "hit": self.hit, "evidence": [e.as_dict() for e in self.evidence]}


@dataclass
class SearchResult:
    """Ranked candidates of one search, with what it cost.

    Attributes
    ----------
    candidates : list of Candidate
        Best first.
    gallery_subjects : int
    penetration : dict
        Modality -> share of the gallery's samples scored by the 1:1 comparator
        (fingers: shortlist / finger samples; faces: 0, the index scores exactly).
    calibrated : bool
        Scores are on the ``-log10 FMR`` scale: always true (a search without a usable
        calibration raises :class:`~indexer.errors.CalibrationError`); kept for readers
        of the result format.
    threshold : float or None
        Decision threshold on the fused score, at ``fmr`` per subject, for the terms this
        probe fused (:func:`~indexer.fusion.probe_threshold`).
    fmr : float
    expected_fpir : float or None
        False positive identification rate to expect at that threshold for this gallery.
    timings_ms : dict
    """

    candidates: list[Candidate]
    gallery_subjects: int
    penetration: dict
    calibrated: bool
    threshold: float | None
    fmr: float
    expected_fpir: float | None
    timings_ms: dict = field(default_factory=dict)

    @property
    def rank1(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None

    def as_dict(self) -> dict:
        return {"gallery_subjects": self.gallery_subjects, "calibrated": self.calibrated, "fmr": self.fmr,
                "threshold": self.threshold, "expected_fpir": self.expected_fpir,
                "penetration": self.penetration, "timings_ms": {k: round(v, 3) for k, v in self.timings_ms.items()},
                "candidates": [c.as_dict() for c in self.candidates]}


class Searcher:
    """Searches one store; keeps its indexes and recently used gallery templates in memory.

    Parameters
    ----------
    store : GalleryStore
    shortlist : int
        Fingerprint samples re-ranked per probe finger (stage 2) of a probe of one finger.
    tenprint_subjects : int
        A probe of several fingers re-ranks this many subjects, those its fingers' stage-1
        votes favour together, each on every sample its fingers voted for
        (:meth:`_tenprint_shortlists`); 0: each finger its own ``shortlist`` samples instead.
    tenprint_nprobe : int or None
        Lists an inverted-file finger index visits per query for such a probe, when fewer
        than its own setting (ten fingers' votes together need far less recall than one
        finger's); None: the index's own.
    k_per_minutia : int
        Nearest gallery cylinders asked per probe cylinder (stage 1).
    face_k : int
        Nearest face embeddings asked per probe face.
    fmr : float
        False match rate of the decision threshold.
    cache_bytes_per_finger : int
        Budget of the re-ranking cache, bytes per enrolled finger sample: prepared
        gallery templates beyond ``cache_bytes_per_finger * fingers`` are evicted (least
        recently used first); one re-ranked cold is read from the store and prepared
        again (~1 ms).
    threads : int or None
        FAISS (OpenMP) threads; 1 by default: one search is small, and on a shared
        machine OpenMP's spinning threads cost far more than they give (measured 110 ms
        against 3 ms for 40 queries on 3,000 cylinders with 2 busy cores).  ``None``
        leaves FAISS's setting alone.
    save_every : int
        Store changes :meth:`refresh` replays into the in-memory indexes before it
        writes an index file again (a file written after every change costs a full
        write of the index, ~0.8 GB at 100,000 fingers; the file only bounds how much
        the next open has to replay).
    order_free : bool
        Stage 1 keeps every gallery cylinder at a list's ``k``-th distance
        (:func:`order_free_neighbours`) instead of those FAISS meets first in storage
        order, so the answer does not depend on the order samples were enrolled in (what
        the shards of a sharded gallery need to answer as one store, :mod:`indexer.cluster`).
    """

    def __init__(self, store: GalleryStore, *, shortlist: int = DEFAULT_SHORTLIST,
                 tenprint_subjects: int = DEFAULT_TENPRINT_SUBJECTS,
                 tenprint_nprobe: int | None = DEFAULT_TENPRINT_NPROBE, k_per_minutia: int = DEFAULT_K_PER_MINUTIA,
                 face_k: int = DEFAULT_FACE_K, fmr: float = 1e-3,
                 threads: int | None = 1, cache_bytes_per_finger: int = CACHE_BYTES_PER_FINGER,
                 save_every: int = SAVE_EVERY, order_free: bool = False):
        if threads is not None:
            import faiss

            faiss.omp_set_num_threads(threads)
        self.store = store
        self.shortlist = shortlist
        self.tenprint_subjects = tenprint_subjects
        self.tenprint_nprobe = tenprint_nprobe
        self.k_per_minutia = k_per_minutia
        self.face_k = face_k
        self.fmr = fmr
        self.indexes: dict[str, VectorIndex] = {}
        self.index_actions: dict[str, str] = {}
        self.cache_bytes_per_finger = cache_bytes_per_finger
        self.save_every = save_every
        self.order_free = order_free
        self._unsaved = {"finger": 0, "face": 0}
        self._templates: OrderedDict[int, object] = OrderedDict()
        self._template_nbytes: dict[int, int] = {}
        self.cache_bytes = 0  # held by the prepared templates in _templates
        self.owners: dict[str, dict[int, tuple[int, str, int]]] = {}
        self._owner_columns: dict[str, OwnerColumns] = {}  # the same, as arrays (ten-print preselection)
        self._by_name: dict[str, Counter] | None = None  # built on the first search that excludes
        self.refresh()

    def refresh(self) -> None:
        """Bring the indexes and the sample -> subject maps up to the store's last change.

        The first call opens the index files (:func:`~indexer.faiss_index.open_index`);
        later calls replay the new changes into the indexes and maps in memory, and write
        an index file every ``save_every`` changes, after a rebuild, and after any deletion
        (so a deleted subject's vectors leave the file at once).
        """
        for m in ("finger", "face"):
            idx = self.indexes.get(m)
            if idx is None:
                if not (self.store.count(m) or index_path(self.store, m).exists()):
                    self.owners[m] = {}
                    continue
                self.indexes[m], self.index_actions[m] = open_index(self.store, m)
                self.owners[m] = self.store.sample_owners(m)
                self._owner_columns[m] = OwnerColumns(self.owners[m])
                self._by_name = None
                continue
            changes, rebuild = catch_up(self.store, idx)
            # A deletion must not leave the subject's vectors in the index file: write it now,
            # and rebuild first where the index could only hide them (tombstones).
            deleted = any(op == "delete" for _, op, _ in changes)
            if rebuild is None and deleted and idx.tombstones:
                rebuild = "deleted samples are only tombstoned"
            if rebuild is not None:
                idx = self.indexes[m] = build_index(self.store, m)
                self.index_actions[m] = f"rebuilt ({rebuild})"
            elif changes:
                self.index_actions[m] = f"replayed {len(changes)} changes"
            self._unsaved[m] += len(changes)
            if rebuild is not None or deleted or self._unsaved[m] >= self.save_every:
                idx.save(index_path(self.store, m))
                self._unsaved[m] = 0
            self._apply_owner_changes(m, changes)
        self.n_samples = {m: len(owners) for m, owners in self.owners.items()}
        self.n_subjects = self.store.subject_count()

    def save(self) -> None:
        """Write the index files that lack changes replayed in memory (e.g. when a service stops),
        so the next open has nothing to replay."""
        for m, idx in self.indexes.items():
            if self._unsaved.get(m):
                idx.save(index_path(self.store, m))
                self._unsaved[m] = 0

    def _apply_owner_changes(self, modality: str, changes: list[tuple[int, str, int]]) -> None:
        """Replay changes into ``owners`` and its columns (and the per-name counts, when built)."""
        owners = self.owners.setdefault(modality, {})
        columns = self._owner_columns.setdefault(modality, OwnerColumns())
        by_name = self._by_name[modality] if self._by_name is not None else None
        added = [sid for _, op, sid in changes if op == "add"]
        fresh = self.store.sample_owners(modality, ids=added) if added else {}
        for _, op, sid in changes:
            if op == "add" and sid in fresh and sid not in owners:
                owners[sid] = fresh[sid]
                columns.add({sid: fresh[sid]})
                if by_name is not None:
                    by_name[fresh[sid][1]] += 1
            elif op == "delete" and sid in owners:
                _, name, _ = owners.pop(sid)
                columns.remove((sid,))
                self._uncache(sid)
                if by_name is not None:
                    by_name[name] -= 1
                    if by_name[name] <= 0:
                        del by_name[name]

    def warm(self, templates: dict | None = None) -> None:
        """Fill the re-ranking cache with prepared gallery templates, up to its budget
        (a long-running service: the first searches then find them ready).

        Parameters
        ----------
        templates : dict, optional
            ``sample id -> Template`` already decoded (with cylinders), e.g. from ingest;
            used first.
        """
        ids = [s for s in self.owners.get("finger", {}) if s not in self._templates]
        if templates:
            for sid, t in templates.items():
                if sid in self.owners["finger"] and sid not in self._templates:
                    self._cache(sid, t)
                    if self.cache_bytes >= self.cache_capacity():
                        return
        for i in range(0, len(ids), 1000):
            if self.cache_bytes >= self.cache_capacity():
                return
            self._finger_templates([s for s in ids[i:i + 1000] if s not in self._templates])

    # -- gallery templates -------------------------------------------------------------------
    def cache_capacity(self) -> int:
        """Bytes the re-ranking cache may hold now (its budget times the enrolled fingers)."""
        return self.cache_bytes_per_finger * self.n_samples.get("finger", 0)

    def _cache(self, sid: int, template) -> None:
        from matcher.fingerprint.comparison import prepare

        prepare(template)
        self._uncache(sid)
        self._templates[sid] = template
        self._template_nbytes[sid] = template.nbytes
        self.cache_bytes += self._template_nbytes[sid]

    def _uncache(self, sid: int) -> None:
        if self._templates.pop(sid, None) is not None:
            self.cache_bytes -= self._template_nbytes.pop(sid)

    def _finger_templates(self, sample_ids: list[int]) -> list:
        """Prepared templates of these gallery samples: from the cache, else read from the
        store (then cached, evicting the least recently used beyond the budget)."""
        missing = [s for s in sample_ids if s not in self._templates]
        if missing:
            for sid, t in load_finger_templates(self.store, missing).items():
                self._cache(sid, t)
        out = []
        for s in sample_ids:
            self._templates.move_to_end(s)
            out.append(self._templates[s])
        # evicted only now, so that a batch larger than the budget is still returned whole
        capacity = self.cache_capacity()
        while self._templates and self.cache_bytes > capacity:
            self._uncache(next(iter(self._templates)))
        return out

    def hit_owners(self, probe: Probe, sample_ids: np.ndarray, exclude: AbstractSet[str] = frozenset()
                   ) -> tuple[np.ndarray, np.ndarray]:
        """Subject ids of stage-1 hits of a probe finger (:data:`~indexer.owners.NO_SUBJECT` for
        ids no live sample has) and which hits may take a place in its shortlist: a live
        sample, of a subject not excluded, whose finger position is comparable with the
        probe's (also used by the shards of a sharded gallery)."""
        subj, pos = self._owner_columns.get("finger", OwnerColumns()).lookup(sample_ids)
        ok = (subj != NO_SUBJECT) & comparable(pos, comparable_positions(probe.finger_position,
                                                                          probe.position_uncertain))
        if exclude:  # rare: by name, on the hits left
            owners = self.owners["finger"]
            ok[ok] = [owners[s][1] not in exclude for s in np.asarray(sample_ids)[ok].tolist()]
        return subj, ok

    def _samples_by_name(self) -> dict[str, Counter]:
        """Modality -> subject name -> samples, for searches that exclude subjects."""
        if self._by_name is None:
            self._by_name = {m: Counter(name for _, name, _ in owners.values()) for m, owners in self.owners.items()}
        return self._by_name

    # -- per modality ------------------------------------------------------------------------
    def _search_finger(self, probe: Probe, timings: dict, exclude: AbstractSet[str] = frozenset(),
                       keep: list[int] | None = None) -> tuple[list[int], np.ndarray, list]:
        """Stage 1 (:meth:`_finger_shortlist`, unless the samples to ``keep`` are given), then
        the 1:1 comparator on them."""
        from matcher.fingerprint.comparison import compare_scores

        if keep is None:
            keep = self._finger_shortlist(probe, timings, exclude)
        if not keep:
            return [], np.zeros(0), []
        t1 = time.perf_counter()
        templates = self._finger_templates(keep)
        scores = compare_scores(probe.template, templates)
        timings["finger_stage2"] = timings.get("finger_stage2", 0.0) + (time.perf_counter() - t1) * 1e3
        return keep, scores, templates

    def _finger_votes(self, probe: Probe, timings: dict, nprobe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Stage-1 votes of one probe finger: ``(sample ids, votes)``, votes descending
        (``nprobe``: see :meth:`VectorIndex.search_labels`)."""
        idx = self.indexes.get("finger")
        if idx is None or idx.ntotal == 0:
            return np.zeros(0, np.int64), np.zeros(0)
        t0 = time.perf_counter()
        codes = finger_codes(probe.template)
        if len(codes) == 0:
            return np.zeros(0, np.int64), np.zeros(0)
        k = min(self.k_per_minutia, idx.ntotal)
        if self.order_free:
            d, i, pops = order_free_neighbours(*idx.search_finger(codes, min(2 * k + 1, idx.ntotal), nprobe), k)
        else:
            d, i, pops = idx.search_finger(codes, k, nprobe)
        out = finger_votes(d, i, popcounts(codes), pops)
        timings["finger_stage1"] = timings.get("finger_stage1", 0.0) + (time.perf_counter() - t0) * 1e3
        return out

    def _finger_shortlist(self, probe: Probe, timings: dict, exclude: AbstractSet[str] = frozenset()) -> list[int]:
        """Stage 1: the sample ids to re-rank, most votes first (a sharded gallery's shards are
        given the whole gallery's instead, :mod:`indexer.cluster.shard`)."""
        sids, _ = self._finger_votes(probe, timings)
        # excluded subjects are dropped before the shortlist is cut, so they take no place in it
        _, ok = self.hit_owners(probe, sids, exclude)
        return sids[ok][: self.shortlist].tolist()

    def _tenprint_shortlists(self, probes: list[Probe], timings: dict, exclude: AbstractSet[str]
                             ) -> dict[int, list[int]]:
        """Stage 1 of a probe of several fingers: the ``tenprint_subjects`` subjects whose
        fingers collected the most votes over all probe fingers, then per probe finger every
        sample of those subjects that it voted for (probe index -> sample ids to re-rank).

        A subject's share from one probe finger is its best sample's votes over that
        finger's best votes (so each finger weighs the same, whatever its minutiae count).
        A chosen subject is compared exactly as with an unlimited shortlist (every voted
        sample), as the fused calibration measured, so its fused score is the same.
        """
        voted: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        fingers = []
        for p_i, probe in enumerate(probes):
            if probe.modality != "finger":
                continue
            sids, votes = self._finger_votes(probe, timings, self.tenprint_nprobe)
            t0 = time.perf_counter()
            subj, ok = self.hit_owners(probe, sids, exclude)
            voted[p_i] = (sids[ok], subj[ok])
            fingers.append((subj[ok], votes[ok]))
            timings["tenprint_preselect"] = timings.get("tenprint_preselect", 0.0) + (time.perf_counter() - t0) * 1e3
        t0 = time.perf_counter()
        chosen = preselect_subjects(fingers, self.tenprint_subjects)
        out = {p_i: sids[np.isin(subj, chosen)].tolist() for p_i, (sids, subj) in voted.items()}
        timings["tenprint_preselect"] = timings.get("tenprint_preselect", 0.0) + (time.perf_counter() - t0) * 1e3
        return out

    def _search_face(self, probe: Probe, timings: dict, exclude: AbstractSet[str] = frozenset()
                     ) -> tuple[list[int], np.ndarray]:
        idx = self.indexes.get("face")
        if idx is None or idx.ntotal == 0:
            return [], np.zeros(0)
        t0 = time.perf_counter()
        if idx.model and probe.template.model != idx.model:
            raise ProbeError(f"probe face template is from {probe.template.model}, the gallery's from {idx.model}")
        k = self.face_k
        if exclude:  # ask for as many more as the excluded subjects have faces
            faces = self._samples_by_name()["face"]
            k += sum(faces.get(n, 0) for n in exclude)
        s, i = idx.search(np.asarray(probe.template.embedding, np.float32)[None, :], min(k, idx.ntotal))
        owners = self.owners["face"]
        ok = np.array([x >= 0 and (not exclude or owners.get(x, (0, "", 0))[1] not in exclude)
                       for x in i[0].tolist()], bool)
        ids = i[0][ok].tolist()
        timings["face"] = timings.get("face", 0.0) + (time.perf_counter() - t0) * 1e3
        return ids, s[0][ok].astype(np.float64)

    # -- the search --------------------------------------------------------------------------
    def identify(self, probes: list[Probe] | Probe, top: int = 10,
                 exclude: AbstractSet[str] = frozenset()) -> SearchResult:
        """Search the gallery with one probe of one or more samples (one subject).

        Parameters
        ----------
        probes : Probe or list of Probe
            The samples of one subject (e.g. ten fingers and a face).
        top : int
            Candidates returned.
        exclude : set of str
            Names of subjects to search as if they were not enrolled (records the caller
            may not see): they take no shortlist place and no rank, and the gallery size
            behind the expected FPIR leaves them out.

        Raises
        ------
        ProbeError
            No probe sample was given.
        CalibrationError
            A probe modality's matcher has no usable calibration.
        """
        from matcher.fingerprint import compare

        if isinstance(probes, Probe):
            probes = [probes]
        timings: dict[str, float] = {}
        t_start = time.perf_counter()
        scored = self.subject_terms(probes, exclude, timings)
        best = scored.terms
        ranked = sorted(best.items(), key=lambda kv: (-sum(v.log_fmr for v in kv[1].values()),
                                                       -sum(v.raw for v in kv[1].values())))[:top]
        threshold = probe_threshold(self.fmr, probes)
        candidates = []
        for subj, per in ranked:
            ev = []
            for term in sorted(per.values(), key=lambda v: v.probe):
                p_i = term.probe
                pairs = compare(probes[p_i].template, term.template).pairs if term.template is not None else None
                ev.append(Evidence(p_i, term.sample_id, probes[p_i].modality, term.finger_position, term.raw,
                                   term.log_fmr, pairs))
            score = sum(e.log_fmr for e in ev)
            candidates.append(Candidate(scored.names[subj], subj, score, sum(e.score for e in ev), ev,
                                        None if threshold is None else bool(score >= threshold)))
        timings["total"] = (time.perf_counter() - t_start) * 1e3
        n_f = self.n_samples.get("finger", 0)
        penetration = {}
        if scored.finger_probes:
            penetration["finger"] = scored.reranked / (n_f * scored.finger_probes) if n_f else 0.0
        n_subjects = self.n_subjects
        if exclude:
            by_name = self._samples_by_name()
            n_subjects -= sum(1 for n in exclude if any(n in c for c in by_name.values()))
        return SearchResult(candidates, n_subjects, penetration, True, threshold, self.fmr,
                            expected_fpir(self.fmr, n_subjects), timings)

    def subject_terms(self, probes: list[Probe], exclude: AbstractSet[str] = frozenset(),
                      timings: dict | None = None) -> SubjectTerms:
        """Every fusion term of every subject the probe reached: the scoring step of :meth:`identify`.

        Each probe sample is searched (fingers: shortlist and re-rank; faces: the index);
        per subject and fusion term (:func:`~indexer.fusion.fusion_terms`) the best comparison is kept, its
        score on the common scale less ``log10 n`` for the best of ``n`` comparisons, floored
        at 0.  :meth:`identify` ranks these; the fused ten-print calibration
        (:mod:`benchmarks.tenprint_calibration`) measures their impostor sums through this
        same method.

        Raises
        ------
        ProbeError
            No probe sample, or one of an unknown modality.
        CalibrationError
            A probe modality's matcher has no usable calibration.
        """
        if not probes:
            raise ProbeError("a search needs at least one probe sample")
        timings = {} if timings is None else timings
        terms = fusion_terms(probes)
        best: dict[int, dict[object, tuple]] = {}
        compared: Counter = Counter()  # (subject, term) -> comparisons behind that term's best
        names: dict[int, str] = {}
        reranked = 0
        n_finger_probes = 0
        given = None
        if self.tenprint_subjects and sum(p.modality == "finger" for p in probes) > 1:
            given = self._tenprint_shortlists(probes, timings, exclude)
        for p_i, probe in enumerate(probes):
            if probe.modality == "finger":
                n_finger_probes += 1
                ids, raw, templates = self._search_finger(probe, timings, exclude,
                                                          None if given is None else given[p_i])
                reranked += len(ids)
                owners = self.owners["finger"]
            elif probe.modality == "face":
                ids, raw = self._search_face(probe, timings, exclude)
                templates = [None] * len(ids)
                owners = self.owners["face"]
            else:
                raise ProbeError(f"unknown modality {probe.modality!r}")
            if not ids:
                continue
            common = common_scale(probe.modality, raw, probe.template)
            for sid, r, c, t in zip(ids, raw, common, templates):
                if sid not in owners:
                    continue
                subj, name, pos = owners[sid]
                names[subj] = name
                per = best.setdefault(subj, {})
                cur = per.get(terms[p_i])
                compared[subj, terms[p_i]] += 1
                if cur is None or (c, r) > cur[:2]:
                    per[terms[p_i]] = (float(c), float(r), sid, pos, t, p_i)
        # the best of n comparisons is n times as likely to reach a score by chance (Bonferroni):
        # the term's -log10 FMR loses log10 n
        fused = {subj: {term: TermScore(max(c - math.log10(compared[subj, term]), 0.0), r, sid, pos, t, p_i,
                                        compared[subj, term])
                        for term, (c, r, sid, pos, t, p_i) in per.items()}
                 for subj, per in best.items()}
        return SubjectTerms(fused, names, len(set(terms.values())), reranked, n_finger_probes)


def probe_from_image(data: bytes, modality: str, *, finger_position: int = 0, ppi: float = 500.0,
                     label: str = "") -> Probe:
    """Extract a probe sample from image bytes.

    Raises
    ------
    matcher.errors.ImageError, matcher.errors.FailureToEnrol
        Bad bytes or no usable sample (fingerprint); :class:`ProbeError` when no face is found.
    """
    if modality == "finger":
        from matcher.fingerprint import extract

        return Probe("finger", extract(data, ppi=ppi), finger_position, label)
    if modality == "face":
        from matcher.face import extract

        r = extract(data)
        if not r.found:
            raise ProbeError(f"{label or 'probe'}: {r.message}")
        return Probe("face", r.template, 0, label)
    raise ProbeError(f"unknown modality {modality!r} (finger or face)")


__all__ = ["Candidate", "Evidence", "Probe", "SearchResult", "Searcher", "probe_from_image"]
