"""``locard bench face``: accuracy and speed of the face matcher on a labelled set.

Protocol (one run, every system on the same decoded images):

- Images whose bytes are identical to an earlier image of the set are dropped (Yale
  holds 9 such pairs; a duplicate gives a trivially perfect genuine score).
- Failure to enrol (FTE): no face found.  As in the fingerprint benchmark, a pair touching
  such an image is not compared and scores below everything the system gave
  (``failed_pair_score``): a false non-match when genuine.  A failure costs accuracy
  instead of hiding.
- Verification: all genuine pairs; all impostor pairs, or a seeded random sample of
  :data:`IMPOSTOR_SAMPLE` when there are more than that.
- Closed-set identification: gallery = the first enrolled image of each identity (file
  order of ``labels.csv``), probes = every other image; a probe that failed to enrol
  counts as a miss at every rank.
- ``--pairs FILE``: LFW ``pairs.txt`` protocol instead, accuracy with LFW's 10-fold
  threshold choice (threshold fitted on 9 folds, accuracy on the 10th).
- Timing: detection + alignment + embedding of each decoded image (decoding excluded),
  one thread (``OMP_NUM_THREADS=1``, ``cv2.setNumThreads(1)``), median over the images of
  the process's CPU time -- the time on one core, not inflated when other jobs share the
  machine; the wall-clock median is reported beside it (``wall_ms_per_face_median``).

Peers (``--peers``) are the plain pipelines the issue measured: YuNet (score 0.6, largest
face) + SFace via OpenCV, cosine similarity; and dlib as ``face_recognition`` runs it
(HOG detector with one upsampling, 5-point landmarks, ResNet descriptor, Euclidean
distance), largest face.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

#: Impostor pairs beyond which a seeded sample of this size is drawn.
IMPOSTOR_SAMPLE = 1_000_000


# --------------------------------------------------------------------------- systems


@dataclass
class System:
    """A face pipeline under test: pixels -> vector (or None), and a similarity of vectors."""

    name: str
    embed: Callable[[np.ndarray], Optional[np.ndarray]]
    metric: str = "cosine"  # or "euclidean" (similarity = -distance)
    model: str = ""


def similarity_matrix(a: np.ndarray, b: np.ndarray, metric: str) -> np.ndarray:
    """Similarity of every row of ``a`` to every row of ``b`` (higher = more alike)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if metric == "cosine":
        an = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        bn = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
        return an @ bn.T
    if metric == "euclidean":
        d2 = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2 * a @ b.T
        return -np.sqrt(np.maximum(d2, 0.0))
    raise ValueError(f"unknown metric {metric}")


def locard_system(mode: str, centred: bool = True) -> System:
    """``matcher.face.extract`` as shipped (primary face), on decoded pixels."""
    from matcher.face.detection import detect_faces, primary_face_index
    from matcher.face.pipeline import MODES, embed_face

    def embed(bgr: np.ndarray) -> Optional[np.ndarray]:
        faces = detect_faces(bgr)
        if not faces:
            return None
        return embed_face(bgr, faces[primary_face_index(faces, bgr.shape)], mode=mode, centred=centred)[0]

    return System(f"locard-{mode}", embed, "cosine", MODES[mode])


def yunet_sface_peer() -> System:
    """The plain OpenCV Zoo pipeline: YuNet at score 0.6, largest face, alignCrop, SFace."""
    import cv2

    from matcher.face.models import SFACE, YUNET

    det = cv2.FaceDetectorYN.create(str(YUNET.path()), "", (320, 320), 0.6, 0.3, 5000)
    rec = cv2.FaceRecognizerSF.create(str(SFACE.path()), "")

    def embed(bgr: np.ndarray) -> Optional[np.ndarray]:
        det.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, rows = det.detect(bgr)
        if rows is None or len(rows) == 0:
            return None
        row = rows[int(np.argmax(rows[:, 2] * rows[:, 3]))]
        return rec.feature(rec.alignCrop(bgr, row)).ravel().astype(np.float32)

    return System("peer-yunet-sface", embed, "cosine", "yunet+sface (OpenCV Zoo defaults, score 0.6)")


def dlib_peer() -> System:
    """dlib as ``face_recognition.face_encodings`` runs it (HOG, upsample 1, 5 points, 1 jitter)."""
    import dlib

    from matcher.face.models import dlib_models

    hog = dlib.get_frontal_face_detector()
    shape_predictor, resnet = dlib_models()

    def embed(bgr: np.ndarray) -> Optional[np.ndarray]:
        rgb = np.ascontiguousarray(bgr[:, :, ::-1])
        dets = hog(rgb, 1)
        if len(dets) == 0:
            return None
        d = max(dets, key=lambda r: r.width() * r.height())
        return np.array(resnet.compute_face_descriptor(rgb, shape_predictor(rgb, d), 1), dtype=np.float32)

    return System("peer-dlib-hog", embed, "euclidean", "dlib HOG + resnet v1 (face_recognition defaults)")


