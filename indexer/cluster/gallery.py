"""The sharded gallery: one gallery over several locard stores, each held by a Ray actor.

:class:`ClusterGallery` is the coordinator a command or the service uses: it reads
``cluster.json`` (:mod:`indexer.cluster.config`), finds or starts one named, detached
actor per shard (:class:`indexer.cluster.shard.Shard`; Ray restarts a dead one, on any
node with room, from its store on disk), routes each subject to its shard by the hash
ring, fans searches out to every shard in two phases and merges them
(:mod:`indexer.cluster.merge`).

- Writes (ingest, enrolment) are acknowledged only when the shard returns, i.e. after
  its store committed; a shard that does not answer raises
  :class:`~indexer.errors.ShardUnavailableError` naming what was not acknowledged.
- A search waits ``timeout_s`` at most; a shard that failed or did not answer is named
  in the result's ``missing`` and the result says ``complete: False``.
- :meth:`ClusterGallery.add_shard` rebalances online (see its docstring).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import groupby
from pathlib import Path

from ..errors import ClusterError, ProbeError, ShardUnavailableError
from ..ingest import SourceItem, scan_source
from ..ingest_report import IngestReport
from ..search import (DEFAULT_FACE_K, DEFAULT_SHORTLIST, DEFAULT_TENPRINT_NPROBE, DEFAULT_TENPRINT_SUBJECTS, Probe,
                      SearchResult)
from ..votes import DEFAULT_K_PER_MINUTIA
from ..store import NewSample
from .config import ClusterConfig, ShardSpec, config_path, new_config, read_config, write_config
from .merge import face_shortlist, finger_shortlist, merge_candidates, split_key, tenprint_shortlists
from .shard import StaleEpochError

NAMESPACE = "locard"
#: Times a search is planned again when a shard refused it as planned under an older epoch.
STALE_RETRIES = 3


@lru_cache(maxsize=1)
def _ray():
    try:
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # else Ray 2.60 writes ~/.ray/auth_token
        import ray
    except ImportError as exc:
        raise ClusterError("the sharded gallery needs Ray: pip install 'locard[cluster]'") from exc
    return ray


@lru_cache(maxsize=1)
def _actor_class():
    from .shard import Shard

    # no task retries: a call that dies with its actor is reported (missing / not acknowledged)
    return _ray().remote(max_restarts=-1, max_task_retries=0)(Shard)


@dataclass
class ClusterSearchResult(SearchResult):
    """A :class:`SearchResult` over the whole sharded gallery.

    Attributes
    ----------
    complete : bool
        Every shard answered.  When False, ``candidates`` come from the shards that did,
        and ``missing`` names the others.
    missing : dict
        Shard name -> why it is missing (error or timeout).
    shards : dict
        Subject name of each candidate -> the shard that holds it.
    """

    complete: bool = True
    missing: dict = field(default_factory=dict)
    shards: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        d = super().as_dict()
        d.update(complete=self.complete, missing_shards=self.missing)
        for c in d["candidates"]:
            c["shard"] = self.shards.get(c["subject"])
        return d


class ClusterGallery:
    """Coordinator of a sharded gallery.

    Parameters
    ----------
    root : path
        Cluster folder (``cluster.json``, shard stores under ``shards/``), reachable at the
        same path from every node that runs a shard.
    address : str, optional
        Ray cluster address (``HOST:PORT`` of ``ray start --head``, or ``auto``); None
        uses the Ray this process already joined, else starts a local one.
    shards : int, optional
        Create ``cluster.json`` with this many shards when the folder has none.
    cpus : float
        CPUs each new shard's actor reserves (a node runs as many shards as it has CPUs).
    timeout_s : float
        How long a search waits for the shards (each phase's deadline is shared).
    write_timeout_s : float
        How long a write waits for its shard's acknowledgement.
    shortlist, k_per_minutia, face_k, tenprint_subjects : int
    tenprint_nprobe : int or None
        Stage-1 settings over the whole gallery (as :class:`~indexer.search.Searcher`'s).
    """

    def __init__(self, root: str | Path, address: str | None = None, *, shards: int | None = None,
                 cpus: float = 1.0, timeout_s: float = 30.0, write_timeout_s: float = 300.0,
                 shortlist: int = DEFAULT_SHORTLIST, k_per_minutia: int = DEFAULT_K_PER_MINUTIA,
                 face_k: int = DEFAULT_FACE_K, tenprint_subjects: int = DEFAULT_TENPRINT_SUBJECTS,
                 tenprint_nprobe: int | None = DEFAULT_TENPRINT_NPROBE):
        ray = _ray()
        self.root = Path(root).resolve()
        if not config_path(self.root).exists():
            if shards is None:
                read_config(self.root)  # raises, saying how to create one
            write_config(self.root, new_config(shards, cpus=cpus))
        self.config = read_config(self.root)
        self._mtime = config_path(self.root).stat().st_mtime_ns
        self.timeout_s, self.write_timeout_s = timeout_s, write_timeout_s
        self.shortlist, self.k_per_minutia, self.face_k = shortlist, k_per_minutia, face_k
        self.tenprint_subjects, self.tenprint_nprobe = tenprint_subjects, tenprint_nprobe
        self._subjects: dict[str, int] = {}  # last count seen per shard (stands in while one is missing)
        if not ray.is_initialized():
            try:
                ray.init(address=address, namespace=NAMESPACE, logging_level=logging.ERROR, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ClusterError(f"cannot join the Ray cluster at {address}: {exc}") from exc
        self._actors: dict[str, object] = {}

    # -- configuration and actors --------------------------------------------------------------
    def refresh_config(self, force: bool = False) -> ClusterConfig:
        """Re-read ``cluster.json`` when another process changed it (a rebalance), or always with ``force``."""
        m = config_path(self.root).stat().st_mtime_ns
        if force or m != self._mtime:
            self.config, self._mtime = read_config(self.root), m
        return self.config

    def save_config(self, config: ClusterConfig) -> None:
        write_config(self.root, config)
        self.config, self._mtime = config, config_path(self.root).stat().st_mtime_ns

    def actor(self, name: str):
        """The shard's actor: found by name, or started (``get_if_exists``: two coordinators start one)."""
        a = self._actors.get(name)
        if a is None:
            spec = self.config.shard(name)
            a = _actor_class().options(
                name=f"locard-{self.config.cluster_id}-{name}", namespace=NAMESPACE, lifetime="detached",
                get_if_exists=True, num_cpus=spec.cpus,
            ).remote(name, str(self.config.store_path(self.root, name)))
            self._actors[name] = a
        return a

    def _gather(self, refs: dict[str, object], deadline: float, missing: dict[str, str],
                stale: set[str] | None = None) -> dict[str, object]:
        """Results of one call per shard by ``deadline``; failures and latecomers go to ``missing``.

        Errors raised by locard code in a shard (a bad probe) are raised here; only the
        shard's unavailability makes it missing, and so does a :class:`StaleEpochError`
        (its shard also goes to ``stale``)."""
        ray = _ray()
        from ray.exceptions import GetTimeoutError, RayError, RayTaskError

        ready, _ = ray.wait(list(refs.values()), num_returns=len(refs), timeout=max(deadline - time.monotonic(), 0))
        ready = set(ready)
        out = {}
        for name, ref in refs.items():
            if ref not in ready:
                missing[name] = f"no answer within {self.timeout_s:g} s"
                continue
            try:
                out[name] = ray.get(ref)
            except RayTaskError as exc:
                cause = exc.as_instanceof_cause()
                if isinstance(cause, StaleEpochError) and stale is not None:
                    stale.add(name)
                elif isinstance(cause, (ProbeError, ClusterError)) or not isinstance(cause, RayError):
                    raise cause from None
                missing[name] = f"{type(cause).__name__}: {str(cause)[:200]}"
            except (RayError, GetTimeoutError) as exc:
                missing[name] = f"{type(exc).__name__}: {str(exc)[:200]}"
        return out

    def _call_all(self, method: str, *args, timeout_s: float | None = None,
                  shards: Iterable[ShardSpec] | None = None) -> tuple[dict[str, object], dict[str, str]]:
        missing: dict[str, str] = {}
        refs = {s.name: getattr(self.actor(s.name), method).remote(*args)
                for s in (self.config.active if shards is None else shards)}
        deadline = time.monotonic() + (self.timeout_s if timeout_s is None else timeout_s)
        return self._gather(refs, deadline, missing), missing

    def status(self) -> dict[str, dict]:
        """Per shard: its counts, node and start time (:meth:`Shard.info`), or ``{"missing": why}``."""
        self.refresh_config()
        got, missing = self._call_all("info", shards=self.config.shards)
        return {s.name: {**got.get(s.name, {"missing": missing.get(s.name)}), "state": s.state}
                for s in self.config.shards}

    # -- writing -------------------------------------------------------------------------------
    def acknowledged(self, refs: list[tuple[str, object, int]]) -> list[object]:
        """Wait for writes; raise :class:`ShardUnavailableError` naming what was not acknowledged."""
        ray = _ray()
        from ray.exceptions import RayError, RayTaskError

        deadline = time.monotonic() + self.write_timeout_s
        out, lost = [], {}
        for name, ref, n in refs:
            try:
                out.append(ray.get(ref, timeout=max(deadline - time.monotonic(), 0.01)))
            except RayTaskError as exc:
                cause = exc.as_instanceof_cause()
                if not isinstance(cause, RayError):
                    raise cause from None
                lost[name] = lost.get(name, 0) + n
            except RayError:
                lost[name] = lost.get(name, 0) + n
        if lost:
            raise ShardUnavailableError(
                "not acknowledged (the shard is down or restarting; write again, stored samples are skipped): "
                + ", ".join(f"{n} item(s) for shard {s}" for s, n in sorted(lost.items())))
        return out

    def ingest(self, source: str | Path | list[SourceItem], *, modality: str | None = None, chunk: int = 16,
               actor: dict | None = None, progress: Callable[[int, int], None] | None = None) -> IngestReport:
        """:func:`indexer.ingest.ingest` on the shards: each item goes to its subject's shard.

        Items are sent in chunks of about ``chunk`` (a transaction's records stay in one);
        each shard extracts and commits its own, in parallel across shards.  The image
        paths must be readable at the same path on the shards' nodes.  With ``actor``
        (who runs it, e.g. :func:`indexer.audit.os_actor`), each chunk is recorded in its
        shard's audit log.

        Raises
        ------
        ShardUnavailableError
            A chunk was not acknowledged (the others are stored; running the ingest again
            skips them).
        """
        t0 = time.perf_counter()
        self.refresh_config()
        items = source if isinstance(source, list) else scan_source(source, modality)
        ring = self.config.ring()
        routed: dict[str, list[SourceItem]] = {}
        for it in items:
            routed.setdefault(ring.owner(it.identity), []).append(it)
        refs = []
        for name, its in routed.items():
            for part in _chunks(its, chunk):
                refs.append((name, self.actor(name).ingest.remote(part, actor), len(part)))
        total = IngestReport(total=len(items))
        done = 0
        ray = _ray()
        pending = [r for _, r, _ in refs]
        while progress and pending:  # progress as chunks land; acknowledged then collects
            ready, pending = ray.wait(pending, num_returns=1, timeout=self.write_timeout_s)
            if not ready:
                break
            done += next(n for _, r, n in refs if r == ready[0])
            progress(done, len(items))
        for rep in self.acknowledged(refs):
            total.added += rep.added
            total.skipped += rep.skipped
            total.failed += rep.failed
            total.set_aside += rep.set_aside
            total.index_actions.update(rep.index_actions)
            if rep.error_report:
                total.error_report = rep.error_report  # the last one; each shard writes its own
        total.seconds = time.perf_counter() - t0
        return total

    def add_samples(self, samples: list[NewSample], encounter_source: str = "") -> list[int | None]:
        """Store samples on their subjects' shards; returns once every shard committed.

        Returns
        -------
        list of int or None
            Local sample ids on their shard (None: already stored), in input order.
        """
        self.refresh_config()
        ring = self.config.ring()
        by_shard: dict[str, list[int]] = {}
        for i, s in enumerate(samples):
            by_shard.setdefault(ring.owner(s.subject), []).append(i)
        refs = [(name, self.actor(name).add_samples.remote([samples[i] for i in idx], encounter_source), len(idx))
                for name, idx in by_shard.items()]
        out: list[int | None] = [None] * len(samples)
        for (name, _, _), ids in zip(refs, self.acknowledged(refs)):
            for i, sid in zip(by_shard[name], ids):
                out[i] = sid
        return out

    # -- search --------------------------------------------------------------------------------
    def identify(self, probes: list[Probe] | Probe, top: int = 10, fmr: float = 1e-3,
                 exclude: AbstractSet[str] = frozenset()) -> ClusterSearchResult:
        """One search (:meth:`indexer.search.Searcher.identify` over the whole gallery)."""
        return self.identify_batch([[probes] if isinstance(probes, Probe) else list(probes)], top, fmr, exclude)[0]

    def identify_batch(self, searches: list[list[Probe]], top: int = 10, fmr: float = 1e-3,
                       exclude: AbstractSet[str] = frozenset()) -> list[ClusterSearchResult]:
        """Several searches in two round trips to each shard.

        Each result equals what one store holding all the shards' subjects would answer
        (:mod:`indexer.cluster.merge` says where ties may differ), unless a shard is
        missing: then ``complete`` is False and ``missing`` names it.  A search that a
        rebalance overtook (a shard deleted the subjects it moved before this search's
        phase reached it, :class:`StaleEpochError`) is planned again under the new
        ``cluster.json``, up to :data:`STALE_RETRIES` times, then answered incomplete.
        """
        if any(not s for s in searches):
            raise ProbeError("a search needs at least one probe sample")
        t0 = time.perf_counter()
        for attempt in range(STALE_RETRIES + 1):
            stale: set[str] = set()
            results = self._identify_at(self.refresh_config(force=attempt > 0), searches, top, fmr, exclude, t0, stale)
            if not stale:
                break
        return results

    def _identify_at(self, config: ClusterConfig, searches: list[list[Probe]], top: int, fmr: float,
                     exclude: AbstractSet[str], t0: float, stale: set[str]) -> list[ClusterSearchResult]:
        """:meth:`identify_batch` planned under ``config``; shards that refuse it as stale go to ``stale``."""
        ring = config.ring()
        slots = {s.name: i for i, s in enumerate(config.shards)}
        names = {i: n for n, i in slots.items()}
        deadline = time.monotonic() + self.timeout_s
        missing: dict[str, str] = {}
        exclude = frozenset(exclude)
        k_face = self.face_k
        if exclude and any(p.modality == "face" for s in searches for p in s):
            # one store asks for as many more faces as the excluded subjects have
            got = self._gather({s.name: self.actor(s.name).excluded_faces.remote(exclude) for s in config.active},
                               deadline, missing)
            k_face += sum(got.values())
        nprobe = self.tenprint_nprobe if self.tenprint_subjects else None
        phase1 = self._gather({s.name: self.actor(s.name).neighbours.remote(
            searches, self.k_per_minutia, k_face, exclude, ring, config.epoch, nprobe)
            for s in config.active if s.name not in missing}, deadline, missing, stale)
        t1 = time.perf_counter()
        n_finger = sum(n for n, _ in phase1.values())
        phase1 = {name: hits for name, (_, hits) in phase1.items()}
        given = {name: [{} for _ in searches] for name in phase1}
        reranked = [0] * len(searches)
        for q, probes in enumerate(searches):
            fingers = {p: [(slots[n], hits[q][p]) for n, hits in phase1.items() if hits[q][p] is not None]
                       for p, probe in enumerate(probes) if probe.modality == "finger"}
            if self.tenprint_subjects and len(fingers) > 1:  # as one store's Searcher does
                lists = tenprint_shortlists(fingers, self.k_per_minutia, self.tenprint_subjects)
            else:
                lists = {p: finger_shortlist(parts, self.k_per_minutia, self.shortlist) for p, parts in fingers.items()}
            for p, keys in lists.items():
                reranked[q] += len(keys)
                for key in keys:
                    slot, sid = split_key(key)
                    given[names[slot]][q].setdefault(p, []).append(sid)
            for p, probe in enumerate(probes):
                parts = [(slots[n], hits[q][p]) for n, hits in phase1.items() if hits[q][p] is not None]
                if probe.modality == "face":
                    for key, sim in face_shortlist(parts, k_face):
                        slot, sid = split_key(key)
                        ids, sims = given[names[slot]][q].setdefault(p, ([], []))
                        ids.append(sid)
                        sims.append(sim)
        t2 = time.perf_counter()
        phase2 = self._gather({n: self.actor(n).identify.remote(
            searches, given[n], top, fmr, exclude, ring, config.epoch) for n in phase1}, deadline, missing, stale)
        t3 = time.perf_counter()
        return [self._merged(config, q, searches[q], phase2, reranked[q], n_finger, top, fmr, missing,
                             {"phase1": (t1 - t0) * 1e3, "merge": (t2 - t1) * 1e3, "phase2": (t3 - t2) * 1e3,
                              "total": (time.perf_counter() - t0) * 1e3})
                for q in range(len(searches))]

    def _merged(self, config: ClusterConfig, q: int, probes: list[Probe], phase2: dict[str, list[SearchResult]],
                reranked: int, n_finger: int, top: int, fmr: float, missing: dict[str, str],
                timings: dict) -> ClusterSearchResult:
        from ..fusion import expected_fpir

        for name, results in phase2.items():
            self._subjects[name] = results[q].gallery_subjects
        # the search's own config: self.config may be a newer epoch by now (one more shard)
        n_subjects = sum(self._subjects.get(s.name, 0) for s in config.active)
        merged = merge_candidates([(n, r[q].candidates) for n, r in phase2.items()], top)
        n_fp = sum(p.modality == "finger" for p in probes)
        penetration = {"finger": reranked / (n_finger * n_fp) if n_finger else 0.0} if n_fp else {}
        # the threshold depends on the probe only: every shard computed the same one
        threshold = next((r[q].threshold for r in phase2.values()), None)
        return ClusterSearchResult(
            [c for _, c in merged], n_subjects, penetration, True, threshold, fmr,
            expected_fpir(fmr, n_subjects), timings, complete=not missing, missing=dict(missing),
            shards={c.subject: n for n, c in merged})

    # -- rebalancing ---------------------------------------------------------------------------
    def add_shard(self, *, cpus: float | None = None, batch: int = 32,
                  progress: Callable[[str], None] | None = None) -> dict:
        """Add a shard and move its subjects to it, online (:func:`indexer.cluster.rebalance.add_shard`)."""
        from .rebalance import add_shard

        return add_shard(self, cpus=cpus, batch=batch, progress=progress)

    def stop(self) -> None:
        """End the shard actors (the stores stay; the next use starts them again)."""
        ray = _ray()
        for s in self.config.shards:
            try:
                ray.kill(ray.get_actor(f"locard-{self.config.cluster_id}-{s.name}", namespace=NAMESPACE))
            except ValueError:  # not running
                pass
        self._actors.clear()


def _chunks(items: list[SourceItem], size: int) -> list[list[SourceItem]]:
    """Consecutive chunks of about ``size`` items; a transaction's records are never split."""
    out: list[list[SourceItem]] = []
    for _, group in groupby(items, key=lambda it: (it.path, it.record is not None) if it.record is not None else id(it)):
        group = list(group)
        if not out or len(out[-1]) + len(group) > size and out[-1]:
            out.append([])
        out[-1].extend(group)
    return out
