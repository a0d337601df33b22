"""How hard a set is for the fingerprint matcher: EER and rank-1, synthetic beside real.

``locard bench fingerprint`` compares every pair, which a set of 1,000 fingers x 4
impressions (8 million pairs) makes too slow on this machine.  This module applies the
same matcher to sampled pairs instead:

* every image is enrolled once (``matcher.fingerprint.extract`` at the set's ppi); a
  failure to enrol makes each pair that touches it a non-match scored
  ``min(0, lowest score)`` (the FVC convention, as in the bench);
* genuine pairs: all of them; impostor pairs: all of them, or a seeded uniform sample
  of ``max_impostors`` when there are more;
* EER from :func:`benchmarks.metrics.eer` on those scores;
* rank-1: the gallery is the first impression of every finger, the probes every other
  image (or a seeded sample of ``max_probes``); a probe is a hit when its own finger
  scores highest over the whole gallery.  ``rank1_at_10`` repeats it with galleries
  of 10 fingers (the probe's own and 9 drawn at random), the size of an FVC B set,
  so synthetic and real figures can be read side by side.

Run ``python -m benchmarks.synth.difficulty SET [SET ...] --json FILE``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks.datasets import load_dataset
from benchmarks.metrics import eer

_TEMPLATES: list = []


def _enrol(job: tuple[str, float]):
    """Template bytes of one image, or None on failure to enrol (worker)."""
    from matcher import fingerprint as fp
    from matcher.errors import FailureToEnrol, ImageError

    path, ppi = job
    try:
        return fp.extract(Path(path).read_bytes(), ppi=ppi).to_bytes()
    except (FailureToEnrol, ImageError):
        return None


def _load_templates(blobs: list) -> None:
    """Worker initialiser: decode every template once."""
    import cv2

    from matcher.fingerprint import Template

    cv2.setNumThreads(1)
    _TEMPLATES[:] = [None if b is None else Template.from_bytes(b) for b in blobs]


def _score_pairs(pairs: np.ndarray) -> np.ndarray:
    """Scores of ``(i, j)`` pairs; NaN where a side failed to enrol (worker)."""
    from matcher.fingerprint import compare

    out = np.full(len(pairs), np.nan)
    for k, (i, j) in enumerate(pairs):
        a, b = _TEMPLATES[i], _TEMPLATES[j]
        if a is not None and b is not None:
            out[k] = compare(a, b).score
    return out


def _init_plain() -> None:
    import cv2

    cv2.setNumThreads(1)


def evaluate(root: str | Path, max_impostors: int = 100_000, max_probes: int = 600,
             seed: int = 0, workers: int = 0) -> dict:
    """EER and rank-1 of the fingerprint matcher on one set (see the module docstring)."""
    for var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    ds = load_dataset(root)
    labels = ds.identity_codes()
    n = len(labels)
    workers = workers or os.cpu_count() or 1
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    jobs = [(str(s.path), s.ppi or 500.0) for s in ds.samples]
    with ProcessPoolExecutor(workers, initializer=_init_plain) as pool:
        blobs = list(pool.map(_enrol, jobs, chunksize=16))
    fte = sum(b is None for b in blobs)

    genuine = np.array([(i, j) for i in range(n) for j in range(i + 1, n) if labels[i] == labels[j]],
                       np.int64).reshape(-1, 2)
    n_impostor_total = n * (n - 1) // 2 - len(genuine)
    if n_impostor_total <= max_impostors:
        impostor = np.array([(i, j) for i in range(n) for j in range(i + 1, n) if labels[i] != labels[j]],
                            np.int64).reshape(-1, 2)
    else:
        i = rng.integers(0, n, 2 * max_impostors)
        j = rng.integers(0, n, 2 * max_impostors)
        keep = labels[i] != labels[j]
        impostor = np.sort(np.stack([i[keep], j[keep]], 1), axis=1)[:max_impostors]

    # Gallery: first listed image of each finger; probes: the others (sampled).
    first = {}
    for k, lab in enumerate(labels):
        first.setdefault(int(lab), k)
    gallery = np.array(sorted(first.values()))
    gallery_labels = labels[gallery]
    probes = np.setdiff1d(np.arange(n), gallery)
    if len(probes) > max_probes:
        probes = np.sort(rng.choice(probes, max_probes, replace=False))
    search = np.array([(p, g) for p in probes for g in gallery], np.int64).reshape(-1, 2)

    all_pairs = np.concatenate([genuine, impostor, search])
    chunks = np.array_split(all_pairs, max(1, len(all_pairs) // 2000))
    with ProcessPoolExecutor(workers, initializer=_load_templates, initargs=(blobs,)) as pool:
        scores = np.concatenate(list(pool.map(_score_pairs, chunks)))
    floor = min(0.0, float(np.nanmin(scores))) if np.isfinite(scores).any() else 0.0
    scores = np.where(np.isnan(scores), floor, scores)
    g_scores = scores[: len(genuine)]
    i_scores = scores[len(genuine) : len(genuine) + len(impostor)]
    matrix = scores[len(genuine) + len(impostor) :].reshape(len(probes), len(gallery))

    mate = np.array([np.flatnonzero(gallery_labels == labels[p])[0] for p in probes])
    rows = np.arange(len(probes))
    mate_scores = matrix[rows, mate]
    others = matrix.copy()
    others[rows, mate] = -np.inf
    rank1 = float(np.mean(mate_scores > others.max(axis=1)))
    # Galleries of 10: the mate and 9 random other fingers, 20 draws per probe.
    hits = []
    k_other = min(9, len(gallery) - 1)
    for r in rows:
        pool_idx = np.flatnonzero(np.arange(len(gallery)) != mate[r])
        for _ in range(20):
            pick = rng.choice(pool_idx, k_other, replace=False)
            hits.append(mate_scores[r] > matrix[r, pick].max())
    return {
        "set": ds.name,
        "images": n,
        "identities": len(gallery),
        "failure_to_enrol": fte,
        "genuine_pairs": len(genuine),
        "impostor_pairs": len(impostor),
        "impostor_pairs_total": n_impostor_total,
        "eer": eer(g_scores, i_scores),
        "rank1": rank1,
        "rank1_gallery": len(gallery),
        "rank1_probes": len(probes),
        "rank1_at_10": float(np.mean(hits)),
        "seconds": round(time.perf_counter() - start, 1),
        "workers": workers,
    }


def markdown(results: list[dict]) -> str:
    """README table of :func:`evaluate` results."""
    lines = [
        "| set | fingers x images | FTE | EER % | rank-1 % (gallery) | rank-1 % at gallery 10 |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['set']} | {r['identities']} x {r['images'] // max(1, r['identities'])} | "
            f"{r['failure_to_enrol']} | {100 * r['eer']:.2f} | {100 * r['rank1']:.1f} "
            f"({r['rank1_gallery']}, {r['rank1_probes']} probes) | {100 * r['rank1_at_10']:.1f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sets", nargs="+", help="folders with labels.csv")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--max-impostors", type=int, default=100_000)
    parser.add_argument("--max-probes", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=0)
    args = parser.parse_args(argv)
    results = []
    for s in args.sets:
        results.append(evaluate(s, args.max_impostors, args.max_probes, args.seed, args.workers))
        print(json.dumps(results[-1]), flush=True)
    print(markdown(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
