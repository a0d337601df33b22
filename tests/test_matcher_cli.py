"""``locard compare`` on images the test writes."""

from __future__ import annotations

import cv2
from typer.testing import CliRunner

from locard import app

from .fingerprint_images import DEFAULT_POINTS, OTHER_POINTS, ridge_image


def test_compare_decides_and_lists_paired_minutiae(tmp_path):
    a, b, c = tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"
    cv2.imwrite(str(a), ridge_image(points=DEFAULT_POINTS))
    cv2.imwrite(str(b), ridge_image(points=DEFAULT_POINTS, noise=25, seed=1))
    cv2.imwrite(str(c), ridge_image(points=OTHER_POINTS, angle=1.2, period=10))
    runner = CliRunner()
    same = runner.invoke(app, ["compare", str(a), str(b), "--fmr", "0.001"])
    assert same.exit_code == 0, same.output
    assert "MATCH" in same.output and "paired minutiae" in same.output
    other = runner.invoke(app, ["compare", str(a), str(c)])
    assert other.exit_code == 0 and "no match" in other.output


def test_compare_reports_bad_input_without_a_traceback(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a fingerprint")
    img = tmp_path / "a.png"
    cv2.imwrite(str(img), ridge_image(points=DEFAULT_POINTS))
    r = CliRunner().invoke(app, ["compare", str(text), str(img)])
    assert r.exit_code == 2 and "not an image" in r.output and "Traceback" not in r.output
