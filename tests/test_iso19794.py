"""ISO/IEC 19794-2 and ANSI/INCITS 378 finger minutiae records (matcher.interchange)."""

from __future__ import annotations

import struct
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from matcher.errors import LocardError, TemplateError
from matcher.fingerprint.minutiae import MINUTIA_DTYPE
from matcher.fingerprint.template import Template, block_mask
from matcher.interchange.ansi378 import read_ansi378, write_ansi378
from matcher.interchange.finger_view import FingerView, QualityBlock, CaptureDevice
from matcher.interchange.iso19794 import detect_edition, read_iso19794_2, read_template, write_iso19794_2
from matcher.interchange.record_codec import (CORE_DELTA_BLOCK, RIDGE_COUNT_BLOCK, Edition, ExtendedBlock,
                                              MinutiaeRecordError, RecordVersionError)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fingerprint"
FVC2002 = [DATA / f"fvc2002_db{k}_b" for k in (1, 2, 3, 4)]
needs_secugen = pytest.mark.skipif(
    not all((d / "iso19794_2_templates").is_dir() for d in FVC2002),
    reason=f"real data absent: {DATA}/fvc2002_db*_b/iso19794_2_templates (../shared/data is not on this machine)")

WRITERS = {Edition.ISO_2005: lambda s: write_iso19794_2(s, 2005), Edition.ISO_2011: lambda s: write_iso19794_2(s, 2011),
           Edition.ANSI_2004: lambda s: write_ansi378(s, 2004), Edition.ANSI_2009: lambda s: write_ansi378(s, 2009)}


def _template(n: int = 40, seed: int = 0, width: int = 300, height: int = 400) -> Template:
    rng = np.random.default_rng(seed)
    m = np.zeros(n, MINUTIA_DTYPE)
    m["x"] = rng.uniform(0, width - 1, n)
    m["y"] = rng.uniform(0, height - 1, n)
    m["direction"] = rng.uniform(0, 2 * np.pi, n)
    m["type"] = rng.integers(1, 3, n)
    m["quality"] = rng.integers(0, 101, n)
    return Template(minutiae=m, width=width, height=height, quality=57,
                    mask=block_mask(np.ones((height, width), bool)))


def _turn(a, b):
    return np.abs(np.angle(np.exp(1j * (np.asarray(a, np.float64) - b))))


# ---------------------------------------------------------------------- round trips


@pytest.mark.parametrize("edition", list(Edition))
def test_template_round_trip_within_quantisation(edition):
    t = _template()
    data = WRITERS[edition](t)
    assert detect_edition(data) == edition
    [view] = read_template(data)
    assert view.edition == edition and (view.width, view.height, view.ppi) == (300, 400, (500.0, 500.0))
    back = view.to_template()
    assert (back.width, back.height, back.quality) == (300, 400, 57)
    a, b = t.minutiae, back.minutiae
    assert np.abs(a["x"] - b["x"]).max() <= 0.5 and np.abs(a["y"] - b["y"]).max() <= 0.5
    assert _turn(a["direction"], b["direction"]).max() <= edition.angle_unit / 2 + 1e-6
    assert np.array_equal(a["type"], b["type"]) and np.array_equal(a["quality"], b["quality"])
    assert WRITERS[edition](read_template(data)) == data  # the record's own fields come back byte for byte


def test_editions_convert_into_each_other():
    t = _template(seed=1)
    for source in Edition:
        [view] = read_template(WRITERS[source](t))
        for target in Edition:
            [again] = read_template(WRITERS[target](view))
            assert again.edition == target
            d = _turn(again.to_minutiae()["direction"], t.minutiae["direction"])
            assert d.max() <= (source.angle_unit + target.angle_unit) / 2 + 1e-6


def test_multi_view_records_and_their_limits():
    a = FingerView.from_template(_template(seed=2), Edition.ISO_2011, position=2)
    b = FingerView.from_template(_template(12, seed=3, width=500, height=500), Edition.ISO_2011, position=7)
    for edition, write in ((2011, write_iso19794_2), (2009, write_ansi378)):
        views = read_template(write([a, b], edition))
        assert [v.position for v in views] == [2, 7] and [v.width for v in views] == [300, 500]
    for edition, write in ((2005, write_iso19794_2), (2004, write_ansi378)):
        with pytest.raises(MinutiaeRecordError, match="one image size"):
            write([a, b], edition)
        same = read_template(write([a, replace(b, width=300, height=400)], edition))
        assert [len(v) for v in same] == [40, 12]


