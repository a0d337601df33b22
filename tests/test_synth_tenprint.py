"""Ten-print subjects: positions, per-position classes, missing fingers, layout, rendering."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from benchmarks.synth.fingers import (AMPUTATED, BANDAGED, FINGER_POSITIONS, GALTON_1892_ALW, PRINTED,
                                      position_distribution, sample_classes, sample_status)
from benchmarks.synth.orientation import CLASSES, NATURAL_DISTRIBUTION
from benchmarks.synth.tenprint import (FLAT, ROLLED, SubjectTask, finger_rows, generate_tenprints,
                                       label_rows, subject_plan)

RIGHT, LEFT = range(1, 6), range(6, 11)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


# --- class per finger position (no rendering) ------------------------------------------

def test_position_shares_are_galtons_and_loops_follow_the_hand():
    for p in FINGER_POSITIONS:
        d = position_distribution(p)
        assert set(d) == set(CLASSES) and abs(sum(d.values()) - 1) < 1e-12
        arch, loop, whorl = GALTON_1892_ALW[p]
        assert d["arch"] + d["tented_arch"] == pytest.approx(arch / 100)
        assert d["left_loop"] + d["right_loop"] == pytest.approx(loop / 100)
        assert d["whorl"] == pytest.approx(whorl / 100)
        # Ulnar loops (towards the little finger) open right on a right-hand print, left on a left-hand one.
        ulnar, radial = ("right_loop", "left_loop") if p in RIGHT else ("left_loop", "right_loop")
        assert d[ulnar] > d[radial]
    # Radial loops are an index-finger trait (Galton: 21 of ~54 loop percent there).
    radial = {p: position_distribution(p)["left_loop" if p in RIGHT else "right_loop"] for p in FINGER_POSITIONS}
    assert max(radial, key=radial.get) in (2, 7) and radial[2] == pytest.approx(0.21)
    # Whorls are commonest on thumbs and ring fingers, arches on index fingers.
    whorl = {p: position_distribution(p)["whorl"] for p in FINGER_POSITIONS}
    assert sorted(whorl, key=whorl.get)[-2:] == [1, 4]
    arch = {p: position_distribution(p)["arch"] for p in FINGER_POSITIONS}
    assert sorted(arch, key=arch.get)[-2:] in ([2, 7], [7, 2])


def test_ten_positions_average_to_the_natural_single_finger_shares():
    mean = {c: np.mean([position_distribution(p)[c] for p in FINGER_POSITIONS]) for c in CLASSES}
    for c in CLASSES:
        assert abs(mean[c] - NATURAL_DISTRIBUTION[c]) < 0.02, (c, mean[c])


def test_bad_position_is_refused():
    with pytest.raises(ValueError, match="ANSI/NIST code 1-10"):
        position_distribution(11)


@pytest.mark.parametrize("correlation", [0.0, 0.764])
def test_sampled_classes_follow_each_positions_shares(correlation):
    rng = np.random.default_rng(1)
    n = 4000
    draws = [sample_classes(rng, correlation) for _ in range(n)]
    for p in FINGER_POSITIONS:
        seen = Counter(d[p] for d in draws)
        for c, share in position_distribution(p).items():
            sd = np.sqrt(share * (1 - share) / n)
            assert abs(seen[c] / n - share) <= 4.5 * sd + 1e-3, (p, c, seen[c] / n, share)


def test_one_persons_fingers_are_alike_as_galton_found():
    """Whorls on both ring fingers: 26 % of Galton's persons, 14 % if fingers were independent."""
    n = 6000
    for correlation, expected in ((0.764, 0.26), (0.0, 0.45 * 0.31)):
        rng = np.random.default_rng(2)
        both = sum(d[4] == "whorl" and d[9] == "whorl" for d in (sample_classes(rng, correlation) for _ in range(n)))
        assert abs(both / n - expected) < 0.02, (correlation, both / n)


def test_missing_fingers_at_their_rates():
    rng = np.random.default_rng(3)
    n = 3000
    statuses = [sample_status(rng, cards=2, amputated_rate=0.05, bandaged_rate=0.1) for _ in range(n)]
    fingers = [s[p] for s in statuses for p in FINGER_POSITIONS]
    amputated = [f for f in fingers if AMPUTATED in f]
    assert all(f == [AMPUTATED, AMPUTATED] for f in amputated)  # gone from every card
    assert abs(len(amputated) / len(fingers) - 0.05) < 0.006
    cards = [c for f in fingers if AMPUTATED not in f for c in f]
    assert abs(cards.count(BANDAGED) / len(cards) - 0.1) < 0.01
    assert set(cards) == {PRINTED, BANDAGED}
    with pytest.raises(ValueError, match="probability"):
        sample_status(rng, cards=1, bandaged_rate=1.5)


