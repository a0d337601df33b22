"""``locard bench fingerprint``: FVC-style verification accuracy and speed.

Protocol
--------
* Every image of the data set is enrolled once (``extract(data, ppi)``, with the
  ``ppi`` column of ``labels.csv``; 500 when absent).  An image whose extraction
  raises :class:`~matcher.errors.FailureToEnrol` or an
  :class:`~matcher.errors.ImageError` counts in ``failure_to_enrol``.
* Every genuine pair (two impressions of one identity) and every impostor pair
  (two images of different identities) is compared once, ``compare(a, b)`` with
  ``a`` the image listed first in ``labels.csv`` (:func:`benchmarks.datasets.all_pairs`).
  For FVC2002 B sets: 280 genuine and 2,880 impostor pairs.
* A pair that touches a failed enrolment is not compared: it is scored as a
  non-match, with the score ``min(0, lowest score the system gave)``, so it
  counts as a false non-match for a genuine pair and as a correct rejection for
  an impostor pair at every threshold above it (the FVC convention).
* EER (FVC's midpoint of the crossing bracket), FMR100, FMR1000 and ZeroFMR
  (lowest FNMR at FMR <= 1 %, 0.1 %, 0 %) come from :mod:`benchmarks.metrics`;
  all are fractions 0-1.
* Speed is CPU time on one core: ``OMP_NUM_THREADS``, ``NUMBA_NUM_THREADS`` and
  friends are set to 1 and ``cv2.setNumThreads(1)`` before the matchers load, and
  each call is timed with :func:`time.process_time` (CPU seconds of the process,
  so other programs' time is not counted; they can still slow it, see below).  ``extract_ms_median`` is
  the median over successful extractions (for locard including the cylinders and
  pair geometry the comparator needs, computed once per template at enrolment); ``compare_per_s`` is
  comparisons per CPU second, one ``compare(a, b)`` call per pair.  Both are measured after
  every system has enrolled and scored, with the systems taking turns: ``TIMING_ROUNDS``
  rounds, in each every system extracts images for ``EXTRACT_WINDOW_S`` CPU seconds, then
  (a second set of rounds) compares pairs for ``COMPARE_WINDOW_S``, going on through a fixed
  random order of the images and pairs it enrolled; ``extract_ms_median`` is the median
  of every timed extraction, ``compare_per_s`` the median of the rounds' rates.  Taking
  turns puts every system under the same conditions: on a shared machine other programs
  slow a process's CPU time too (caches, memory bus, the host's other guests), by up to
  2 x here over seconds, so figures taken minutes apart do not make a fair ratio.
  ``extract_ms_median_one_pass`` and ``compare_per_s_one_pass`` are the enrolment's and the
  scoring pass's own (every image, every pair, once; for a peer read from the cache, the
  only ones unless its cached run was timed in turns).
  For locard, ``compare_per_s_1n`` also times the 1:N re-ranking path (every
  template searched against all enrolled templates with ``compare_scores``), which
  is what a search pays per candidate.

Peers (``--peers``) run the same protocol on the same images; see
:mod:`benchmarks.peers`.  Their templates and scores are cached on disk (see
:class:`BenchCache`), keyed by the peer's version and the bytes of every image, so
a second run costs nothing; locard's own matcher is never cached.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

#: Environment that pins numerical libraries to one thread (set before they load).
SINGLE_THREAD_ENV = {
    "OMP_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}

#: Keys every per-system block of the JSON report carries.
REPORT_KEYS = (
    "images", "identities", "failure_to_enrol", "genuine_pairs", "impostor_pairs",
    "eer", "fmr100", "fmr1000", "zero_fmr", "extract_ms_median", "compare_per_s",
)

PROTOCOL = (
    "all genuine and all impostor pairs (i<j, compared once); a pair touching a failed "
    "enrolment is scored min(0, lowest score) as a non-match; EER = FVC midpoint; "
    "FMR100/FMR1000/ZeroFMR = lowest FNMR at FMR <= 1%/0.1%/0; rates are fractions; "
    "times are CPU time on one thread"
)


def limit_threads() -> None:
    """Pin OpenMP/BLAS/numba/OpenCV to one thread.  Call before importing matchers."""
    for k, v in SINGLE_THREAD_ENV.items():
        os.environ.setdefault(k, v)
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover - cv2 is a core dependency
        pass


class LocardSystem:
    """locard's own fingerprint matcher (:mod:`matcher.fingerprint`), driven through the same
    interface as the peers (:class:`benchmarks.peers.Peer`)."""

    name = "locard"
    #: Peers crash softly (counted as failures to enrol) and are cached; locard is not.
    is_peer = False

    def __init__(self, mode: str | None = None) -> None:
        """``mode``: extraction mode of :func:`matcher.fingerprint.extract` (None: its default)."""
        from matcher import fingerprint as fp

        if not (hasattr(fp, "extract") and hasattr(fp, "compare")):
            raise ImportError("matcher.fingerprint has no extract/compare yet")
        self._fp = fp
        self.mode = mode
        self.label = "locard" if mode is None else f"locard (mode={mode})"
        self.version = str(
            getattr(fp, "__version__", None) or getattr(fp, "MATCHER_VERSION", None)
            or getattr(fp, "TEMPLATE_VERSION", None) or "dev"
        )

    def template(self, data: bytes, ppi: float) -> Any:
        """``matcher.fingerprint.extract`` in this system's mode (not yet prepared for comparison)."""
        kw = {} if self.mode is None else {"mode": self.mode}
        return self._fp.extract(data, ppi=ppi, **kw)

    def extract(self, data: bytes, ppi: float) -> Any:
        from matcher.fingerprint import cohort_stats
        from matcher.fingerprint.comparison import prepare

        t = self.template(data, ppi)
        # cylinders and cohort statistics are enrolment work: timed with extraction, not with compare
        prepare(t)
        cohort_stats(t)
        return t

    def compare(self, a: Any, b: Any) -> float:
        return float(self._fp.compare(a, b).score)

    def one_to_many_rate(self, templates: list[Any]) -> float | None:
        """Comparisons per CPU second when each template is searched against all of them."""
        from matcher.fingerprint.comparison import compare_scores, pack_templates

        if len(templates) < 2:
            return None
        packed = pack_templates(templates)
        compare_scores(templates[0], packed)  # compiled and warm before timing
        t0 = time.process_time()
        for t in templates:
            compare_scores(t, packed)
        seconds = time.process_time() - t0
        return len(templates) ** 2 / seconds if seconds > 0 else None


