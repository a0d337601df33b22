"""Parallel driver: masters and impressions to a folder ``locard bench`` can read.

Layout written under ``OUT``::

    images/<identity>_<impression>.png      8-bit gray, 500 ppi
    groundtruth/<identity>_<impression>.json minutiae, cores, deltas, transform
    labels.csv                              file, identity, class, impression, ppi, groundtruth

Determinism: every identity draws from its own ``numpy.random.SeedSequence(seed,
spawn_key=(MASTER_KEY, i))`` and every impression from ``(IMPRESSION_KEY, i, j)``,
and the class of each identity comes from a fixed quota shuffled by ``(CLASS_KEY,)``,
so the bytes written do not depend on the number of workers or their order.
"""

from __future__ import annotations

import csv
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from . import PPI
from .groundtruth import write_groundtruth
from .impression import Impression, make_impression
from .master import make_master
from .orientation import CLASSES, NATURAL_DISTRIBUTION

MASTER_KEY, IMPRESSION_KEY, CLASS_KEY = 0, 1, 2
#: PNG compression level (0-9): zlib's default; 9 was measured no smaller (74 KB) on these images.
PNG_COMPRESSION = 6
LABEL_COLUMNS = ("file", "identity", "class", "impression", "ppi", "groundtruth")


def parse_distribution(text: str) -> dict[str, float]:
    """Class distribution from the command line.

    ``"natural"`` gives :data:`.orientation.NATURAL_DISTRIBUTION`; otherwise
    ``"whorl=1,arch=2"``-style weights, normalised, unnamed classes 0.
    """
    if text.strip().lower() == "natural":
        return dict(NATURAL_DISTRIBUTION)
    weights: dict[str, float] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        name, _, value = part.partition("=")
        name = name.strip().lower().replace("-", "_").replace(" ", "_")
        if name not in CLASSES:
            raise ValueError(f"unknown class {name!r} in {text!r}; classes: {', '.join(CLASSES)}")
        weights[name] = float(value) if value.strip() else 1.0
    total = sum(weights.values())
    if total <= 0 or any(v < 0 for v in weights.values()):
        raise ValueError(f"class weights must be non-negative with a positive sum: {text!r}")
    return {k: weights.get(k, 0.0) / total for k in CLASSES}


def class_plan(n: int, distribution: dict[str, float], seed: int) -> list[str]:
    """Class of each of ``n`` identities: exact quotas (largest remainder), shuffled.

    Quotas rather than independent draws, so a requested 30 % of whorls is 30 % of
    the identities, not 30 % on average.
    """
    names = [c for c in CLASSES if distribution.get(c, 0) > 0]
    share = np.array([distribution[c] for c in names], np.float64)
    share /= share.sum()
    exact = share * n
    counts = np.floor(exact).astype(np.int64)
    # Hand the identities lost to rounding to the largest remainders (ties: class order).
    order = np.argsort(-(exact - counts), kind="stable")
    counts[order[: n - int(counts.sum())]] += 1
    plan = np.repeat(np.array(names), counts)
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(CLASS_KEY,)))
    return [str(c) for c in rng.permutation(plan)]


def identity_name(index: int, total: int) -> str:
    """Zero-padded identity label (1-based), at least 4 digits so names sort."""
    return f"{index + 1:0{max(4, len(str(total)))}d}"