# --------------------------------------------------------------------------- extraction


@dataclass
class Extracted:
    vectors: np.ndarray  # (n, d); rows of failed images are zero
    enrolled: np.ndarray  # (n,) bool
    ms: np.ndarray  # (n,) per-image CPU time of the process, ms
    wall_ms: np.ndarray  # (n,) per-image wall-clock time, ms


def extract_all(system: System, images: list[np.ndarray], progress: Callable[[str], None] | None = None) -> Extracted:
    vecs: list[Optional[np.ndarray]] = []
    ms = np.zeros(len(images))
    wall = np.zeros(len(images))
    for k, img in enumerate(images):
        # CPU time of the (single-threaded) process is the time on one core, whatever else
        # the machine runs; wall time is kept beside it.
        c0, t0 = time.process_time(), time.perf_counter()
        vecs.append(system.embed(img))
        ms[k] = (time.process_time() - c0) * 1000
        wall[k] = (time.perf_counter() - t0) * 1000
        if progress and (k + 1) % 250 == 0:
            progress(f"{system.name}: {k + 1}/{len(images)}")
    dim = next((len(v) for v in vecs if v is not None), 1)
    out = np.zeros((len(images), dim), dtype=np.float32)
    ok = np.zeros(len(images), dtype=bool)
    for k, v in enumerate(vecs):
        if v is not None:
            out[k], ok[k] = v, True
    return Extracted(out, ok, ms, wall)


def load_images(paths: list[Path]) -> list[np.ndarray]:
    from matcher.imageio import decode_image

    return [decode_image(p.read_bytes(), color=True).pixels for p in paths]


# --------------------------------------------------------------------------- protocols


