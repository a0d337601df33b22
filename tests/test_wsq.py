"""WSQ (FBI Wavelet Scalar Quantization): the shared image decoder's WSQ and :func:`matcher.wsq.encode`.

The unit tests make their WSQ with :func:`matcher.wsq.encode` from a generated ridge
pattern; the data-set tests decode NBIS-made WSQ files of real prints
(``../shared/data/fingerprint/fvc2000_style_pgafis``) and NIST's sample against its
reference decode (``../shared/data/nist/jnbis_reference/wsq``), and skip, saying so, when absent.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from matcher import wsq as wsq_codec
from matcher.errors import CorruptImageError, ImageError, ImageTooLargeError, ImageTooSmallError
from matcher.imageio import decode_image, sniff_format

PGAFIS = Path(__file__).resolve().parents[2] / "shared" / "data" / "fingerprint" / "fvc2000_style_pgafis"
NIST_WSQ = Path(__file__).resolve().parents[2] / "shared" / "data" / "nist" / "jnbis_reference" / "wsq"


def _ridges(h: int = 240, w: int = 200) -> np.ndarray:
    """Concentric ridges (period ~9 px) on a light background, as a print-like gray image."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = np.hypot(y - h * 0.55, x - w * 0.5)
    return (128 + 90 * np.sin(2 * np.pi * r / 9.0)).clip(0, 255).astype(np.uint8)


def _encode(pixels: np.ndarray) -> bytes:
    return wsq_codec.encode(pixels)


@pytest.fixture(scope="module")
def ridges_wsq() -> tuple[np.ndarray, bytes]:
    px = _ridges()
    return px, _encode(px)


def test_wsq_is_sniffed_and_decoded(ridges_wsq):
    px, data = ridges_wsq
    assert data[:2] == b"\xff\xa0" and sniff_format(data[:16]) == "WSQ"
    out = decode_image(data)
    assert out.format == "WSQ" and not out.was_color
    assert out.pixels.shape == px.shape and out.pixels.dtype == np.uint8
    # lossy, but close: mean absolute difference a few grey levels of 255
    assert np.abs(out.pixels.astype(int) - px).mean() < 6
    bgr = decode_image(data, color=True).pixels
    assert bgr.shape == px.shape + (3,) and np.array_equal(bgr[..., 0], out.pixels)


def test_frame_size_is_read_without_decoding(ridges_wsq):
    px, data = ridges_wsq
    assert wsq_codec.frame_size(data) == (px.shape[1], px.shape[0])


def test_image_size_reads_wsq_and_pillow_headers(ridges_wsq):
    from PIL import Image

    from matcher.imageio import image_size

    px, data = ridges_wsq
    png = io.BytesIO()
    Image.fromarray(px, "L").save(png, format="PNG")
    assert image_size(data) == image_size(png.getvalue()) == (px.shape[1], px.shape[0])
    assert image_size(data[:3]) is None and image_size(b"not an image") is None


def test_pixel_limit_holds_before_any_decoding(ridges_wsq, monkeypatch):
    _, data = ridges_wsq
    monkeypatch.setattr(wsq_codec, "decode", lambda *a, **k: pytest.fail("decoded despite the limit"))
    with pytest.raises(ImageTooLargeError):
        decode_image(data, max_pixels=1000)


def test_too_small_wsq_is_refused():
    small = _ridges(40, 40)
    with pytest.raises(ImageTooSmallError):
        decode_image(_encode(small), min_side=48)


def test_encoder_checks_its_input_and_matches_the_pillow_plugin():
    import importlib

    from PIL import Image

    importlib.import_module("wsq")  # registers the Pillow plugin
    px = _ridges()
    buf = io.BytesIO()
    Image.fromarray(px, "L").save(buf, format="WSQ")
    assert wsq_codec.encode(px) == buf.getvalue()  # same NBIS encoder, same fixed rate
    with pytest.raises(ImageTooSmallError):
        wsq_codec.encode(px[:20])
    with pytest.raises(ImageError):
        wsq_codec.encode(px.astype(np.float32))
    with pytest.raises(ImageError):
        wsq_codec.encode(np.dstack([px, px, px]))


@pytest.mark.parametrize("cut", [3, 6, 40, 0.5, -20])
def test_truncated_wsq_is_a_corrupt_image(ridges_wsq, cut):
    _, data = ridges_wsq
    n = int(len(data) * cut) if isinstance(cut, float) else cut
    with pytest.raises(CorruptImageError):
        decode_image(data[:n])


def test_damaged_wsq_never_takes_the_process_down(ridges_wsq):
    """NBIS's decoder is C: damaged bytes can crash it, so it runs in a child process.
    Here random damage only ever gives an image or a CorruptImageError."""
    _, data = ridges_wsq
    rng = np.random.default_rng(0)
    outcomes = set()
    for _ in range(12):
        b = bytearray(data)
        for i in rng.integers(2, len(b), 6):
            b[i] = int(rng.integers(0, 256))
        try:
            decode_image(bytes(b))
            outcomes.add("image")
        except CorruptImageError:
            outcomes.add("corrupt")
    assert outcomes <= {"image", "corrupt"}


