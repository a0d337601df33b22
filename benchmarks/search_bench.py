"""``locard bench search``: 1:N identification accuracy and speed through a real store.

Protocol (``benchmarks/README.md``, section Search):

- identities of DATASET are split in half by a seeded permutation; the gallery holds
  the first sample (``labels.csv`` order) of each identity of the first half;
- mated probes: every other sample of those identities; non-mated probes: every
  sample of the second half;
- ``--distractors DIR`` adds the first sample of every identity of another data set
  to the gallery only; ``--distractor-store STORE`` starts the gallery from a copy of a
  store ingested beforehand (``locard ingest``), every subject in it a distractor;
- the gallery is ingested into a fresh store (``indexer.ingest``, timed:
  ``ingest_per_s``); each probe is extracted once and then searched
  (``Searcher.identify``, timed without extraction: ``search_ms_*``).

A mated probe whose extraction fails counts as a miss at every rank (and for FNIR);
a non-mated probe whose extraction fails returns no candidate (not a false positive).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from indexer.ingest import SourceItem, ingest, scan_source, sha256_file
from indexer.search import Probe, Searcher
from indexer.store import DB_NAME, GalleryStore


def split_dataset(items: list[SourceItem], seed: int = 0):
    """Gallery (first sample of half the identities), mated and non-mated probes."""
    by_id: dict[str, list[SourceItem]] = {}
    for it in items:
        by_id.setdefault(it.identity, []).append(it)
    names = sorted(by_id)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(names))
    half = set(names[i] for i in order[: (len(names) + 1) // 2])
    gallery = [by_id[n][0] for n in names if n in half]
    mated = [s for n in names if n in half for s in by_id[n][1:]]
    nonmated = [s for n in names if n not in half for s in by_id[n]]
    return gallery, mated, nonmated


def _probe_templates(items: list[SourceItem], workers: int) -> list:
    """Decoded templates of the probes (``None`` where extraction failed)."""
    from indexer.ingest import extraction

    with extraction([(it, "", "sface") for it in items], workers) as results:
        res = list(results)
    out = []
    for e in res:
        if e.error:
            out.append(None)
        elif e.item.modality == "finger":
            from matcher.fingerprint import Template

            out.append(Template.from_bytes(e.template))
        else:
            from matcher.face import FaceTemplate

            out.append(FaceTemplate.from_bytes(e.template))
    return out


def fnir_at_fpir(mate_scores: np.ndarray, nonmated_top: np.ndarray, fpir: float) -> tuple[float, float]:
    """FNIR at the lowest threshold whose FPIR is at most ``fpir``.

    Parameters
    ----------
    mate_scores : (m,) array
        Score of the true subject in each mated search's candidate list (-inf when absent).
    nonmated_top : (n,) array
        Top candidate score of each non-mated search (-inf when no candidate).

    Returns
    -------
    fnir, threshold
    """
    s = np.sort(nonmated_top[np.isfinite(nonmated_top)])[::-1]
    n = len(nonmated_top)
    allowed = int(np.floor(fpir * n + 1e-9))  # non-mated searches that may reach the threshold
    if len(s) <= allowed:
        t = -np.inf
    else:
        t = float(np.nextafter(s[allowed], np.inf))  # strictly above the (allowed+1)-th highest
    return float(np.mean(~(mate_scores >= t))), t


def _rss_bytes() -> int | None:
    """Resident memory of this process now (Linux), for memory-per-finger figures."""
    try:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def open_gallery_store(store_path: str | None, distractor_store: str | None, identities: set[str],
                       dataset: str, echo, prefix: str):
    """The benchmark's gallery store: a new folder (temporary unless ``store_path``), started
    from a copy of ``distractor_store`` when given, whose subjects must not be ``identities``.

    Returns ``(store, path, tmp, distractor_subjects)``; ``tmp`` (a TemporaryDirectory or
    None) is the caller's to clean up.
    """
    tmp = None
    if store_path is None:
        tmp = tempfile.TemporaryDirectory(prefix=prefix)
        store_path = tmp.name
    if distractor_store:
        store_path = _copy_store(distractor_store, store_path, echo)
    store = GalleryStore(store_path, create=True)
    n_distr = 0
    if distractor_store:
        clash = {s.name for s in store.subjects()} & identities
        if clash:
            store.close()
            raise ValueError(f"{len(clash)} identities of {dataset} are already subjects of {distractor_store} "
                             f"(e.g. {sorted(clash)[0]!r}): distractors must be other people")
        n_distr = store.subject_count()
    return store, store_path, tmp, n_distr


def sample_probes(mated: list, nonmated: list, max_probes: int | None, seed: int) -> tuple[list, list]:
    """At most ``max_probes`` of each kind, a seeded sample in their original order."""
    if max_probes is None:
        return mated, nonmated
    rng = np.random.default_rng(seed + 1)

    def pick(xs: list) -> list:
        return [xs[i] for i in sorted(rng.choice(len(xs), min(max_probes, len(xs)), replace=False))]

    return pick(mated), pick(nonmated)


def _copy_store(source: str, into: str, echo) -> str:
    """Copy the store folder ``source`` to a new folder; safe while an ingest writes to it.

    The index files go first and the database after them through SQLite's backup API,
    so the copy's database is a consistent snapshot at least as new as its indexes
    (which then replay what they lack when opened).  Returns the copy's path: ``into``
    itself when it does not exist yet, else a ``gallery`` folder inside it.
    """
    import shutil
    import sqlite3

    src = Path(source)
    if not (src / DB_NAME).is_file():
        raise FileNotFoundError(f"{source} is not a store (no {DB_NAME})")
    dst = Path(into)
    if dst.exists():
        dst = dst / "gallery"
    dst.mkdir(parents=True)
    t0 = time.perf_counter()
    for f in src.iterdir():
        if f.is_file() and not f.name.startswith(DB_NAME):
            shutil.copy2(f, dst / f.name)
    with sqlite3.connect(src / DB_NAME) as a, sqlite3.connect(dst / DB_NAME) as b:
        a.backup(b)
    a.close()
    b.close()
    echo(f"copied distractor store {source} in {time.perf_counter() - t0:.0f} s")
    return str(dst)


def run(dataset: str, modality: str, *, distractors: str | None = None, json_path: str | None = None,
        seed: int = 0, workers: int = 1, shortlist: int | None = None, top: int = 10,
        store_path: str | None = None, exhaustive: bool = False, synthetic: int = 0, warm: bool = False,
        max_probes: int | None = None, factory: str | None = None, nprobe: int | list[int] | None = None,
        k_per_minutia: int | None = None, distractor_store: str | None = None, echo=print) -> dict:
    """Run the benchmark and return (and optionally write) the JSON report."""
    import faiss

    faiss.omp_set_num_threads(1)
    items = scan_source(dataset, modality)
    if not items:
        raise ValueError(f"{dataset} holds no images")
    gallery, mated, nonmated = split_dataset(items, seed)
    n_distr = 0
    if distractors:
        d_items = scan_source(distractors, modality)
        seen = set()
        for it in d_items:
            if it.identity not in seen:
                seen.add(it.identity)
                gallery.append(SourceItem(it.path, f"distractor:{Path(distractors).name}:{it.identity}", it.modality,
                                          it.finger_position, it.ppi, it.metadata))
        n_distr = len(seen)
    store, store_path, tmp, n_stored = open_gallery_store(store_path, distractor_store, {it.identity for it in items},
                                                          dataset, echo, "locard-bench-search-")
    n_distr += n_stored
    echo(f"ingesting {len(gallery)} gallery images ({n_distr} distractor identities) into {store_path}")
    rep = ingest(gallery, store, workers=workers)
    if factory:  # after the images: an inverted file needs the whole gallery to train on
        from indexer.faiss_index import set_factory

        set_factory(store, modality, factory)
    echo(f"  {rep.added} added, {rep.failed} failed in {rep.seconds:.1f} s ({rep.per_second:.2f}/s, {workers} worker(s))")
    mated, nonmated = sample_probes(mated, nonmated, max_probes, seed)
    probes = mated + nonmated
    echo(f"extracting {len(probes)} probes ({len(mated)} mated, {len(nonmated)} non-mated)")
    templates = _probe_templates(probes, workers)
    synth_templates: dict = {}
    synth_s = None
    if synthetic:
        from indexer.faiss_index import open_index

        model = ""
        if modality == "face":
            model = next(store.samples("face", with_templates=True)).template_version
        echo(f"adding {synthetic} synthetic {modality} distractors")
        real = None
        if modality == "face":  # distractors shaped like this data set's faces
            real = np.stack([t.embedding for t in templates if t is not None]
                            + [np.frombuffer(smp.template[-4 * 128:], "<f4") for smp in store.samples("face")])
            real = real if real.shape[1] == 128 else None
        synth_s, vectors, synth_templates = add_synthetic(store, modality, synthetic, model=model, real=real,
                                                          workers=workers, echo=echo)
        t0 = time.perf_counter()
        idx, action = open_index(store, modality, cache=vectors)
        echo(f"  index: {action}, {idx.ntotal} vectors, {idx.factory} {idx.params} in {time.perf_counter() - t0:.0f} s")
        vectors.clear()
    from indexer.search import DEFAULT_SHORTLIST

    from indexer.votes import DEFAULT_K_PER_MINUTIA

    searcher = Searcher(store, shortlist=shortlist or DEFAULT_SHORTLIST,
                        k_per_minutia=k_per_minutia or DEFAULT_K_PER_MINUTIA)
    sweep = [nprobe] if isinstance(nprobe, int) else list(nprobe or [])
    # the search-time knob: efSearch for HNSW, k_factor for re-scored codes, nprobe for inverted files
    factory_used = searcher.indexes[modality].factory if modality in searcher.indexes else ""
    knob = "efSearch" if "HNSW" in factory_used else "k_factor" if "RFlat" in factory_used else "nprobe"
    if sweep:
        searcher.indexes[modality].params[knob] = sweep[0]
        searcher.indexes[modality].apply_params()
    warm_memory = {}
    if warm and modality == "finger":
        t0 = time.perf_counter()
        rss0 = _rss_bytes()
        searcher.warm(synth_templates)
        rss1 = _rss_bytes()
        n_fingers = max(searcher.n_samples.get("finger", 0), 1)
        n_warm = max(len(searcher._templates), 1)
        warm_memory = {"warm_s": time.perf_counter() - t0, "warm_templates": len(searcher._templates),
                       "warm_array_bytes_per_finger": searcher.cache_bytes / n_fingers,
                       "warm_array_bytes_per_template": searcher.cache_bytes / n_warm,
                       "warm_rss_bytes_per_finger": (rss1 - rss0) / n_fingers if rss0 and not synth_templates else None}
        echo(f"  warmed {len(searcher._templates)} of {n_fingers} gallery templates in {warm_memory['warm_s']:.0f} s, "
             f"{searcher.cache_bytes / n_warm / 1e3:.1f} kB of arrays each, "
             f"{searcher.cache_bytes / n_fingers / 1e3:.2f} kB per enrolled finger")
    n_gal = store.count(modality)
    gallery_sha = {sha256_file(it.path) for it in gallery}

    misses: list[dict] = []

    def search_all(s: Searcher):
        misses.clear()
        ranks, mate_scores, nm_top, times, pens = [], [], [], [], []
        for it, t in zip(probes, templates):
            is_mated = id(it) in mated_set
            if t is None:
                if is_mated:
                    ranks.append(np.inf)
                    mate_scores.append(-np.inf)
                else:
                    nm_top.append(-np.inf)
                continue
            t0 = time.perf_counter()
            r = s.identify(Probe(modality, t, it.finger_position, str(it.path)), top=top)
            times.append((time.perf_counter() - t0) * 1e3)
            if modality in r.penetration:
                pens.append(r.penetration[modality])
            names = [c.subject for c in r.candidates]
            if is_mated:
                rank = names.index(it.identity) + 1 if it.identity in names else np.inf
                ranks.append(rank)
                if rank > 1:
                    misses.append({"probe": str(it.path), "rank": None if not np.isfinite(rank) else int(rank),
                                   "rank1_subject": names[0] if names else None})
                mate_scores.append(r.candidates[rank - 1].raw if np.isfinite(rank) else -np.inf)
            else:
                nm_top.append(r.candidates[0].raw if r.candidates else -np.inf)
        return (np.array(ranks, float), np.array(mate_scores, float), np.array(nm_top, float),
                np.array(times), np.array(pens) if pens else np.zeros(1))

    mated_set = {id(it) for it in mated}
    # warm-up (JIT compilation of the comparator) outside the timings
    first = next((t for t in templates if t is not None), None)
    if first is not None:
        searcher.identify(Probe(modality, first), top=1)
    ranks, mate_scores, nm_top, times, pens = search_all(searcher)
    fnir, thr = fnir_at_fpir(mate_scores, nm_top, 0.01)
    main_misses = list(misses)
    index_file = store.path / f"{modality}.index"
    report = {
        "dataset": str(dataset), "modality": modality, "distractors": distractors,
        "distractor_store": distractor_store, "seed": seed,
        "gallery_size": n_gal, "gallery_subjects": store.subject_count(), "distractor_identities": n_distr,
        "gallery_failed": rep.failed, "mated_probes": len(mated), "nonmated_probes": len(nonmated),
        "probe_failed": int(sum(t is None for t in templates)),
        "rank1": float(np.mean(ranks <= 1)) if len(ranks) else None,
        "rank10": float(np.mean(ranks <= 10)) if len(ranks) else None,
        "fnir_at_fpir_0.01": fnir, "threshold_at_fpir_0.01": thr,
        "fpir_resolution": 1.0 / max(len(nm_top), 1),
        "penetration": float(np.mean(pens)),
        "shortlist": searcher.shortlist if modality == "finger" else None,
        "k_per_minutia": searcher.k_per_minutia if modality == "finger" else None,
        "search_ms_p50": float(np.percentile(times, 50)) if len(times) else None,
        "search_ms_p95": float(np.percentile(times, 95)) if len(times) else None,
        "ingest_per_s": rep.per_second, "workers": workers,
        "index_factory": searcher.indexes[modality].factory if modality in searcher.indexes else None,
        "index_params": dict(searcher.indexes[modality].params) if modality in searcher.indexes else None,
        "index_bytes_per_sample": index_file.stat().st_size / n_gal if index_file.exists() and n_gal else None,
        "calibrated": bool(searcher.identify(Probe(modality, first), top=1).calibrated) if first is not None else None,
        "search_timing": "Searcher.identify only (probe extraction excluded), one thread, after one warm-up search",
        "mated_misses": main_misses,
    }
    recall = None
    if modality == "face" and synthetic:
        import faiss as _faiss

        idx = searcher.indexes["face"]
        allv, allid = [], []
        for smp in store.samples("face"):
            allv.append(np.frombuffer(smp.template[-4 * idx.dim:], "<f4"))
            allid.append(smp.id)
        exact = _faiss.IndexIDMap(_faiss.IndexFlatIP(idx.dim))
        exact.add_with_ids(np.stack(allv).astype(np.float32), np.array(allid, np.int64))
        del allv, allid
        q = np.stack([t.embedding for t in templates if t is not None]).astype(np.float32)
        _, e_ids = exact.search(q, 50)
        del exact

        def face_recall():
            t0 = time.perf_counter()
            _, a_ids = idx.search(q, 50)
            ms = (time.perf_counter() - t0) * 1e3 / len(q)
            return float(np.mean([len(set(a) & set(e)) / 50 for a, e in zip(a_ids.tolist(), e_ids.tolist())])), ms

        recall = face_recall
        report["recall_at_50_vs_exact"], report["faiss_ms_per_query"] = recall()
    if len(sweep) > 1:
        report["nprobe_sweep"] = []
        for npb in sweep[1:]:
            searcher.indexes[modality].params[knob] = npb
            searcher.indexes[modality].apply_params()
            r_, m_, n_, t_, p_ = search_all(searcher)
            report["nprobe_sweep"].append({
                knob: npb, "rank1": float(np.mean(r_ <= 1)), "rank10": float(np.mean(r_ <= 10)),
                "fnir_at_fpir_0.01": fnir_at_fpir(m_, n_, 0.01)[0],
                "search_ms_p50": float(np.percentile(t_, 50)), "search_ms_p95": float(np.percentile(t_, 95))})
            if recall is not None:
                r50, ms = recall()
                report["nprobe_sweep"][-1].update({"recall_at_50_vs_exact": r50, "faiss_ms_per_query": ms})
            echo(f"  {knob} {npb}: {report['nprobe_sweep'][-1]}")
        searcher.indexes[modality].params[knob] = sweep[0]
        searcher.indexes[modality].apply_params()
    report.update(warm_memory)
    report["synthetic_distractors"] = synthetic
    if synthetic:
        report["synthetic_insert_s"] = synth_s
        report["search_warm"] = bool(warm and modality == "finger")
    import resource

    report["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if exhaustive and modality == "finger":
        echo("re-ranking the whole gallery for every probe (rank1_exhaustive)")
        full = Searcher(store, shortlist=n_gal, k_per_minutia=64)

        from matcher.fingerprint import Template
        from matcher.fingerprint.comparison import compare_scores, pack_templates

        keep = list(full.owners["finger"])
        by_id = {**{smp.id: Template.from_bytes(smp.template) for smp in store.samples("finger")},
                 **synth_templates, **searcher._templates}  # cylinders computed already
        every = [by_id[s] for s in keep]
        del by_id
        packed = pack_templates(every)  # once: the gallery does not change between probes

        def all_samples(probe, timings, exclude=frozenset(), _keep=None):  # stage 1 skipped: every sample is re-ranked
            return keep, compare_scores(probe.template, packed, threads=os.cpu_count() or 1), every

        full._search_finger = all_samples
        probes, templates = mated, templates[: len(mated)]  # rank-1 needs the mated probes only
        r2, *_ = search_all(full)
        report["rank1_exhaustive"] = float(np.mean(r2 <= 1)) if len(r2) else None

    if gallery_sha & {sha256_file(it.path) for it in probes}:
        report["warning"] = "some probe images are byte-identical to gallery images"
    store.close()
    if tmp is not None:
        tmp.cleanup()
    if json_path:
        Path(json_path).write_text(json.dumps(report, indent=1))
    return report


# -- synthetic galleries for scale (templates and embeddings, not images) -----------------------
def synthetic_finger_template(rng: np.random.Generator):
    """A made-up fingerprint template with a plausible layout (not from an image).

    Minutiae: 15-60 points at least 10 px apart in an elliptical print area of a
    300 x 400 px (500 ppi) frame; directions follow a smooth field (a core term, half
    the angle around a random centre, plus a random low-frequency term), flipped by
    pi at random (ridge endings and bifurcations point either way along the flow).
    A distractor for scale tests: it shares nothing with any real finger.
    """
    from matcher.fingerprint import MINUTIA_DTYPE, Template
    from matcher.fingerprint.template import MASK_BLOCK

    w, h = 300, 400
    cx, cy = rng.uniform(110, 190), rng.uniform(150, 250)
    ax, ay = rng.uniform(100, 145), rng.uniform(140, 195)
    n = int(np.clip(rng.normal(36, 9), 15, 60))
    pts = []
    while len(pts) < n:
        x, y = rng.uniform(0, w, 64), rng.uniform(0, h, 64)
        inside = ((x - cx) / ax) ** 2 + ((y - cy) / ay) ** 2 < 0.92
        for px, py in zip(x[inside], y[inside]):
            if all((px - qx) ** 2 + (py - qy) ** 2 >= 100 for qx, qy in pts):
                pts.append((px, py))
                if len(pts) == n:
                    break
    p = np.array(pts)
    kx, ky = rng.uniform(cx - 40, cx + 40), rng.uniform(cy - 80, cy + 20)
    f1, f2, ph = rng.uniform(0.004, 0.012), rng.uniform(0.004, 0.012), rng.uniform(0, 2 * np.pi, 2)
    flow = (0.5 * np.arctan2(p[:, 1] - ky, p[:, 0] - kx) + 0.4 * np.sin(f1 * p[:, 0] + ph[0])
            + 0.4 * np.cos(f2 * p[:, 1] + ph[1]) + rng.uniform(0, np.pi))
    direction = np.mod(flow + np.pi * rng.integers(0, 2, n) + rng.normal(0, 0.08, n), 2 * np.pi)
    m = np.zeros(n, MINUTIA_DTYPE)
    m["x"], m["y"], m["direction"] = p[:, 0], p[:, 1], direction
    m["type"] = rng.integers(1, 3, n)
    m["quality"] = rng.integers(40, 95, n)
    rows, cols = -(-h // MASK_BLOCK), -(-w // MASK_BLOCK)
    yy, xx = (np.mgrid[0:rows, 0:cols] + 0.5) * MASK_BLOCK
    mask = ((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2 < 1.0
    return Template(minutiae=m, width=w, height=h, quality=int(rng.integers(40, 90)), mask=mask)


def synthetic_face_embeddings(n: int, dim: int, rng: np.random.Generator, decay: float = 0.5,
                              real: np.ndarray | None = None) -> np.ndarray:
    """Made-up unit embeddings.

    With ``real`` (embeddings of real faces, rows), drawn from the Gaussian with their
    mean and covariance, then normalised: distractors that occupy the same region of
    the sphere as real faces (what an inverted file's lists are trained on).  Without,
    an anisotropic spectrum (variance of component i ~ (i+1)^-decay) in a random rotation.
    """
    out = np.empty((n, dim), np.float32)
    if real is not None and len(real) > dim:
        real = np.asarray(real, np.float64)
        mean = real.mean(0)
        chol = np.linalg.cholesky(np.cov(real, rowvar=False) + 1e-6 * np.eye(dim))
        for i in range(0, n, 100_000):
            z = rng.normal(size=(min(100_000, n - i), dim)) @ chol.T + mean
            out[i:i + len(z)] = (z / np.linalg.norm(z, axis=1, keepdims=True)).astype(np.float32)
        return out
    scale = (np.arange(dim) + 1.0) ** (-decay / 2)
    q, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
    for i in range(0, n, 100_000):
        z = rng.normal(size=(min(100_000, n - i), dim)) * scale
        v = (z @ q).astype(np.float32)
        out[i:i + len(v)] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def _synthetic_finger(seed_index: tuple[int, int]) -> tuple[bytes, np.ndarray]:
    """Synthetic finger ``i`` of ``seed``: its stored bytes (cohort statistics measured, as
    enrolment does) and its index vectors.  One stream per finger, so the set does not depend
    on how many processes made it."""
    from indexer.faiss_index import finger_codes
    from matcher.fingerprint import Template, cohort_stats

    t = synthetic_finger_template(np.random.default_rng(seed_index))
    cohort_stats(t)  # stored with the template (else measured again at every re-read)
    blob = t.to_bytes()
    return blob, finger_codes(Template.from_bytes(blob))  # the stored template's (rounded positions)


def add_synthetic(store: GalleryStore, modality: str, n: int, *, seed: int = 12345, model: str = "",
                  dim: int = 128, real: np.ndarray | None = None, workers: int = 1,
                  echo=print) -> tuple[float, dict, dict]:
    """Add ``n`` synthetic distractor subjects (one sample each) straight into the store.

    Fingers are made by ``workers`` processes (the cohort statistics, ~30 ms a finger,
    dominate); SQLite inserts stay in this process.

    Returns
    -------
    seconds : float
        Generation, descriptors and SQLite inserts.
    vectors : dict
        ``sample id -> index vectors`` (to build the index without recomputing them).
    templates : dict
        Fingers: ``sample id -> Template`` (to warm a searcher).
    """
    import hashlib
    from concurrent.futures import ProcessPoolExecutor

    from indexer.store import NewSample

    t0 = time.perf_counter()
    vectors, templates = {}, {}
    pool = None
    if modality == "face":
        from matcher.face import FaceTemplate

        emb = synthetic_face_embeddings(n, dim, rng=np.random.default_rng(seed), real=real)
        made = ((FaceTemplate(model, emb[i], 70).to_bytes(), emb[i][None, :]) for i in range(n))
        version = model
    else:
        from matcher.fingerprint import FORMAT_VERSION, MATCHER_VERSION

        tasks = ((seed, i) for i in range(n))
        if workers > 1:
            import multiprocessing

            pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
            made = pool.map(_synthetic_finger, tasks, chunksize=64)
        else:
            made = map(_synthetic_finger, tasks)
        version = f"LCFP{FORMAT_VERSION}/{MATCHER_VERSION}"
    batch, objs = [], []
    try:
        for i, (blob, vec) in enumerate(made):
            objs.append((blob, vec))
            batch.append(NewSample(subject=f"synthetic:{i:07d}", modality=modality, template=blob,
                                   template_version=version, quality=70,
                                   sha256=hashlib.sha256(b"synthetic" + blob).hexdigest(), source="synthetic"))
            if len(batch) == 5000 or i == n - 1:
                ids = store.add_samples(batch, encounter_source="synthetic")
                for sid, (b, v) in zip(ids, objs):
                    if sid is not None:
                        vectors[sid] = v
                        if modality == "finger":
                            from matcher.fingerprint import Template

                            templates[sid] = Template.from_bytes(b)
                batch, objs = [], []
                if (i + 1) % 50_000 == 0 or i == n - 1:
                    echo(f"  {i + 1} synthetic {modality} samples stored ({time.perf_counter() - t0:.0f} s)")
    finally:
        if pool is not None:
            pool.shutdown()
    return time.perf_counter() - t0, vectors, templates


def face_ann_scale(n: int = 1_000_000, queries: int = 300, ef_values=(512, 1024, 2048, 4096),
                   k_factors=(20, 40, 80), seed: int = 7, echo=print) -> dict:
    """FAISS alone: HNSW32 and re-scored fast-scan PQ against exact search on ``n`` synthetic unit vectors.

    Each query gets one planted mate (the query plus noise, cosine ~0.74) among the
    distractors.  Reports, per efSearch, recall@50 against exact inner-product search,
    how often the mate comes first, and single-query latency (one thread); the same per
    ``k_factor`` for ``PQ64x4fs,RFlat`` (the size rule's choice for large face galleries).
    ``python -m benchmarks.search_bench [N]`` prints it as JSON.
    """
    import faiss

    faiss.omp_set_num_threads(1)
    rng = np.random.default_rng(seed)
    x = synthetic_face_embeddings(n, 128, rng)
    q = x[:queries].copy()
    m = q + rng.normal(size=q.shape).astype(np.float32) * 0.08
    x[:queries] = m / np.linalg.norm(m, axis=1, keepdims=True)
    out: dict = {"n": n, "queries": queries}
    exact = faiss.IndexFlatIP(128)
    exact.add(x)
    _, e_ids = exact.search(q, 50)
    ts = []
    for i in range(min(20, queries)):
        t0 = time.perf_counter()
        exact.search(q[i:i + 1], 50)
        ts.append((time.perf_counter() - t0) * 1e3)
    out["flat_ms_p50"] = float(np.median(ts))
    out["exact_mate_rank1"] = float(np.mean(e_ids[:, 0] == np.arange(queries)))
    del exact

    def sweep(idx, name, values, setter):
        for v in values:
            setter(idx, v)
            ts, got = [], []
            for i in range(queries):
                t0 = time.perf_counter()
                _, a = idx.search(q[i:i + 1], 50)
                ts.append((time.perf_counter() - t0) * 1e3)
                got.append(a[0])
            out[f"{name}{v}"] = {
                "recall_at_50": float(np.mean([len(set(a) & set(e)) / 50 for a, e in zip(got, e_ids.tolist())])),
                "mate_rank1": float(np.mean([a[0] == i for i, a in enumerate(got)])),
                "ms_p50": float(np.median(ts)), "ms_p95": float(np.percentile(ts, 95))}
            echo(f"{name} {v}: {out[f'{name}{v}']}")

    idx = faiss.index_factory(128, "HNSW32", faiss.METRIC_INNER_PRODUCT)
    t0 = time.perf_counter()
    idx.add(x)
    out["hnsw32_build_s"] = time.perf_counter() - t0
    sweep(idx, "ef", ef_values, lambda i, v: setattr(i.hnsw, "efSearch", v))
    del idx
    idx = faiss.index_factory(128, "PQ64x4fs,RFlat", faiss.METRIC_INNER_PRODUCT)
    t0 = time.perf_counter()
    idx.train(x[:100_000])
    idx.add(x)
    out["pq64x4fs_rflat_build_s"] = time.perf_counter() - t0
    sweep(idx, "k_factor", k_factors, lambda i, v: setattr(i, "k_factor", v))
    return out


if __name__ == "__main__":
    import sys

    print(json.dumps(face_ann_scale(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000), indent=1))
