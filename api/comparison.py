"""A probe beside one of a subject's samples, as data for the examiner's compare view.

``POST /v1/compare`` answers with both sides in the frame their templates were made in
(fingerprints: the 500-ppi image; faces: the aligned crop), the minutiae, the paired
minutiae and the calibrated score; the page draws them.  The evidence PNG
(:mod:`api.evidence`) is drawn from the same pieces, which live here: the probe's
extraction, the choice of the subject's best sample, and the gallery image read back
from the sample's ``source`` file, checked against the SHA-256 recorded at enrolment
(an unreachable or changed file is shown as missing, with why, never silently).

Functions run in worker threads (CPU-bound); they raise typed locard errors for an
unusable probe and return None when the subject has no sample to compare with.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from indexer.errors import ProbeError
from indexer.fusion import common_scale, fused_threshold
from matcher.errors import LocardError

from . import schemas as S
from .extraction import Limits, UnprocessableImage, check_image

WORKING_PPI = 500.0
DECISION_FMR = 1e-3
"""The FMR of ``CompareOut.decision_fmr_1e3``."""


@dataclass(frozen=True)
class FingerMatch:
    """The probe's extraction and the subject's sample it was compared with."""

    probe: object
    """:class:`matcher.fingerprint.pipeline.Extraction` of the probe (500 ppi)."""
    sample: object
    """The stored :class:`indexer.store.Sample` (with its template bytes)."""
    template: object
    """The sample's decoded :class:`matcher.fingerprint.Template`."""
    score: float
    pairs: np.ndarray
    """(k, 2) int: (probe minutia index, gallery minutia index)."""


def source_bytes(sample) -> tuple[bytes | None, str]:
    """The bytes of a sample's source image, or None with why (missing, unreadable, changed).

    A sample ``locard ingest`` took from a transaction names its record (``FILE#record=N``):
    the image is read from there, checked against the record's data as it was enrolled."""
    from indexer.transactions import parse_record_source, record_bytes

    record = parse_record_source(sample.source or "")
    if record is not None and record[0].is_file():
        try:
            return record_bytes(record[0].read_bytes(), record[1], sample.sha256), "source"
        except OSError:
            return None, "gallery image not readable"
        except LocardError:
            return None, "gallery image changed since enrolment (its transaction record differs)"
    src = Path(sample.source) if sample.source else None
    if src is None or not src.is_file():
        return None, "gallery image not reachable"
    try:
        data = src.read_bytes()
    except OSError:
        return None, "gallery image not readable"
    if hashlib.sha256(data).hexdigest() != sample.metadata.get("image_sha256", sample.sha256):
        return None, "gallery image changed since enrolment (SHA-256 differs)"
    return data, "source"


def gallery_print(sample, template) -> tuple[np.ndarray | None, str]:
    """The gallery print, gray, in the template's 500-ppi frame; or None with why."""
    data, how = source_bytes(sample)
    if data is None:
        return None, how
    try:
        from matcher.imageio import decode_image

        pixels = decode_image(data).pixels
    except LocardError:
        return None, "gallery image not decodable"
    return cv2.resize(pixels, (template.width, template.height), interpolation=cv2.INTER_AREA), "source"


def probe_extraction(data: bytes, ppi: float, limits: Limits):
    """The probe print through the fingerprint pipeline (default mode, as searches use)."""
    from matcher.fingerprint import run_pipeline

    pixels = check_image(data, limits, ppi)
    try:
        return run_pipeline(pixels, ppi)
    except LocardError:
        raise
    except Exception as exc:  # noqa: BLE001 - a bad input is never a 5xx
        raise UnprocessableImage(f"the image could not be processed ({type(exc).__name__})") from None


def best_finger_match(probe, samples, finger_position: int, sample_id: int | None) -> FingerMatch | None:
    """The subject's best-scoring fingerprint sample (or the one given) against the probe extraction.

    Samples of another finger position are skipped when both positions are known.
    """
    from matcher.fingerprint import Template, compare

    best = None
    for s in samples:
        if s.modality != "finger" or (sample_id is not None and s.id != sample_id):
            continue
        if finger_position and s.finger_position not in (0, finger_position):
            continue
        t = Template.from_bytes(s.template)
        r = compare(probe.template, t)
        if best is None or r.score > best.score:
            best = FingerMatch(probe, s, t, float(r.score), np.asarray(r.pairs, dtype=np.int64).reshape(-1, 2))
    return best


def png_base64(image: np.ndarray) -> str:
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return base64.b64encode(buf.tobytes()).decode("ascii")


