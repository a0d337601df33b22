"""Memory of fingerprint search: the re-ranking cache's budget, and the compact arrays behind it
(cylinders from one kernel, pair geometry computed in the comparator)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.search_bench import add_synthetic, synthetic_finger_template
from indexer.search import Probe, Searcher
from indexer.store import GalleryStore
from matcher.fingerprint import MATCHER_VERSION, Template
from matcher.fingerprint import descriptors as D
from matcher.fingerprint.comparison import _direction_difference, _distances_from, _radial_angle, _wrap_mod, prepare


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    path = tmp_path_factory.mktemp("memory")
    store = GalleryStore(path, create=True)
    _, _, templates = add_synthetic(store, "finger", 40, seed=3, echo=lambda *_: None)
    store.close()
    return path, templates


def _ranked(searcher: Searcher, probes: list) -> list:
    out = []
    for t in probes:
        r = searcher.identify(Probe("finger", t), top=5)
        out.append([(c.subject, round(c.raw, 12)) for c in r.candidates])
    return out


def test_a_small_cache_budget_evicts_and_changes_no_result(gallery):
    path, templates = gallery
    store = GalleryStore(path)
    probes = [Template.from_bytes(t.to_bytes()) for t in list(templates.values())[:6]]
    everything = Searcher(store, shortlist=20, cache_bytes_per_finger=10**7)
    small = Searcher(store, shortlist=20, cache_bytes_per_finger=4096)
    assert _ranked(small, probes) == _ranked(everything, probes)
    assert len(everything._templates) > len(small._templates) > 0
    assert small.cache_bytes <= small.cache_capacity() == 4096 * 40
    assert small.cache_bytes == sum(t.nbytes for t in small._templates.values())
    # a probe is its own gallery template: found first whatever was evicted
    assert [r[0][0] for r in _ranked(small, probes)] == [s.name for s in store.subjects()][:6]
    store.close()


def test_warm_fills_the_cache_up_to_its_budget(gallery):
    path, _ = gallery
    store = GalleryStore(path)
    s = Searcher(store, cache_bytes_per_finger=4096)
    s.warm()
    one = next(iter(s._templates.values())).nbytes
    assert s.cache_capacity() - one <= s.cache_bytes <= s.cache_capacity()
    big = Searcher(store, cache_bytes_per_finger=10**7)
    big.warm()
    assert len(big._templates) == 40
    assert all(MATCHER_VERSION in t._derived for t in big._templates.values())  # prepared
    store.close()


def _reference_cells(t: Template) -> tuple[np.ndarray, np.ndarray]:
    """MCC cell sums and validity straight from the definition (numpy, every cell and neighbour)."""
    m = t.minutiae
    x, y, th = (m[k].astype(np.float64) for k in ("x", "y", "direction"))
    ci, cj = D._CELL_I.ravel(), D._CELL_J.ravel()
    cx = x[:, None] + ci * np.cos(th)[:, None] - cj * np.sin(th)[:, None]
    cy = y[:, None] + ci * np.sin(th)[:, None] + cj * np.cos(th)[:, None]
    ok = D._IN_DISC.ravel()[None] & t.in_print(cx, cy)
    d2 = (x[None, None, :] - cx[:, :, None]) ** 2 + (y[None, None, :] - cy[:, :, None]) ** 2
    cs = np.exp(-d2 / (2 * D.SIGMA_S ** 2)) / (D.SIGMA_S * np.sqrt(2 * np.pi))
    cs[d2 > (3 * D.SIGMA_S) ** 2] = 0.0
    cs[:, :, np.arange(len(x))] *= 1 - np.eye(len(x))[:, None, :]  # not the minutia itself
    from scipy.special import erf

    dth = (th[:, None] - th[None, :] + np.pi) % (2 * np.pi) - np.pi
    a = (D._DIR_CENTERS[None, None, :] - dth[:, :, None] + np.pi) % (2 * np.pi) - np.pi
    sq2 = np.sqrt(2) * D.SIGMA_D
    cd = 0.5 * (erf((a + D._DELTA_D / 2) / sq2) - erf((a - D._DELTA_D / 2) / sq2))  # (m, t, k)
    values = np.einsum("mct,mtk->mck", cs, cd).reshape(len(x), -1)
    return values, np.repeat(ok, D.ND, axis=1)


def _unpack(words: np.ndarray, n_bits: int) -> np.ndarray:
    return np.unpackbits(words.view(np.uint8), axis=1, bitorder="little")[:, :n_bits].astype(bool)


def test_cylinder_kernel_matches_the_definition():
    rng = np.random.default_rng(5)
    for _ in range(3):
        t = Template.from_bytes(synthetic_finger_template(rng).to_bytes())
        c = D.cylinders(t)
        values, valid = _reference_cells(t)
        nb = D.NS * D.NS * D.ND
        bits = _unpack(c.bits, nb)
        assert np.array_equal(_unpack(c.valid, nb), valid)
        clear = np.abs(values - D.MU_PSI) > 1e-6  # away from the threshold, summation order cannot matter
        assert np.array_equal(bits[clear], ((values > D.MU_PSI) & valid)[clear])
        assert np.array_equal(c.ones, bits.sum(1))
        assert np.array_equal(c.full, valid.sum(1) == D._IN_DISC.sum() * D.ND)
        assert bits.sum() > 0


def test_pair_geometry_from_coordinates():
    rng = np.random.default_rng(6)
    t = Template.from_bytes(synthetic_finger_template(rng).to_bytes())
    p = prepare(t)[-1]
    x, y, th = p[:, 0], p[:, 1], p[:, 2]
    dist = np.zeros(len(x), np.float32)
    _distances_from(np.ascontiguousarray(x), np.ascontiguousarray(y), 3, dist)
    assert np.array_equal(dist[4:], np.hypot(x[4:] - x[3], y[4:] - y[3]).astype(np.float32))
    for i, k in [(0, 1), (3, 7), (5, 2), (1, 0)]:
        dx, dy = x[k] - x[i], y[k] - y[i]
        assert _direction_difference(p, i, k) == np.float32((th[i] - th[k] + np.pi) % (2 * np.pi) - np.pi)
        radial = (th[i] - np.arctan2(dy, dx) + np.pi) % (2 * np.pi) - np.pi
        assert _radial_angle(p, i, k) == pytest.approx(np.float32(radial), abs=1e-6)
    # wrapping without fmod gives the remainder's result bit for bit, in and out of its fast range
    a = np.concatenate([np.random.default_rng(8).uniform(-3 * np.pi, 5 * np.pi, 2000), [-np.pi, np.pi, 3 * np.pi]])
    assert np.array_equal([_wrap_mod(v) for v in a], (a + np.pi) % (2 * np.pi) - np.pi)


def test_shortlist_codes_are_the_sampled_cylinder_bits():
    rng = np.random.default_rng(7)
    t = Template.from_bytes(synthetic_finger_template(rng).to_bytes())
    c = D.cylinders(t)
    codes = D.shortlist_codes(t)
    positions = D._SHORTLIST_POSITIONS
    assert codes.shape == (int(c.usable.sum()), D.SHORTLIST_BITS // 8) and codes.dtype == np.uint8
    assert len(np.unique(positions)) == D.SHORTLIST_BITS
    assert D._IN_DISC.ravel()[positions // D.ND].all()  # never a cell that is always empty
    full = _unpack(c.bits[c.usable], D.NS * D.NS * D.ND)
    assert np.array_equal(_unpack(codes, D.SHORTLIST_BITS), full[:, positions])
    # each direction bin gets about its share of the sample
    assert np.bincount(positions % D.ND).min() > 0.8 * D.SHORTLIST_BITS / D.ND


def test_a_warm_searcher_holds_at_most_8_kb_per_finger(gallery):
    """Issue 14's bar: index plus the re-ranking arrays kept in memory, per enrolled finger."""
    path, _ = gallery
    store = GalleryStore(path)
    s = Searcher(store)
    s.warm()
    n = s.n_samples["finger"]
    index_bytes = (path / "finger.index").stat().st_size
    assert index_bytes / n + s.cache_bytes / n <= 8192
    assert s.cache_bytes > 0.8 * s.cache_capacity()  # warm did fill the cache
    store.close()
