"""The fingerprint benchmark harness, driven by a fake matcher on a generated data set.

Needs neither ``../shared`` nor the peers.
"""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from benchmarks import fingerprint_bench as fb
from matcher.errors import FailureToEnrol, ImageError
from matcher.imageio import decode_image

N_IDS, N_IMP = 4, 3


def _make_dataset(root, n_ids=N_IDS, n_imp=N_IMP, blank=(), garbage=(), seed=0):
    """Gray PNGs whose mean brightness encodes the identity; labels.csv with ppi."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True)
    rows = []
    for i in range(n_ids):
        for k in range(n_imp):
            name = f"images/{i}_{k}.png"
            if (i, k) in garbage:
                (root / name).write_bytes(b"this is not an image")
            else:
                level = 0 if (i, k) in blank else 40 + 40 * i
                img = np.full((32, 32), level, np.uint8)
                if level:
                    img = np.clip(img + rng.integers(-3, 4, img.shape), 0, 255).astype(np.uint8)
                cv2.imwrite(str(root / name), img)
            rows.append({"file": name, "identity": f"id{i}", "ppi": "500"})
    with (root / "labels.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, ["file", "identity", "ppi"])
        w.writeheader()
        w.writerows(rows)
    return root


@pytest.fixture(autouse=True)
def _short_timing(monkeypatch):
    """The timing in turns of a few milliseconds a round: these tests time nothing."""
    monkeypatch.setattr(fb, "COMPARE_WINDOW_S", 0.002)
    monkeypatch.setattr(fb, "EXTRACT_WINDOW_S", 0.002)


class FakeMatcher:
    """Template = mean brightness; score = 100 - |difference| (higher = more alike)."""

    name = "locard"
    label = "fake locard"
    version = "test"
    is_peer = False

    def __init__(self, mode=None):
        self.extract_calls = 0
        self.compare_calls = 0

    def extract(self, data: bytes, ppi: float):
        self.extract_calls += 1
        px = decode_image(data).pixels  # raises ImageError subclasses on garbage
        if px.mean() < 1:
            raise FailureToEnrol("blank image", quality=0)
        return float(px.mean())

    def compare(self, a, b) -> float:
        self.compare_calls += 1
        return 100.0 - abs(a - b)


class FakePeer(FakeMatcher):
    is_peer = True
    name = "fakepeer"
    label = "fake peer"
    template_key = "fakepeer-r1"

    @staticmethod
    def dumps(t):
        return repr(t).encode()

    @staticmethod
    def loads(b):
        return float(b.decode())


class CrashingPeer(FakeMatcher):
    is_peer = True
    name = "crashpeer"
    label = "crashing peer"

    def extract(self, data, ppi):
        if decode_image(data).pixels.mean() > 150:
            raise RuntimeError("peer bug")
        return super().extract(data, ppi)


def test_pair_counts_and_perfect_separation(tmp_path, monkeypatch):
    monkeypatch.setattr(fb, "TIMING_ROUNDS", 0)  # only the scoring pass compares
    ds = _make_dataset(tmp_path / "ds")
    m = FakeMatcher()
    rep = fb.bench_dataset(ds, [m])
    n = N_IDS * N_IMP
    assert rep["images"] == n and rep["identities"] == N_IDS
    assert rep["genuine_pairs"] == N_IDS * N_IMP * (N_IMP - 1) // 2
    assert rep["genuine_pairs"] + rep["impostor_pairs"] == n * (n - 1) // 2
    assert m.extract_calls == n
    assert m.compare_calls == n * (n - 1) // 2  # each unordered pair once
    assert rep["compare_per_s"] == rep["compare_per_s_one_pass"] > 0  # no timing rounds
    assert rep["failure_to_enrol"] == 0 and rep["pairs_not_compared"] == 0
    assert rep["eer"] == 0.0 and rep["fmr100"] == 0.0 and rep["zero_fmr"] == 0.0
    assert rep["compare_per_s"] > 0 and rep["extract_ms_median"] >= 0


def test_failure_to_enrol_counts_and_scores_as_non_match(tmp_path, monkeypatch):
    monkeypatch.setattr(fb, "TIMING_ROUNDS", 0)
    ds = _make_dataset(tmp_path / "ds", blank={(0, 0)}, garbage={(1, 2)})
    m = FakeMatcher()
    rep = fb.bench_dataset(ds, [m])
    assert rep["failure_to_enrol"] == 2
    assert sorted(f["file"] for f in rep["failures"]) == ["images/0_0.png", "images/1_2.png"]
    assert any("FailureToEnrol" in f["error"] for f in rep["failures"])
    n = N_IDS * N_IMP
    assert rep["pairs_not_compared"] == 2 * (n - 1) - 1
    assert m.compare_calls == n * (n - 1) // 2 - rep["pairs_not_compared"]
    res = rep["_results"][0]
    # 2 genuine pairs of each failed image are now false non-matches at any threshold > the fill score.
    assert (res.genuine == rep["failed_pair_score"]).sum() == 2 * (N_IMP - 1)
    assert rep["failed_pair_score"] <= min(0.0, res.impostor.min())
    assert rep["fmr100"] == pytest.approx(2 * (N_IMP - 1) / rep["genuine_pairs"])
    assert rep["genuine_pairs"] == len(res.genuine) and rep["impostor_pairs"] == len(res.impostor)


def test_locard_bug_is_not_hidden_but_peer_crash_is_fte(tmp_path):
    ds = _make_dataset(tmp_path / "ds")

    class Buggy(FakeMatcher):
        def extract(self, data, ppi):
            raise RuntimeError("bug")

    buggy = Buggy()
    with pytest.raises(RuntimeError):
        fb.bench_dataset(ds, [buggy])
    rep = fb.bench_dataset(ds, [CrashingPeer()])
    assert rep["peers"]["crashpeer"]["failure_to_enrol"] == N_IMP  # identity 3 (level 160)
    assert "RuntimeError" in rep["peers"]["crashpeer"]["failures"][0]["error"]


def test_peer_cache_skips_recomputation(tmp_path, monkeypatch):
    ds = _make_dataset(tmp_path / "ds")
    cache = fb.BenchCache(tmp_path / "cache")
    p1 = FakePeer()
    r1 = fb.bench_dataset(ds, [p1], cache=cache)["peers"]["fakepeer"]
    assert not r1["cached"] and p1.extract_calls > N_IDS * N_IMP  # enrolment, then timing in turns
    p2 = FakePeer()
    r2 = fb.bench_dataset(ds, [p2], cache=cache)["peers"]["fakepeer"]
    assert r2["cached"] and p2.extract_calls == 0 and p2.compare_calls == 0
    for k in fb.REPORT_KEYS:
        assert r2[k] == r1[k]
    # Scores gone, templates kept: compares again, extracts nothing (no timing from here on).
    monkeypatch.setattr(fb, "TIMING_ROUNDS", 0)
    for f in (tmp_path / "cache" / "scores").rglob("*.pkl"):
        f.unlink()
    p3 = FakePeer()
    r3 = fb.bench_dataset(ds, [p3], cache=cache)["peers"]["fakepeer"]
    assert p3.extract_calls == 0 and p3.compare_calls > 0 and r3["eer"] == r1["eer"]
    # A changed image invalidates the run.
    img = ds / "images" / "0_0.png"
    cv2.imwrite(str(img), np.full((32, 32), 200, np.uint8))
    p4 = FakePeer()
    fb.bench_dataset(ds, [p4], cache=cache)
    assert p4.extract_calls == 1 and p4.compare_calls > 0


def test_locard_is_never_cached(tmp_path, monkeypatch):
    monkeypatch.setattr(fb, "TIMING_ROUNDS", 0)  # only enrolment extracts
    ds = _make_dataset(tmp_path / "ds")
    cache = fb.BenchCache(tmp_path / "cache")
    fake = FakeMatcher()
    fb.bench_dataset(ds, [fake], cache=cache)
    fb.bench_dataset(ds, [fake], cache=cache)
    assert fake.extract_calls == 2 * N_IDS * N_IMP
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.pkl"))


def _cli(monkeypatch, args):
    from typer.testing import CliRunner

    from locard import app

    monkeypatch.setattr(fb, "LocardSystem", FakeMatcher)
    return CliRunner().invoke(app, ["bench", "fingerprint", *args])


def test_cli_json_plots_and_table(tmp_path, monkeypatch):
    ds = _make_dataset(tmp_path / "ds", blank={(2, 1)})
    out = tmp_path / "out" / "r.json"
    plots = tmp_path / "plots"
    r = _cli(monkeypatch, [str(ds), "--json", str(out), "--plots", str(plots)])
    assert r.exit_code == 0, r.output
    assert "EER%" in r.output and "locard" in r.output
    doc = json.loads(out.read_text())
    for k in fb.REPORT_KEYS:
        assert k in doc, k
    assert doc["failure_to_enrol"] == 1
    for k in ("eer", "fmr100", "fmr1000", "zero_fmr"):
        assert 0.0 <= doc[k] <= 1.0
    pngs = sorted(p.name for p in plots.glob("*.png"))
    assert pngs == ["det_ds.png", "scores_ds_locard.png"]
    assert all((plots / p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pngs)


def test_cli_several_datasets_markdown_and_peer_blocks(tmp_path, monkeypatch):
    a = _make_dataset(tmp_path / "set_a")
    b = _make_dataset(tmp_path / "set_b", blank={(0, 0)}, seed=1)
    monkeypatch.setattr(
        fb, "select_systems",
        lambda peers, names, skip, *more: ([FakeMatcher(), FakePeer()], {"absent": "not installed"}),
    )
    out = tmp_path / "all.json"
    md = tmp_path / "table.md"
    plots = tmp_path / "plots"
    r = _cli(monkeypatch, [str(a), str(b), "--peers", "--json", str(out), "--markdown", str(md),
                           "--plots", str(plots), "--cache", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert [d["dataset"] for d in doc["datasets"]] == ["set_a", "set_b"]
    for d in doc["datasets"]:
        for k in fb.REPORT_KEYS:
            assert k in d and k in d["peers"]["fakepeer"]
        assert d["peers_skipped"] == {"absent": "not installed"}
    assert set(doc["mean"]) == {"locard", "fakepeer"}
    text = md.read_text()
    assert "| data set | locard | fakepeer |" in text and "**mean**" in text
    assert "| set_b |" in text
    assert (plots / "set_a" / "det_set_a.png").is_file()
    assert (plots / "set_b" / "scores_set_b_fakepeer.png").is_file()


def test_cli_missing_dataset_is_a_clean_error(tmp_path, monkeypatch):
    r = _cli(monkeypatch, [str(tmp_path / "nope")])
    assert r.exit_code == 2
    assert "labels.csv" in r.output


def test_unknown_peer_name(tmp_path):
    from benchmarks.peers import make_peers

    with pytest.raises(KeyError, match="unknown peer"):
        make_peers(["no-such-peer"])


def test_fill_failed():
    g = np.array([5.0, np.nan, 7.0])
    i = np.array([-2.0, np.nan])
    g2, i2, fail = fb.fill_failed(g, i)
    assert fail == -2.0 and g2[1] == -2.0 and i2[1] == -2.0
    g2, i2, fail = fb.fill_failed(np.array([3.0]), np.array([np.nan]))
    assert fail == 0.0 and i2[0] == 0.0


def test_image_error_is_fte_even_for_locard():
    m = FakeMatcher()
    assert fb._expected_failure(m, ImageError("x"))
    assert fb._expected_failure(m, FailureToEnrol("x"))
    assert not fb._expected_failure(m, RuntimeError("x"))


# --- cross-feed: locard's comparator and frame with another extractor's minutiae ------------

SAMPLES = __import__("pathlib").Path(__file__).resolve().parents[1] / "data" / "samples" / "fingerprints"


def _sample_subset(root, identities=3, impressions=2):
    """The first ``identities`` x ``impressions`` generated sample prints, as a bench data set."""
    import shutil

    rows = list(csv.DictReader((SAMPLES / "labels.csv").open()))
    ids = sorted({r["identity"] for r in rows})[:identities]
    keep = [r for r in rows if r["identity"] in ids and int(r["impression"]) <= impressions]
    (root / "images").mkdir(parents=True)
    for r in keep:
        shutil.copy(SAMPLES / r["file"], root / r["file"])
    with (root / "labels.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, ["file", "identity", "ppi"])
        w.writeheader()
        w.writerows({"file": r["file"], "identity": r["identity"], "ppi": r["ppi"]} for r in keep)
    return root


def test_cross_feed_of_locards_own_minutiae_reproduces_locard(tmp_path):
    """locard's comparator fed locard's own fast minutiae scores every pair as locard (fast) does,
    and the diagnosis describes every image."""
    ds = _sample_subset(tmp_path / "ds")
    (rep,) = fb.run([str(ds)], mode="fast", minutiae_from=["locard-fast"], cache_dir=str(tmp_path / "cache"))
    assert rep["label"] == "locard (mode=fast)"
    block = rep["cross_feed"]["locard+locard-fast"]
    own, fed = rep["_results"]
    assert fed.name == "locard+locard-fast"
    np.testing.assert_array_equal(own.genuine, fed.genuine)
    np.testing.assert_array_equal(own.impostor, fed.impostor)
    assert block["eer"] == rep["eer"] and block["failure_to_enrol"] == 0
    diag = block["diagnosis"]
    assert [p["file"] for p in diag["per_image"]] == sorted(p["file"] for p in diag["per_image"])
    assert len(diag["per_image"]) == rep["images"]
    assert all(p["minutiae"] >= 4 and 0 <= p["outside_mask"] <= p["near_border"] <= 1 for p in diag["per_image"])
    low = diag["lowest_genuine"]
    assert len(low) == rep["genuine_pairs"] and low[0]["score"] == pytest.approx(own.genuine.min(), abs=1e-4)
    assert all(0 <= r["paired"] <= min(r["minutiae_a"], r["minutiae_b"]) for r in low)
    assert len(diag["genuine"]) == rep["genuine_pairs"]
    assert diag["impostor_p99"] == pytest.approx(np.percentile(own.impostor, 99))
    assert sorted(g[2] for g in diag["genuine"]) == pytest.approx(sorted(own.genuine), abs=1e-4)
    assert {(diag["per_image"][g[0]]["file"], diag["per_image"][g[1]]["file"]) for g in diag["genuine"]} >= {
        (r["a"], r["b"]) for r in low}
    assert "locard+locard-fast" in fb.markdown_tables([rep])


@pytest.mark.parametrize("source", ["nbis-py", "nbis-bozorth3", "leader"])
def test_cross_feed_keeps_locards_frame_and_takes_the_sources_minutiae(tmp_path, source):
    from benchmarks.peers import PeerUnavailable
    from benchmarks.peers.minutiae_sources import DIRECTIONS, make_source
    from matcher import fingerprint as fp
    from matcher.fingerprint.minutiae import MinutiaType

    try:
        src = make_source(source)
    except PeerUnavailable as exc:
        pytest.skip(str(exc))
    data = (SAMPLES / "images" / "0002_1.png").read_bytes()
    system = fb.CrossFeedSystem(src, mode="fast", cache=fb.BenchCache(tmp_path))
    assert system.direction == DIRECTIONS[source] == "negated"
    t = system.extract(data, 500.0)
    own = fp.extract(data, ppi=500, mode="fast")
    assert (t.width, t.height, t.quality) == (own.width, own.height, own.quality)
    np.testing.assert_array_equal(t.mask, own.mask)
    raw = src.raw(data, 500.0)
    np.testing.assert_allclose(t.minutiae["x"], raw.x)
    np.testing.assert_allclose(t.minutiae["y"], raw.y)
    np.testing.assert_allclose(t.minutiae["direction"], np.mod(-raw.angle, 2 * np.pi), atol=1e-5)
    assert list(t.minutiae["type"]) == [MinutiaType.ENDING if k == 0 else MinutiaType.BIFURCATION for k in raw.kind]
    # the source's minutiae now come from the cache
    src._raw = lambda *a: (_ for _ in ()).throw(AssertionError("not cached"))
    np.testing.assert_array_equal(system.extract(data, 500.0).minutiae, t.minutiae)
    assert system.compare(t, system.extract(data, 500.0)) > 0.5


def test_direction_conversions():
    from benchmarks.peers.minutiae_sources import RawMinutiae, to_locard
    from matcher.fingerprint.minutiae import MinutiaType

    raw = RawMinutiae(np.array([1.0, 2.0]), np.array([3.0, 4.0]), np.array([0.25, np.pi / 2]),
                      np.array([0, 1]), np.array([0.5, 1.0]))
    expected = {"as-is": [0.25, np.pi / 2], "negated": [2 * np.pi - 0.25, 1.5 * np.pi],
                "turned": [np.pi + 0.25, 1.5 * np.pi], "negated-turned": [np.pi - 0.25, np.pi / 2]}
    for conv, want in expected.items():
        m = to_locard(raw, conv)
        np.testing.assert_allclose(m["direction"], want, rtol=1e-6)
    assert list(m["type"]) == [MinutiaType.ENDING, MinutiaType.BIFURCATION]
    assert list(m["quality"]) == [50, 100]


def test_cli_cross_feed_options(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from locard import app

    ds = _sample_subset(tmp_path / "ds", identities=2)
    runner = CliRunner()
    args = ["bench", "fingerprint", str(ds), "--mode", "fast", "--skip-locard", "--cache", str(tmp_path / "c")]
    r = runner.invoke(app, args + ["--minutiae-from", "no-such-extractor"])
    assert r.exit_code == 2 and "unknown minutiae source" in r.output
    r = runner.invoke(app, args + ["--minutiae-from", "locard-fast", "--minutiae-direction", "sideways"])
    assert r.exit_code == 2 and "unknown direction conversion" in r.output
    out = tmp_path / "r.json"
    r = runner.invoke(app, args + ["--minutiae-from", "locard-fast", "--minutiae-direction", "turned",
                                   "--json", str(out)])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert list(doc["cross_feed"]) == ["locard+locard-fast [turned]"]
    assert doc["cross_feed"]["locard+locard-fast [turned]"]["diagnosis"]["per_image"]


def test_cross_feeds_of_one_run_extract_locards_frame_once_per_image(monkeypatch):
    from matcher import fingerprint as fp

    calls = []
    real = fp.extract
    monkeypatch.setattr(fp, "extract", lambda *a, **k: calls.append(k.get("mode")) or real(*a, **k))
    systems, skipped = fb.select_systems(False, None, True, "fast", ["locard-fast", "locard-accurate"])
    assert not skipped and [s.name for s in systems] == ["locard+locard-fast", "locard+locard-accurate"]
    data = (SAMPLES / "images" / "0001_2.png").read_bytes()
    for s in systems:
        s.extract(data, 500.0)
    # one frame (fast) shared by both, plus each source's own extraction
    assert sorted(calls) == ["accurate", "fast", "fast"]


def test_compare_rates_are_timed_in_turns_on_enrolled_pairs(tmp_path, monkeypatch):
    """extract_ms_median and compare_per_s: after scoring, the systems take turns."""
    calls = []

    class Logged(FakeMatcher):
        def compare(self, a, b):
            assert a is not None and b is not None  # never a failed enrolment
            calls.append(self.name)
            return super().compare(a, b)

    class Slow(Logged):
        name = "slow"

        def compare(self, a, b):
            sum(range(20_000))  # CPU time, so its rate is lower
            return super().compare(a, b)

    ds = _make_dataset(tmp_path / "ds", blank={(0, 0)})
    fast, slow = Logged(), Slow()
    slow.is_peer = True
    rep = fb.bench_dataset(ds, [fast, slow])
    scored = N_IDS * N_IMP * (N_IDS * N_IMP - 1) // 2 - rep["pairs_not_compared"]
    timing = calls[2 * scored:]  # both scored every pair first
    turns = [name for k, name in enumerate(timing) if k == 0 or timing[k - 1] != name]
    assert turns == [fast.name, slow.name] * fb.TIMING_ROUNDS
    peer = rep["peers"]["slow"]
    assert rep["compare_per_s"] > 2 * peer["compare_per_s"] > 0
    assert rep["compare_per_s"] != rep["compare_per_s_one_pass"]  # measured again
    n = N_IDS * N_IMP
    assert fast.extract_calls > n and slow.extract_calls > n  # extraction timed again too
    assert rep["extract_ms_median"] > 0 and "extract_ms_median_one_pass" in peer
