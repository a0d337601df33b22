"""Fingerprint matcher on images the tests make: stages, template format, comparison, bad input."""

from __future__ import annotations

import io
import struct

import cv2
import numpy as np
import pytest
from PIL import Image

from matcher.errors import (CorruptImageError, EmptyImageError, FailureToEnrol, ImageTooLargeError,
                            TemplateError, TemplateVersionError, UnsupportedFormatError)
from matcher.fingerprint import MinutiaType, Template, compare, extract, run_pipeline
from matcher.fingerprint.comparison import compare_scores, pack_templates, raw_scores

from .fingerprint_images import DEFAULT_POINTS, OTHER_POINTS, ridge_image
from .sample_prints import fp, needs_samples
from .test_imageio import png_header_only


@pytest.fixture(scope="module")
def image():
    return ridge_image(points=DEFAULT_POINTS)


@pytest.fixture(scope="module")
def template(image):
    return extract(image)


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def test_every_stage_is_observable(image):
    ex = run_pipeline(image, mode="fast")
    h, w = image.shape
    assert ex.orientation.theta.shape == (h, w) and ex.mask.shape == (h, w)
    assert ex.mask[h // 2, w // 2] and not ex.mask[2, 2]  # centre is print, white margin is not
    # the ridge period of the test image is 9 pixels
    assert np.median(1 / ex.block_frequency[ex.block_frequency > 0]) == pytest.approx(9.0, rel=0.15)
    assert ex.skeleton.sum() < ex.ridges.sum()
    # ridges are 9-pixel waves: about half the print is ridge
    assert 0.3 < ex.ridges[ex.mask].mean() < 0.7


def test_minutiae_are_found_at_the_dislocations(template):
    m = template.minutiae
    dist = [np.hypot(m["x"] - x, m["y"] - y).min() for x, y, _ in DEFAULT_POINTS]
    assert max(dist) <= 6.0, dist
    assert len(m) <= len(DEFAULT_POINTS) + 2  # no crowd of false minutiae
    assert set(np.unique(m["type"])) <= {MinutiaType.ENDING, MinutiaType.BIFURCATION}
    assert np.all((m["direction"] >= 0) & (m["direction"] < 2 * np.pi))
    # each minutia direction lies along the ridges (orientation 0.3 rad, either sense)
    d = np.mod(m["direction"] - 0.3 - np.pi / 2, np.pi)
    assert np.all(np.minimum(d, np.pi - d) < 0.35)


def test_bytes_and_array_give_the_same_template(image, template):
    again = extract(_png(image))
    assert np.array_equal(again.minutiae, template.minutiae)


def test_resolution_is_normalised_to_500_ppi(image):
    t = extract(image, ppi=569)
    assert (t.height, t.width) == (round(320 * 500 / 569), round(320 * 500 / 569))


def test_template_round_trip(template):
    data = template.to_bytes(with_cohort=False)
    assert data[:4] == b"LCFP" and struct.unpack_from("<H", data, 4)[0] == 3
    rows, cols = template.mask.shape
    # header, mask bits, minutiae, an empty cohort block
    assert len(data) == 19 + (rows * cols + 7) // 8 + 8 * len(template) + 1
    back = Template.from_bytes(data)
    assert back.extractor == template.extractor == "accurate"
    for k in ("x", "y", "type", "quality"):
        assert np.array_equal(back.minutiae[k], np.round(template.minutiae[k]).astype(back.minutiae[k].dtype))
    assert np.allclose(back.minutiae["direction"], template.minutiae["direction"], atol=1e-3)
    assert np.array_equal(back.mask, template.mask)
    assert (back.width, back.height, back.quality) == (template.width, template.height, template.quality)
    assert back.cohort is None
    assert compare(back, template).score == pytest.approx(compare(template, template).score, rel=0.02)


def test_format_1_templates_read_as_the_fast_extractor(image):
    fast = extract(image, mode="fast")
    v3 = fast.to_bytes(with_cohort=False)
    v2 = v3[:4] + struct.pack("<H", 2) + v3[6:-1]  # format 2: no cohort block
    v1 = v2[:4] + struct.pack("<H", 1) + v2[6:18] + v2[19:]  # format 1: no extractor byte
    back = Template.from_bytes(v1)
    assert back.extractor == "fast" and len(back) == len(fast)
    assert Template.from_bytes(v2).extractor == "fast"


def test_newer_and_older_template_versions_say_what_to_do(template):
    data = bytearray(template.to_bytes())
    data[4:6] = struct.pack("<H", 99)
    with pytest.raises(TemplateVersionError, match="upgrade locard"):
        Template.from_bytes(bytes(data))
    data[4:6] = struct.pack("<H", 0)
    with pytest.raises(TemplateVersionError, match="re-extract"):
        Template.from_bytes(bytes(data))


def test_damaged_template(template):
    with pytest.raises(TemplateError, match="not a locard"):
        Template.from_bytes(b"ISO\x00garbage")
    with pytest.raises(TemplateError, match="damaged"):
        Template.from_bytes(template.to_bytes()[:-3])


def test_same_finger_scores_far_above_another_finger(image, template):
    noisy = extract(ridge_image(points=DEFAULT_POINTS, noise=25, seed=1))
    m = cv2.getRotationMatrix2D((160, 160), 12, 1.0)
    m[:, 2] += (8, -5)
    moved = extract(cv2.warpAffine(image, m, (320, 320), borderValue=255))
    other = extract(ridge_image(points=OTHER_POINTS, angle=1.2, period=10))
    genuine = [compare(template, noisy).score, compare(template, moved).score]
    impostor = [compare(template, other).score, compare(moved, other).score]
    # cohort-normalised: impostors near 0, these clean mates hundreds of cohort spreads above
    assert min(genuine) > 50 and max(impostor) < 5, (genuine, impostor)
    assert compare(template, template).pair_scores.min() > 0.95
    batch = compare_scores(template, [noisy, moved, other])
    assert np.allclose(batch, [genuine[0], genuine[1], impostor[0]])
    gallery = pack_templates([noisy, moved, other, template, noisy])
    assert np.array_equal(compare_scores(template, gallery, threads=2), compare_scores(template, gallery))
    assert np.array_equal(compare_scores(template, gallery, threads=9), compare_scores(template, gallery))


def test_comparison_names_the_paired_minutiae(template):
    noisy = extract(ridge_image(points=DEFAULT_POINTS, noise=25, seed=1))
    r = compare(template, noisy)
    assert r.pairs.shape[1] == 2 and len(r.pairs) >= 4
    assert len(set(r.pairs[:, 0])) == len(r.pairs)  # one-to-one
    pa = template.minutiae[r.pairs[:, 0]]
    pb = noisy.minutiae[r.pairs[:, 1]]
    # same finger, same place: paired minutiae lie on top of each other
    assert np.all(np.hypot(pa["x"] - pb["x"], pa["y"] - pb["y"]) < 8)
    assert np.all(np.diff(r.pair_scores) <= 1e-12)


def test_all_white_image_fails_to_enrol_with_quality_zero():
    with pytest.raises(FailureToEnrol) as info:
        extract(_png(np.full((300, 300), 255, np.uint8)))
    assert info.value.quality == 0 and "no fingerprint" in str(info.value)


@pytest.mark.parametrize("data,error", [
    (b"", EmptyImageError),
    (b"this is a text file, not a fingerprint\n", UnsupportedFormatError),
    (png_header_only(20000, 20000), ImageTooLargeError),
])
def test_bad_bytes_raise_typed_errors(data, error):
    with pytest.raises(error):
        extract(data)


def test_truncated_tiff():
    buf = io.BytesIO()
    Image.fromarray(ridge_image()).save(buf, format="TIFF")
    with pytest.raises(CorruptImageError):
        extract(buf.getvalue()[:5000])


def test_quality_orders_clean_above_noisy(template):
    noisy = extract(ridge_image(points=DEFAULT_POINTS, noise=90, seed=3))
    assert 0 <= noisy.quality < template.quality <= 100


def test_nfiq2_quality_when_nbis_is_installed(image):
    pytest.importorskip("nbis", reason="nbis-py (the nfiq2 extra) is not installed")
    t = extract(image, quality="nfiq2")
    assert 0 <= t.quality <= 100
    with pytest.raises(ValueError, match="quality must be"):
        extract(image, quality="best")


@needs_samples
def test_scores_of_small_templates_are_scaled_down():
    """Few minutiae pair by chance more easily: the comparator scales the score by
    (min(nA, nB) / SIZE_REF) ** SIZE_EXPONENT below SIZE_REF minutiae (self-comparisons
    relax to the same mean similarity whatever their size, so the ratio shows the factor)."""
    from matcher.fingerprint.comparison import SIZE_EXPONENT, SIZE_REF

    template = extract(fp("0001_1"))  # a generated print with 46 minutiae
    assert len(template) > SIZE_REF

    def first(k):
        return Template(minutiae=template.minutiae[:k].copy(), width=template.width, height=template.height,
                        quality=template.quality, mask=template.mask)

    def raw(a, b):
        return raw_scores(a, pack_templates([b], raw=True))[0]

    full = raw(template, template)
    for k in (8, 16, int(SIZE_REF)):
        s = first(k)
        assert raw(s, s) / full == pytest.approx(min(k / SIZE_REF, 1.0) ** SIZE_EXPONENT, rel=1e-6)
    assert raw(first(8), template) < raw(first(int(SIZE_REF)), template)


def test_faint_prints_keep_their_strongest_weak_peaks():
    """Fewer than MIN_DETECTED confident network peaks: weaker peaks (down to LOW_THRESHOLD)
    fill up to MIN_DETECTED, strongest first; a print with enough confident peaks keeps no weak one."""
    from matcher.fingerprint.learned_minutiae import (DETECTION_THRESHOLD, LOW_THRESHOLD, MIN_DETECTED,
                                                      detect_learned_minutiae)

    rng = np.random.default_rng(0)
    mask = np.ones((200, 200), bool)
    cells = [(y, x) for y in range(20, 180, 10) for x in range(20, 180, 10)]  # 256 inside the border
    picks = rng.permutation(len(cells))

    def maps_with(n_strong, n_weak):
        maps = np.zeros((200, 200, 4), np.float32)
        for k, c in enumerate(picks[: n_strong + n_weak]):
            y, x = cells[c]
            strong = k < n_strong
            maps[y, x, 3] = 0.9 if strong else LOW_THRESHOLD + 0.01 + 0.3 * rng.random() * (DETECTION_THRESHOLD - LOW_THRESHOLD)
        maps[5, 5, 3] = 0.3  # outside the eroded print area: never a minutia
        return maps

    few = detect_learned_minutiae(maps_with(10, 40), mask)
    assert len(few) == MIN_DETECTED
    assert np.sum(few["quality"] >= 90) == 10 and np.all(np.diff(few["quality"].astype(int)) <= 0)
    assert not np.any((few["x"] == 5) & (few["y"] == 5))
    faint = detect_learned_minutiae(maps_with(0, 12), mask)
    assert len(faint) == 12  # all the weak peaks there are
    many = detect_learned_minutiae(maps_with(MIN_DETECTED + 5, 40), mask)
    assert len(many) == MIN_DETECTED + 5 and np.all(many["quality"] >= 90)