def master_rng(seed: int, index: int) -> np.random.Generator:
    """Random generator of the master of identity ``index``."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(MASTER_KEY, index)))


def impression_rng(seed: int, index: int, impression: int) -> np.random.Generator:
    """Random generator of impression ``impression`` (1-based) of identity ``index``."""
    return np.random.default_rng(
        np.random.SeedSequence(seed, spawn_key=(IMPRESSION_KEY, index, impression)))


@dataclass(frozen=True)
class IdentityTask:
    """Everything a worker needs to write one identity (picklable)."""

    out: str
    seed: int
    index: int
    total: int
    kind: str
    impressions: int


def _stems(task: IdentityTask) -> list[str]:
    name = identity_name(task.index, task.total)
    return [f"{name}_{j}" for j in range(1, task.impressions + 1)]


def label_rows(task: IdentityTask) -> list[dict[str, str]]:
    """The ``labels.csv`` rows of one identity (they depend on the task alone)."""
    name = identity_name(task.index, task.total)
    return [{"file": f"images/{stem}.png", "identity": name, "class": task.kind, "impression": str(j),
             "ppi": str(PPI), "groundtruth": f"groundtruth/{stem}.json"}
            for j, stem in enumerate(_stems(task), start=1)]


def is_written(task: IdentityTask) -> bool:
    """Whether every image and ground-truth file of the identity is already there."""
    out = Path(task.out)
    return all((out / "images" / f"{s}.png").is_file() and (out / "groundtruth" / f"{s}.json").is_file()
               for s in _stems(task))


def _write_atomic(path: Path, data: bytes) -> None:
    # write then rename: a run killed mid-write leaves no truncated file for --resume to trust
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def write_impression(out: Path, stem: str, labels: dict, imp: Impression, master_minutiae: int,
                     seed: int) -> None:
    """Write ``images/<stem>.png`` and ``groundtruth/<stem>.json`` of one impression (atomically).

    ``labels`` lead the ground-truth document (file, identity, class, impression, ppi,
    ...); the image size and ``seed`` follow, then the press's geometry and the minutiae.
    """
    ok, png = cv2.imencode(".png", imp.image, [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    if not ok:
        raise RuntimeError(f"PNG encoding failed for {stem}")
    _write_atomic(out / "images" / f"{stem}.png", png.tobytes())
    t = imp.transform
    header = {**labels, "width": int(imp.image.shape[1]), "height": int(imp.image.shape[0]), "seed": seed}
    extra = {
        "cores": np.round(imp.cores, 2).tolist(),
        "deltas": np.round(imp.deltas, 2).tolist(),
        "pressure": round(imp.press.pressure, 3),
        "transform": {"rotation": round(t.angle, 4), "pivot": [round(v, 2) for v in t.pivot],
                      "target": [round(v, 2) for v in t.target],
                      "drag": [round(v, 2) for v in t.drag], "twist": round(t.twist, 4)},
        "master_minutiae": master_minutiae,
    }
    gt = out / "groundtruth" / f"{stem}.json"
    write_groundtruth(gt.with_name(gt.name + ".part"), header, imp.minutiae, extra)
    os.replace(gt.with_name(gt.name + ".part"), gt)


def write_identity(task: IdentityTask) -> list[dict[str, str]]:
    """Generate one master and its impressions, write them; the ``labels.csv`` rows."""
    out = Path(task.out)
    name = identity_name(task.index, task.total)
    master = make_master(task.kind, master_rng(task.seed, task.index))
    for j, stem in enumerate(_stems(task), start=1):
        imp = make_impression(master, impression_rng(task.seed, task.index, j))
        labels = {"file": f"images/{stem}.png", "identity": name, "class": task.kind, "impression": j, "ppi": PPI}
        write_impression(out, stem, labels, imp, len(master.minutiae), task.seed)
    return label_rows(task)


def _init_worker() -> None:
    # One OpenCV thread per process: the processes already fill the cores.
    cv2.setNumThreads(1)


def run_tasks(work, tasks: list, images: list[int], workers: int, progress: bool,
              title: str) -> tuple[int, float, int]:
    """Run ``work(task)`` for every task in worker processes, with a progress bar.

    ``images[i]`` is how many images task ``i`` writes (for the bar and the count).
    Returns ``(images written, seconds, workers used)``; ``workers`` 0 means one per CPU.
    """
    workers = workers or os.cpu_count() or 1
    workers = max(1, min(workers, len(tasks) or 1))
    start = time.perf_counter()
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    with Progress(TextColumn(f"[bold]{title}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("images"), TimeElapsedColumn(), TimeRemainingColumn(),
                  disable=not progress) as bar:
        job = bar.add_task("images", total=sum(images))
        if workers == 1:
            _init_worker()
            for task, n in zip(tasks, images):
                work(task)
                bar.advance(job, n)
        else:
            with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker) as pool:
                chunk = max(1, min(16, len(tasks) // (8 * workers)))
                for _, n in zip(pool.map(work, tasks, chunksize=chunk), images):
                    bar.advance(job, n)
    return sum(images), time.perf_counter() - start, workers


@dataclass(frozen=True)
class Summary:
    """What a run wrote and how fast."""

    out: Path
    identities: int
    images: int
    seconds: float
    workers: int

    @property
    def images_per_second(self) -> float:
        return self.images / self.seconds if self.seconds > 0 else float("inf")


def generate(out: str | Path, identities: int, impressions: int, seed: int = 0,
             workers: int = 0, distribution: dict[str, float] | None = None,
             progress: bool = True, part: tuple[int, int] | None = None, resume: bool = False) -> Summary:
    """Write a synthetic fingerprint set to ``out`` (see the module docstring).

    Parameters
    ----------
    out : path
        Output folder (created; existing files of the same names are overwritten).
    identities, impressions : int
        Number of fingers and of impressions per finger.
    seed : int
        Master seed; the output is a function of ``seed`` (and the counts) only.
    workers : int
        Processes; 0 means one per CPU.
    distribution : dict, optional
        Class shares (see :func:`parse_distribution`); natural frequencies by default.
    progress : bool
        Show a progress bar.
    part : (int, int), optional
        Write only identities ``start <= i < stop`` (0-based) of the ``identities``-finger
        set: the same bytes and names as the whole run, so a large set can be made in
        slices (several folders, runs or machines) and ingested as each lands.
    resume : bool
        Keep identities whose files are all there (from an interrupted run of the same
        seed and counts) instead of generating them again.
    """
    if identities < 1 or impressions < 1:
        raise ValueError("need at least one identity and one impression")
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "groundtruth").mkdir(parents=True, exist_ok=True)
    first, stop = part or (0, identities)
    if not 0 <= first < stop <= identities:
        raise ValueError(f"part {first}:{stop} is not a non-empty slice of 0:{identities}")
    kinds = class_plan(identities, distribution or NATURAL_DISTRIBUTION, seed)
    tasks = [IdentityTask(str(out), seed, i, identities, kinds[i], impressions) for i in range(first, stop)]
    todo = [t for t in tasks if not (resume and is_written(t))]
    images, seconds, workers = run_tasks(write_identity, todo, [impressions] * len(todo), workers, progress,
                                         "synth fingerprints")

    with (out / "labels.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=LABEL_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for task in tasks:  # identity order, kept and new alike
            writer.writerows(label_rows(task))
    return Summary(out, len(todo), images, seconds, workers)
