"""Ten-print subjects: ten different fingers per person, rolled and flat, on ten-print cards.

A subject has ten masters, one per ANSI/NIST finger position (FGP 1-10), each of the
class its position draws (:mod:`.fingers`: Galton's per-digit shares, hands mirrored,
fingers of one person alike).  Every *card* (one capture session) holds a rolled
and, unless ``flat=False``, a flat impression of each finger, both of that finger's
master; a finger is sometimes amputated (missing from every card) or bandaged (missing
from one card), see :mod:`.fingers` for the rates.

Layout written under ``OUT``::

    images/<subject>_<fgp>_<card>_<kind>.png     8-bit gray, 500 ppi (fgp two digits)
    groundtruth/<same>.json                      minutiae, cores, deltas, transform
    labels.csv   file, identity, finger_position, impression_kind, card, finger, class,
                 impression, ppi, groundtruth     (one row per image)
    fingers.csv  identity, finger_position, class, card, status  (one row per finger and
                 card, printed or not: status printed, amputated or bandaged)

``identity`` is the subject (``locard ingest`` makes it the subject and keeps
``finger_position``); ``finger`` (``<subject>_<fgp>``) names the finger itself, for
protocols that compare fingers; ``impression`` numbers a finger's images 1, 2, ...
(card 1 rolled, card 1 flat, card 2 rolled, ...).

Impressions (chosen numbers, :class:`.press_style.PressStyle`): *rolled* - nail to
nail, the whole fingerprint area (contact scale 1.02-1.2), centred, turned by
N(0, 8 deg), on a frame as large as the master (H x W 416 x 320 px); *flat* - the finger laid
down without rolling, about three quarters of the area (0.6-0.88), turned by
N(0, 5 deg), less drag and twist, on the single-finger frame (384 x 288 px).  Both
look like an optical scanner or an ink card (no capacitive presses).

Determinism: subject ``i`` draws its classes from ``SeedSequence(seed, spawn_key=
(CLASS_KEY, i))``, its missing fingers from ``(STATUS_KEY, i)``, the master of
position ``p`` from ``(MASTER_KEY, i, p)`` and its impression of kind ``k`` (0 rolled,
1 flat) on card ``c`` from ``(IMPRESSION_KEY, i, p, c, k)``, so the bytes written depend
neither on the number of workers nor on which subjects a run writes (``part``), and a
rolled image is the same with or without flat ones.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import PPI
from .fingers import (AMPUTATED_RATE, BANDAGED_RATE, FINGER_POSITIONS, PERSON_CORRELATION, PRINTED,
                      sample_classes, sample_status)
from .generate import Summary, identity_name, run_tasks, write_impression
from .impression import IMPRESSION_SHAPE, make_impression
from .master import MASTER_SHAPE, Master, make_master
from .press_style import PressStyle

# Spawn keys of the ten-print generator's streams (the single-finger one uses 0-2).
CLASS_KEY, STATUS_KEY, MASTER_KEY, IMPRESSION_KEY = 10, 11, 12, 13

ROLLED, FLAT = "rolled", "flat"
#: Rolled: the whole area, centred, no strongly partial or sharply turned press.
ROLLED_STYLE = PressStyle(rotation_sd=float(np.radians(8)), large_turn_share=0.0, spread=(8.0, 10.0),
                          far_share=0.0, contact_mean=1.12, contact_slope=0.04, contact_sd=0.04,
                          contact_range=(1.02, 1.2), contact_offset_sd=(4.0, 6.0), capacitive_share=0.0)
#: Flat: a smaller area, less turn, drag and twist than rolled.
FLAT_STYLE = PressStyle(rotation_sd=float(np.radians(5)), large_turn_share=0.0, spread=(12.0, 15.0),
                        far_share=0.0, drag_scale=2.5, drag_max=12.0, twist_sd=float(np.radians(2)),
                        contact_mean=0.74, contact_slope=0.08, contact_sd=0.06, contact_range=(0.6, 0.88),
                        contact_offset_sd=(8.0, 10.0), capacitive_share=0.0)
#: Style and image shape ``(H, W)`` of each impression kind.
KINDS = {ROLLED: (ROLLED_STYLE, MASTER_SHAPE), FLAT: (FLAT_STYLE, IMPRESSION_SHAPE)}

LABEL_COLUMNS = ("file", "identity", "finger_position", "impression_kind", "card", "finger", "class",
                 "impression", "ppi", "groundtruth")
FINGER_COLUMNS = ("identity", "finger_position", "class", "card", "status")


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


@dataclass(frozen=True)
class SubjectTask:
    """Everything a worker needs to write one subject (picklable)."""

    out: str
    seed: int
    index: int
    total: int
    cards: int
    flat: bool = True
    amputated_rate: float = AMPUTATED_RATE
    bandaged_rate: float = BANDAGED_RATE
    correlation: float = PERSON_CORRELATION

    @property
    def name(self) -> str:
        return identity_name(self.index, self.total)

    @property
    def kinds(self) -> tuple[str, ...]:
        return (ROLLED, FLAT) if self.flat else (ROLLED,)


@dataclass(frozen=True)
class SubjectPlan:
    """What a subject's fingers are and which could be printed on each card."""

    classes: dict[int, str]
    status: dict[int, list[str]]


def subject_plan(task: SubjectTask) -> SubjectPlan:
    """Classes and statuses of a subject's fingers (cheap: no rendering)."""
    classes = sample_classes(_rng(task.seed, CLASS_KEY, task.index), task.correlation)
    status = sample_status(_rng(task.seed, STATUS_KEY, task.index), task.cards, task.amputated_rate,
                           task.bandaged_rate)
    return SubjectPlan(classes, status)