def verification_pairs(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """All genuine pairs, impostor pairs (sampled past :data:`IMPOSTOR_SAMPLE`) and the impostor total."""
    from benchmarks.datasets import all_pairs

    gen, imp = all_pairs(labels)
    total = len(imp)
    if total > IMPOSTOR_SAMPLE:
        rng = np.random.default_rng(seed)
        imp = imp[np.sort(rng.choice(total, IMPOSTOR_SAMPLE, replace=False))]
    return gen, imp, total


def pair_scores(sim: np.ndarray, pairs: np.ndarray, enrolled: np.ndarray, failed_score: float) -> np.ndarray:
    """Scores of ``pairs``; a pair touching an image that failed to enrol gets ``failed_score``."""
    ok = enrolled[pairs[:, 0]] & enrolled[pairs[:, 1]]
    return np.where(ok, sim[pairs[:, 0], pairs[:, 1]], failed_score)


def identification(sim: np.ndarray, labels: np.ndarray, enrolled: np.ndarray, max_rank: int = 20) -> np.ndarray:
    """CMC, gallery = first enrolled image per identity, probes = the rest (FTE = miss)."""
    from benchmarks.metrics import cmc

    gallery, seen = [], set()
    for i, lab in enumerate(labels):
        if enrolled[i] and lab not in seen:
            seen.add(lab)
            gallery.append(i)
    gallery = np.array(gallery, dtype=np.int64)
    probes = np.setdiff1d(np.arange(len(labels)), gallery)
    ok_probes = probes[enrolled[probes]]
    if len(ok_probes) == 0:
        return np.zeros(max_rank)
    curve = cmc(sim[np.ix_(ok_probes, gallery)], labels[gallery], labels[ok_probes], max_rank=max_rank)
    return curve * len(ok_probes) / len(probes)


def lfw_pairs(path: Path) -> tuple[list[tuple[str, int, str, int]], int, int]:
    """Parse LFW ``pairs.txt``: pairs ``(name1, n1, name2, n2)``, folds and pairs per fold and kind."""
    lines = [ln.split() for ln in path.read_text().splitlines() if ln.strip()]
    head = [int(x) for x in lines[0]]
    folds, per = (1, head[0]) if len(head) == 1 else (head[0], head[1])
    pairs = []
    for parts in lines[1:]:
        if len(parts) == 3:
            pairs.append((parts[0], int(parts[1]), parts[0], int(parts[2])))
        elif len(parts) == 4:
            pairs.append((parts[0], int(parts[1]), parts[2], int(parts[3])))
        else:
            raise ValueError(f"{path}: cannot read the line {' '.join(parts)!r}")
    if len(pairs) != 2 * folds * per:
        raise ValueError(f"{path}: header promises {2 * folds * per} pairs, found {len(pairs)}")
    return pairs, folds, per


def lfw_fold_ids(n_pairs: int, folds: int, per: int) -> np.ndarray:
    """Fold number of each pair: the file's folds, or 10 slices of a single-fold file."""
    if folds >= 2:
        return np.repeat(np.arange(folds), 2 * per)
    # one set (View 1 style): matched then mismatched; slice each into 10 like View 2's folds
    part = np.arange(per) * 10 // per
    return np.concatenate([part, part])


def ten_fold_accuracy(scores: np.ndarray, same: np.ndarray, fold: np.ndarray) -> tuple[float, float]:
    """LFW's protocol: per fold, the threshold best on the other folds, accuracy on this one."""
    accs = []
    for f in np.unique(fold):
        train, test = fold != f, fold == f
        cand = np.unique(scores[train])
        cand = np.concatenate([cand, [cand[-1] + 1e-9]])
        s, y = scores[train][:, None], same[train][:, None]
        acc_train = ((s >= cand[None, :]) == y).mean(axis=0)
        t = cand[int(np.argmax(acc_train))]
        accs.append(float(((scores[test] >= t) == same[test]).mean()))
    return float(np.mean(accs)), float(np.std(accs))


# --------------------------------------------------------------------------- report


def _summary(system: System, ex: Extracted, sim: np.ndarray, labels: np.ndarray, seed: int) -> tuple[dict, tuple]:
    from benchmarks.metrics import eer, fnmr_at_fmr, tar_at_fmr

    gen, imp, imp_total = verification_pairs(labels, seed)
    # as in the fingerprint benchmark: a failure to enrol costs accuracy instead of hiding --
    # its pairs score below everything the system gave (a false non-match when genuine)
    ok = np.outer(ex.enrolled, ex.enrolled)
    lowest = float(sim[ok].min()) if ok.any() else 0.0
    failed_score = min(0.0, lowest) - 1e-6
    g = pair_scores(sim, gen, ex.enrolled, failed_score)
    i = pair_scores(sim, imp, ex.enrolled, failed_score)
    curve = identification(sim, labels, ex.enrolled)
    n = len(labels)
    rep = {
        "system": system.name,
        "model": system.model,
        "images": n,
        "identities": int(len(np.unique(labels))),
        "failure_to_enrol": float((~ex.enrolled).mean()),
        "failed_images": int((~ex.enrolled).sum()),
        "genuine_pairs": int(len(g)),
        "impostor_pairs": int(len(i)),
        "impostor_pairs_total": int(imp_total),
        "pairs_not_compared": int((~(ex.enrolled[gen[:, 0]] & ex.enrolled[gen[:, 1]])).sum()
                                  + (~(ex.enrolled[imp[:, 0]] & ex.enrolled[imp[:, 1]])).sum()),
        "failed_pair_score": failed_score,
        "eer": eer(g, i) if len(g) and len(i) else None,
        "fmr100": fnmr_at_fmr(g, i, 0.01) if len(g) and len(i) else None,
        "fmr1000": fnmr_at_fmr(g, i, 0.001) if len(g) and len(i) else None,
        "tar_at_fmr_0.001": tar_at_fmr(g, i, 0.001) if len(g) and len(i) else None,
        "rank1": float(curve[0]),
        "rank10": float(curve[min(9, len(curve) - 1)]),
        "cmc": [float(c) for c in curve],
        "ms_per_face_median": float(np.median(ex.ms)),
        "ms_per_face_p90": float(np.percentile(ex.ms, 90)),
        "wall_ms_per_face_median": float(np.median(ex.wall_ms)),
    }
    return rep, (g, i, curve)


def _dedupe(paths: list[Path]) -> np.ndarray:
    seen: dict[str, int] = {}
    keep = np.ones(len(paths), dtype=bool)
    for k, p in enumerate(paths):
        h = hashlib.md5(p.read_bytes()).hexdigest()
        if h in seen:
            keep[k] = False
        else:
            seen[h] = k
    return keep


def _machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def run(
    dataset: Path,
    *,
    json_out: Optional[Path] = None,
    plots: Optional[Path] = None,
    pairs: Optional[Path] = None,
    peers: bool = False,
    mode: str = "sface",
    seed: int = 0,
    save_calibration: Optional[Path] = None,
    quiet: bool = False,
) -> dict:
    """Measure the face matcher (and optionally the peers) on a data set; return the report.

    ``locard bench face`` calls this; see the module docstring for the protocol.  Prints a
    table to stdout and progress to stderr unless ``quiet``.
    """
    dataset = Path(dataset)
    json_out, plots, pairs, save_calibration = (
        None if p is None else Path(p) for p in (json_out, plots, pairs, save_calibration))
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, as the timings promise
    import cv2

    cv2.setNumThreads(1)
    from rich.console import Console
    from rich.table import Table

    from benchmarks.datasets import load_dataset

    console = Console(stderr=True, quiet=quiet)
    out = Console(quiet=quiet)
    command = "locard bench face " + " ".join(sys.argv[3:] if sys.argv[1:3] == ["bench", "face"] else sys.argv[1:])
    systems = [locard_system(m.strip()) for m in mode.split(",") if m.strip()]
    if peers:
        systems += [yunet_sface_peer(), dlib_peer()]

    if pairs is not None:
        plist, folds, per = lfw_pairs(pairs)
        files = sorted({(n, k) for a, i, b, j in plist for n, k in ((a, i), (b, j))})
        paths = [dataset / "images" / n / f"{n}_{k:04d}.jpg" for n, k in files]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{len(missing)} image(s) of {pairs} are missing, e.g. {missing[0]}")
        index = {f: k for k, f in enumerate(files)}
        a_idx = np.array([index[(a, i)] for a, i, _, _ in plist])
        b_idx = np.array([index[(b, j)] for _, _, b, j in plist])
        same = np.array([a == b for a, _, b, _ in plist])
        fold = lfw_fold_ids(len(plist), folds, per)
        images = load_images(paths)
        report = {"dataset": str(dataset), "pairs_file": str(pairs), "command": command, "machine": _machine(),
                  "images": len(paths), "pairs": len(plist), "systems": {}}
        for sysm in systems:
            console.print(f"[bold]{sysm.name}[/]: extracting {len(images)} images")
            ex = extract_all(sysm, images, console.print)
            from benchmarks.metrics import eer

            va, vb = ex.vectors[a_idx], ex.vectors[b_idx]
            if sysm.metric == "cosine":
                s = (va * vb).sum(1) / np.maximum(np.linalg.norm(va, axis=1) * np.linalg.norm(vb, axis=1), 1e-12)
            else:
                s = -np.linalg.norm(va - vb, axis=1)
            both = ex.enrolled[a_idx] & ex.enrolled[b_idx]
            # LFW counts every pair: one with a failed image scores below all others (rejected)
            lowest = float(s[both].min()) if both.any() else 0.0
            s = np.where(both, s, min(0.0, lowest) - 1e-6)
            acc, std = ten_fold_accuracy(s, same, fold)
            report["systems"][sysm.name] = {
                "model": sysm.model, "accuracy": acc, "accuracy_std": std, "eer": eer(s[same], s[~same]),
                "failure_to_enrol": float((~ex.enrolled).mean()), "pairs_with_failed_image": int((~both).sum()),
                "ms_per_face_median": float(np.median(ex.ms)),
            }
        report.update({k: v for k, v in report["systems"][systems[0].name].items() if k != "model"})
        table = Table(title=f"LFW pairs: {pairs}")
        table.add_column("system", no_wrap=True)
        for col in ("accuracy", "eer", "FTE", "ms/face"):
            table.add_column(col, justify="right")
        for name, r in report["systems"].items():
            table.add_row(name, f"{100 * r['accuracy']:.2f} % ± {100 * r['accuracy_std']:.2f}",
                          f"{100 * r['eer']:.2f} %", f"{100 * r['failure_to_enrol']:.2f} %", f"{r['ms_per_face_median']:.1f}")
        out.print(table)
        if json_out:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(report, indent=1))
        return report

    ds = load_dataset(dataset)
    all_paths = [s.path for s in ds.samples]
    keep = _dedupe(all_paths)
    samples = [s for s, k in zip(ds.samples, keep) if k]
    labels_str = [s.identity for s in samples]
    codes = {n: i for i, n in enumerate(sorted(set(labels_str)))}
    labels = np.array([codes[n] for n in labels_str])
    console.print(f"{ds.name}: {len(samples)} images ({int((~keep).sum())} byte-identical duplicates dropped), "
                  f"{len(codes)} identities")
    images = load_images([s.path for s in samples])

    report: dict = {"dataset": str(dataset), "command": command, "machine": _machine(),
                    "duplicates_dropped": int((~keep).sum()), "systems": {}}
    curves_det, curves_cmc = {}, {}
    first_scores = None
    for sysm in systems:
        console.print(f"[bold]{sysm.name}[/]: extracting {len(images)} images")
        ex = extract_all(sysm, images, console.print)
        sim = similarity_matrix(ex.vectors, ex.vectors, sysm.metric)
        rep, (g, i, curve) = _summary(sysm, ex, sim, labels, seed)
        report["systems"][sysm.name] = rep
        curves_det[sysm.name] = (g, i)
        curves_cmc[sysm.name] = curve
        if first_scores is None:
            first_scores = (g, i)
        if save_calibration is not None and sysm.name.startswith("locard-"):
            from matcher.calibration import Calibration

            m = sysm.name.removeprefix("locard-")
            cal = Calibration.from_impostor_scores(
                i, matcher="locard-face", version=sysm.model,
                source=f"{len(i)} impostor pairs of {ds.name} ({len(samples)} images, {len(codes)} identities); {command}")
            save_calibration.mkdir(parents=True, exist_ok=True)
            cal.save(save_calibration / f"calibration_{m}.json")
    report.update({k: v for k, v in report["systems"][systems[0].name].items() if k not in ("system", "model")})

    table = Table(title=f"{ds.name}: {len(samples)} images, {len(codes)} identities")
    table.add_column("system", no_wrap=True)
    for col in ("FTE", "EER", "FMR100", "FMR1000", "rank-1", "rank-10", "ms/face"):
        table.add_column(col, justify="right")

    def pct(x):
        return "-" if x is None else f"{100 * x:.2f} %"

    for name, r in report["systems"].items():
        table.add_row(name, pct(r["failure_to_enrol"]), pct(r["eer"]), pct(r["fmr100"]), pct(r["fmr1000"]),
                      pct(r["rank1"]), pct(r["rank10"]), f"{r['ms_per_face_median']:.1f}")
    out.print(table)
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=1))
    if plots:
        from benchmarks.plots import plot_cmc, plot_det, plot_score_histograms

        plots.mkdir(parents=True, exist_ok=True)
        plot_det(curves_det, plots / "det.png", title=f"DET: {ds.name}")
        plot_cmc(curves_cmc, plots / "cmc.png", title=f"CMC: {ds.name}")
        plot_score_histograms(*first_scores, plots / "scores.png", title=f"{systems[0].name} scores: {ds.name}")
    return report


