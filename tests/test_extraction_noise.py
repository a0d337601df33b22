"""The extraction-noise model of template-level subjects: its spacing rule and its ridge field."""

from __future__ import annotations

import numpy as np

from benchmarks.synth import impression
from benchmarks.synth.extraction_noise import find_true, load, noisy_template, ridge_orientation
from benchmarks.synth.groundtruth import Minutiae
from benchmarks.synth.master import make_master
from benchmarks.synth.template_level import press_truth
from benchmarks.synth.tenprint import KINDS


def _nearest(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    d = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
    np.fill_diagonal(d, np.inf)
    return d.min(axis=1)


def test_found_minutiae_keep_the_extractors_spacing():
    rng = np.random.default_rng(1)
    # a grid 20 px apart, and next to every other point a second one 4 px away
    gx, gy = np.meshgrid(np.arange(20, 200, 20.0), np.arange(20, 200, 20.0))
    x, y = gx.ravel(), gy.ravel()
    x, y = np.concatenate([x, x[::2] + 4.0]), np.concatenate([y, y[::2]])
    truth = Minutiae(x, y, np.zeros(len(x)), np.zeros(len(x), np.int8))
    idx, fx, fy = find_true(truth, np.ones(len(x)), [0.0, 0.0], 10.0, rng)
    assert _nearest(fx, fy).min() >= 10.0
    # every lone grid point is kept; of each close pair exactly one, either member
    kept = set(idx.tolist())
    assert set(range(1, 81, 2)) <= kept
    pairs = list(zip(range(0, 81, 2), range(81, 122)))
    assert all((i in kept) != (j in kept) for i, j in pairs)
    assert 0 < sum(j in kept for _, j in pairs) < len(pairs)  # random order, not always the first


def test_a_template_level_template_has_no_two_minutiae_closer_than_the_spacing():
    noise = load().kinds["rolled"]
    master = make_master("whorl", np.random.default_rng(3))
    rng = np.random.default_rng(4)
    p, contact, truth, intact = press_truth(master, rng, "rolled")
    t = noisy_template(truth, contact, intact, p.press.pressure, lambda x, y: ridge_orientation(master, p, x, y, rng),
                       noise, rng)
    m = t.minutiae
    assert len(m) > 20
    assert _nearest(m["x"].astype(float), m["y"].astype(float)).min() >= noise.min_distance - 1e-3


def test_press_truth_gives_the_ridge_intactness_the_image_was_rendered_with(monkeypatch):
    seen = []
    drawn = impression.ridge_intact

    def spy(*args):
        seen.append(drawn(*args))
        return seen[-1]

    master = make_master("right_loop", np.random.default_rng(7))
    style, shape = KINDS["flat"]
    monkeypatch.setattr(impression, "ridge_intact", spy)
    impression.make_impression(master, np.random.default_rng(8), shape, style)
    monkeypatch.undo()
    _, _, _, intact = press_truth(master, np.random.default_rng(8), "flat")
    assert len(seen) == 1 and np.array_equal(seen[0], intact)
    assert 0.0 <= intact.min() and intact.max() <= 1.0 and intact.min() < intact.max()