def test_a_crashing_decoder_is_a_corrupt_image(ridges_wsq, monkeypatch):
    _, data = ridges_wsq
    monkeypatch.setattr(wsq_codec, "_CHILD", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    with pytest.raises(CorruptImageError, match="crash"):
        decode_image(data)


SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples" / "fingerprints" / "images"


@pytest.mark.skipif(not (SAMPLES / "0001_1.png").is_file(), reason="data/samples/fingerprints is missing")
def test_fingerprint_extraction_reads_wsq():
    """A shipped sample print, WSQ-encoded, matches its PNG twin far better than another finger."""
    from matcher.fingerprint import compare, extract

    wsq_bytes = _encode(decode_image((SAMPLES / "0001_1.png").read_bytes()).pixels)
    t_wsq = extract(wsq_bytes)
    t_png, t_other = (extract((SAMPLES / f"{n}.png").read_bytes()) for n in ("0001_1", "0002_1"))
    assert len(t_wsq) >= 12
    assert compare(t_wsq, t_png).score > 2 * compare(t_wsq, t_other).score


# -- real prints encoded by NBIS -------------------------------------------------------------------
needs_pgafis = pytest.mark.skipif(not (PGAFIS / "wsq_nbis").is_dir(),
                                  reason=f"{PGAFIS} (FVC-style prints with NBIS-made WSQ) is absent")

#: The data set's WSQ files were made from its PGM files read as raw bytes, header included:
#: "P5\n300 300\n255\n" is 15 bytes, so every WSQ pixel sits 15 places after its TIFF twin
#: in reading order (checked on 101_1: mean abs difference 0.93 at offset 15, > 5 at 14 or 16).
PGM_HEADER_SHIFT = 15


@needs_pgafis
def test_nbis_wsq_prints_decode_close_to_their_tiffs():
    from PIL import Image

    files = sorted((PGAFIS / "wsq_nbis").glob("*.wsq"))
    assert len(files) == 80
    diffs = []
    for f in files:
        w = decode_image(f.read_bytes())
        t = np.asarray(Image.open(PGAFIS / "images" / f"{f.stem}.tif").convert("L"))
        assert w.format == "WSQ" and w.pixels.shape == t.shape == (300, 300)
        a = w.pixels.ravel()[PGM_HEADER_SHIFT:].astype(int)
        b = t.ravel()[:-PGM_HEADER_SHIFT].astype(int)
        diffs.append(np.abs(a - b).mean())
    # 2.25 bits per pixel: a grey level or two off on average
    assert max(diffs) < 2.5, (np.mean(diffs), max(diffs))


@needs_pgafis
def test_nbis_wsq_prints_extract_and_match():
    """Each WSQ print scores higher against another impression of its finger (TIFF) than
    against the other fingers' impressions."""
    from matcher.fingerprint import compare, extract

    pairs = [("101_1", "101_2"), ("104_1", "104_3"), ("107_2", "107_4")]
    probes = {a: extract((PGAFIS / "wsq_nbis" / f"{a}.wsq").read_bytes()) for a, _ in pairs}
    gallery = {b: extract((PGAFIS / "images" / f"{b}.tif").read_bytes()) for _, b in pairs}
    for a, b in pairs:
        assert len(probes[a]) >= 12
        mated = compare(probes[a], gallery[b]).score
        others = [compare(probes[a], gallery[o]).score for _, o in pairs if o != b]
        assert mated > max(others), (a, mated, others)


@needs_pgafis
def test_encoder_compresses_real_prints_about_ten_to_one_at_300_px():
    """The fixed rate gives 14.6-15.9 : 1 on the FVC2002 B sets (benchmarks/README.md, WSQ);
    these smaller 300 x 300 prints carry the same ~650-byte tables, so 9-13 : 1."""
    from PIL import Image

    ratios, errors = [], []
    for f in sorted((PGAFIS / "images").glob("*.tif"))[::10]:
        px = np.asarray(Image.open(f).convert("L"))
        data = wsq_codec.encode(px)
        ratios.append(px.size / len(data))
        errors.append(np.abs(wsq_codec.decode(data).astype(int) - px).mean())
    assert 8 < min(ratios) and max(ratios) < 14, ratios
    assert max(errors) < 3.5, errors


@pytest.mark.skipif(not (NIST_WSQ / "sample.wsq").is_file(), reason=f"{NIST_WSQ} (NIST's WSQ sample) is absent")
def test_nist_sample_decodes_pixel_exact_to_its_reference():
    from PIL import Image

    ref = np.asarray(Image.open(NIST_WSQ / "sample.png").convert("L"))
    out = decode_image((NIST_WSQ / "sample.wsq").read_bytes())
    assert out.pixels.shape == ref.shape == (622, 545) and np.array_equal(out.pixels, ref)