def fit_embedding_means(dataset: Path, out: Path) -> dict:
    """Write ``embedding_means.json`` (see :func:`matcher.face.embedding.centre`) from a face set.

    Every image's primary face, uncentred: SFace one pass (``sface``), SFace averaged with its
    mirror (``sface_flip``) and dlib averaged with its mirror (``dlib_flip``); the mean of each.
    Run as ``python -m benchmarks.face_bench fit-means DATASET OUT.json``.
    """
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import cv2

    cv2.setNumThreads(1)
    from benchmarks.datasets import load_dataset
    from matcher.face.alignment import align_face
    from matcher.face.detection import detect_faces, primary_face_index
    from matcher.face.embedding import dlib_embedding, l2_normalise, sface_embedding

    ds = load_dataset(dataset)
    keep = _dedupe([s.path for s in ds.samples])
    sums = {"sface": [], "sface_flip": [], "dlib_flip": []}
    for s, k in zip(ds.samples, keep):
        if not k:
            continue
        bgr = load_images([s.path])[0]
        faces = detect_faces(bgr)
        if not faces:
            continue
        face = faces[primary_face_index(faces, bgr.shape)]
        crop = align_face(bgr, face.landmarks)
        a = sface_embedding(crop, flip=False)
        b = sface_embedding(np.ascontiguousarray(crop[:, ::-1]), flip=False)
        sums["sface"].append(a)
        sums["sface_flip"].append(l2_normalise(a.astype(np.float64) + b))
        sums["dlib_flip"].append(dlib_embedding(bgr, face, flip=True))
    means = {k: [round(float(x), 7) for x in np.mean(v, axis=0)] for k, v in sums.items()}
    doc = {
        "about": "Mean uncentred embedding of each model over the primary faces of a face set; "
                 "matcher.face.embedding.centre subtracts it.",
        "source": f"{ds.name}: {len(sums['sface'])} images with a face; python -m benchmarks.face_bench fit-means",
        "means": means,
    }
    Path(out).write_text(json.dumps(doc, indent=1))
    return doc


if __name__ == "__main__":  # maintenance entry point, not part of the locard CLI
    if len(sys.argv) == 4 and sys.argv[1] == "fit-means":
        fit_embedding_means(Path(sys.argv[2]), Path(sys.argv[3]))
    else:
        sys.exit("usage: python -m benchmarks.face_bench fit-means DATASET OUT.json")
