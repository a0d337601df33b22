"""Contact sheet: masters and impressions of a generated set beside real FVC images.

One row per finger (one finger per class where the set has them): the master, then
its impressions; a last row of real images from ``../shared/data/fingerprint`` when
that folder exists, rescaled to 500 ppi, so the eye can compare like with like.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np

from .generate import master_rng
from .impression import IMPRESSION_SHAPE
from .master import make_master

#: Where real FVC-style sets live relative to the repository root.
REAL_ROOT = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "fingerprint"
TILE = IMPRESSION_SHAPE  # (H, W)
CAPTION = 18  # caption strip height, pixels


def _tile(image: np.ndarray, caption: str) -> np.ndarray:
    """Fit ``image`` into a tile (keeping aspect) with a caption strip above it."""
    h, w = TILE
    scale = min(h / image.shape[0], w / image.shape[1], 1.0)
    small = cv2.resize(image, (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale))),
                       interpolation=cv2.INTER_AREA)
    tile = np.full((h + CAPTION, w), 255, np.uint8)
    y0 = CAPTION + (h - small.shape[0]) // 2
    x0 = (w - small.shape[1]) // 2
    tile[y0 : y0 + small.shape[0], x0 : x0 + small.shape[1]] = small
    cv2.putText(tile, caption[:40], (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 0, 1, cv2.LINE_AA)
    return tile


def _master_image(master) -> np.ndarray:
    """Master ridge pattern as a clean dark-on-light image (white outside the area)."""
    ink = np.clip(0.5 + 0.5 * master.ridges, 0, 1) * master.mask
    return np.clip(255 * (1 - ink), 0, 255).astype(np.uint8)


def real_examples(root: Path = REAL_ROOT, per_set: int = 1) -> list[tuple[str, np.ndarray]]:
    """First ``per_set`` images of each real set under ``root``, rescaled to 500 ppi."""
    found = []
    if not root.is_dir():
        return found
    for labels in sorted(root.glob("*/labels.csv")):
        with labels.open(newline="") as fh:
            rows = list(csv.DictReader(fh))[:per_set]
        for row in rows:
            img = cv2.imread(str(labels.parent / row["file"]), cv2.IMREAD_GRAYSCALE)
            if img is None:
                continue
            ppi = float(row.get("ppi") or 500)
            if abs(ppi - 500) > 1:
                img = cv2.resize(img, None, fx=500 / ppi, fy=500 / ppi, interpolation=cv2.INTER_AREA)
            found.append((f"REAL {labels.parent.name} {Path(row['file']).stem}", img))
    return found


def contact_sheet(dataset: str | Path, out_file: str | Path, rows: int = 5, impressions: int = 4,
                  real_root: Path = REAL_ROOT) -> Path:
    """Write a PNG contact sheet of a generated set.

    Parameters
    ----------
    dataset : path
        Folder written by :func:`.generate.generate`.
    out_file : path
        PNG to write.
    rows : int
        Fingers shown (one per class first, then in order).
    impressions : int
        Impressions shown per finger.
    real_root : path
        Folder of real FVC-style sets; skipped when absent.
    """
    dataset = Path(dataset)
    with (dataset / "labels.csv").open(newline="") as fh:
        labels = list(csv.DictReader(fh))
    by_identity: dict[str, list[dict]] = {}
    for row in labels:
        by_identity.setdefault(row["identity"], []).append(row)
    chosen, seen_classes = [], set()
    for ident, group in by_identity.items():
        if group[0]["class"] not in seen_classes:
            chosen.append(ident)
            seen_classes.add(group[0]["class"])
    chosen += [i for i in by_identity if i not in chosen]
    chosen = chosen[:rows]

    sheet_rows = []
    for ident in chosen:
        group = sorted(by_identity[ident], key=lambda r: int(r["impression"]))
        kind = group[0]["class"]
        gt = json.loads((dataset / group[0]["groundtruth"]).read_text())
        master = make_master(kind, master_rng(int(gt["seed"]), int(ident) - 1))
        tiles = [_tile(_master_image(master), f"master {ident} {kind}")]
        for row in group[:impressions]:
            img = cv2.imread(str(dataset / row["file"]), cv2.IMREAD_GRAYSCALE)
            n = len(json.loads((dataset / row["groundtruth"]).read_text())["minutiae"])
            tiles.append(_tile(img, f"{Path(row['file']).stem} ({n} minutiae)"))
        sheet_rows.append(tiles)
    real = real_examples(real_root)
    width = max(1 + impressions, 1)
    for start in range(0, len(real), width):
        sheet_rows.append([_tile(img, cap) for cap, img in real[start : start + width]])

    blank = np.full((TILE[0] + CAPTION, TILE[1]), 255, np.uint8)
    width = max(len(r) for r in sheet_rows)
    grid = [np.hstack(r + [blank] * (width - len(r))) for r in sheet_rows]
    sheet = np.vstack(grid)
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out_file), sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    return out_file
