"""Batch-search throughput of the sharded gallery with 1, 2 and 3 shards (indexer/cluster).

Starts a local Ray cluster of three raylets (``ray.cluster_utils.Cluster``, two CPUs
each), builds the same gallery in a single store and in 1, 2 and 3 shards (all up at
once), and times batches of searches, in rounds that alternate between the galleries, through
:meth:`ClusterGallery.identify_batch` (two round trips per batch) against the single
store's :meth:`Searcher.identify` (``order_free=True``, as the shards) in this process.
Every sharded answer is compared with the single store's (rank 1 and the whole list);
so is one store enrolled in another order, plain and order-free (:mod:`indexer.cluster.merge`).

Gallery: impressions 1-2 of each finger of a FVC2002 set (real templates, extracted
here) plus ``--distractors`` generated templates
(:func:`benchmarks.search_bench.synthetic_finger_template`); probes: impressions 3-6.

Run::

    python -m benchmarks.cluster_bench ../shared/data/fingerprint/fvc2002_db1_b --distractors 3000 \\
        --json out/cluster_bench.json
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np


def gallery_and_probes(dataset: Path, distractors: int, seed: int = 5):
    """NewSamples of the gallery (real impressions 1-2 + generated distractors) and the probes (3-6)."""
    from indexer.ingest import extract_item, scan_source, sha256_file
    from indexer.search import Probe
    from indexer.store import NewSample
    from matcher.fingerprint import FORMAT_VERSION, MATCHER_VERSION, Template

    from .search_bench import synthetic_finger_template

    samples, probes = [], []
    with open(dataset / "labels.csv", newline="") as fh:
        impressions = {r["file"]: int(r.get("impression") or 0) for r in csv.DictReader(fh)}
    for it in scan_source(dataset, "finger"):
        imp = impressions.get(str(it.path.relative_to(dataset)), 0)
        if imp not in (1, 2, 3, 4, 5, 6):
            continue
        e = extract_item(it, sha256_file(it.path))
        if e.error:
            continue
        if imp <= 2:
            samples.append(NewSample(subject=it.identity, modality="finger", template=e.template,
                                     template_version=e.template_version, quality=e.quality, sha256=e.sha256,
                                     source=str(it.path), prepared=e.prepared, prepared_format=e.prepared_format))
        else:
            probes.append([Probe("finger", Template.from_bytes(e.template), label=it.identity)])
    rng = np.random.default_rng(seed)
    version = f"LCFP{FORMAT_VERSION}/{MATCHER_VERSION}"
    for i in range(distractors):
        blob = synthetic_finger_template(rng).to_bytes()
        samples.append(NewSample(subject=f"distractor:{i:06d}", modality="finger", template=blob,
                                 template_version=version, quality=70,
                                 sha256=hashlib.sha256(b"distractor" + blob).hexdigest(), source="synthetic"))
    return samples, probes


def _agreement(a, b) -> tuple[bool, bool]:
    """(same rank-1 subject and score, same whole candidate list) of two answers to one search."""
    key = lambda c: (-c.score, -c.raw, c.subject)  # noqa: E731
    x = [(c.subject, c.score) for c in sorted(a.candidates, key=key)]
    y = [(c.subject, c.score) for c in sorted(b.candidates, key=key)]
    return x[:1] == y[:1], x == y


def run(dataset: str, *, distractors: int = 3000, batch: int = 20, repeats: int = 3, top: int = 10,
        shard_counts=(1, 2, 3), echo=print) -> dict:
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    import ray
    from ray.cluster_utils import Cluster

    from indexer.cluster.gallery import ClusterGallery
    from indexer.search import Searcher
    from indexer.store import GalleryStore

    t0 = time.perf_counter()
    samples, probes = gallery_and_probes(Path(dataset), distractors)
    echo(f"{len(samples)} gallery fingers, {len(probes)} probes ({time.perf_counter() - t0:.0f} s to extract)")
    batches = [probes[i:i + batch] for i in range(0, len(probes), batch)]
    out = {"dataset": str(dataset), "gallery_fingers": len(samples), "probes": len(probes), "batch": batch,
           "repeats": repeats, "top": top, "cpus": os.cpu_count(), "machine": platform.platform(), "runs": []}
    with tempfile.TemporaryDirectory(prefix="locard-cluster-bench-") as tmp:
        st = GalleryStore(Path(tmp) / "one", create=True)
        st.add_samples(samples)
        # the sharded answer is the one of a store whose stage-1 ties are settled by distance
        # (order_free); the plain store settles them by storage order
        searcher, plain = Searcher(st, order_free=True), Searcher(st)
        reference = [searcher.identify(p, top=top) for p in probes]
        plain_answers = [plain.identify(p, top=top) for p in probes]
        out["rank1"] = float(np.mean([bool(r.candidates) and r.candidates[0].subject == p[0].label
                                      for r, p in zip(reference, probes)]))
        echo(f"rank-1 of the single store: {out['rank1']:.1%}")
        # the same store enrolled in another order: how far each kind of answer depends on storage order
        shuffled = GalleryStore(Path(tmp) / "shuffled", create=True)
        shuffled.add_samples([samples[i] for i in np.random.default_rng(1).permutation(len(samples))])
        for name, kw, base in (("order_free", {"order_free": True}, reference), ("plain", {}, plain_answers)):
            other = Searcher(shuffled, **kw)
            agree = [_agreement(a, other.identify(p, top=top)) for a, p in zip(base, probes)]
            out[f"{name}_store_reordered"] = {"same_rank1": sum(a for a, _ in agree),
                                              "same_list": sum(b for _, b in agree)}
            echo(f"{name} store enrolled in another order, as in the first order: rank 1 "
                 f"{sum(a for a, _ in agree)}/{len(probes)}, whole top {top} {sum(b for _, b in agree)}/{len(probes)}")
        shuffled.close()
        # two CPUs a raylet: the three galleries (1 + 2 + 3 shard actors) stay up together, and
        # the rounds below alternate between them, so that load from other jobs falls on each alike
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
        for _ in range(2):
            cluster.add_node(num_cpus=2)
        ray.init(address=cluster.address, namespace="locard", logging_level="ERROR", log_to_driver=False)
        try:
            galleries = {}
            for n in shard_counts:
                g = galleries[n] = ClusterGallery(Path(tmp) / f"cluster{n}", shards=n, timeout_s=600,
                                                  write_timeout_s=1800)
                for i in range(0, len(samples), 2000):
                    g.add_samples(samples[i:i + 2000])
                got = [r for b in batches for r in g.identify_batch(b, top=top)]  # warm: templates cached
                agree = [_agreement(a, b) for a, b in zip(reference, got)]
                sizes = {k: v["finger_samples"] for k, v in g.status().items()}
                out["runs"].append({"shards": n, "same_rank1_as_single_store": sum(a for a, _ in agree),
                                    "same_list_as_single_store": sum(b for _, b in agree), "shard_fingers": sizes,
                                    "nodes": len({v["node"] for v in g.status().values()}), "seconds": 0.0})
            single = 0.0
            for _ in range(repeats):
                t = time.perf_counter()
                for p in probes:
                    searcher.identify(p, top=top)
                single += time.perf_counter() - t
                for run_ in out["runs"]:
                    t = time.perf_counter()
                    for b in batches:
                        galleries[run_["shards"]].identify_batch(b, top=top)
                    run_["seconds"] += time.perf_counter() - t
            out["single_store_searches_per_s"] = repeats * len(probes) / single
            echo(f"single store, in this process: {out['single_store_searches_per_s']:.1f} searches/s")
            for run_ in out["runs"]:
                run_["searches_per_s"] = repeats * len(probes) / run_["seconds"]
                echo(f"{run_['shards']} shard(s) {run_['shard_fingers']} on {run_['nodes']} raylet(s): "
                     f"{run_['searches_per_s']:.1f} searches/s in batches of {batch}; as the single store: rank 1 "
                     f"{run_['same_rank1_as_single_store']}/{len(probes)}, whole top {top} "
                     f"{run_['same_list_as_single_store']}/{len(probes)}")
            for g in galleries.values():
                g.stop()
        finally:
            ray.shutdown()
            cluster.shutdown()
            st.close()
    out["seconds"] = time.perf_counter() - t0
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dataset", help="FVC-style folder with labels.csv (file, identity, impression, ppi)")
    ap.add_argument("--distractors", type=int, default=3000)
    ap.add_argument("--batch", type=int, default=20, help="searches per identify_batch call")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="write the figures here")
    a = ap.parse_args()
    rep = run(a.dataset, distractors=a.distractors, batch=a.batch, repeats=a.repeats)
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(rep, indent=1))


if __name__ == "__main__":
    main()