def test_extended_data_kept_and_decoded():
    cores_iso = bytes([1]) + struct.pack(">HHB", (1 << 14) | 150, 200, 64) + bytes([1]) + struct.pack(">HH", 100, 300)
    ridge = bytes([0]) + bytes([0, 1, 5, 2, 3, 7])
    vendor = ExtendedBlock(0x0123, b"\x00\xffopaque")
    view = replace(FingerView.from_template(_template(), Edition.ISO_2005),
                   extended=(ExtendedBlock(RIDGE_COUNT_BLOCK, ridge), ExtendedBlock(CORE_DELTA_BLOCK, cores_iso), vendor))
    [back] = read_template(write_iso19794_2(view, 2005))
    assert back.extended == view.extended
    method, counts = back.ridge_counts()
    assert method == 0 and counts.tolist() == [[0, 1, 5], [2, 3, 7]]
    sp = back.singular_points()
    assert sp.cores[0, :2].tolist() == [150, 200] and sp.cores[0, 2] == pytest.approx(np.mod(-np.pi / 2, 2 * np.pi))
    assert sp.deltas[0, :2].tolist() == [100, 300] and np.isnan(sp.deltas[0, 2:]).all()
    # ANSI flags angles in the count byte and counts 2-degree units: the block is re-encoded
    [ansi] = read_template(write_ansi378(back, 2004))
    assert ansi.extended[0] == back.extended[0] and ansi.extended[2] == vendor
    assert ansi.extended[1].data != back.extended[1].data
    assert np.allclose(ansi.singular_points().cores, sp.cores, equal_nan=True)
    assert np.allclose(ansi.singular_points().deltas, sp.deltas, equal_nan=True)


def test_iso_2011_fields_round_trip():
    view = replace(FingerView.from_template(_template(), Edition.ISO_2011), position=3, view=1, impression=1,
                   quality_blocks=(QualityBlock(61, 0x000F, 0x0377), QualityBlock(254, 0x0031, 1)),
                   capture=CaptureDevice(device_id=9, technology=2, vendor=0x0031,
                                         captured_at=bytes([7, 234, 3, 14, 9, 30, 5, 0, 12]),
                                         certifications=((0x0001, 2),)),
                   ending_type=1, minutia_quality=False, x_resolution=394, y_resolution=394)
    data = write_iso19794_2(view, 2011)
    [back] = read_template(data)
    for name in ("position", "view", "impression", "quality_blocks", "capture", "ending_type", "minutia_quality",
                 "x_resolution"):
        assert getattr(back, name) == getattr(view, name), name
    assert back.ppi == (1000.0, 1000.0) and (back.minutiae["quality"] == 254).all()
    assert np.allclose(back.to_minutiae()["x"], view.minutiae["x"] / 2)  # 1000 ppi -> 500 ppi