class CrossFeedSystem:
    """locard's comparator on locard's template frame with another extractor's minutiae.

    Each image is extracted by locard (``mode``), which gives the print mask, quality
    and image size; its minutiae are then replaced by those of ``source``
    (:mod:`benchmarks.peers.minutiae_sources`), converted to locard's direction
    convention.  An EER difference between two cross-feeds is therefore the minutiae's
    alone.  The source's raw minutiae are cached on disk like a peer's templates
    (keyed by its version and the image bytes); locard's part never is, but it is
    extracted once per image for all the cross-feeds of a run.  Extraction times are
    whatever part was not cached or shared, so they are no speed figure.
    """

    is_peer = False
    #: Report block the harness files this system's results under.
    block = "cross_feed"

    def __init__(self, source: Any, direction: str | None = None, mode: str | None = None,
                 cache: "BenchCache | None" = None, frames: dict | None = None) -> None:
        """``frames``: a dict shared by cross-feeds of one run, so that each image's locard
        template frame is extracted once for all sources (keyed by image hash, ppi and mode)."""
        from benchmarks.peers.minutiae_sources import CONVERSIONS, DIRECTIONS

        self.source = source
        self.direction = direction or DIRECTIONS.get(source.name, "as-is")
        if self.direction not in CONVERSIONS:
            raise ValueError(f"unknown direction conversion {self.direction!r}; known: {', '.join(CONVERSIONS)}")
        self.frame = LocardSystem(mode)
        self.cache = cache
        self.frames = {} if frames is None else frames
        suffix = "" if direction is None else f" [{self.direction}]"
        self.name = f"locard+{source.name}" + suffix
        self.label = f"locard comparator, minutiae from {source.label}{suffix}"
        self.version = f"{self.frame.version}; {source.version}; {self.direction}"

    def extract(self, data: bytes, ppi: float) -> Any:
        from benchmarks.peers.minutiae_sources import cached_raw, to_locard
        from matcher.errors import FailureToEnrol
        from matcher.fingerprint import cohort_stats
        from matcher.fingerprint.comparison import prepare
        from matcher.fingerprint.pipeline import MIN_MINUTIAE
        from matcher.fingerprint.template import Template

        key = (_sha256(data), ppi, self.frame.mode)
        frame = self.frames.get(key)
        if frame is None:
            frame = self.frames[key] = self.frame.template(data, ppi)
        minutiae = to_locard(cached_raw(self.source, data, ppi, self.cache), self.direction)
        if len(minutiae) < MIN_MINUTIAE:
            raise FailureToEnrol(f"{self.source.name}: only {len(minutiae)} minutiae")
        # the frame's mode picks the cohort and calibration, as for the frame's own minutiae
        t = Template(minutiae=minutiae, width=frame.width, height=frame.height, quality=frame.quality,
                     mask=frame.mask, extractor=frame.extractor)
        prepare(t)
        cohort_stats(t)
        return t

    def compare(self, a: Any, b: Any) -> float:
        return self.frame.compare(a, b)


#: A minutia this close to the print mask's edge (or the image's), pixels at 500 ppi, is "near
#: the border": about two ridge periods, where ridges cut by the print's edge look like endings.
NEAR_BORDER_PX = 16.0


