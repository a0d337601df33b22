"""Synthetic fingerprint generator: determinism, ground truth, classes, layout, samples."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from skimage.morphology import skeletonize

from benchmarks.datasets import load_dataset
from benchmarks.synth.generate import (class_plan, generate, impression_rng, master_rng,
                                       parse_distribution, write_identity, IdentityTask)
from benchmarks.synth.groundtruth import BIFURCATION, ENDING, read_groundtruth
from benchmarks.synth.impression import make_impression, pull_back_maps
from benchmarks.synth.master import make_master
from benchmarks.synth.orientation import CLASSES

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples" / "fingerprints"


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def masters():
    """One master per class (seeded), shared by the ground-truth tests."""
    return {kind: make_master(kind, master_rng(11, i)) for i, kind in enumerate(CLASSES)}


# --- independent minutia detector (not the generator's code path) -------------------

def _cn_minutiae(binary: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, type) of crossing-number minutiae on Lee's thinning of ``binary``."""
    skel = skeletonize(binary, method="lee").astype(np.int32)
    p = np.pad(skel, 1)
    h, w = skel.shape
    ring = [p[1 + dy: 1 + dy + h, 1 + dx: 1 + dx + w]
            for dy, dx in ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))]
    cn = sum(np.abs(ring[i] - ring[(i + 1) % 8]) for i in range(8)) // 2
    ys, xs = np.nonzero(skel & ((cn == 1) | (cn == 3)))
    kinds = np.where(cn[ys, xs] == 1, ENDING, BIFURCATION)
    return xs.astype(float), ys.astype(float), kinds


def _hit_rate(gt, detected, tol: float) -> float:
    """Share of ground-truth minutiae with a detected minutia of the same type within ``tol`` px."""
    dx, dy, dk = detected
    hits = 0
    for x, y, k in zip(gt.x, gt.y, gt.kind):
        same = dk == k
        if same.any() and np.hypot(dx[same] - x, dy[same] - y).min() <= tol:
            hits += 1
    return hits / max(1, len(gt))


# --- determinism -------------------------------------------------------------------

def test_same_seed_same_bytes_whatever_the_worker_count(tmp_path):
    generate(tmp_path / "a", 3, 2, seed=5, workers=1, progress=False)
    generate(tmp_path / "b", 3, 2, seed=5, workers=2, progress=False)
    a, b = _files(tmp_path / "a"), _files(tmp_path / "b")
    assert len(a) == 3 * 2 * 2 + 1
    assert a == b


def test_a_part_is_the_same_bytes_and_names_as_the_whole_run(tmp_path):
    generate(tmp_path / "all", 5, 1, seed=3, workers=1, progress=False)
    generate(tmp_path / "part", 5, 1, seed=3, workers=1, progress=False, part=(2, 4))
    whole, part = _files(tmp_path / "all"), _files(tmp_path / "part")
    images = sorted(k for k in part if k.startswith("images/"))
    assert images == ["images/0003_1.png", "images/0004_1.png"]
    assert all(part[k] == whole[k] for k in images)
    rows = (tmp_path / "part" / "labels.csv").read_text().splitlines()
    assert rows[1:] == (tmp_path / "all" / "labels.csv").read_text().splitlines()[3:5]
    with pytest.raises(ValueError, match="slice"):
        generate(tmp_path / "bad", 5, 1, part=(4, 9), progress=False)


def test_resume_generates_only_what_is_missing(tmp_path):
    generate(tmp_path / "a", 4, 2, seed=3, workers=1, progress=False)
    before = _files(tmp_path / "a")
    (tmp_path / "a" / "images" / "0002_2.png").unlink()
    (tmp_path / "a" / "labels.csv").unlink()
    summary = generate(tmp_path / "a", 4, 2, seed=3, workers=1, progress=False, resume=True)
    assert summary.identities == 1 and summary.images == 2
    assert _files(tmp_path / "a") == before


def test_other_seed_other_images(tmp_path):
    task = dict(out=str(tmp_path), index=0, total=1, kind="whorl", impressions=1)
    for sub, seed in (("a", 1), ("b", 2)):
        (tmp_path / "images").mkdir(exist_ok=True)
        (tmp_path / "groundtruth").mkdir(exist_ok=True)
        write_identity(IdentityTask(seed=seed, **task))
        (tmp_path / "images" / "0001_1.png").rename(tmp_path / f"{sub}.png")
    assert (tmp_path / "a.png").read_bytes() != (tmp_path / "b.png").read_bytes()


# --- ground truth ------------------------------------------------------------------

@pytest.mark.parametrize("kind", CLASSES)
def test_master_minutiae_are_endings_and_bifurcations_of_the_ridge_pattern(masters, kind):
    m = masters[kind]
    assert 25 <= len(m.minutiae) <= 110, "minutiae per full master out of the realistic range"
    detected = _cn_minutiae(m.ridges > 0)
    assert _hit_rate(m.minutiae, detected, tol=3.0) >= 0.9


