"""Evidence PNG: probe and gallery print side by side, paired minutiae drawn and linked.

Examiners would rather look than read.  The pieces are :mod:`api.comparison`'s (the
probe's 500-ppi extraction, the subject's best sample, the gallery print read back from
its source file and checked against its SHA-256); this module only draws them.  When
the gallery file cannot be read or has changed, the gallery minutiae are drawn on a
blank canvas of the template's size and the header says so.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .comparison import best_finger_match, gallery_print, probe_extraction
from .extraction import Limits

GAP = 24
LINE = 20
PAIR_COLOURS = [(0, 140, 255), (0, 200, 0), (255, 80, 0), (200, 0, 200), (0, 200, 200), (80, 80, 255)]


@dataclass(frozen=True)
class EvidenceImage:
    png: bytes
    sample_id: int
    score: float
    pairs: int
    gallery_image: str
    """``source`` or ``blank`` (source unreachable or changed)."""


def _draw_minutiae(img: np.ndarray, m, dx: int, dy: int, paired: dict[int, tuple]) -> None:
    for i in range(len(m)):
        x, y, d = float(m["x"][i]) + dx, float(m["y"][i]) + dy, float(m["direction"][i])
        colour = paired.get(i, (150, 150, 150))
        r = 6 if i in paired else 4
        cv2.circle(img, (int(round(x)), int(round(y))), r, colour, 2 if i in paired else 1, cv2.LINE_AA)
        cv2.line(img, (int(round(x)), int(round(y))),
                 (int(round(x + 12 * np.cos(d))), int(round(y + 12 * np.sin(d)))), colour, 1, cv2.LINE_AA)


def render(probe_image: np.ndarray, probe_template, gallery_image: np.ndarray | None, gallery_template,
           pairs: np.ndarray, header: list[str], warn: bool = False) -> bytes:
    """Side-by-side PNG; ``pairs`` are (probe index, gallery index) rows; ``header``: lines of text on top."""
    HEADER = LINE * len(header) + 12
    gw, gh = gallery_template.width, gallery_template.height
    if gallery_image is None:
        gallery_image = np.full((gh, gw), 255, np.uint8)
    ph, pw = probe_image.shape[:2]
    h = max(ph, gh) + HEADER
    canvas = np.full((h, pw + GAP + gw, 3), 255, np.uint8)
    canvas[HEADER:HEADER + ph, :pw] = cv2.cvtColor(probe_image, cv2.COLOR_GRAY2BGR)
    canvas[HEADER:HEADER + gh, pw + GAP:] = cv2.cvtColor(gallery_image, cv2.COLOR_GRAY2BGR)
    canvas[HEADER:, :] = (canvas[HEADER:, :].astype(np.float32) * 0.75 + 255 * 0.25).astype(np.uint8)
    colours_p = {int(a): PAIR_COLOURS[k % len(PAIR_COLOURS)] for k, (a, _) in enumerate(pairs)}
    colours_g = {int(b): PAIR_COLOURS[k % len(PAIR_COLOURS)] for k, (_, b) in enumerate(pairs)}
    _draw_minutiae(canvas, probe_template.minutiae, 0, HEADER, colours_p)
    _draw_minutiae(canvas, gallery_template.minutiae, pw + GAP, HEADER, colours_g)
    mp, mg = probe_template.minutiae, gallery_template.minutiae
    for k, (a, b) in enumerate(pairs):
        p1 = (int(mp["x"][a]), int(mp["y"][a]) + HEADER)
        p2 = (int(mg["x"][b]) + pw + GAP, int(mg["y"][b]) + HEADER)
        cv2.line(canvas, p1, p2, PAIR_COLOURS[k % len(PAIR_COLOURS)], 1, cv2.LINE_AA)
    for i, text in enumerate(header):
        colour = (0, 0, 200) if warn and i >= 2 else (0, 0, 0)
        cv2.putText(canvas, text, (8, LINE * (i + 1)), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
    ok, buf = cv2.imencode(".png", canvas)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def make_evidence(probe_bytes: bytes, ppi: float, finger_position: int, samples, limits: Limits,
                  sample_id: int | None = None) -> EvidenceImage | None:
    """Evidence for the subject's best (or the given) fingerprint sample; None when it has none to compare.

    ``samples``: the subject's stored samples with templates.  Raises typed locard errors
    for an unusable probe.
    """
    ext = probe_extraction(probe_bytes, ppi, limits)
    match = best_finger_match(ext, samples, finger_position, sample_id)
    if match is None:
        return None
    s, t, pairs = match.sample, match.template, match.pairs
    gallery, how = gallery_print(s, t)
    header = [f"left: probe   right: subject {s.subject}, sample {s.id}",
              f"score {match.score:.3f}, {len(pairs)} paired minutiae (linked)"]
    header += (["gallery: its source image"] if gallery is not None
               else [f"NOTE: {how};", "gallery minutiae drawn on a blank canvas"])
    png = render(ext.image, ext.template, gallery, t, pairs, header, warn=gallery is None)
    return EvidenceImage(png, s.id, match.score, len(pairs), "source" if gallery is not None else "blank")