def enhanced_ridges(image: np.ndarray) -> tuple[np.ndarray | None, str]:
    """The enhanced ridges of a 500-ppi print as a gray picture (ridges dark, background white).

    The default (network) mode makes no enhanced image, so the classical chain's
    contextual filtering (the fast mode's) is run for the picture; its minutiae are not used.
    """
    from matcher.fingerprint import run_pipeline

    try:
        ext = run_pipeline(image, WORKING_PPI, mode="fast")
    except LocardError as exc:
        return None, f"no enhanced image: {exc}"
    e, mask = ext.enhanced, ext.mask
    scale = float(np.percentile(np.abs(e[mask]), 99)) if mask.any() else 0.0
    out = 128.0 + 127.0 * np.clip(e / (scale or 1.0), -1.0, 1.0)  # negative on ridges -> dark
    out[~mask] = 255.0
    return out.astype(np.uint8), "enhanced"


def _minutiae(m: np.ndarray) -> list[S.MinutiaOut]:
    return [S.MinutiaOut(x=float(r["x"]), y=float(r["y"]), direction=float(r["direction"]), type=int(r["type"]),
                         quality=int(r["quality"])) for r in m]


def _print_side(image: np.ndarray | None, note: str, template) -> S.SideOut:
    if image is None:
        enhanced, enhanced_note = None, "no gallery image to enhance"
    else:
        enhanced, enhanced_note = enhanced_ridges(image)
    return S.SideOut(width=template.width, height=template.height, ppi=WORKING_PPI,
                     image_png=None if image is None else png_base64(image),
                     image_note=None if image is not None else note,
                     enhanced_png=None if enhanced is None else png_base64(enhanced),
                     enhanced_note=None if enhanced is not None else enhanced_note,
                     minutiae=_minutiae(template.minutiae))


def _decision(modality: str, score: float, template) -> tuple[float, bool]:
    log_fmr = float(common_scale(modality, np.array([score]), template)[0])
    return log_fmr, bool(log_fmr >= fused_threshold(DECISION_FMR))


def compare_fingerprint(data: bytes, ppi: float, finger_position: int, samples, limits: Limits,
                        sample_id: int | None = None) -> S.CompareOut | None:
    """Both sides of the probe print against the subject's best (or the given) fingerprint sample."""
    probe = probe_extraction(data, ppi, limits)
    match = best_finger_match(probe, samples, finger_position, sample_id)
    if match is None:
        return None
    gallery, how = gallery_print(match.sample, match.template)
    log_fmr, hit = _decision("finger", match.score, probe.template)
    return S.CompareOut(subject=match.sample.subject, sample_id=match.sample.id, modality="finger",
                        score=match.score, log_fmr=log_fmr, decision_fmr_1e3=hit,
                        probe=_print_side(probe.image, "", probe.template),
                        gallery=_print_side(gallery, how, match.template),
                        pairs=[(int(a), int(b)) for a, b in match.pairs])


def _face(bgr: np.ndarray):
    """(template, aligned crop) of the primary face of a BGR image, or None when there is none."""
    from matcher.face import extract
    from matcher.face.alignment import align_face

    r = extract(bgr)
    if not r.found:
        return None
    return r.template, align_face(bgr, r.face.landmarks)


def _face_side(crop: np.ndarray | None, note: str) -> S.SideOut:
    from matcher.face.alignment import SFACE_CROP_SIZE

    h, w = crop.shape[:2] if crop is not None else (SFACE_CROP_SIZE, SFACE_CROP_SIZE)
    return S.SideOut(width=w, height=h, ppi=None, image_png=None if crop is None else png_base64(crop),
                     image_note=None if crop is not None else note)


def compare_face(data: bytes, samples, limits: Limits, sample_id: int | None = None) -> S.CompareOut | None:
    """The probe's aligned face crop against the subject's best (or the given) face sample's."""
    from matcher.face import FaceTemplate, compare
    from matcher.imageio import decode_image

    bgr = decode_image(data, color=True, max_bytes=limits.max_image_bytes, max_pixels=limits.max_image_pixels).pixels
    found = _face(bgr)
    if found is None:
        raise ProbeError("face: no face found in the probe image")
    template, crop = found
    best = None
    for s in samples:
        if s.modality != "face" or (sample_id is not None and s.id != sample_id):
            continue
        score = float(compare(template, FaceTemplate.from_bytes(s.template)))
        if best is None or score > best[0]:
            best = (score, s)
    if best is None:
        return None
    score, sample = best
    raw, how = source_bytes(sample)
    gallery_crop = None
    if raw is not None:
        try:
            g = _face(decode_image(raw, color=True).pixels)
            gallery_crop, how = (g[1], "source") if g is not None else (None, "no face found in the gallery image")
        except LocardError:
            how = "gallery image not decodable"
    log_fmr, hit = _decision("face", score, template)
    return S.CompareOut(subject=sample.subject, sample_id=sample.id, modality="face", score=score, log_fmr=log_fmr,
                        decision_fmr_1e3=hit, probe=_face_side(crop, ""), gallery=_face_side(gallery_crop, how),
                        pairs=[])
