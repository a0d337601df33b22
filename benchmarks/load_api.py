"""Load check of the HTTP service: concurrent clients searching a 1,000+ subject gallery.

Not a timed test: run by hand, results go to ``benchmarks/README.md`` (section API load).

    python -m benchmarks.load_api --work /tmp/locard-load --clients 20 --seconds 60

1. Gallery (built once in ``WORK/store``, reused afterwards): ``--subjects`` synthetic
   fingers, one impression each (``locard synth fingerprints``, seed 606, identities
   ``syn-NNNN``), plus impressions 1-2 of the 16 shipped sample fingers
   (``data/samples/fingerprints``, identities ``sample-NNNN``), ingested with the indexer.
2. ``locard serve`` on 127.0.0.1 (only), one examiner key.
3. ``--clients`` concurrent clients (asyncio + httpx, one connection and one examiner key
   each) search with impressions 3-4 of the sample fingers, round robin, for ``--seconds``;
   a separate probe times ``/v1/health`` every 0.5 s meanwhile.  Every answer other than 200
   is an error; rank 1 must be the probe's finger.
4. With ``--abuser``, one more client (its own key) sends oversized searches back to back:
   ``--abuser-images`` fingerprints of ``--abuser-side`` pixels square each (a sample print
   scaled up).  Its answers are counted apart; the other clients' figures are the check.

Prints and writes (``--json``) requests, errors, throughput, latency percentiles, rank-1
rate and health latency under load.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "data" / "samples" / "fingerprints"


def build_gallery(work: Path, subjects: int, workers: int) -> Path:
    from indexer.ingest import ingest, scan_source
    from indexer.store import GalleryStore

    store = work / "store"
    if (store / "gallery.sqlite").exists():
        with GalleryStore(store) as st:
            if st.subject_count() >= subjects + 16:
                print(f"gallery: reusing {store} ({st.subject_count()} subjects)")
                return store
    synth = work / "synth"
    if not (synth / "labels.csv").exists() or len(scan_source(synth)) < subjects:
        print(f"gallery: generating {subjects} synthetic fingers into {synth} ...", flush=True)
        subprocess.run([sys.executable, "-m", "locard", "synth", "fingerprints", str(synth), "--identities",
                        str(subjects), "--impressions", "1", "--seed", "606", "--workers", str(workers)],
                       cwd=ROOT, check=True)
    items = [dataclasses.replace(it, identity=f"syn-{it.identity}") for it in scan_source(synth)][:subjects]
    items += [dataclasses.replace(it, identity=f"sample-{it.identity}") for it in scan_source(SAMPLES)
              if it.path.stem.endswith(("_1", "_2"))]
    t0 = time.time()
    with GalleryStore(store, create=True) as st:
        rep = ingest(items, st, workers=workers)
        print(f"gallery: {rep.added} added, {rep.failed} failed, {st.subject_count()} subjects "
              f"in {time.time() - t0:.0f} s", flush=True)
    return store


def oversized_probe(side: int) -> bytes:
    """A sample print scaled up to ``side`` x ``side`` pixels, as PNG."""
    import io

    from PIL import Image

    img = Image.open(SAMPLES / "images" / "0001_3.png").convert("L").resize((side, side), Image.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


async def run_load(base: str, keys: list[str], probes: list[tuple[str, bytes]], clients: int, seconds: float,
                   abuser: tuple[str, list[bytes]] | None = None) -> dict:
    """``clients`` search clients (client i uses ``keys[i]``) and, optionally, one abusive client
    (its key and the images it sends in every request)."""
    import httpx

    latencies: list[float] = []
    errors: list[str] = []
    rank1 = [0, 0]
    health: list[float] = []
    abuse: dict[str, list[float]] = {}
    stop_at = time.perf_counter() + seconds

    async def abusive_client(key: str, images: list[bytes]) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=600, limits=httpx.Limits(max_connections=1)) as c:
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                try:
                    r = await c.post("/v1/search", headers={"X-API-Key": key},
                                     files=[("fingerprint", (f"big{j}.png", im, "image/png"))
                                            for j, im in enumerate(images)])
                    status = str(r.status_code)
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                abuse.setdefault(status, []).append(time.perf_counter() - t0)

    async def client(i: int) -> None:
        key = keys[i]
        async with httpx.AsyncClient(base_url=base, timeout=300,
                                     limits=httpx.Limits(max_connections=1)) as c:
            n = i
            while time.perf_counter() < stop_at:
                finger, data = probes[n % len(probes)]
                n += clients
                t0 = time.perf_counter()
                try:
                    r = await c.post("/v1/search", headers={"X-API-Key": key}, data={"top": "10"},
                                     files=[("fingerprint", ("probe.png", data, "image/png"))])
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors.append(f"{r.status_code}: {r.text[:200]}")
                    continue
                cands = r.json()["candidates"]
                rank1[1] += 1
                rank1[0] += bool(cands) and cands[0]["subject"] == f"sample-{finger}"

    async def health_probe() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=60) as c:
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                r = await c.get("/v1/health")
                if r.status_code == 200:
                    health.append(time.perf_counter() - t0)
                else:
                    errors.append(f"health {r.status_code}")
                await asyncio.sleep(0.5)

    t_start = time.perf_counter()
    await asyncio.gather(health_probe(), *(client(i) for i in range(clients)),
                         *([abusive_client(*abuser)] if abuser else []))
    wall = time.perf_counter() - t_start
    lat = np.array(latencies) * 1e3
    h = np.array(health) * 1e3
    return {
        "clients": clients, "seconds": seconds, "wall_s": round(wall, 2), "requests": len(latencies),
        "errors": len(errors), "error_samples": errors[:5],
        "throughput_rps": round(len(latencies) / wall, 2),
        "latency_ms": {p: round(float(np.percentile(lat, q)), 1) for p, q in
                       (("p50", 50), ("p95", 95), ("p99", 99), ("max", 100))} if len(lat) else {},
        "rank1": round(rank1[0] / rank1[1], 4) if rank1[1] else None,
        "health_ms": {p: round(float(np.percentile(h, q)), 1) for p, q in (("p50", 50), ("p99", 99), ("max", 100))}
        if len(h) else {},
        "abuser": {status: {"requests": len(t), "p50_ms": round(float(np.median(t)) * 1e3, 1)}
                   for status, t in sorted(abuse.items())} if abuser else None,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work", default="/tmp/locard-load", help="Folder for the synthetic set and the store.")
    ap.add_argument("--subjects", type=int, default=1000, help="Synthetic gallery subjects (plus 16 samples).")
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--workers", type=int, default=2, help="Processes for synthesis and ingest.")
    ap.add_argument("--extract-processes", type=int, default=2, help="Passed to locard serve (0: threads).")
    ap.add_argument("--abuser", action="store_true", help="Add one client that sends oversized searches.")
    ap.add_argument("--abuser-images", type=int, default=4, help="Images in each of the abuser's searches.")
    ap.add_argument("--abuser-side", type=int, default=3990, help="Side of the abuser's images (pixels).")
    ap.add_argument("--json", help="Write the result here.")
    args = ap.parse_args(argv)
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    store = build_gallery(work, args.subjects, args.workers)

    from api.database import ApiDatabase
    from api.local import start_server
    from api.keys import create_key
    from indexer.store import GalleryStore

    db = ApiDatabase(store)
    # one key per client, as separate examiners would have: the service limits what one key has in flight
    keys = [create_key(db, "examiner", "LOAD", f"load check client {i}")[0] for i in range(args.clients)]
    key = keys[0]
    abuser = None
    if args.abuser:
        big = oversized_probe(args.abuser_side)
        abuser = (create_key(db, "examiner", "ABUSE", "load check abuser")[0], [big] * args.abuser_images)
        print(f"abuser: {args.abuser_images} x {args.abuser_side}x{args.abuser_side} px per search "
              f"({len(big) * args.abuser_images / 1e6:.1f} MB)", flush=True)
    with GalleryStore(store) as st:
        n_subjects, n_samples = st.subject_count(), st.count("finger")
    probes = [(p.stem.split("_")[0], p.read_bytes()) for p in sorted((SAMPLES / "images").glob("*.png"))
              if p.stem.endswith(("_3", "_4"))]
    server = start_server(store, "--extract-processes", str(args.extract_processes),
                          log_path=work / "server.log")
    base = server.base_url
    try:
        import httpx

        # warm-up: load the indexes and compile what is compiled on first use
        for finger, data in probes[:4]:
            r = httpx.post(f"{base}/v1/search", headers={"X-API-Key": key}, timeout=300,
                           files=[("fingerprint", ("p.png", data, "image/png"))])
            r.raise_for_status()
        print(f"load: {args.clients} clients x {args.seconds:.0f} s against {n_subjects} subjects "
              f"({n_samples} finger samples) ...", flush=True)
        result = asyncio.run(run_load(base, keys, probes, args.clients, args.seconds, abuser))
    finally:
        server.stop()
    result.update({"abuser_images": args.abuser_images if args.abuser else 0,
                   "abuser_side": args.abuser_side if args.abuser else None,
                   "extract_processes": args.extract_processes, "gallery_subjects": n_subjects, "gallery_finger_samples": n_samples,
                   "machine": f"{platform.machine()}, {os.cpu_count()} cores (shared)",
                   "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())})
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0 if result["errors"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
