"""Matching at any rotation: probes turned by 0/90/180/270 degrees against their mates.

Protocol (issue 10): ``--probes`` images of the set (every k-th, spread over the
fingers) are turned by each quarter turn, extracted and compared with every other
impression of their finger; the figure is the share of these genuine scores above
the 99th percentile of all upright impostor scores of the set.  Matching that does
not depend on rotation gives the same share at every angle.

    python -m benchmarks.rotation ../shared/data/fingerprint/fvc2002_db1_b [--probes 20] [--mode accurate]
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from benchmarks.datasets import all_pairs, load_dataset
from matcher.fingerprint import compare, extract
from matcher.imageio import decode_image


def rotation_shares(dataset: str, probes: int = 20, mode: str = "accurate") -> dict:
    """Share of genuine scores above the upright impostor 99th percentile, per quarter turn."""
    ds = load_dataset(dataset)
    images = [decode_image(s.path.read_bytes()).pixels for s in ds.samples]
    ppis = [float(s.ppi or 500.0) for s in ds.samples]
    templates = [extract(im, ppi=p, mode=mode) for im, p in zip(images, ppis)]
    codes = ds.identity_codes()
    _, impostor = all_pairs(codes)
    p99 = float(np.percentile([compare(templates[a], templates[b]).score for a, b in impostor], 99))
    chosen = np.linspace(0, len(images) - 1, min(probes, len(images))).round().astype(int)
    out = {"dataset": ds.name, "mode": mode, "probes": len(chosen), "impostor_p99": p99, "turns": {}}
    for quarter in range(4):
        scores = []
        for i in chosen:
            turned = extract(np.ascontiguousarray(np.rot90(images[i], quarter)), ppi=ppis[i], mode=mode)
            scores += [compare(turned, templates[j]).score for j in np.flatnonzero(codes == codes[i]) if j != i]
        s = np.array(scores)
        out["turns"][90 * quarter] = {"genuine_pairs": len(s), "share_above_p99": float(np.mean(s > p99)),
                                      "median_score": float(np.median(s))}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset")
    ap.add_argument("--probes", type=int, default=20)
    ap.add_argument("--mode", default="accurate", choices=("accurate", "fast"))
    args = ap.parse_args()
    r = rotation_shares(args.dataset, args.probes, args.mode)
    print(json.dumps(r, indent=1))
    print(" | ".join(f"{deg} deg: {100 * v['share_above_p99']:.1f} % (median {v['median_score']:.3f})"
                     for deg, v in r["turns"].items()))


if __name__ == "__main__":
    main()