def _impressions(task: SubjectTask, plan: SubjectPlan):
    """``(position, card, kind, impression number, stem)`` of every image of the subject."""
    for position in FINGER_POSITIONS:
        for card in range(1, task.cards + 1):
            for k, kind in enumerate(task.kinds):
                if plan.status[position][card - 1] == PRINTED:
                    j = (card - 1) * len(task.kinds) + k + 1
                    yield position, card, kind, j, f"{task.name}_{position:02d}_{card}_{kind}"


def label_rows(task: SubjectTask, plan: SubjectPlan | None = None) -> list[dict[str, str]]:
    """The ``labels.csv`` rows of one subject: one per image (they depend on the task alone)."""
    plan = plan or subject_plan(task)
    return [{"file": f"images/{stem}.png", "identity": task.name, "finger_position": str(position),
             "impression_kind": kind, "card": str(card), "finger": f"{task.name}_{position:02d}",
             "class": plan.classes[position], "impression": str(j), "ppi": str(PPI),
             "groundtruth": f"groundtruth/{stem}.json"}
            for position, card, kind, j, stem in _impressions(task, plan)]


def finger_rows(task: SubjectTask, plan: SubjectPlan | None = None) -> list[dict[str, str]]:
    """The ``fingers.csv`` rows of one subject: every finger on every card, printed or not."""
    plan = plan or subject_plan(task)
    return [{"identity": task.name, "finger_position": str(p), "class": plan.classes[p], "card": str(c + 1),
             "status": plan.status[p][c]} for p in FINGER_POSITIONS for c in range(task.cards)]


def is_written(task: SubjectTask) -> bool:
    """Whether every image and ground-truth file of the subject is already there."""
    out = Path(task.out)
    return all((out / "images" / f"{s}.png").is_file() and (out / "groundtruth" / f"{s}.json").is_file()
               for *_, s in _impressions(task, subject_plan(task)))


def write_subject(task: SubjectTask) -> int:
    """Render and write every image of one subject; the number of images."""
    out = Path(task.out)
    plan = subject_plan(task)
    masters: dict[int, Master] = {}
    count = 0
    for position, card, kind, j, stem in _impressions(task, plan):
        if position not in masters:  # an amputated finger is never rendered
            masters[position] = make_master(plan.classes[position], _rng(task.seed, MASTER_KEY, task.index, position))
        master = masters[position]
        style, shape = KINDS[kind]
        rng = _rng(task.seed, IMPRESSION_KEY, task.index, position, card, (ROLLED, FLAT).index(kind))
        imp = make_impression(master, rng, shape, style)
        labels = {"file": f"images/{stem}.png", "identity": task.name, "finger_position": position,
                  "impression_kind": kind, "card": card, "class": plan.classes[position], "impression": j,
                  "ppi": PPI}
        write_impression(out, stem, labels, imp, len(master.minutiae), task.seed)
        count += 1
    return count


def generate_tenprints(out: str | Path, subjects: int, cards: int = 2, seed: int = 0, workers: int = 0,
                       flat: bool = True, amputated_rate: float = AMPUTATED_RATE,
                       bandaged_rate: float = BANDAGED_RATE, correlation: float = PERSON_CORRELATION,
                       progress: bool = True, part: tuple[int, int] | None = None,
                       resume: bool = False) -> Summary:
    """Write a synthetic ten-print set to ``out`` (layout in the module docstring).

    Parameters
    ----------
    out : path
        Output folder (created; files of the same names are overwritten).
    subjects : int
        Number of persons (ten fingers each).
    cards : int
        Ten-print cards (capture sessions) per subject: e.g. 2 for a gallery card and
        a probe card.
    seed : int
        Master seed; the output is a function of the arguments only, not of ``workers``.
    workers : int
        Processes; 0 means one per CPU.
    flat : bool
        Also a flat impression of each finger on each card (else rolled only).
    amputated_rate, bandaged_rate : float
        Probability that a finger is missing from every card / from one card.
    correlation : float
        Likeness of one person's fingers' classes (:func:`.fingers.sample_classes`).
    progress : bool
        Show a progress bar.
    part : (int, int), optional
        Write only subjects ``start <= i < stop`` (0-based), same names and bytes as the
        whole run; ``labels.csv`` and ``fingers.csv`` list the part's subjects.
    resume : bool
        Keep subjects whose files are all there instead of generating them again.
    """
    if subjects < 1 or cards < 1:
        raise ValueError("need at least one subject and one card")
    first, stop = part or (0, subjects)
    if not 0 <= first < stop <= subjects:
        raise ValueError(f"part {first}:{stop} is not a non-empty slice of 0:{subjects}")
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "groundtruth").mkdir(parents=True, exist_ok=True)
    tasks = [SubjectTask(str(out), seed, i, subjects, cards, flat, amputated_rate, bandaged_rate, correlation)
             for i in range(first, stop)]
    plans = [subject_plan(t) for t in tasks]  # also checks the rates before any rendering
    todo = [(t, p) for t, p in zip(tasks, plans) if not (resume and is_written(t))]
    images, seconds, used = run_tasks(write_subject, [t for t, _ in todo],
                                      [len(label_rows(t, p)) for t, p in todo], workers, progress,
                                      "synth ten-prints")
    for name, columns, rows in (("labels.csv", LABEL_COLUMNS, label_rows), ("fingers.csv", FINGER_COLUMNS, finger_rows)):
        with (out / name).open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
            writer.writeheader()
            for task, plan in zip(tasks, plans):  # subject order, kept and new alike
                writer.writerows(rows(task, plan))
    return Summary(out, len(todo), images, seconds, used)