@pytest.mark.parametrize("kind", CLASSES)
def test_minutia_directions_follow_the_convention(masters, kind):
    """Endings point into their ridge; bifurcations point between their branches."""
    m = masters[kind]
    ridge = m.ridges > 0
    h, w = ridge.shape

    def on_ridge(x, y, d, dist):
        px, py = int(round(x + dist * np.cos(d))), int(round(y + dist * np.sin(d)))
        return bool(ridge[np.clip(py, 0, h - 1), np.clip(px, 0, w - 1)])

    end = m.minutiae.kind == ENDING
    fork = ~end
    ahead_end = np.mean([on_ridge(x, y, d, 5) for x, y, d in
                         zip(m.minutiae.x[end], m.minutiae.y[end], m.minutiae.direction[end])])
    behind_end = np.mean([on_ridge(x, y, d, -5) for x, y, d in
                          zip(m.minutiae.x[end], m.minutiae.y[end], m.minutiae.direction[end])])
    ahead_fork = np.mean([on_ridge(x, y, d, 7) for x, y, d in
                          zip(m.minutiae.x[fork], m.minutiae.y[fork], m.minutiae.direction[fork])])
    behind_fork = np.mean([on_ridge(x, y, d, -5) for x, y, d in
                           zip(m.minutiae.x[fork], m.minutiae.y[fork], m.minutiae.direction[fork])])
    assert ahead_end >= 0.8 and behind_end <= 0.25
    assert ahead_fork <= 0.35 and behind_fork >= 0.8


def test_impression_minutiae_land_on_the_warped_ridge_pattern(masters):
    """Mapped ground truth sits on endings/bifurcations of the master warped the same way."""
    rates = []
    for i, kind in enumerate(CLASSES):
        m = masters[kind]
        imp = make_impression(m, impression_rng(11, i, 1))
        mx, my = pull_back_maps(imp.transform)
        warped = cv2.remap(m.ridges, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                           borderValue=-1.0)
        assert 10 <= len(imp.minutiae) <= 90
        rates.append(_hit_rate(imp.minutiae, _cn_minutiae(warped > 0), tol=4.0))
    assert min(rates) >= 0.8, rates


