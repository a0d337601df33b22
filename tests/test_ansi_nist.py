"""ANSI/NIST-ITL transactions: reading, writing, and damaged input.

Unit tests build their transactions here (generated ridge images, hand-made records);
the data-set tests read the NIST reference transactions in ``../shared/data/nist`` and skip,
saying so, when that folder is absent.
"""

from __future__ import annotations

import io
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from matcher import wsq
from matcher.errors import LocardError, TransactionError, TransactionTooLargeError
from matcher.fingerprint.minutiae import MINUTIA_DTYPE
from matcher.fingerprint.template import Template, block_mask
from matcher.interchange import ansi_nist_encoding as enc
from matcher.interchange.ansi_nist import FingerprintImage, PhotoImage, UnreadRecord, read_transaction
from matcher.interchange.ansi_nist_encoding import BinaryRecord, Field, TaggedRecord, decode_transaction
from matcher.interchange.ansi_nist_writer import (FaceSample, FingerprintSample, SearchCandidate,
                                                  read_search_response, write_search_response,
                                                  write_subject_transaction)
from tests.fingerprint_images import DEFAULT_POINTS, ridge_image

NIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "nist"
REFERENCE = NIST / "jnbis_reference"
needs_nist = pytest.mark.skipif(not (REFERENCE / "an2" / "type-4-tpcard.an2").is_file(),
                                reason=f"{NIST} (NIST reference ANSI/NIST-ITL transactions) is absent")
WHEN = datetime(2026, 12, 6, 10, 30, tzinfo=timezone.utc)


def _template(seed: int = 0, n: int = 30, size: tuple[int, int] = (320, 300)) -> Template:
    rng = np.random.default_rng(seed)
    m = np.zeros(n, MINUTIA_DTYPE)
    m["x"] = rng.integers(20, size[0] - 20, n)
    m["y"] = rng.integers(20, size[1] - 20, n)
    m["direction"] = rng.uniform(0, 2 * np.pi, n)
    m["type"] = rng.integers(0, 3, n)
    m["quality"] = rng.integers(0, 101, n)
    mask = block_mask(np.ones((size[1], size[0]), bool))
    return Template(minutiae=m, width=size[0], height=size[1], quality=77, mask=mask)


def _face(h: int = 120, w: int = 100) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([(x * 2) % 256, (y * 2) % 256, (x + y) % 256], axis=2).astype(np.uint8)


@pytest.fixture(scope="module")
def subject():
    prints = [ridge_image((300, 320), points=DEFAULT_POINTS, seed=k) for k in range(2)]
    samples = [FingerprintSample(position=k + 2, pixels=p, impression=1, template=_template(k))
               for k, p in enumerate(prints)]
    meta = {18: "SMITH, TOM", 20: ["WV", "US"], 30: [["a", "b"], ["c"]], 40: "Zoë 张"}
    data = write_subject_transaction("subject-42", samples, [FaceSample(pixels=_face())], meta,
                                     tcn="TCN-1", when=WHEN, originating_agency="FR0001")
    return data, samples, meta


# ---------------------------------------------------------------------- round trip


def test_subject_transaction_reads_back_field_by_field_and_image_by_image(subject):
    data, samples, meta = subject
    tx = read_transaction(data)
    assert tx.problems() == ()
    assert tx.info.version == "0500" and tx.info.control_number == "TCN-1"
    assert tx.info.originating_agency == "FR0001" and tx.info.date == "20261206"
    assert tx.info.gmt == "20261206103000Z" and tx.info.domain == ("LOCARD", "1")
    assert tx.info.character_set == ("3", "UTF-8")  # the metadata is not all ASCII
    assert tx.info.contents == ((2, 0), (9, 1), (9, 2), (10, 3), (14, 1), (14, 2))
    assert tx.subject_id == "subject-42"
    assert tx.metadata() == {"2.003": "subject-42", "2.018": "SMITH, TOM", "2.020": [["WV", "US"]],
                             "2.030": [["a", "b"], ["c"]], "2.040": "Zoë 张"}
    prints = tx.fingerprints()
    assert [p.position for p in prints] == [2, 3] and [p.finger for p in prints] == [2, 3]
    for p, s in zip(prints, samples):
        assert (p.record_type, p.impression, p.ppi, p.compression, p.bits_per_pixel) == (14, 1, 500.0, "WSQ20", 8)
        assert p.data == wsq.encode(s.pixels)  # the WSQ bytes themselves, byte for byte
        assert np.array_equal(p.pixels, wsq.decode(p.data)) and p.pixels.shape == s.pixels.shape
        assert np.abs(p.pixels.astype(int) - s.pixels).mean() < 8  # lossy, ~15:1
        m = tx.minutiae_for(p)
        assert m is not None and tx.image_for(m) is p and m.format == "U" and m.positions == (p.position,)
        got, want = m.to_minutiae(), s.template.minutiae
        assert np.array_equal(got["x"], np.round(want["x"])) and np.array_equal(got["y"], np.round(want["y"]))
        assert np.array_equal(got["type"], want["type"]) and np.array_equal(got["quality"], want["quality"])
        turn = np.angle(np.exp(1j * (got["direction"] - want["direction"].astype(np.float64))))
        assert np.abs(np.degrees(turn)).max() <= 1.0 + 1e-4  # 2-degree units
        assert (m.incits378.width, m.incits378.height, m.incits378.quality) == (320, 300, 77)
    (face,) = tx.faces()
    assert face.image_type == "FACE" and face.compression == "PNG" and face.color_space == "SRGB"
    assert np.array_equal(face.pixels, _face())