def test_labels_list_only_what_was_printed():
    task = SubjectTask("unused", seed=4, index=0, total=3, cards=2, amputated_rate=0.3, bandaged_rate=0.3)
    plan = subject_plan(task)
    fingers = finger_rows(task, plan)
    assert len(fingers) == 20 and {r["status"] for r in fingers} == {PRINTED, AMPUTATED, BANDAGED}
    printed = {(r["finger_position"], r["card"]) for r in fingers if r["status"] == PRINTED}
    labels = label_rows(task, plan)
    assert {(r["finger_position"], r["card"]) for r in labels} == printed
    assert Counter(r["impression_kind"] for r in labels) == {ROLLED: len(printed), FLAT: len(printed)}
    assert label_rows(task, plan) == label_rows(task)  # the plan is a function of the task


# --- rendered set ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def tenprint_set(tmp_path_factory):
    from typer.testing import CliRunner

    from locard import app

    out = tmp_path_factory.mktemp("tenprints") / "set"
    result = CliRunner().invoke(app, ["synth", "tenprints", str(out), "--subjects", "2", "--cards", "1",
                                      "--seed", "7", "--workers", "1"])
    assert result.exit_code == 0, result.output
    return out


def test_tenprint_layout_positions_and_masters(tenprint_set):
    labels = _rows(tenprint_set / "labels.csv")
    fingers = _rows(tenprint_set / "fingers.csv")
    assert {r["identity"] for r in labels} == {"0001", "0002"}
    assert len(fingers) == 20 and {r["status"] for r in fingers} == {PRINTED}
    for subject in ("0001", "0002"):
        rows = [r for r in labels if r["identity"] == subject]
        assert sorted(int(r["finger_position"]) for r in rows) == sorted(2 * list(FINGER_POSITIONS))
    masters = {}
    for r in labels:
        img = (tenprint_set / r["file"]).read_bytes()
        assert img[:8] == b"\x89PNG\r\n\x1a\n"
        doc = json.loads((tenprint_set / r["groundtruth"]).read_text())
        assert doc["finger_position"] == int(r["finger_position"]) and doc["impression_kind"] == r["impression_kind"]
        assert doc["class"] == r["class"] and len(doc["minutiae"]) > 0
        masters.setdefault(r["finger"], set()).add(doc["master_minutiae"])
    # The rolled and flat prints of a finger share its master; ten fingers are ten masters.
    assert all(len(v) == 1 for v in masters.values()) and len(masters) == 20
    assert len({v.pop() for k, v in masters.items() if k.startswith("0001")}) >= 8


def test_rolled_prints_show_more_of_the_finger_than_flat(tenprint_set):
    counts = {ROLLED: [], FLAT: []}
    for r in _rows(tenprint_set / "labels.csv"):
        counts[r["impression_kind"]].append(len(json.loads((tenprint_set / r["groundtruth"]).read_text())["minutiae"]))
    assert sum(counts[ROLLED]) > 1.3 * sum(counts[FLAT])


def test_ingest_reads_subjects_and_finger_positions(tenprint_set):
    from indexer.ingest import scan_source

    items = scan_source(tenprint_set)
    assert len(items) == 40 and not any(it.invalid for it in items)
    assert {it.modality for it in items} == {"finger"}
    for it in items:
        assert it.path.name.startswith(f"{it.identity}_{it.finger_position:02d}_")
        assert it.metadata["impression_kind"] in (ROLLED, FLAT)


def test_a_part_is_the_same_bytes_as_the_whole_run(tenprint_set, tmp_path):
    generate_tenprints(tmp_path, 2, cards=1, seed=7, workers=1, progress=False, part=(1, 2))
    labels = _rows(tmp_path / "labels.csv")
    assert {r["identity"] for r in labels} == {"0002"} and len(labels) == 20
    for r in labels:
        for col in ("file", "groundtruth"):
            assert (tmp_path / r[col]).read_bytes() == (tenprint_set / r[col]).read_bytes(), r[col]


def test_everyone_amputated_renders_nothing_and_says_why(tmp_path):
    summary = generate_tenprints(tmp_path, 2, cards=2, seed=1, workers=1, progress=False, amputated_rate=1.0)
    assert summary.images == 0 and _rows(tmp_path / "labels.csv") == []
    assert {r["status"] for r in _rows(tmp_path / "fingers.csv")} == {AMPUTATED}


def test_command_refuses_bad_part(tmp_path):
    from typer.testing import CliRunner

    from locard import app

    result = CliRunner().invoke(app, ["synth", "tenprints", str(tmp_path / "x"), "--subjects", "2", "--part", "1-2"])
    assert result.exit_code == 2 and "START:STOP" in result.output