def test_ridge_period_is_that_of_real_fingers(masters):
    """Dominant spatial period of the grown ridges is 8-11 px (500 ppi), median of 5 patches."""
    yy, xx = np.mgrid[-256:256, -256:256]
    radius = np.hypot(yy, xx)
    window = np.hanning(64)[:, None] * np.hanning(64)
    for m in masters.values():
        h, w = m.ridges.shape
        periods = []
        for oy, ox in ((-80, -60), (-80, 60), (60, -60), (60, 60), (0, 0)):
            patch = m.ridges[h // 2 + oy - 32: h // 2 + oy + 32, w // 2 + ox - 32: w // 2 + ox + 32]
            spec = np.abs(np.fft.fftshift(np.fft.fft2(patch * window, s=(512, 512))))
            spec[radius < 20] = 0  # DC and waves longer than 25 px
            fy, fx = np.unravel_index(np.argmax(spec), spec.shape)
            periods.append(512 / radius[fy, fx])
        assert 8.0 <= np.median(periods) <= 11.0, periods


# --- classes -----------------------------------------------------------------------

def test_class_plan_honours_the_requested_distribution_exactly():
    dist = parse_distribution("whorl=2,arch=1,left_loop=1")
    plan = class_plan(200, dist, seed=3)
    assert Counter(plan) == {"whorl": 100, "arch": 50, "left_loop": 50}
    natural = Counter(class_plan(1000, parse_distribution("natural"), seed=0))
    assert natural == {"arch": 37, "tented_arch": 29, "left_loop": 338, "right_loop": 317, "whorl": 279}
    assert class_plan(50, dist, seed=3) == class_plan(50, dist, seed=3)
    with pytest.raises(ValueError):
        parse_distribution("loop=1")


def test_generated_masters_have_their_class_singularities(masters):
    counts = {k: (len(m.singularities.cores), len(m.singularities.deltas)) for k, m in masters.items()}
    assert counts == {"arch": (0, 0), "tented_arch": (1, 1), "left_loop": (1, 1),
                      "right_loop": (1, 1), "whorl": (2, 2)}
    # A left loop has its delta right of the core, a right loop the mirror image.
    ll, rl = masters["left_loop"].singularities, masters["right_loop"].singularities
    assert ll.deltas[0, 0] > ll.cores[0, 0] and rl.deltas[0, 0] < rl.cores[0, 0]


# --- command and layout --------------------------------------------------------------

def test_command_writes_the_bench_layout(tmp_path):
    from typer.testing import CliRunner

    from locard import app

    out = tmp_path / "set"
    sheet = tmp_path / "sheet.png"
    result = CliRunner().invoke(app, ["synth", "fingerprints", str(out), "--identities", "2",
                                      "--impressions", "2", "--seed", "9", "--workers", "1",
                                      "--classes", "tented_arch=1", "--preview", str(sheet)])
    assert result.exit_code == 0, result.output
    ds = load_dataset(out)
    assert len(ds.samples) == 4 and len(ds.identities) == 2
    assert {s.extra["class"] for s in ds.samples} == {"tented_arch"}
    with (out / "labels.csv").open(newline="") as fh:
        assert csv.DictReader(fh).fieldnames[:5] == ["file", "identity", "class", "impression", "ppi"]
    for s in ds.samples:
        img = cv2.imread(str(s.path), cv2.IMREAD_UNCHANGED)
        assert img.dtype == np.uint8 and img.ndim == 2 and s.ppi == 500
        doc, minutiae = read_groundtruth(out / s.extra["groundtruth"])
        assert doc["identity"] == s.identity and len(minutiae) > 0
        assert ((minutiae.x >= 0) & (minutiae.x < img.shape[1])).all()
        assert ((minutiae.direction >= 0) & (minutiae.direction < 2 * np.pi)).all()
    assert cv2.imread(str(sheet)) is not None


def test_bad_class_names_are_rejected(tmp_path):
    from typer.testing import CliRunner

    from locard import app

    result = CliRunner().invoke(app, ["synth", "fingerprints", str(tmp_path / "x"), "--identities", "1",
                                      "--classes", "loop=1"])
    assert result.exit_code == 2 and "unknown class" in result.output


# --- committed samples ---------------------------------------------------------------

def test_samples_are_a_valid_set_the_generator_reproduces(tmp_path):
    ds = load_dataset(SAMPLES)
    assert len(ds.identities) >= 10 and len(ds.samples) >= 40
    total = sum(s.path.stat().st_size for s in ds.samples)
    assert total < 8_000_000
    for s in ds.samples:
        assert s.path.is_file() and (SAMPLES / s.extra["groundtruth"]).is_file()
    # The first finger, regenerated from the recorded seed, is byte-identical.
    doc = json.loads((SAMPLES / ds.samples[0].extra["groundtruth"]).read_text())
    first = [s for s in ds.samples if s.identity == ds.samples[0].identity]
    (tmp_path / "images").mkdir()
    (tmp_path / "groundtruth").mkdir()
    write_identity(IdentityTask(str(tmp_path), int(doc["seed"]), 0, len(ds.identities),
                                first[0].extra["class"], len(first)))
    for s in first:
        rel = s.path.relative_to(SAMPLES)
        assert (tmp_path / rel).read_bytes() == s.path.read_bytes(), rel


# --- scoring an extractor against the ground truth -------------------------------------

def test_score_of_the_ground_truth_against_itself_is_perfect():
    from benchmarks.synth.extractor_score import score_minutiae

    doc, truth = read_groundtruth(SAMPLES / "groundtruth" / "0001_1.json")
    s = score_minutiae(truth, truth)
    assert s.recall == 1.0 and s.precision == 1.0 and s.same_type == s.paired
    turned = type(truth)(truth.x + 2.0, truth.y - 2.0, np.mod(truth.direction + np.pi, 2 * np.pi), truth.kind)
    s = score_minutiae(truth, turned)
    assert s.recall == 1.0 and np.allclose(s.direction_errors, np.pi)


def test_locard_extractor_finds_the_ground_truth_minutiae():
    """Positions and directions of matcher.fingerprint agree with the ground truth."""
    from benchmarks.synth.extractor_score import score_set

    s = score_set(SAMPLES, limit=6).summary()
    assert s["recall"] >= 0.5 and s["precision"] >= 0.6, s
    assert s["direction_error_median_deg"] <= 20, s


def test_contact_sheet_works_without_real_images(tmp_path):
    from benchmarks.synth.preview import contact_sheet

    out = contact_sheet(SAMPLES, tmp_path / "sheet.png", rows=2, impressions=2,
                        real_root=tmp_path / "no-such-folder")
    sheet = cv2.imread(str(out), cv2.IMREAD_GRAYSCALE)
    assert sheet is not None and sheet.shape[0] == 2 * (384 + 18) and sheet.shape[1] == 3 * 288


# --- recall and precision per generated condition -------------------------------------

def _doc(pressure=0.0, drag=(0.0, 0.0), twist=0.0, rotation=0.0, visible=20, master=20):
    return {"pressure": pressure, "transform": {"rotation": rotation, "drag": list(drag), "twist": twist},
            "minutiae": [{}] * visible, "master_minutiae": master}


def test_conditions_are_read_off_the_ground_truth():
    from benchmarks.synth.extractor_score import conditions

    assert conditions(_doc()) == ["all", "clean"]
    assert conditions(_doc(pressure=-0.7)) == ["all", "dry"]
    assert conditions(_doc(pressure=0.6)) == ["all", "wet"]
    assert conditions(_doc(drag=(12.0, 12.0))) == ["all", "distorted"]
    assert conditions(_doc(twist=np.radians(-6))) == ["all", "distorted"]
    assert conditions(_doc(rotation=np.radians(-20))) == ["all", "rotated"]
    assert conditions(_doc(visible=5)) == ["all", "partial"]
    assert conditions(_doc(pressure=-0.9, rotation=np.radians(30), visible=10)) == ["all", "dry", "rotated", "partial"]


class _TruthSource:
    """A fake extractor that returns the ground truth of each sample image, minus every other minutia."""

    name = "half-truth"
    template_key = None

    def __init__(self, root):
        from benchmarks.peers.minutiae_sources import RawMinutiae

        self.by_image = {}
        for f in sorted((root / "groundtruth").glob("*.json")):
            doc, m = read_groundtruth(f)
            keep = np.arange(len(m)) % 2 == 0
            self.by_image[(root / doc["file"]).read_bytes()] = RawMinutiae(
                m.x[keep], m.y[keep], m.direction[keep], m.kind[keep], np.ones(int(keep.sum())))

    def raw(self, data, ppi):
        return self.by_image[data]


def test_scores_per_condition_add_up_over_the_impressions_of_each():
    from benchmarks.synth.extractor_score import CONDITIONS, conditions, score_by_condition

    per = score_by_condition(SAMPLES, _TruthSource(SAMPLES), limit=12)
    want: dict[str, list[int]] = {}
    for f in sorted((SAMPLES / "groundtruth").glob("*.json"))[:12]:
        doc, m = read_groundtruth(f)
        for c in conditions(doc):
            want.setdefault(c, [0, 0])
            want[c][0] += len(m)
            want[c][1] += (len(m) + 1) // 2
    assert list(per) == [c for c in CONDITIONS if c in want] and len(per) > 2
    for c, (truth, found) in want.items():
        s = per[c]
        assert (s.truth, s.found, s.paired) == (truth, found, found)
        assert s.precision == 1.0 and s.recall == pytest.approx(found / truth)
        assert max(s.direction_errors) < 1e-9


def test_synth_score_command_per_condition_and_against_a_reference(tmp_path):
    from typer.testing import CliRunner

    from benchmarks.synth.extractor_score import CONDITIONS
    from locard import app

    runner = CliRunner()
    out = tmp_path / "score.json"
    r = runner.invoke(app, ["synth", "score", str(SAMPLES), "--extractor", "locard-fast", "--limit", "4",
                            "--json", str(out), "--cache", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    per = doc["extractors"]["locard-fast"]
    assert "all" in per and set(per) <= set(CONDITIONS)
    assert 0.5 <= per["all"]["recall"] <= 1 and 0.5 <= per["all"]["precision"] <= 1
    assert "| locard-fast | all |" in r.output
    # an extractor against itself as the reference agrees perfectly
    r = runner.invoke(app, ["synth", "score", str(SAMPLES), "--extractor", "locard-fast", "--reference",
                            "locard-fast", "--limit", "2", "--json", str(out)])
    assert r.exit_code == 0, r.output
    s = json.loads(out.read_text())["extractors"]["locard-fast"]["all"]
    assert s["recall"] == 1.0 and s["precision"] == 1.0 and s["direction_error_median_deg"] == 0.0
    # real prints without ground truth need a reference
    r = runner.invoke(app, ["synth", "score", str(tmp_path), "--extractor", "locard-fast"])
    assert r.exit_code == 2 and "--reference" in r.output


@pytest.mark.parametrize("source", ["nbis-py", "nbis-bozorth3"])
def test_peer_directions_follow_the_ground_truths_convention(source, monkeypatch):
    """The cross-feed's conversion of a peer's angle agrees with the generator's convention;
    the sign-flipped one does not."""
    from benchmarks.peers import PeerUnavailable
    from benchmarks.peers import minutiae_sources
    from benchmarks.peers.minutiae_sources import make_source
    from benchmarks.synth.extractor_score import score_by_condition

    try:
        src = make_source(source)
    except PeerUnavailable as exc:
        pytest.skip(str(exc))
    s = score_by_condition(SAMPLES, src, limit=4)["all"].summary()
    assert s["direction_error_median_deg"] <= 20, s
    monkeypatch.setitem(minutiae_sources.DIRECTIONS, source, "as-is")
    s = score_by_condition(SAMPLES, src, limit=4)["all"].summary()
    assert s["direction_error_median_deg"] >= 45, s