def test_encoding_layer_is_byte_exact(subject):
    """Decoding the written bytes and encoding them again gives the same bytes: every field,
    subfield, item and data field survives, and LEN/CNT are computed the same way."""
    data = subject[0]
    type1, records, warnings = decode_transaction(data)
    assert warnings == []
    idcs = [r.idc for r in records]
    again = enc.encode_transaction(type1.fields, records, idcs, enc.character_encoding(type1))
    assert again == data


def test_search_response_round_trip():
    cands = [SearchCandidate("s-1", 0.731234, 9.5, True), SearchCandidate("s-2", 0.25, 1.0625, False)]
    data = write_search_response(cands, request_tcn="REQ-9", threshold_log10_fmr=3.0, when=WHEN, tcn="R-1")
    tx = read_transaction(data)
    assert tx.info.type_of_transaction == "SRE" and tx.info.control_reference == "REQ-9"
    assert read_search_response(tx) == tuple(cands)
    assert tx.metadata()["2.059"] == "I" and tx.metadata()["2.064"] == [["s-1"], ["s-2"]]
    empty = read_transaction(write_search_response([], when=WHEN))
    assert read_search_response(empty) == () and empty.metadata()["2.059"] == "N"
    with pytest.raises(TransactionError):
        read_search_response(read_transaction(subject_bytes_without_minutiae()))
    with pytest.raises(TransactionError):
        write_search_response([SearchCandidate("x", float("nan"), 1.0, False)])


def subject_bytes_without_minutiae() -> bytes:
    return write_subject_transaction("s", [FingerprintSample(1, ridge_image((200, 200)))], when=WHEN)


def test_writer_refuses_what_cannot_be_written():
    px = ridge_image((200, 200))
    with pytest.raises(TransactionError, match="separators"):
        write_subject_transaction("s", [FingerprintSample(1, px)], metadata={18: "A\x1dB"})
    with pytest.raises(TransactionError, match="finger position"):
        write_subject_transaction("s", [FingerprintSample(25, px)])
    with pytest.raises(TransactionError, match="WSQ encoder needs"):
        write_subject_transaction("s", [FingerprintSample(1, px[:20, :20])])
    with pytest.raises(TransactionError, match="free Type-2 field"):
        write_subject_transaction("s", [FingerprintSample(1, px)], metadata={3: "x"})
    with pytest.raises(TransactionError, match="JPEG or PNG"):
        write_subject_transaction("s", faces=[FaceSample(data=b"GIF89a....")])


def test_embedded_wsq_and_jpeg_face_are_kept_as_they_are():
    px = ridge_image((256, 240))
    w = wsq.encode(px)
    buf = io.BytesIO()
    Image.fromarray(_face()[:, :, ::-1]).save(buf, "JPEG", quality=90)
    tx = read_transaction(write_subject_transaction("s", [FingerprintSample(19, wsq=w, ppi=1000)],
                                                    [FaceSample(data=buf.getvalue())], when=WHEN))
    (p,), (f,) = tx.fingerprints(), tx.faces()
    assert p.data == w and p.ppi == 1000.0 and p.position == 19 and p.finger is None
    assert f.data == buf.getvalue() and f.compression == "JPEGB" and f.pixels.shape == (120, 100, 3)


# ---------------------------------------------------------------------- hand-made records