def border_distances(template: Any) -> "Any":
    """Distance of each minutia of a locard template to the edge of its print area, pixels.

    Outside the print area the distance is 0.  The image border counts as an edge.
    """
    import cv2
    import numpy as np

    from matcher.fingerprint.template import MASK_BLOCK

    cells = template.mask.astype(np.uint8)
    px = np.kron(cells, np.ones((MASK_BLOCK, MASK_BLOCK), np.uint8))[: template.height, : template.width]
    dist = cv2.distanceTransform(np.pad(px, 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    m = template.minutiae
    r = np.clip(np.round(m["y"]).astype(np.int64), 0, px.shape[0] - 1)
    c = np.clip(np.round(m["x"]).astype(np.int64), 0, px.shape[1] - 1)
    return dist[r, c]


def minutiae_diagnosis(system: Any, enrolment: "Enrolment", names: list[str], pairs: "Any",
                       genuine: "Any", worst: int = 10) -> dict[str, Any]:
    """Per image: minutiae count and share near the print's border; the lowest genuine pairs.

    Parameters
    ----------
    system : a system with locard templates (:class:`LocardSystem`, :class:`CrossFeedSystem`)
    enrolment : its templates on the data set
    names : file of each image, relative to the data set
    pairs : (G, 2) genuine pair indices; ``genuine`` their scores (NaN or the failure score
        for pairs that touch a failed enrolment)
    worst : how many of the lowest genuine pairs to list by file name

    Returns
    -------
    dict
        ``per_image`` (file, minutiae, shares near the border and outside the print area),
        ``genuine`` (every genuine pair as ``[i, j, score, paired]`` in pair order, image
        indices into ``per_image``; ``paired`` is the number of minutia pairs locard's
        comparator matched, at most its ``MAX_NP``; None for a pair that was not compared),
        ``lowest_genuine`` (the ``worst`` lowest of them, with file names and minutiae counts).
    """
    import numpy as np

    from matcher.fingerprint import compare

    per_image = []
    for name, t, ok in zip(names, enrolment.templates, enrolment.ok):
        if not ok:
            per_image.append({"file": name, "minutiae": None, "near_border": None, "outside_mask": None})
            continue
        d = border_distances(t)
        n = len(d)
        per_image.append({"file": name, "minutiae": n,
                          "near_border": round(float(np.mean(d < NEAR_BORDER_PX)), 4) if n else None,
                          "outside_mask": round(float(np.mean(d <= 0)), 4) if n else None})
    genuine = np.asarray(genuine, float)
    rows = []
    for (i, j), score in zip(pairs, genuine):
        i, j = int(i), int(j)
        paired = None
        if enrolment.ok[i] and enrolment.ok[j]:
            paired = int(len(compare(enrolment.templates[i], enrolment.templates[j]).pairs))
        rows.append([i, j, None if np.isnan(score) else round(float(score), 4), paired])
    lows = []
    # pairs touching a failed enrolment (NaN) are the worst of all
    for k in np.argsort(np.nan_to_num(genuine, nan=-np.inf), kind="stable")[:worst]:
        i, j, score, paired = rows[k]
        row = {"a": names[i], "b": names[j], "score": score}
        if paired is not None:
            row.update(minutiae_a=len(enrolment.templates[i]), minutiae_b=len(enrolment.templates[j]),
                       paired=paired)
        lows.append(row)
    counts = np.array([p["minutiae"] for p in per_image if p["minutiae"] is not None], float)
    border = np.array([p["near_border"] for p in per_image if p["near_border"] is not None], float)
    return {"minutiae_median": float(np.median(counts)) if len(counts) else None,
            "near_border_mean": float(np.mean(border)) if len(border) else None,
            "per_image": per_image, "genuine": rows, "lowest_genuine": lows}


# --------------------------------------------------------------------------- cache


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class BenchCache:
    """On-disk cache of peer templates and scores.

    Layout under ``root``::

        templates/<template_key>/<image sha256>-<ppi>.pkl   one extraction
        scores/<system>/<run key>.pkl                        one full run on a data set

    ``run key`` hashes the system's version and every image's bytes and ppi, so a
    changed image or peer version never reads a stale entry.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _read(self, path: Path) -> Any:
        try:
            with path.open("rb") as fh:
                return pickle.load(fh)
        except (OSError, pickle.UnpicklingError, EOFError):
            return None

    def _write(self, path: Path, obj: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        with tmp.open("wb") as fh:
            pickle.dump(obj, fh, protocol=4)
        tmp.replace(path)

    def template_path(self, key: str, sha: str, ppi: float) -> Path:
        return self.root / "templates" / key / f"{sha}-{ppi:g}.pkl"

    def get_template(self, key: str, sha: str, ppi: float) -> dict | None:
        return self._read(self.template_path(key, sha, ppi))

    def put_template(self, key: str, sha: str, ppi: float, entry: dict) -> None:
        self._write(self.template_path(key, sha, ppi), entry)

    def run_path(self, system: str, run_key: str) -> Path:
        return self.root / "scores" / system / f"{run_key}.pkl"

    def get_run(self, system: str, run_key: str) -> dict | None:
        return self._read(self.run_path(system, run_key))

    def put_run(self, system: str, run_key: str, entry: dict) -> None:
        self._write(self.run_path(system, run_key), entry)


def default_cache_dir() -> Path:
    from benchmarks.peers.afis_native import cache_root

    return cache_root() / "fingerprint-bench"


# --------------------------------------------------------------------------- running


@dataclass
class Enrolment:
    """Templates of one system on one data set."""

    templates: list[Any]
    ok: "Any"  # (n,) bool array
    extract_s: list[float]
    failures: list[dict[str, str]] = field(default_factory=list)


@dataclass
class SystemResult:
    """Scores and report of one system on one data set."""

    name: str
    label: str
    genuine: "Any"
    impostor: "Any"
    report: dict[str, Any]
    enrolment: Enrolment | None = None
    """The templates, when this run made them (not for a peer read from the cache)."""


def _is_peer(system: Any) -> bool:
    """Systems are peers unless they say ``is_peer = False`` (locard's matcher)."""
    return bool(getattr(system, "is_peer", True))


def _expected_failure(system: Any, exc: BaseException) -> bool:
    """Exceptions that count as a failure to enrol rather than a crash."""
    from matcher.errors import FailureToEnrol, ImageError

    if isinstance(exc, (FailureToEnrol, ImageError)):
        return True
    # A peer crashing on one image is that peer's failure to enrol, not ours.
    return _is_peer(system) and isinstance(exc, Exception)


def enrol_all(system: Any, images: list[bytes], shas: list[str], ppis: list[float],
              names: list[str], cache: BenchCache | None,
              memo: dict | None = None,
              progress: Callable[[int, int], None] | None = None) -> Enrolment:
    """Extract a template from every image, timing each (CPU seconds)."""
    import numpy as np

    tkey = getattr(system, "template_key", None)
    dumps = getattr(system, "dumps", None)
    loads = getattr(system, "loads", None)
    use_disk = cache is not None and tkey and dumps and loads and _is_peer(system)
    templates: list[Any] = []
    ok = np.zeros(len(images), dtype=bool)
    times: list[float] = []
    failures: list[dict[str, str]] = []
    for k, (data, sha, ppi, fname) in enumerate(zip(images, shas, ppis, names)):
        entry = None
        mkey = (tkey, sha, ppi)
        if memo is not None and tkey and mkey in memo:
            entry = memo[mkey]
        elif use_disk:
            cached = cache.get_template(tkey, sha, ppi)
            if cached is not None:
                entry = dict(cached)
                entry["template"] = loads(cached["template"]) if cached["ok"] else None
        if entry is None:
            t0 = time.process_time()
            try:
                tpl = system.extract(data, ppi)
                entry = {"ok": True, "template": tpl, "error": "", "seconds": time.process_time() - t0}
            except Exception as exc:  # noqa: BLE001 - sorted by _expected_failure
                if not _expected_failure(system, exc):
                    raise
                entry = {"ok": False, "template": None,
                         "error": f"{type(exc).__name__}: {exc}", "seconds": time.process_time() - t0}
            if use_disk:
                stored = dict(entry)
                stored["template"] = dumps(entry["template"]) if entry["ok"] else None
                cache.put_template(tkey, sha, ppi, stored)
        if memo is not None and tkey:
            memo[mkey] = entry
        templates.append(entry["template"])
        ok[k] = entry["ok"]
        if entry["ok"]:
            times.append(float(entry["seconds"]))
        else:
            failures.append({"file": fname, "error": entry["error"]})
        if progress:
            progress(k + 1, len(images))
    return Enrolment(templates, ok, times, failures)


def score_pairs(system: Any, enrolment: Enrolment, pairs: "Any",
                progress: Callable[[int, int], None] | None = None) -> tuple["Any", float, int]:
    """Compare every pair whose two images enrolled.

    Returns ``(scores, cpu_seconds, n_compared)``; pairs with a failed image get NaN.
    """
    import numpy as np

    scores = np.full(len(pairs), np.nan)
    total = 0.0
    n = 0
    tpl = enrolment.templates
    for k, (i, j) in enumerate(pairs):
        if enrolment.ok[i] and enrolment.ok[j]:
            t0 = time.process_time()
            s = system.compare(tpl[i], tpl[j])
            total += time.process_time() - t0
            scores[k] = float(s)
            n += 1
        if progress and (k % 50 == 0 or k + 1 == len(pairs)):
            progress(k + 1, len(pairs))
    return scores, total, n


#: Rounds, and CPU seconds per system and round, of the timing in turns (module docstring).
TIMING_ROUNDS, COMPARE_WINDOW_S, EXTRACT_WINDOW_S = 5, 0.25, 2.0


def take_turns(jobs: list[Callable[[int], Any]], window: float) -> list[list[list[float]]]:
    """Call each job on 0, 1, 2, ... in turns: ``TIMING_ROUNDS`` rounds, in each every job
    for ``window`` CPU seconds (at least once), going on where its last round stopped.

    Returns, per job and round, the CPU seconds of each call.
    """
    times: list[list[list[float]]] = [[] for _ in jobs]
    done = [0] * len(jobs)
    for _ in range(TIMING_ROUNDS):
        for k, job in enumerate(jobs):
            got: list[float] = []
            spent = 0.0
            while not got or spent < window:
                t0 = time.process_time()
                job(done[k] + len(got))
                got.append(time.process_time() - t0)
                spent += got[-1]
            times[k].append(got)
            done[k] += len(got)
    return times


def timed_in_turns(timed: list[tuple[Any, Enrolment]], images: list[bytes], ppis: list[float],
                   pairs: "Any") -> list[dict[str, float]]:
    """``compare_per_s`` and ``extract_ms_median`` of each ``(system, enrolment)``, the systems
    taking turns (module docstring) on what each enrolled: a fixed random order of its
    enrolled images and of the pairs of those."""
    import numpy as np

    pairs = np.asarray(pairs)
    keep, extract_jobs, compare_jobs = [], [], []
    for k, (system, enr) in enumerate(timed):
        ok = np.asarray(enr.ok)
        if ok.sum() < 2 or not len(pairs):  # no enrolled pair to time
            continue
        rng = np.random.default_rng(0)
        imgs = rng.permutation(np.flatnonzero(ok))
        usable = rng.permutation(pairs[ok[pairs[:, 0]] & ok[pairs[:, 1]]])
        keep.append(k)
        extract_jobs.append(lambda n, s=system, o=imgs: s.extract(images[o[n % len(o)]], ppis[o[n % len(o)]]))
        compare_jobs.append(lambda n, s=system, o=usable, t=enr.templates:
                            s.compare(t[o[n % len(o)][0]], t[o[n % len(o)][1]]))
    out: list[dict[str, float]] = [{} for _ in timed]
    if not keep or TIMING_ROUNDS < 1:
        return out
    ext = take_turns(extract_jobs, EXTRACT_WINDOW_S)
    cmp_ = take_turns(compare_jobs, COMPARE_WINDOW_S)
    for e, c, k in zip(ext, cmp_, keep):
        out[k] = {"extract_ms_median": float(np.median(np.concatenate(e)) * 1000),
                  "compare_per_s": float(np.median([len(r) / sum(r) for r in c if sum(r) > 0]))}
    return out


def fill_failed(genuine: "Any", impostor: "Any") -> tuple["Any", "Any", float]:
    """Replace NaN (pairs touching a failed enrolment) by ``min(0, lowest score)``."""
    import numpy as np

    both = np.concatenate([genuine, impostor])
    real = both[~np.isnan(both)]
    fail = float(min(0.0, real.min())) if len(real) else 0.0
    return np.where(np.isnan(genuine), fail, genuine), np.where(np.isnan(impostor), fail, impostor), fail


def _ppis(dataset: Any) -> list[float]:
    return [float(s.ppi) if s.ppi else 500.0 for s in dataset.samples]


def _run_key(system: Any, shas: list[str], ppis: list[float]) -> str:
    h = hashlib.sha256()
    h.update(f"{system.name}\n{system.version}\n".encode())
    for s, p in zip(shas, ppis):
        h.update(f"{s} {p:g}\n".encode())
    return h.hexdigest()[:32]


def run_system(system: Any, dataset: Any, images: list[bytes], shas: list[str],
               cache: BenchCache | None = None, memo: dict | None = None,
               progress: Callable[[str, int, int], None] | None = None,
               diagnose: bool = False) -> SystemResult:
    """Enrol every image of ``dataset`` with ``system`` and score every pair.

    ``diagnose``: for locard templates (not peers), add :func:`minutiae_diagnosis` to the
    report under ``diagnosis``.
    """
    import numpy as np

    from benchmarks.datasets import all_pairs
    from benchmarks.metrics import verification_report

    ppis = _ppis(dataset)
    names = [str(s.path.relative_to(dataset.root)) for s in dataset.samples]
    labels = dataset.identity_codes()
    gen_idx, imp_idx = all_pairs(labels)

    run_key = _run_key(system, shas, ppis)
    diagnosis = None
    cached = cache.get_run(system.name, run_key) if (cache and _is_peer(system)) else None
    if cached is not None:
        ok, extract_s, failures = cached["ok"], cached["extract_s"], cached["failures"]
        g_raw, i_raw, cmp_s, n_cmp = cached["genuine"], cached["impostor"], cached["compare_s"], cached["n_compared"]
        speed = cached.get("speed", {})  # timed in turns when the run was made
        from_cache = True
        enr = None
        rate_1n = None
    else:
        cb = (lambda d, t: progress(f"{system.name}: extract", d, t)) if progress else None
        enr = enrol_all(system, images, shas, ppis, names, cache, memo, cb)
        cb = (lambda d, t: progress(f"{system.name}: compare", d, t)) if progress else None
        both = np.concatenate([gen_idx, imp_idx])
        scores, cmp_s, n_cmp = score_pairs(system, enr, both, cb)
        speed = {}  # bench_dataset times it again, in turns
        g_raw, i_raw = scores[: len(gen_idx)], scores[len(gen_idx):]
        ok, extract_s, failures = enr.ok, enr.extract_s, enr.failures
        from_cache = False
        rate_1n = (system.one_to_many_rate([t for t, k in zip(enr.templates, enr.ok) if k])
                   if hasattr(system, "one_to_many_rate") else None)
        if diagnose and not _is_peer(system):
            diagnosis = minutiae_diagnosis(system, enr, names, gen_idx, g_raw)
            # where a genuine score must reach to count as a match at FMR 1 %
            diagnosis["impostor_p99"] = float(np.nanpercentile(i_raw, 99)) if np.isfinite(i_raw).any() else None
        if cache is not None and _is_peer(system):
            cache.put_run(system.name, run_key, {
                "ok": ok, "extract_s": extract_s, "failures": failures, "genuine": g_raw,
                "impostor": i_raw, "compare_s": cmp_s, "n_compared": n_cmp,
            })
    genuine, impostor, fail_score = fill_failed(np.asarray(g_raw), np.asarray(i_raw))
    report: dict[str, Any] = {
        "system": system.name,
        "label": system.label,
        "version": system.version,
        "images": len(dataset.samples),
        "identities": len(dataset.identities),
        "failure_to_enrol": int((~np.asarray(ok)).sum()),
        "failures": failures,
        "genuine_pairs": int(len(gen_idx)),
        "impostor_pairs": int(len(imp_idx)),
        "pairs_not_compared": int(len(gen_idx) + len(imp_idx) - n_cmp),
        "failed_pair_score": fail_score,
    }
    report.update(verification_report(genuine, impostor))
    report["extract_ms_median_one_pass"] = float(np.median(extract_s) * 1000) if len(extract_s) else None
    report["extract_ms_mean"] = float(np.mean(extract_s) * 1000) if len(extract_s) else None
    report["compare_per_s_one_pass"] = float(n_cmp / cmp_s) if cmp_s > 0 else None
    # the figures timed in turns replace these (bench_dataset); kept where there are none
    report["extract_ms_median"] = speed.get("extract_ms_median", report["extract_ms_median_one_pass"])
    report["compare_per_s"] = speed.get("compare_per_s", report["compare_per_s_one_pass"])
    if rate_1n is not None:
        # the 1:N re-ranking path: one probe against every enrolled template, in one call
        report["compare_per_s_1n"] = rate_1n
    report["cached"] = from_cache
    if diagnosis is not None:
        report["diagnosis"] = diagnosis
    return SystemResult(system.name, system.label, genuine, impostor, report, enr)


def bench_dataset(path: str | Path, systems: list[Any], cache: BenchCache | None = None,
                  plots: str | Path | None = None, memo: dict | None = None,
                  skipped: dict[str, str] | None = None,
                  progress: Callable[[str, int, int], None] | None = None,
                  diagnose: bool = False) -> dict[str, Any]:
    """Run every system on one data set; return the JSON report (and write plots).

    locard's matcher (``is_peer = False``) fills the top-level keys; cross-feeds
    (:class:`CrossFeedSystem`) go under ``cross_feed`` and every peer under ``peers``.
    """
    import numpy as np

    from benchmarks.datasets import all_pairs, load_dataset

    ds = load_dataset(path)
    images = [s.path.read_bytes() for s in ds.samples]
    shas = [_sha256(b) for b in images]
    gen_idx, imp_idx = all_pairs(ds.identity_codes())
    out: dict[str, Any] = {
        "dataset": ds.name,
        "path": str(Path(path)),
        "protocol": PROTOCOL,
        "images": len(ds.samples),
        "identities": len(ds.identities),
        "genuine_pairs": int(len(gen_idx)),
        "impostor_pairs": int(len(imp_idx)),
        "ppi": sorted({float(s.ppi) if s.ppi else 500.0 for s in ds.samples}),
    }
    results: list[SystemResult] = []
    peers: dict[str, Any] = {}
    for system in systems:
        results.append(run_system(system, ds, images, shas, cache, memo, progress, diagnose))
    timed = [(system, r) for system, r in zip(systems, results) if r.enrolment is not None]
    both = np.concatenate([gen_idx, imp_idx])
    ppis = _ppis(ds)
    for (system, r), speed in zip(timed, timed_in_turns([(s, r.enrolment) for s, r in timed], images,
                                                        ppis, both)):
        r.report.update(speed)
        if speed and cache is not None and _is_peer(system):  # a cached run reports the same
            key = _run_key(system, shas, ppis)
            cache.put_run(system.name, key, {**cache.get_run(system.name, key), "speed": speed})
        r.enrolment = None  # the templates are not needed any more
    for system, r in zip(systems, results):
        if getattr(system, "block", None) == "cross_feed":
            out.setdefault("cross_feed", {})[system.name] = r.report
        elif not _is_peer(system):
            out.update(r.report)
        else:
            peers[system.name] = r.report
    if peers or skipped:
        out["peers"] = peers
    if skipped:
        out["peers_skipped"] = dict(skipped)
    if plots is not None:
        out["plots"] = write_plots(results, Path(plots), ds.name)
    out["_results"] = results
    return out


def write_plots(results: list[SystemResult], folder: Path, dataset: str) -> list[str]:
    """DET curve of every system on one plot, and one score histogram per system."""
    from benchmarks.plots import plot_det, plot_score_histograms

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    det = folder / f"det_{dataset}.png"
    plot_det({r.name: (r.genuine, r.impostor) for r in results}, det, title=f"DET, {dataset}")
    written.append(str(det))
    for r in results:
        p = folder / f"scores_{dataset}_{r.name}.png"
        plot_score_histograms(r.genuine, r.impostor, p, title=f"{r.label}, {dataset}")
        written.append(str(p))
    return written


# --------------------------------------------------------------------------- reporting


def system_blocks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``{system name: block}`` of one data set report: locard, its cross-feeds, the peers."""
    blocks: dict[str, dict[str, Any]] = {}
    if "eer" in report:
        blocks[report.get("system", "locard")] = report
    blocks.update(report.get("cross_feed", {}))
    blocks.update(report.get("peers", {}))
    return blocks


def mean_row(reports: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per system, the plain mean over data sets of each rate and speed figure."""
    import numpy as np

    keys = ("eer", "fmr100", "fmr1000", "zero_fmr", "extract_ms_median", "compare_per_s")
    per: dict[str, dict[str, list[float]]] = {}
    for rep in reports:
        for name, b in system_blocks(rep).items():
            for k in keys:
                if b.get(k) is not None:
                    per.setdefault(name, {}).setdefault(k, []).append(float(b[k]))
    return {n: {k: float(np.mean(v)) for k, v in d.items()} for n, d in per.items()}


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.2f}"


def _num(x: float | None, fmt: str) -> str:
    return "–" if x is None else format(x, fmt)


def rich_table(report: dict[str, Any]):
    """A :class:`rich.table.Table` of one data set: one row per system."""
    from rich.table import Table

    t = Table(title=f"{report['dataset']}: {report['images']} images, {report['identities']} identities, "
                    f"{report['genuine_pairs']} genuine + {report['impostor_pairs']} impostor pairs")
    t.add_column("system", no_wrap=True)
    for col in ("FTE", "EER%", "FMR100%", "FMR1000%", "ZeroFMR%", "extract ms", "compares/s", "1:N compares/s"):
        t.add_column(col, justify="right")
    for name, b in system_blocks(report).items():
        t.add_row(name, str(b["failure_to_enrol"]), _pct(b["eer"]), _pct(b["fmr100"]), _pct(b["fmr1000"]),
                  _pct(b["zero_fmr"]), _num(b["extract_ms_median"], ".0f"), _num(b["compare_per_s"], ",.0f"),
                  _num(b.get("compare_per_s_1n"), ",.0f"))
    return t


def markdown_tables(reports: list[dict[str, Any]]) -> str:
    """The README tables: EER % per data set (systems side by side, mean row), then
    every figure per system and data set."""
    names: list[str] = []
    for rep in reports:
        for n in system_blocks(rep):
            if n not in names:
                names.append(n)
    means = mean_row(reports)
    lines = ["| data set | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for rep in reports:
        b = system_blocks(rep)
        lines.append(f"| {rep['dataset']} | " + " | ".join(_pct(b[n]["eer"]) if n in b else "–" for n in names) + " |")
    if len(reports) > 1:
        lines.append("| **mean** | " + " | ".join(
            f"**{_pct(means.get(n, {}).get('eer'))}**" for n in names) + " |")
    lines += ["", "| system | data set | FTE | EER % | FMR100 % | FMR1000 % | ZeroFMR % | extract ms | compares/s "
                  "| 1:N compares/s |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for n in names:
        for rep in reports:
            b = system_blocks(rep).get(n)
            if b is None:
                continue
            lines.append(
                f"| {n} | {rep['dataset']} | {b['failure_to_enrol']} | {_pct(b['eer'])} | {_pct(b['fmr100'])} | "
                f"{_pct(b['fmr1000'])} | {_pct(b['zero_fmr'])} | {_num(b['extract_ms_median'], '.0f')} | "
                f"{_num(b['compare_per_s'], ',.0f')} | {_num(b.get('compare_per_s_1n'), ',.0f')} |")
    return "\n".join(lines) + "\n"


def _jsonable(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if not k.startswith("_")}


def json_document(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One data set: its report.  Several: ``{"datasets": [...], "mean": {...}}``."""
    if len(reports) == 1:
        return _jsonable(reports[0])
    return {"datasets": [_jsonable(r) for r in reports], "mean": mean_row(reports), "protocol": PROTOCOL}


def select_systems(peers: bool, peer_names: Iterable[str] | None, skip_locard: bool,
                   mode: str | None = None, minutiae_from: Iterable[str] | None = None,
                   minutiae_direction: str | None = None, cache: BenchCache | None = None,
                   ) -> tuple[list[Any], dict[str, str]]:
    """locard's matcher (unless skipped), one cross-feed per minutiae source, then the peers.

    Parameters
    ----------
    mode : locard's extraction mode (None: the default), also the cross-feeds' template frame
    minutiae_from : source names of :mod:`benchmarks.peers.minutiae_sources`; a source whose
        package is missing is skipped like a peer
    minutiae_direction : override the sources' direction conversion (to check a convention)
    cache : where the sources' raw minutiae are cached
    """
    from benchmarks.peers import PeerUnavailable

    systems: list[Any] = []
    skipped: dict[str, str] = {}
    if not skip_locard:
        systems.append(LocardSystem(mode))
    frames: dict = {}
    for src in minutiae_from or []:
        from benchmarks.peers.minutiae_sources import make_source

        try:
            systems.append(CrossFeedSystem(make_source(src), minutiae_direction, mode, cache, frames))
        except PeerUnavailable as exc:
            skipped[f"locard+{src}"] = str(exc)
    names = list(peer_names or [])
    if peers or names:
        from benchmarks.peers import make_peers

        ready, skipped = make_peers(names or None)
        systems.extend(ready)
    return systems, skipped


def calibration_from_reports(reports: list[dict[str, Any]]):
    """locard's :class:`~matcher.calibration.Calibration` from the impostor scores of these runs."""
    import numpy as np

    from matcher.calibration import Calibration
    from matcher.fingerprint import MATCHER_VERSION

    scores = [r.impostor for rep in reports for r in rep["_results"] if r.name == LocardSystem.name]
    if not scores:
        raise ValueError("no locard scores to calibrate on (was --skip-locard given?)")
    names = ", ".join(rep["dataset"] for rep in reports)
    return Calibration.from_impostor_scores(
        np.concatenate(scores), matcher="locard-fingerprint", version=MATCHER_VERSION,
        source=f"all impostor pairs of {names}; `locard bench fingerprint DATASET... --save-calibration FILE`")


def run(datasets: list[str], json_path: str | None = None, plots: str | None = None,
        peers: bool = False, peer_names: list[str] | None = None, skip_locard: bool = False,
        cache_dir: str | None = None, no_cache: bool = False, markdown: str | None = None,
        console: Any = None, save_calibration: str | None = None, mode: str | None = None,
        minutiae_from: list[str] | None = None, minutiae_direction: str | None = None,
        diagnose: bool = False) -> list[dict[str, Any]]:
    """What ``locard bench fingerprint`` does; returns one report per data set."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = console or Console()
    err = Console(stderr=True)
    if not err.is_terminal:  # logs and pipes: do not squeeze the table into 80 columns
        err = Console(stderr=True, width=120)
    cache = None if no_cache else BenchCache(cache_dir or default_cache_dir())
    systems, skipped = select_systems(peers, peer_names, skip_locard, mode, minutiae_from,
                                      minutiae_direction, cache)
    for n, why in skipped.items():
        err.print(f"[yellow]peer {n} skipped:[/] {why}")
    if not systems:
        raise ValueError("nothing to run: locard skipped and no peer available")
    memo: dict = {}
    reports = []
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=err, transient=True) as prog:
        task = prog.add_task("", total=1)

        def progress(what: str, done: int, total: int) -> None:
            prog.update(task, description=what, completed=done, total=total)

        for ds in datasets:
            pdir = None if plots is None else (Path(plots) / Path(ds).name if len(datasets) > 1 else Path(plots))
            rep = bench_dataset(ds, systems, cache, pdir, memo, skipped, progress,
                                diagnose or bool(minutiae_from))
            reports.append(rep)
            prog.console.print(rich_table(rep))
    if json_path:
        Path(json_path).parent.mkdir(parents=True, exist_ok=True)
        Path(json_path).write_text(json.dumps(json_document(reports), indent=2) + "\n")
    if save_calibration:
        cal = calibration_from_reports(reports)
        cal.save(save_calibration)
        err.print(f"calibration from {cal.n_impostors} impostor scores -> {save_calibration}")
    if markdown:
        md = markdown_tables(reports)
        if markdown == "-":
            console.print(md, markup=False, highlight=False, soft_wrap=True)
        else:
            Path(markdown).write_text(md)
    return reports