def test_ansi_2004_long_length_form():
    view = FingerView.from_template(_template(150), Edition.ANSI_2004)
    views = [replace(view, position=k % 11, view=k // 11) for k in range(80)]
    data = write_ansi378(views, 2004)
    assert len(data) > 0xFFFF and data[8:10] == b"\x00\x00"
    assert int.from_bytes(data[10:14], "big") == len(data)
    assert [v.position for v in read_template(data)] == [k % 11 for k in range(80)]


def test_one_standard_readers_refuse_the_other():
    t = _template()
    with pytest.raises(MinutiaeRecordError, match="not ISO"):
        read_iso19794_2(write_ansi378(t, 2009))
    with pytest.raises(MinutiaeRecordError, match="not ANSI"):
        read_ansi378(write_iso19794_2(t, 2005))
    assert read_ansi378(write_ansi378(t, 2004))[0].edition == Edition.ANSI_2004


# ---------------------------------------------------------------------- malformed input


@pytest.mark.parametrize("edition", list(Edition))
def test_every_truncation_is_a_typed_error(edition):
    data = WRITERS[edition](_template(5))
    for n in range(len(data)):
        with pytest.raises(MinutiaeRecordError):
            read_template(data[:n])


def test_wrong_magic_and_versions():
    good = write_iso19794_2(_template(5), 2005)
    with pytest.raises(MinutiaeRecordError, match="not a finger minutiae record"):
        read_template(b"FIR\x00" + good[4:])
    for version in (b"020\x00", b"035\x00", b" 10\x00"):
        with pytest.raises(RecordVersionError):
            read_template(good[:4] + version + good[8:])
    assert issubclass(MinutiaeRecordError, TemplateError) and issubclass(RecordVersionError, LocardError)


def _set(data: bytes, offset: int, value: bytes) -> bytes:
    return data[:offset] + value + data[offset + len(value):]


def test_counts_and_lengths_that_disagree_with_the_bytes():
    iso = write_iso19794_2(_template(5), 2005)  # header 24, view header 4, 5 x 6 minutiae, ext length 2
    cases = {
        "minutiae count past the end": _set(iso, 27, b"\xff"),
        "view count past the end": _set(iso, 22, b"\xff"),
        "extended length past the end": _set(iso, 58, b"\xff\xf0"),
        "record length too small": _set(iso, 8, struct.pack(">I", len(iso) - 1)),
        "record length too large": _set(iso, 8, struct.pack(">I", 1 << 31)),
        "bytes after the last view": _set(iso, 8, struct.pack(">I", len(iso) + 3)) + b"\x00" * 3,
        "zero resolution": _set(iso, 18, b"\x00\x00"),
        "reserved minutia type": _set(iso, 28, bytes([0xC0 | iso[28] & 0x3F])),
    }
    with_ext = write_iso19794_2(replace(read_template(iso)[0], extended=(ExtendedBlock(0x0101, b"abcd"),)), 2005)
    cases["block length under its header"] = _set(with_ext, 62, b"\x00\x02")
    cases["block length past the data"] = _set(with_ext, 62, b"\x00\x20")
    iso11 = write_iso19794_2(_template(5), 2011)
    cases["2011 representation count past the end"] = _set(iso11, 12, b"\xff\xff")
    cases["2011 representation length wrong"] = _set(iso11, 15, struct.pack(">I", 40))
    cases["2011 minutia record size 7"] = _set(iso11, 15 + 4 + 9 + 5 + 1 + 5 + 11, b"\x71")
    ansi = write_ansi378(_template(5), 2004)
    cases["ANSI angle beyond 179"] = _set(ansi, 26 + 4 + 4, b"\xc8")
    for what, data in cases.items():
        with pytest.raises(MinutiaeRecordError):
            read_template(data)
            pytest.fail(what)


def test_random_damage_never_escapes_as_another_exception():
    rng = np.random.default_rng(5)
    records = [w(_template(8, seed=9)) for w in WRITERS.values()]
    for _ in range(2000):
        data = bytearray(records[rng.integers(len(records))])
        for k in rng.integers(8, len(data), rng.integers(1, 4)):
            data[k] = rng.integers(256)
        try:
            views = read_template(bytes(data))
        except MinutiaeRecordError:
            continue
        for v in views:
            assert len(v) <= 255


# ---------------------------------------------------------------------- peers


def test_afis_reads_our_2005_records():
    afis_templates = pytest.importorskip("afis.algorithms.templates")
    t = _template(30, seed=4)
    header, m = afis_templates.decode_iso19794_2(write_iso19794_2(t, 2005))
    assert (header.width, header.height, len(m)) == (300, 400, 30)
    assert np.array_equal(m[:, 0], np.round(t.minutiae["x"])) and np.array_equal(m[:, 1], np.round(t.minutiae["y"]))
    assert np.array_equal(m[:, 3], t.minutiae["type"] - 1)  # afis: 0 ending, 1 bifurcation
    # afis's angle is counter-clockwise on screen (y up), locard's the other way
    assert _turn(m[:, 2], -t.minutiae["direction"]).max() <= np.pi / 256 + 1e-6


def test_we_read_afis_2011_records_and_refuse_its_2005_ones():
    afis_templates = pytest.importorskip("afis.algorithms.templates")
    t = _template(30, seed=6)
    m = np.stack([t.minutiae["x"], t.minutiae["y"], -t.minutiae["direction"].astype(np.float64),
                  t.minutiae["type"] - 1.0, t.minutiae["quality"] / 100.0], axis=1)
    header = afis_templates.FingerprintTemplateHeader(width=t.width, height=t.height, image_quality=t.quality)
    [view] = read_template(afis_templates.encode_iso19794_2_2011(header, m))
    assert view.edition == Edition.ISO_2011 and (view.width, view.height, view.quality) == (300, 400, 57)
    # afis writes 500 ppi as 99 px/cm (ppi / 25.4, a px/mm figure, clamped to 99): its positions are
    # placed through the image size it declares, not through that resolution
    mine = view.to_minutiae(image_size=(view.width, view.height), ppi=500.0)
    assert np.abs(mine["x"] - t.minutiae["x"]).max() <= 0.5 and np.abs(mine["y"] - t.minutiae["y"]).max() <= 0.5
    assert _turn(mine["direction"], t.minutiae["direction"]).max() <= np.pi / 256 + 1e-6
    assert np.array_equal(mine["type"], t.minutiae["type"])
    with pytest.raises(RecordVersionError):  # afis's "2005" record says version '020' and ppi for px/cm
        read_template(afis_templates.encode_iso19794_2(header, m))


def test_nbis_py_2005_export_is_refused_with_a_typed_error():
    nbis = pytest.importorskip("nbis")
    from tests.sample_prints import SAMPLES, fp

    if not (SAMPLES / "0001_1.png").is_file():
        pytest.skip("data/samples/fingerprints (shipped sample prints) is missing")
    ex = nbis.new_nbis_extractor(nbis.NbisExtractorSettings(
        min_quality=0.0, get_center=False, check_fingerprint=False, compute_nfiq2=False, ppi=500.0))
    record = bytes(ex.extract_minutiae(fp("0001_1")).to_iso_19794_2_2005())
    # nbis-py 0.1.3 writes resolution 0, a view count of 0 and a 2-byte view header
    with pytest.raises(MinutiaeRecordError):
        read_template(record)


# ---------------------------------------------------------------------- real third-party templates


@needs_secugen
def test_every_secugen_template_parses():
    n = 0
    for folder in FVC2002:
        for path in sorted((folder / "iso19794_2_templates").glob("*.iso")):
            data = path.read_bytes()
            [view] = read_template(data)
            assert view.edition == Edition.ISO_2005 and len(view) >= 4, path
            assert write_iso19794_2(view, 2005) == data, path
            n += 1
    assert n == 320


@needs_secugen
def test_direction_convention_on_secugen_templates():
    """locard's minutiae of FVC2002 DB4_B 101_1 against SecuGen's: the negated ISO angle agrees."""
    from PIL import Image

    from benchmarks.interop import agreement
    from matcher.fingerprint import extract

    image = FVC2002[3] / "images" / "101_1.tif"
    own = extract(image.read_bytes(), ppi=500).minutiae
    [view] = read_template((FVC2002[3] / "iso19794_2_templates" / "101_1.iso").read_bytes())
    secugen = view.to_minutiae(image_size=Image.open(image).size)
    turned = secugen.copy()
    turned["direction"] = np.mod(turned["direction"] + np.pi, 2 * np.pi)
    mirrored = secugen.copy()
    mirrored["direction"] = np.mod(-mirrored["direction"], 2 * np.pi)  # the angle taken as-is
    share = agreement(secugen, own)
    assert share >= 0.6 and share > 3 * max(agreement(turned, own), agreement(mirrored, own))


# Measured (benchmarks/README.md, "Interoperability (MINEX-style)"): SecuGen's templates of FVC2002
# DB1_B against each other through locard's comparator, EER 1.07 % (each genuine pair is 0.36
# point).  The ceiling leaves two more genuine pairs; taking the records' declared 300 x 400 frame
# at its word gives 2.14 %, the angle's sign flipped 24.6 %: both fail it.  (The scores are
# deterministic: only a change to the reader or the comparator moves them.)
IMPORTED_EER_CEILING_DB1 = 0.018


@needs_secugen
def test_imported_secugen_templates_accuracy_floor_fvc2002_db1():
    from PIL import Image

    from benchmarks.datasets import all_pairs, load_dataset
    from benchmarks.interop import import_records, secugen_records, verification

    ds = load_dataset(FVC2002[0])
    records, missing = secugen_records(ds)
    sizes = [Image.open(s.path).size for s in ds.samples]
    imported = import_records(records, sizes, [float(s.ppi or 500) for s in ds.samples],
                       [s.path.name for s in ds.samples], missing)
    assert not imported.failures
    gen, imp = all_pairs(ds.identity_codes())
    rep = verification(imported.rescaled, imported.rescaled, gen, imp)
    assert rep["pairs_not_compared"] == 0
    assert rep["eer"] <= IMPORTED_EER_CEILING_DB1, rep