def _transaction(*records: TaggedRecord | BinaryRecord, type1: list[Field] | None = None) -> bytes:
    t1 = type1 or [Field.of(2, "0400"), Field.of(4, "TEST"), Field.of(5, "20260101"), Field.of(7, "D"),
                   Field.of(8, "O"), Field.of(9, "T"), Field.of(11, "19.69"), Field.of(12, "19.69")]
    idcs = [int(r.text(2)) if isinstance(r, TaggedRecord) else r.idc for r in records]
    return enc.encode_transaction(t1, list(records), idcs)


def _type4(pixels: np.ndarray, idc: int = 1, position: int = 7, gca: int = 0, data: bytes | None = None) -> BinaryRecord:
    h, w = pixels.shape
    header = bytes([3, position, 255, 255, 255, 255, 255, 0]) + w.to_bytes(2, "big") + h.to_bytes(2, "big") + bytes([gca])
    return BinaryRecord(4, idc, header + (pixels.tobytes() if data is None else data))


def test_binary_type4_raw_and_wsq_records():
    px = ridge_image((200, 180))
    tx = read_transaction(_transaction(TaggedRecord(2, (Field.of(2, "00"),)), _type4(px),
                                       _type4(px, 2, 8, gca=1, data=wsq.encode(px))))
    raw, coded = tx.fingerprints()
    assert (raw.record_type, raw.position, raw.impression, raw.ppi, raw.compression) == (4, 7, 3, 500.0, "NONE")
    assert np.array_equal(raw.pixels, px) and raw.fields == ()
    assert coded.compression == "WSQ20" and coded.pixels.shape == px.shape and coded.idc == 2


def test_two_digit_tags_and_utf8_text_are_read():
    data = ("1.01:0\x1d1.02:0200\x1d1.03:1\x1f1\x1e2\x1f00\x1d1.04:X\x1d1.15:3\x1fUTF-8\x1c").encode()
    fix = data.replace(b"1.01:0", b"1.01:%d" % (len(data) + 1))
    t2 = "2.001:0\x1d2.002:00\x1d2.018:Zoë\x1c".encode()
    t2 = t2.replace(b"2.001:0", b"2.001:%d" % (len(t2) + 1))
    tx = read_transaction(fix + t2)
    assert tx.info.version == "0200" and tx.metadata() == {"2.018": "Zoë"}


def test_jpeg2000_and_png_records_decode():
    px = ridge_image((160, 150))
    j2k, png = io.BytesIO(), io.BytesIO()
    Image.fromarray(px).save(j2k, "JPEG2000", irreversible=False)
    Image.fromarray(px).save(png, "PNG")

    def rec(idc: int, cga: str, data: bytes) -> TaggedRecord:
        return TaggedRecord(14, (Field.of(2, f"{idc:02d}"), Field.of(3, 0), Field.of(6, 150), Field.of(7, 160),
                                 Field.of(8, 2), Field.of(9, 394), Field.of(10, 394), Field.of(11, cga),
                                 Field.of(12, 8), Field.of(13, 1)), data)

    tx = read_transaction(_transaction(rec(1, "JP2L", j2k.getvalue()), rec(2, "PNG", png.getvalue())))
    a, b = tx.fingerprints()
    assert a.ppi == b.ppi == 1000.0  # 394 px/cm
    assert np.array_equal(a.pixels, px) and np.array_equal(b.pixels, px)  # both lossless


def test_an_image_that_cannot_be_decoded_is_a_message_not_an_exception():
    px = ridge_image((100, 100))
    bad = TaggedRecord(14, (Field.of(2, "01"), Field.of(6, 100), Field.of(7, 100), Field.of(8, 1),
                            Field.of(9, 500), Field.of(10, 500), Field.of(11, "JPEGB"), Field.of(13, 2)),
                       b"\xff\xd8\xff\xe0 not really a jpeg")
    other = TaggedRecord(16, (Field.of(2, "02"), Field.of(3, "X")), b"user data")
    tx = read_transaction(_transaction(bad, _type4(px, 3), other))
    broken, fine = tx.fingerprints()
    assert broken.pixels is None and "JPEGB" in broken.error and fine.pixels is not None
    assert isinstance(tx.records[2], UnreadRecord) and tx.records[2].record.data == b"user data"
    assert len(tx.problems()) == 1 and "record 2 (Type-14, IDC 1)" in tx.problems()[0]
    lazy = read_transaction(_transaction(bad), decode_images=False)
    assert lazy.fingerprints()[0].pixels is None and lazy.fingerprints()[0].error is None


