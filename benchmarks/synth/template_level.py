"""Template-level ten-print subjects: templates straight from masters and presses, no images.

A rendered ten-print subject (:mod:`.tenprint`) costs its masters, one image per
impression and one extraction per image; a template-level one costs its masters only.
Each press is drawn exactly as :func:`.impression.make_impression` draws it (same
random streams: :func:`.impression.place`, then the contact area, the first draw of
rendering), so its true minutiae are those the rendered image's ground truth lists;
then the fitted extraction noise (:mod:`.extraction_noise`) turns them into the
template extraction would have made.  Subject ``i`` of seed ``S`` is the same person
(same masters, same presses) as subject ``i`` of ``locard synth tenprints --seed S``.

Templates go straight into a gallery store (:func:`write_store`), one subject per
person named ``template-level:<seed>:<subject>``, each finger's samples with their
finger position: a distractor gallery for ``locard bench search --distractor-store``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from .extraction_noise import ExtractionNoise, NoiseFit, load, model_id, ridge_orientation
from .fingers import AMPUTATED_RATE, BANDAGED_RATE
from .groundtruth import Minutiae
from .impression import contact_mask, ink_threshold, place, ridge_intact, visible_minutiae
from .master import make_master
from .tenprint import FLAT, IMPRESSION_KEY, KINDS, MASTER_KEY, ROLLED, SubjectTask, _impressions, _rng, subject_plan

#: Spawn key of the extraction-noise stream (the ten-print generator uses 10-13).
NOISE_KEY = 20


def press_truth(master, rng: np.random.Generator, kind: str):
    """A press of ``master`` of impression ``kind``: (placement, contact area, true minutiae,
    ridge intactness), each as the rendered image of the press has it."""
    style, shape = KINDS[kind]
    p = place(master, rng, shape, style)
    contact = contact_mask(p.finger, p.contact_centre, p.contact_half, rng)
    ink_threshold(shape, p.press.pressure, rng)  # drawn before the intactness, as rendering does
    intact = ridge_intact(shape, p.press.pressure, rng)
    return p, contact, visible_minutiae(master, p.transform, contact), intact


def _press_rng(task: SubjectTask, position: int, card: int, kind: str) -> np.random.Generator:
    return _rng(task.seed, IMPRESSION_KEY, task.index, position, card, (ROLLED, FLAT).index(kind))


def subject_templates(task: SubjectTask, noise: ExtractionNoise) -> list[tuple[int, int, str, object]]:
    """Every impression of one subject as a template: ``(position, card, kind, Template)``.

    An impression whose template would hold fewer than 2 minutiae is left out (extraction
    would fail to enrol it).
    """
    plan = subject_plan(task)
    noise_rng = np.random.default_rng(np.random.SeedSequence(task.seed, spawn_key=(NOISE_KEY, task.index)))
    masters = {}
    out = []
    for position, card, kind, _, _ in _impressions(task, plan):
        if position not in masters:
            masters[position] = make_master(plan.classes[position], _rng(task.seed, MASTER_KEY, task.index, position))
        master = masters[position]
        p, contact, truth, intact = press_truth(master, _press_rng(task, position, card, kind), kind)
        t = noise_template(master, p, contact, intact, truth, noise, kind, noise_rng)
        if len(t) >= 2:
            out.append((position, card, kind, t))
    return out


def noise_template(master, placement, contact, intact, truth: Minutiae, noise: ExtractionNoise, kind: str,
                   rng: np.random.Generator):
    """The template extraction would make of one press (:func:`.extraction_noise.noisy_template`)."""
    from .extraction_noise import noisy_template

    return noisy_template(truth, contact, intact, placement.press.pressure,
                          lambda x, y: ridge_orientation(master, placement, x, y, rng), noise.kinds[kind], rng,
                          noise.extractor)


def subject_name(seed: int, name: str) -> str:
    """Store name of a template-level subject (never the name of a rendered one)."""
    return f"template-level:{seed}:{name}"


def _subject_samples(task: SubjectTask, noise_path: str | None, noise_id: str):
    from indexer.prepared import finger_prepared
    from indexer.store import NewSample
    from matcher.fingerprint import FORMAT_VERSION, MATCHER_VERSION, Template
    from matcher.fingerprint.cohort import cohort_stats

    noise = load(noise_path)
    name = subject_name(task.seed, task.name)
    out = []
    for position, card, kind, t in subject_templates(task, noise):
        cohort_stats(t)  # stored with the template, as enrolment does
        blob = t.to_bytes()
        fmt, prepared = finger_prepared(Template.from_bytes(blob))  # as enrolment does
        out.append(NewSample(subject=name, modality="finger", template=blob,
                             template_version=f"LCFP{FORMAT_VERSION}/{MATCHER_VERSION}", quality=t.quality,
                             sha256=hashlib.sha256(name.encode() + blob).hexdigest(), finger_position=position,
                             source="template-level",
                             metadata={"impression_kind": kind, "card": str(card), "seed": str(task.seed),
                                       "noise_model": noise_id},
                             prepared=prepared, prepared_format=fmt))
    return out


def write_store(store_path: str | Path, subjects: int, *, seed: int = 0, cards: int = 1, flat: bool = True,
                workers: int = 0, noise_path: str | None = None, part: tuple[int, int] | None = None,
                amputated_rate: float = AMPUTATED_RATE, bandaged_rate: float = BANDAGED_RATE, echo=print) -> dict:
    """Add template-level ten-print subjects to a store (created if needed); a summary.

    Subjects already in the store are skipped, so an interrupted run resumes.  Every sample
    records the extraction-noise model that drew it (:func:`.extraction_noise.model_id`).

    Raises
    ------
    ValueError
        The store holds template-level samples of another model (or of one not recorded):
        resuming would mix two models' distractors in one gallery.
    """
    import multiprocessing
    import os

    from indexer.store import GalleryStore

    load(noise_path)  # a missing or unreadable model fails before any work
    noise_id = model_id(noise_path)
    first, stop = part or (0, subjects)
    if not 0 <= first < stop <= subjects:
        raise ValueError(f"part {first}:{stop} is not a non-empty slice of 0:{subjects}")
    t0 = time.perf_counter()
    store = GalleryStore(store_path, create=True)
    try:
        made_by = next((s.metadata.get("noise_model", "not recorded")
                        for s in store.samples("finger", with_templates=False) if s.source == "template-level"),
                       noise_id)
        if made_by != noise_id:
            raise ValueError(f"{store_path} holds template-level samples of extraction-noise model {made_by}, "
                             f"this run's is {noise_id}: write to a new store")
        have = {s.name for s in store.subjects()}
        tasks = [SubjectTask(str(store_path), seed, i, subjects, cards, flat, amputated_rate, bandaged_rate)
                 for i in range(first, stop)]
        tasks = [t for t in tasks if subject_name(seed, t.name) not in have]
        workers = workers or os.cpu_count() or 1
        added = 0
        args = [(t, noise_path, noise_id) for t in tasks]
        pool = multiprocessing.get_context("spawn").Pool(workers) if workers > 1 and len(tasks) > 1 else None
        try:
            results = pool.imap(_star, args, chunksize=2) if pool else map(_star, args)
            batch = []
            for i, samples in enumerate(results, 1):
                batch += samples
                if len(batch) >= 2000 or i % 10 == 0 or i == len(tasks):  # committed often: resumable
                    added += sum(x is not None for x in store.add_samples(batch, encounter_source="template-level"))
                    batch = []
                    echo(f"  {i}/{len(tasks)} subjects, {added} templates ({time.perf_counter() - t0:.0f} s)")
        finally:
            if pool:
                pool.close()
                pool.join()
        from indexer.faiss_index import open_index

        open_index(store, "finger")  # build (and save) the index now, not at the first search
        return {"store": str(store_path), "subjects": len(tasks), "templates": added, "noise_model": noise_id,
                "seconds": time.perf_counter() - t0, "workers": workers}
    finally:
        store.close()


def _star(args):
    return _subject_samples(*args)


# -- fitting the noise on rendered impressions -----------------------------------------------------
def fit_on_tenprints(folders: list[str | Path], templates: str | Path, source: str = "",
                     echo=print) -> ExtractionNoise:
    """Fit the extraction noise on rendered ten-print sets against their ground truth.

    Parameters
    ----------
    folders : list of paths
        ``locard synth tenprints`` folders (``labels.csv``, ``images/``, ``groundtruth/``).
    templates : path
        Folder of extracted templates, ``<image stem>.lcfp``; a missing one is extracted
        (default mode) and written there.

    Raises
    ------
    ValueError
        A ground truth that the regenerated press does not reproduce (another generator).
    """
    from matcher.fingerprint import MATCHER_VERSION, Template, extract

    tdir = Path(templates)
    tdir.mkdir(parents=True, exist_ok=True)
    fits = {ROLLED: NoiseFit(), FLAT: NoiseFit()}
    orient_rng = np.random.default_rng(0)
    for folder in map(Path, folders):
        with (folder / "labels.csv").open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        masters: dict = {}
        for row in rows:
            stem = Path(row["file"]).stem
            doc = json.loads((folder / row["groundtruth"]).read_text())
            index, position, card, kind = int(row["identity"]) - 1, int(row["finger_position"]), int(row["card"]), row["impression_kind"]
            key = (doc["seed"], index, position)
            if key not in masters:
                masters = {key: make_master(row["class"], _rng(doc["seed"], MASTER_KEY, index, position))}
            master = masters[key]
            task = SubjectTask("", doc["seed"], index, 1, card)
            p, contact, truth, intact = press_truth(master, _press_rng(task, position, card, kind), kind)
            if len(truth) != len(doc["minutiae"]):
                raise ValueError(f"{stem}: the regenerated press has {len(truth)} minutiae, the ground truth "
                                 f"{len(doc['minutiae'])}: not a set of this generator")
            cached = tdir / f"{stem}.lcfp"
            if cached.is_file():
                t = Template.from_bytes(cached.read_bytes())
            elif (tdir / f"{stem}.fte").is_file():
                continue
            else:
                t = extract((folder / row["file"]).read_bytes(), ppi=500)
                cached.write_bytes(t.to_bytes())
            fits[kind].add(truth, contact, intact, p.press.pressure,
                           lambda x, y: ridge_orientation(master, p, x, y, orient_rng), t)
        echo(f"  {folder}: {len(rows)} impressions")
    return ExtractionNoise({k: f.result() for k, f in fits.items() if f.images}, "accurate", MATCHER_VERSION,
                           source)


__all__ = ["fit_on_tenprints", "press_truth", "subject_name", "subject_templates", "write_store"]
