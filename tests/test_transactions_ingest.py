"""ANSI/NIST-ITL transactions through ``locard ingest`` and ``locard search`` (issue 12).

The transactions are built here from FVC2002 DB1_B prints (and one LFW face) with locard's
writer: five people, two fingers each (an FVC finger per position).  The gallery folder also
holds NIST's latent/exemplar reference transaction (a raw Type-14 to enrol, a Type-13 latent
to set aside), its palm transaction, a truncated transaction, a file named .an2 that is not one,
and a transaction whose first print is damaged.  Skipped, saying so, without ../shared/data.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from indexer.store import GalleryStore

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
FVC = SHARED / "fingerprint" / "fvc2002_db1_b"
LFW = SHARED / "face" / "lfw_original_10ids"
NIST = SHARED / "nist" / "jnbis_reference" / "an2"
pytestmark = pytest.mark.skipif(not (FVC / "labels.csv").is_file(),
                                reason=f"FVC2002 DB1_B absent: {FVC} (../shared/data is not on this machine)")
PEOPLE = 5
POSITIONS = (2, 7)  # right index, left index


def _fvc_images() -> dict[str, list[Path]]:
    """FVC finger id -> its impressions in order, from labels.csv."""
    out: dict[str, list[Path]] = {}
    with (FVC / "labels.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            out.setdefault(row["identity"], []).append(FVC / row["file"])
    return {k: sorted(v) for k, v in sorted(out.items())}


def _transaction(name: str, prints: list[Path], face: bytes | None = None, tcn: str | None = None) -> bytes:
    from matcher.imageio import decode_image
    from matcher.interchange import FaceSample, FingerprintSample, write_subject_transaction

    fps = [FingerprintSample(position=pos, pixels=decode_image(p.read_bytes()).pixels, ppi=500)
           for pos, p in zip(POSITIONS, prints)]
    return write_subject_transaction(name, fps, [FaceSample(data=face)] if face else [], tcn=tcn)


def _lfw_face() -> bytes | None:
    p = LFW / "images" / "Colin_Powell" / "Colin_Powell_0001.jpg"
    return p.read_bytes() if p.is_file() else None


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The gallery folder ingested with ``locard ingest``; the FVC ids of each person."""
    from locard import app

    root = tmp_path_factory.mktemp("tx")
    src = root / "src"
    src.mkdir()
    fingers = list(_fvc_images().values())
    people = {f"person{k}": fingers[2 * k:2 * k + 2] for k in range(PEOPLE)}
    face = _lfw_face()
    for k, (name, impressions) in enumerate(people.items()):
        data = _transaction(name, [imp[0] for imp in impressions], face if k == 0 else None, tcn=f"TCN-{k}")
        (src / f"{name}.an2").write_bytes(data)
    # no locard subject id (the domain renamed, same length): named by its file stem
    anon = _transaction("ignored", [fingers[0][1]], tcn="TCN-anon").replace(b"LOCARD", b"OTHERS")
    (src / "walk-in.eft").write_bytes(anon)
    # the first print's WSQ data loses its start marker: that record fails, the other lands
    damaged = _transaction("person-damaged", [fingers[1][1], fingers[2][1]])
    start = damaged.index(b"\xff\xa0\xff")
    (src / "damaged.nist").write_bytes(damaged[:start] + b"XX" + damaged[start + 2:])
    (src / "truncated.an2").write_bytes(damaged[:len(damaged) // 2])
    (src / "notes.an2").write_text("not a transaction\n")
    nist = NIST.is_dir()
    if nist:
        for f in ("type-13-14-latent-match.an2", "type-15-palms.an2"):
            shutil.copy(NIST / f, src / f)
    store = root / "store"
    errors = root / "errors.csv"
    r = CliRunner().invoke(app, ["ingest", str(src), "--store", str(store), "--workers", "1", "--errors", str(errors)])
    with errors.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {"root": root, "store": store, "people": people, "output": r.output, "exit": r.exit_code,
            "rows": rows, "face": face is not None, "nist": nist}


def _samples(store: Path, name: str):
    st = GalleryStore(store)
    try:
        return st.subject(name)[1]
    finally:
        st.close()


def test_ingest_one_subject_per_transaction_positions_and_ppi_from_records(world):
    assert world["exit"] == 0, world["output"]
    for k, name in enumerate(world["people"]):
        samples = _samples(world["store"], name)
        fingers = sorted((s.finger_position, s.metadata["ppi"]) for s in samples if s.modality == "finger")
        assert fingers == [(2, 500.0), (7, 500.0)], name
        meta = next(s for s in samples if s.modality == "finger").metadata
        assert meta["tcn"] == f"TCN-{k}" and meta["record"].startswith("record ") and meta["compression"] == "WSQ20"
        assert all(s.source.endswith(("#record=3", "#record=4", "#record=5")) for s in samples)
    # no subject id in the transaction: named by its file stem, as an image file would be
    assert [s.finger_position for s in _samples(world["store"], "walk-in")] == [2]


def test_fingers_and_a_face_are_one_subject_with_n_plus_1_samples(world):
    if not world["face"]:
        pytest.skip(f"LFW absent: {LFW}")
    samples = _samples(world["store"], "person0")
    assert sorted(s.modality for s in samples) == ["face", "finger", "finger"]
    st = GalleryStore(world["store"])
    try:
        subject = next(s for s in st.subjects(limit=100) if s.name == "person0")
    finally:
        st.close()
    assert (subject.encounters, subject.finger_samples, subject.face_samples) == (1, 2, 1)


def test_bad_records_and_files_are_reported_the_rest_lands(world):
    rows = world["rows"]
    by = {(Path(r["file"]).name, r["record"]): r for r in rows}
    assert by[("truncated.an2", "")]["error"] == "TransactionError"
    assert by[("notes.an2", "")]["error"] == "TransactionError"
    damaged = by[("damaged.nist", "record 3 (Type-14, IDC 1)")]
    assert damaged["error"] == "UnsupportedFormatError" and damaged["identity"] == "person-damaged"
    assert [s.finger_position for s in _samples(world["store"], "person-damaged")] == [7]
    assert all(r["reason"] for r in rows)
    if world["nist"]:
        latent = by[("type-13-14-latent-match.an2", "record 3 (Type-13, IDC 1)")]
        assert latent["error"] == "SetAside" and "latent" in latent["reason"]
        palms = [r for r in rows if r["file"].endswith("type-15-palms.an2")]
        assert len(palms) == 2 and all(r["error"] == "SetAside" and "palm" in r["reason"] for r in palms)
        # its raw Type-14 (finger 8) is enrolled: decoded by the transaction reader, handed on as PNG
        exemplar = _samples(world["store"], "type-13-14-latent-match")
        assert [(s.finger_position, s.metadata["compression"]) for s in exemplar] == [(8, "NONE")]
    failed = sum(r["error"] != "SetAside" for r in rows)
    assert f"{failed} failed" in world["output"]


def test_ingest_again_skips_what_is_stored(world):
    from locard import app

    src = world["root"] / "src"
    r = CliRunner().invoke(app, ["ingest", str(src), "--store", str(world["store"]), "--workers", "1",
                                 "--errors", str(world["root"] / "again.csv")])
    assert r.exit_code == 0, r.output
    assert r.output.strip().startswith("0 added,")


def test_the_compare_view_reads_an_ingested_record_back(world, tmp_path):
    """The service shows a gallery image from its transaction record, and says when it changed."""
    from dataclasses import replace

    from api.comparison import source_bytes
    from matcher.imageio import decode_image

    sample = next(s for s in _samples(world["store"], "person3") if s.finger_position == 7)
    data, how = source_bytes(sample)
    sent = decode_image(world["people"]["person3"][1][0].read_bytes()).pixels
    assert how == "source" and decode_image(data).pixels.shape == sent.shape
    moved = tmp_path / "person3.an2"
    tx = Path(sample.source.partition("#")[0]).read_bytes()
    moved.write_bytes(tx.replace(b"TCN-3", b"TCN-X"))  # same records: still the image enrolled
    assert source_bytes(replace(sample, source=f"{moved}#record=4"))[1] == "source"
    assert "changed" in source_bytes(replace(sample, source=f"{moved}#record=3"))[1]


def test_each_transaction_is_one_encounter_whatever_the_commit_size(world, tmp_path):
    from indexer.ingest import ingest, scan_source

    src = world["root"] / "src"
    items = [it for it in scan_source(src) if it.path.name in ("person1.an2", "person2.an2")]
    st = GalleryStore(tmp_path / "store", create=True)
    try:
        report = ingest(items, st, workers=1, commit_every=1, sync_index=False)
        assert report.added == 4
        subjects = {s.name: (s.encounters, s.finger_samples) for s in st.subjects(limit=10)}
    finally:
        st.close()
    assert subjects == {"person1": (1, 2), "person2": (1, 2)}


def test_search_with_another_transaction_finds_the_person_and_writes_a_response(world):
    from locard import app
    from matcher.interchange import read_search_response, read_transaction

    name = "person2"
    probe = world["root"] / "probe.an2"
    probe.write_bytes(_transaction("unknown", [imp[2] for imp in world["people"][name]], tcn="PROBE-7"))
    out = world["root"] / "response.an2"
    r = CliRunner().invoke(app, ["search", str(probe), "--store", str(world["store"]), "--json",
                                 "--response-out", str(out)])
    assert r.exit_code == 0, r.output
    result = json.loads(r.output[r.output.index("{"):])
    assert result["candidates"][0]["subject"] == name and result["candidates"][0]["hit"] is True
    assert sorted(p["finger_position"] for p in result["probes"]) == [2, 7]
    tx = read_transaction(out.read_bytes())
    assert tx.info.control_reference == "PROBE-7"
    back = read_search_response(tx)
    assert [c.subject for c in back] == [c["subject"] for c in result["candidates"]]
    assert back[0].hit and back[0].log10_fmr == pytest.approx(result["candidates"][0]["score"], abs=1e-4)


def test_latent_search_with_a_transaction_of_latents(world):
    """NIST's latent (Type-13 only, FGP 8) finds the exemplar it was lifted from."""
    if not world["nist"]:
        pytest.skip(f"NIST reference transactions absent: {NIST}")
    from locard import app

    r = CliRunner().invoke(app, ["search", str(NIST / "type-9-13-m1.an2"), "--store", str(world["store"]), "--json"])
    assert r.exit_code == 0, r.output
    result = json.loads(r.output[r.output.index("{"):])
    assert [(p["modality"], p["finger_position"]) for p in result["probes"]] == [("finger", 8)]
    assert result["candidates"][0]["subject"] == "type-13-14-latent-match" and result["candidates"][0]["hit"]


def test_which_records_a_search_uses():
    """A ten-print uses exemplars and faces; a transaction of latents only, its latents."""
    if not NIST.is_dir():
        pytest.skip(f"NIST reference transactions absent: {NIST}")
    from indexer.transactions import contents, read

    mixed = read((NIST / "type-13-14-latent-match.an2").read_bytes())
    ten = contents(mixed, purpose="search")
    assert [(im.label, im.finger_position) for im in ten.images] == [("record 4 (Type-14, IDC 2)", 8)]
    assert "transaction of their own" in ten.set_aside[0].reason
    latent = contents(read((NIST / "type-9-13-m1.an2").read_bytes()), purpose="search", latent_position=0)
    assert [(im.modality, im.finger_position) for im in latent.images] == [("finger", 0)]
    assert contents(read((NIST / "type-9-13-m1.an2").read_bytes()), purpose="enrol").images == ()


def test_subject_name_rule():
    import numpy as np

    from indexer.transactions import read, subject_name
    from matcher.interchange import FingerprintSample, write_subject_transaction

    print_ = FingerprintSample(position=2, pixels=np.random.default_rng(0).integers(0, 255, (64, 64), np.uint8))
    data = write_subject_transaction("locard-7", [print_], metadata={14: "UCN-77", 18: "SMITH, TOM"}, tcn="T-1")
    tx = read(data)
    assert subject_name(tx) == "locard-7"
    assert subject_name(tx, "2.014") == subject_name(tx, "14") == subject_name(tx, "2.14") == "UCN-77"
    assert subject_name(tx, "2.020") == "locard-7"  # absent: locard's own id
    other = read(data.replace(b"LOCARD", b"OTHERS"))
    assert subject_name(other) is None and subject_name(other, "2.014") == "UCN-77"
    with pytest.raises(ValueError):
        subject_name(tx, "1.009")