# ---------------------------------------------------------------------- damaged input


@pytest.fixture(scope="module")
def small_transaction() -> bytes:
    px = ridge_image((64, 64))
    face = TaggedRecord(10, (Field.of(2, "02"), Field.of(3, "FACE"), Field.of(6, 64), Field.of(7, 64),
                             Field.of(11, "NONE"), Field.of(12, "GRAY")), px.tobytes())
    return _transaction(TaggedRecord(2, (Field.of(2, "00"), Field.of(18, [["A", "B"], ["C"]]))),
                        _type4(px), face)


def _read_or_typed_error(data: bytes) -> str:
    try:
        read_transaction(data, decode_images=False)
        return "read"
    except TransactionError:
        return "error"


def test_every_truncation_is_a_typed_error(small_transaction):
    data = small_transaction
    for cut in list(range(0, 300)) + list(range(300, len(data), 97)):
        with pytest.raises(TransactionError):
            read_transaction(data[:cut], decode_images=False)


def test_flipped_separators_and_random_damage_give_a_transaction_or_a_typed_error(small_transaction):
    rng = np.random.default_rng(7)
    data = small_transaction
    outcomes = set()
    for _ in range(300):
        b = bytearray(data)
        for pos in rng.integers(0, len(b), int(rng.integers(1, 4))):
            b[pos] = int(rng.choice([0x1C, 0x1D, 0x1E, 0x1F, 0x3A, 0x2E, 0x30, 0x39, rng.integers(0, 256)]))
        outcomes.add(_read_or_typed_error(bytes(b)))
    for _ in range(200):
        outcomes.add(_read_or_typed_error(b"1." + rng.integers(0, 256, int(rng.integers(0, 400)), np.uint8).tobytes()))
    assert outcomes == {"read", "error"}


@pytest.mark.parametrize("data, match", [
    (b"", "empty"),
    (b"\x00\x00\x01\x00garbage", "must start with '1.'"),
    (b"1.001:99999999999\x1d1.002:0400\x1c", "LEN"),
    (b"1.0a1:20\x1d1.002:0400\x1c", "not numeric"),
    (b"1.001:28\x1d1.002:0400\x1d1.003:1\x1c", "CNT"),
    (b"1.001:36\x1d1.002:0400\x1c1.004:X\x1c1.005:Y\x1c", "FS at byte"),
])
def test_malformed_structure_raises_typed_errors(data, match):
    with pytest.raises(TransactionError, match=match):
        read_transaction(data)


def test_huge_declared_lengths_are_checked_before_anything_is_allocated(small_transaction):
    data = small_transaction
    t1_len = int(data[6:data.index(b"\x1d")])
    t2_len = int(data[t1_len + 6:data.index(b"\x1d", t1_len)])
    binary = t1_len + t2_len
    huge = data[:binary] + (2 ** 32 - 1).to_bytes(4, "big") + data[binary + 4:]
    with pytest.raises(TransactionError, match="LEN says 4294967295 bytes"):
        read_transaction(huge)
    tagged = data.replace(b"2.001:%d" % t2_len, b"2.001:%d" % 10 ** 12, 1)
    with pytest.raises(TransactionError, match="LEN"):
        read_transaction(tagged)


def test_limits_on_size_records_and_items(monkeypatch):
    n = enc.MAX_RECORDS + 1
    cnt = Field(3, (("1", str(n)),) + tuple(("2", "00") for _ in range(n)))
    with pytest.raises(TransactionTooLargeError, match="records"):
        read_transaction(enc.encode_tagged(TaggedRecord(1, (Field.of(2, "0400"), cnt))))
    items = TaggedRecord(2, (Field.of(2, "00"), Field(3, tuple(("x",) for _ in range(enc.MAX_ITEMS + 1)))))
    with pytest.raises(TransactionTooLargeError, match="items"):
        read_transaction(_transaction(items))
    monkeypatch.setattr(enc, "MAX_TRANSACTION_BYTES", 100)
    with pytest.raises(TransactionTooLargeError, match="limit"):
        read_transaction(b"1." + b"0" * 200)


def test_a_thousand_records_read_in_one_pass():
    """nistitl re-slices the rest of the buffer per record (quadratic); this reader does not."""
    records = [TaggedRecord(2, (Field.of(2, f"{k % 100:02d}"), Field.of(3, "x" * 50))) for k in range(enc.MAX_RECORDS)]
    tx = read_transaction(_transaction(*records))
    assert len(tx.descriptive_text()) == enc.MAX_RECORDS


# ---------------------------------------------------------------------- NIST reference transactions


@needs_nist
def test_every_nist_transaction_parses_and_every_image_decodes_or_says_why():
    files = sorted(NIST.rglob("*.an2"))
    assert len(files) >= 48
    kinds: dict[str, int] = {}
    for f in files:
        tx = read_transaction(f.read_bytes(), decode_images=False)
        for r in tx.records:
            kinds[type(r).__name__] = kinds.get(type(r).__name__, 0) + 1
            if isinstance(r, (FingerprintImage, PhotoImage)) and r.compression != "WSQ20":
                # every non-WSQ image decodes here (WSQ ones: the ten-print test below)
                from matcher.interchange.ansi_nist_images import decode_pixels
                try:
                    px = decode_pixels(r.data, r.compression, r.width, r.height,
                                       getattr(r, "bits_per_pixel", 8), color=isinstance(r, PhotoImage))
                except LocardError as exc:  # pragma: no cover - would fail the test with its reason
                    pytest.fail(f"{f.name} Type-{getattr(r, 'record_type', 10)} IDC {r.idc}: {exc}")
                assert px.shape[:2] == (r.height, r.width), (f.name, r.idc)
    assert kinds["FingerprintImage"] >= 80 and kinds["PhotoImage"] >= 10 and kinds["MinutiaeRecord"] >= 9
    # the one Type-9 fixture whose 9.012 positions have 12 digits gets a message, not an exception
    tx = read_transaction((NIST / "nbis_an2k" / "an2" / "valid1.15.an2").read_bytes())
    assert "XXXXYYYYTTT" in tx.problems()[0]


@needs_nist
@pytest.mark.parametrize("name", ["type-4-tpcard.an2", "type-14-tpcard-nqm.an2"])
def test_ten_print_card_decodes_pixel_exact_to_the_reference_pngs(name):
    tx = read_transaction((REFERENCE / "an2" / name).read_bytes())
    prints = tx.fingerprints()
    assert sorted(p.position for p in prints) == list(range(1, 15)) and tx.problems() == ()
    for p in prints:
        ref = np.asarray(Image.open(REFERENCE / "decoded_png_from_type-4-tpcard" / f"fp-{p.position}.png").convert("L"))
        assert p.ppi == 500.0 and p.compression == "WSQ20"
        assert np.array_equal(p.pixels, ref), p.position
    assert [p.finger for p in prints[:10]] == list(range(1, 11))


@needs_nist
def test_type9_blocks_agree_on_the_same_print():
    """The reference set carries one print's 48 minutiae in the INCITS 378, original and
    FBI/IAFIS blocks: after conversion they agree within a pixel and 2 degrees (the original
    block's y axis points up and its angle is turned by 180 degrees)."""
    m1, std, iafis = (read_transaction((REFERENCE / "an2" / f"type-9-{n}.an2").read_bytes(), decode_images=False)
                      for n in ("14-m1", "14-std", "4-iafis"))
    (a,), (b,), (c,) = m1.minutiae(), std.minutiae(), iafis.minutiae()
    image = std.image_for(b)
    assert a.format == "U" and b.format == "S" and a.positions == b.positions == c.positions == (8,)
    assert a.incits378 is not None and b.standard is not None and c.iafis is not None
    ma = a.to_minutiae()
    for mb in (b.to_minutiae(image.height, image.ppi), c.to_minutiae()):
        assert len(ma) == len(mb) == 48
        assert np.abs(ma["x"] - mb["x"]).max() <= 1.0 and np.abs(ma["y"] - mb["y"]).max() <= 1.0
        turn = np.degrees(np.abs(np.angle(np.exp(1j * (ma["direction"].astype(float) - mb["direction"])))))
        assert turn.max() <= 2.0
    with pytest.raises(TransactionError, match="height"):
        b.to_minutiae()


@needs_nist
def test_lossless_jpeg_prints_of_nbis_decode():
    tx = read_transaction((REFERENCE / "an2" / "type-10-14-17-piv-index-iris.an2").read_bytes())
    prints = tx.fingerprints()
    assert [p.compression for p in prints] == ["JPEGL", "JPEGL"] and tx.problems() == ()
    for p in prints:
        assert p.pixels.shape == (p.height, p.width) and 40 < p.pixels.std() < 120
    assert tx.faces()[0].pixels.shape == (640, 480, 3)
