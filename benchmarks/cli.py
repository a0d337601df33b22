"""``locard bench``, ``locard synth`` and ``locard demo``."""

from __future__ import annotations

import typer

bench_app = typer.Typer(
    help="Measure accuracy and speed on a labelled data set (folder with labels.csv).",
    no_args_is_help=True,
)
synth_app = typer.Typer(help="Generate synthetic biometric data with ground truth.", no_args_is_help=True)


def demo(
    store: str = typer.Option(None, "--store", help="Enrol into this store folder and keep it (default: a temporary one)."),
) -> None:
    """Enrol a small gallery into a store, search probes against it and print ranked candidates."""
    from benchmarks.demo import run_demo

    raise typer.Exit(run_demo(store=store))


def _one_core() -> None:
    """Pin the numerical libraries to one thread before anything heavy is imported (timings are CPU of one core)."""
    import os

    for var in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")


@bench_app.command("fingerprint")
def bench_fingerprint(
    datasets: list[str] = typer.Argument(..., metavar="DATASET...", help="Folder(s) with images and labels.csv (file, identity, ppi)."),
    json_path: str = typer.Option(None, "--json", help="Write the report as JSON to this file."),
    plots: str = typer.Option(None, "--plots", help="Write DET and score-histogram PNGs to this folder."),
    peers: bool = typer.Option(False, "--peers", help="Also run the open-source peers (pip install -e '.\\[peers]'; see benchmarks/README.md)."),
    peer: list[str] = typer.Option(None, "--peer", help="Run only this peer (repeatable; implies --peers): nbis-bozorth3, nbis-py, mindtct-mcc, sourceafis-port, leader-geometric, leader-sourceafis, leader-mcc."),
    skip_locard: bool = typer.Option(False, "--skip-locard", help="Run the peers only."),
    markdown: str = typer.Option(None, "--markdown", help="Write the README tables (Markdown) to this file; '-' prints them."),
    cache_dir: str = typer.Option(None, "--cache", help="Cache folder for peer templates and scores (default ~/.cache/locard/fingerprint-bench)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Recompute the peers instead of reading the cache."),
    save_calibration: str = typer.Option(None, "--save-calibration", help="Write locard's score calibration (impostor scores of all DATASETs) to this JSON file."),
    mode: str = typer.Option(None, "--mode", help="locard's extraction mode: accurate (the default) or fast."),
    minutiae_from: list[str] = typer.Option(None, "--minutiae-from", help="Cross-feed (repeatable): locard's comparator and print mask with this extractor's minutiae: leader, nbis-bozorth3, nbis-py, locard-fast, locard-accurate."),
    minutiae_direction: str = typer.Option(None, "--minutiae-direction", help="Override the cross-feed's direction conversion (as-is, negated, turned, negated-turned) to check a source's convention."),
    diagnose: bool = typer.Option(False, "--diagnose", help="Per image minutiae count and share near the print border, and the lowest genuine pairs, in the JSON (implied by --minutiae-from)."),
) -> None:
    """Verification accuracy (EER, FMR100, FMR1000, ZeroFMR) and speed on FVC-style sets.

    Every genuine and every impostor pair is compared once; see benchmarks/README.md.
    """
    _one_core()
    from benchmarks import fingerprint_bench as fb

    fb.limit_threads()
    try:
        fb.run(datasets, json_path=json_path, plots=plots, peers=peers, peer_names=peer,
               skip_locard=skip_locard, cache_dir=cache_dir, no_cache=no_cache, markdown=markdown,
               save_calibration=save_calibration, mode=mode, minutiae_from=minutiae_from,
               minutiae_direction=minutiae_direction, diagnose=diagnose)
    except (FileNotFoundError, ValueError, KeyError, ImportError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@bench_app.command("calibrate-fingerprint")
def bench_calibrate_fingerprint(
    dataset: str = typer.Argument(..., metavar="GENERATED_SET", help="Folder written by 'locard synth fingerprints'."),
    mode: str = typer.Option("accurate", "--mode", help="Extraction mode to calibrate: accurate or fast."),
    out: str = typer.Option(None, "--out", help="Calibration JSON to write (default: the shipped file of the mode)."),
) -> None:
    """Measure the fingerprint score calibration (score -> FMR) from every impostor pair of a generated set."""
    from benchmarks import fingerprint_calibration as fc

    cal = fc.measure(dataset, mode)
    path = out or str(fc.default_output(mode))
    cal.save(path)
    typer.echo(f"{cal.n_impostors} impostor scores -> {path}; thresholds at FMR 1 % / 0.1 % / 0.01 %: "
               + " / ".join(f"{cal.threshold(f):.4f}" for f in (0.01, 0.001, 0.0001)))


@bench_app.command("calibrate-tenprint")
def bench_calibrate_tenprint(
    subjects: int = typer.Option(300, "--subjects", min=20, help="Template-level ten-print subjects generated (each card searched against all the others)."),
    seed: int = typer.Option(91, "--seed", help="Seed of the generated subjects (one used for nothing else)."),
    subsets: int = typer.Option(12, "--subsets", min=1, help="Random sets of k positions per probe card for each k."),
    out: str = typer.Option(None, "--out", help="Fused calibration JSON to write (default: indexer/tenprint_calibration.json)."),
    work: str = typer.Option(None, "--work", help="Keep the generated store in this folder (default: a temporary one)."),
) -> None:
    """Measure the fused ten-print decision thresholds (per number of finger terms) on generated impostor cards, one core."""
    _one_core()
    from benchmarks import tenprint_calibration as tc
    from indexer.fusion import fused_threshold

    cal, report, _ = tc.measure(subjects, seed, subsets, work=work, echo=typer.echo)
    path = out or str(tc.default_output())
    tc.save(cal, report, path)
    typer.echo(f"-> {path}")
    for k, t in sorted(cal.tables.items()):
        typer.echo(f"  {k:2d} terms: {report[k]['sums']:8d} impostor sums; threshold at FMR 1e-3 "
                   f"{cal.threshold(1e-3, k) or float('nan'):.2f} (Gamma {fused_threshold(1e-3, k):.2f}, "
                   f"which passes {report[k]['fmr_at_gamma_0.001']:.2e})")


@bench_app.command("check-tenprint-calibration")
def bench_check_tenprint_calibration(
    subjects: int = typer.Option(120, "--subjects", min=10, help="Template-level ten-print subjects generated."),
    seed: int = typer.Option(92, "--seed", help="Seed of the generated subjects (not the calibration's)."),
    shortlist: int = typer.Option(None, "--shortlist", min=1, help="Samples re-ranked per probe finger (default: the whole gallery)."),
    uncertain_flat: bool = typer.Option(False, "--uncertain-flat-positions", help="Flag every flat probe impression's position as uncertain (neighbours searched too)."),
    subsets: int = typer.Option(12, "--subsets", min=1, help="Random sets of k positions per probe card for each k."),
    json_path: str = typer.Option(None, "--json", help="Write the report as JSON to this file."),
    work: str = typer.Option(None, "--work", help="Keep the generated store in this folder (default: a temporary one)."),
) -> None:
    """Observed FMR of impostor ten-print sums at the Gamma and at the shipped fused thresholds, per number of fingers."""
    import json
    _one_core()
    from benchmarks import tenprint_calibration as tc

    rep = tc.run_check(subjects, seed, shortlist=shortlist or tc.WHOLE_GALLERY, uncertain_flat=uncertain_flat,
                       subsets=subsets, work=work, echo=typer.echo)
    if json_path:
        from pathlib import Path

        Path(json_path).write_text(json.dumps(rep, indent=1))
    typer.echo(" k    sums  | passed at FMR 1e-2 / 1e-3: Gamma | Gamma, subjects shuffled | measured")
    for k, r in rep["terms"].items():
        cells = [" / ".join("-" if r[w][f]["passed"] is None else str(r[w][f]["passed"]) for f in ("0.01", "0.001"))
                 for w in ("gamma", "gamma_subjects_shuffled", "measured")]
        typer.echo(f"{k:>2} {r['sums']:8d} | " + " | ".join(cells))


@bench_app.command("cohort-fingerprint")
def bench_cohort_fingerprint(
    dataset: str = typer.Argument(..., metavar="COHORT_SET", help="Folder written by 'locard synth fingerprints' (a seed used for nothing else)."),
    mode: str = typer.Option("accurate", "--mode", help="Extraction mode (only accurate is normalised)."),
    size: int = typer.Option(300, "--size", help="Templates in the cohort (one per identity)."),
    out: str = typer.Option(None, "--out", help="Cohort file to write (default: the shipped file of the mode)."),
) -> None:
    """Build the score-normalisation cohort of a fingerprint extraction mode (then re-run calibrate-fingerprint)."""
    from benchmarks import fingerprint_calibration as fc
    from matcher.fingerprint.cohort import cohort_path, write_cohort

    try:
        path = out or str(cohort_path(mode))
    except ValueError as exc:  # a mode whose scores stay raw
        raise typer.BadParameter(str(exc), param_hint="--mode") from None
    templates = fc.build_cohort(dataset, mode, size)
    write_cohort(templates, path)
    typer.echo(f"{len(templates)} templates of {dataset} ({mode}) -> {path}")


@bench_app.command("face")
def bench_face(
    dataset: str = typer.Argument(..., metavar="DATASET", help="Folder with images and labels.csv (file, identity)."),
    json_path: str = typer.Option(None, "--json", help="Write the report as JSON to this file."),
    plots: str = typer.Option(None, "--plots", help="Write DET, CMC and score-histogram PNGs to this folder."),
    pairs: str = typer.Option(None, "--pairs", help="Evaluate this LFW pairs.txt instead (10-fold accuracy, EER)."),
    peers: bool = typer.Option(False, "--peers", help="Also run the plain YuNet+SFace and dlib (face_recognition) pipelines."),
    mode: str = typer.Option("sface", "--mode", help="locard face mode(s), comma separated: sface, fusion."),
    seed: int = typer.Option(0, "--seed", help="Seed of the impostor-pair sample (sets with over 1,000,000 pairs)."),
    save_calibration: str = typer.Option(None, "--save-calibration", help="Write calibration_<mode>.json (impostor scores of this run) to this folder."),
) -> None:
    """Face matcher: failure to enrol, EER, FMR100/1000, rank-1/10 and ms per face (one core).

    Genuine pairs: all; impostor pairs: all (or a seeded sample of 1,000,000); gallery: the first image of each identity. See benchmarks/README.md, section Face.
    """
    import os

    # One core: pin the numerical libraries before anything heavy is imported.
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    from benchmarks import face_bench

    try:
        face_bench.run(dataset, json_out=json_path, plots=plots, pairs=pairs, peers=peers, mode=mode,
                       seed=seed, save_calibration=save_calibration)
    except (FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@bench_app.command("search")
def bench_search(
    dataset: str = typer.Argument(..., metavar="DATASET", help="Folder with images and labels.csv (file, identity)."),
    modality: str = typer.Option(..., "--modality", help="finger or face."),
    distractors: str = typer.Option(None, "--distractors", help="Data set whose identities (first sample each) join the gallery only."),
    distractor_store: str = typer.Option(None, "--distractor-store", help="Start the gallery from a copy of this store (ingested beforehand with locard ingest); all its subjects are distractors."),
    json_path: str = typer.Option(None, "--json", help="Write the report as JSON to this file."),
    seed: int = typer.Option(0, "--seed", help="Seed of the gallery/non-mated split of identities."),
    workers: int = typer.Option(1, "--workers", min=1, help="Extraction processes for ingest and probes."),
    shortlist: int = typer.Option(None, "--shortlist", min=1, help="Fingerprint samples re-ranked per probe (default 200)."),
    store: str = typer.Option(None, "--store", help="Build the gallery in this (new) store folder instead of a temporary one."),
    exhaustive: bool = typer.Option(False, "--exhaustive", help="Fingerprints: also re-rank the whole gallery (rank1_exhaustive; ten-print sets: for the mated cards)."),
    synthetic: int = typer.Option(0, "--synthetic", min=0, help="Scale test: add this many synthetic distractors (made-up templates or embeddings, not images) to the gallery."),
    warm: bool = typer.Option(False, "--warm", help="Fingerprints: fill the searcher's re-ranking cache (its budget: bytes per enrolled finger) before searching, as a long-running service would, and report the memory per finger."),
    max_probes: int = typer.Option(None, "--max-probes", min=1, help="Search at most this many mated and this many non-mated probes (seeded sample)."),
    factory: str = typer.Option(None, "--factory", help="FAISS factory string for the gallery index (default: chosen by size)."),
    k_per_minutia: int = typer.Option(None, "--k-per-minutia", min=1, help="Fingerprints: nearest gallery cylinders per probe cylinder in stage 1 (default 64)."),
    nprobe: str = typer.Option(None, "--nprobe", help="Search knob: lists visited per query (IVF) or efSearch (HNSW); a comma list also measures the others."),
    uncertain_flat: bool = typer.Option(False, "--uncertain-flat-positions", help="Ten-print sets: flag flat probe impressions' positions uncertain (also search the neighbouring fingers)."),
    tenprint_subjects: str = typer.Option(None, "--tenprint-subjects", help="Ten-print sets: subjects a card re-ranks in full (default 50; 0 = each finger its own shortlist); a comma list also measures the others on the same probes."),
) -> None:
    """1:N identification: rank-1/10, FNIR at FPIR 1 %, penetration, search ms, ingest rate.

    Gallery = first sample of each of half the identities (seeded); mated probes = their
    other samples; non-mated probes = the other half.  A ten-print set (labels.csv with
    finger_position and card) is searched by subject: one card per gallery subject, one
    fused ten-print probe per other card; --workers processes search the batch at once.
    See benchmarks/README.md, sections Search and Ten-print search.
    """
    import json as _json

    from benchmarks import search_bench, tenprint_search
    from indexer.ingest import scan_source

    if modality not in ("finger", "face"):
        typer.echo("error: --modality must be finger or face", err=True)
        raise typer.Exit(2)
    try:
        if modality == "finger" and tenprint_search.is_tenprint(scan_source(dataset, "finger")):
            report = tenprint_search.run(dataset, distractors=distractors, distractor_store=distractor_store,
                                         json_path=json_path, seed=seed, workers=workers, shortlist=shortlist,
                                         store_path=store, max_probes=max_probes, warm=warm,
                                         uncertain=uncertain_flat, exhaustive=exhaustive,
                                         tenprint_subjects=[int(v) for v in tenprint_subjects.split(",")]
                                         if tenprint_subjects else None, echo=typer.echo)
            typer.echo(_json.dumps(report, indent=1))
            return
        report = search_bench.run(dataset, modality, distractors=distractors, json_path=json_path, seed=seed,
                                  workers=workers, shortlist=shortlist, store_path=store, exhaustive=exhaustive,
                                  synthetic=synthetic, warm=warm, max_probes=max_probes, factory=factory,
                                  nprobe=[int(v) for v in nprobe.split(",")] if nprobe else None,
                                  k_per_minutia=k_per_minutia, distractor_store=distractor_store,
                                  echo=typer.echo)
    except (FileNotFoundError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(_json.dumps(report, indent=1))


@synth_app.command("fingerprints")
def synth_fingerprints(
    out: str = typer.Argument(..., metavar="OUT", help="Output folder (images/, groundtruth/, labels.csv)."),
    identities: int = typer.Option(..., "--identities", min=1, help="Number of fingers (masters)."),
    impressions: int = typer.Option(4, "--impressions", min=1, help="Impressions per finger."),
    seed: int = typer.Option(0, "--seed", help="Master seed: same seed and counts, same bytes."),
    workers: int = typer.Option(0, "--workers", min=0, help="Processes (0 = one per CPU)."),
    classes: str = typer.Option("natural", "--classes", help="Class shares: 'natural' or e.g. 'whorl=1,left_loop=2' (arch, tented_arch, left_loop, right_loop, whorl)."),
    preview: str = typer.Option(None, "--preview", help="Also write a PNG contact sheet: masters, impressions and real FVC images when ../shared is present."),
    resume: bool = typer.Option(False, "--resume", help="Keep fingers whose files an interrupted run of the same seed and counts already wrote."),
    part: str = typer.Option(None, "--part", help="START:STOP - write only identities START..STOP-1 (0-based) of the set, same names and bytes as the whole run (to make a large set in slices)."),
) -> None:
    """SFinGe-style synthetic fingerprints at 500 ppi, with ground-truth minutiae per image.

    Writes OUT/images/<identity>_<impression>.png, OUT/groundtruth/<same>.json and
    OUT/labels.csv (file, identity, class, impression, ppi, groundtruth); see benchmarks/README.md.
    """
    from benchmarks.synth.generate import generate, parse_distribution

    try:
        distribution = parse_distribution(classes)
        span = None
        if part:
            start, sep, stop = part.partition(":")
            if not sep:
                raise ValueError(f"--part wants START:STOP, got {part!r}")
            span = (int(start), int(stop))
        summary = generate(out, identities, impressions, seed=seed, workers=workers,
                           distribution=distribution, part=span, resume=resume)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"{summary.images} images of {summary.identities} fingers in {summary.seconds:.1f} s "
               f"({summary.images_per_second:.1f} images/s, {summary.workers} worker(s)) -> {summary.out}")
    if preview:
        from benchmarks.synth.preview import contact_sheet

        contact_sheet(out, preview)
        typer.echo(f"contact sheet -> {preview}")


@synth_app.command("tenprints")
def synth_tenprints(
    out: str = typer.Argument(..., metavar="OUT", help="Output folder (images/, groundtruth/, labels.csv, fingers.csv)."),
    subjects: int = typer.Option(..., "--subjects", min=1, help="Number of persons (ten fingers each)."),
    cards: int = typer.Option(2, "--cards", min=1, help="Ten-print cards (capture sessions) per subject."),
    seed: int = typer.Option(0, "--seed", help="Master seed: same seed and options, same bytes."),
    workers: int = typer.Option(0, "--workers", min=0, help="Processes (0 = one per CPU)."),
    flat: bool = typer.Option(True, "--flat/--rolled-only", help="A flat impression of every finger on every card besides the rolled one."),
    amputated: float = typer.Option(None, "--amputated", min=0.0, max=1.0, help="Probability a finger is missing from every card (default 0.005)."),
    bandaged: float = typer.Option(None, "--bandaged", min=0.0, max=1.0, help="Probability a finger is missing from one card (default 0.01)."),
    resume: bool = typer.Option(False, "--resume", help="Keep subjects whose files an interrupted run of the same options already wrote."),
    part: str = typer.Option(None, "--part", help="START:STOP - write only subjects START..STOP-1 (0-based), same names and bytes as the whole run."),
    template_level: bool = typer.Option(False, "--template-level", help="No images: OUT is a gallery store of the subjects' templates, made from masters and presses with the fitted extraction noise (distractors for bench search --distractor-store)."),
    noise: str = typer.Option(None, "--noise", help="With --template-level: extraction-noise model (default: the shipped benchmarks/synth/extraction_noise.json)."),
) -> None:
    """Ten-print subjects: ten different fingers per person (ANSI/NIST positions 1-10, per-position pattern classes), rolled and flat.

    Writes OUT/images/<subject>_<position>_<card>_<rolled|flat>.png, OUT/groundtruth/<same>.json,
    OUT/labels.csv (file, identity = subject, finger_position, impression_kind, card, finger, class, ...)
    and OUT/fingers.csv (every finger on every card: printed, amputated or bandaged); see benchmarks/README.md.
    With --template-level, OUT is a store of templates instead (subjects template-level:SEED:NAME), resumable.
    """
    from benchmarks.synth.fingers import AMPUTATED_RATE, BANDAGED_RATE
    from benchmarks.synth.tenprint import generate_tenprints

    try:
        span = None
        if part:
            start, sep, stop = part.partition(":")
            if not sep or not start.strip().isdigit() or not stop.strip().isdigit():
                raise ValueError(f"--part wants START:STOP, got {part!r}")
            span = (int(start), int(stop))
        if template_level:
            from benchmarks.synth.template_level import write_store

            done = write_store(out, subjects, seed=seed, cards=cards, flat=flat, workers=workers, noise_path=noise,
                               part=span, amputated_rate=AMPUTATED_RATE if amputated is None else amputated,
                               bandaged_rate=BANDAGED_RATE if bandaged is None else bandaged, echo=typer.echo)
            typer.echo(f"{done['templates']} templates of {done['subjects']} subjects in {done['seconds']:.1f} s "
                       f"({done['workers']} worker(s), extraction-noise model {done['noise_model']}) -> store {out}")
            return
        summary = generate_tenprints(out, subjects, cards, seed=seed, workers=workers, flat=flat,
                                     amputated_rate=AMPUTATED_RATE if amputated is None else amputated,
                                     bandaged_rate=BANDAGED_RATE if bandaged is None else bandaged,
                                     part=span, resume=resume)
    except (ValueError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    typer.echo(f"{summary.images} images of {summary.identities} subjects in {summary.seconds:.1f} s "
               f"({summary.images_per_second:.1f} images/s, {summary.workers} worker(s)) -> {summary.out}")


@synth_app.command("fit-extraction-noise")
def synth_fit_extraction_noise(
    sets: list[str] = typer.Argument(..., metavar="SET...", help="Folders written by 'locard synth tenprints' (a seed used for nothing else)."),
    templates: str = typer.Option(..., "--templates", help="Folder of extracted templates <image stem>.lcfp (missing ones are extracted and written there)."),
    out: str = typer.Option(None, "--out", help="Model file to write (default: the shipped benchmarks/synth/extraction_noise.json)."),
) -> None:
    """Fit the extraction-noise model of template-level subjects on rendered ten-print sets against their ground truth."""
    import shlex
    import sys
    from pathlib import Path

    from benchmarks.synth.extraction_noise import NOISE_FILE
    from benchmarks.synth.template_level import fit_on_tenprints

    try:
        model = fit_on_tenprints(sets, templates, source="locard synth fit-extraction-noise "
                                 + " ".join(map(shlex.quote, sys.argv[3:])), echo=typer.echo)
    except (ValueError, FileNotFoundError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    path = Path(out or NOISE_FILE)
    path.write_text(model.to_json())
    typer.echo(f"extraction noise of {', '.join(f'{k}: {v.images} images' for k, v in model.kinds.items())} -> {path}")


@synth_app.command("score")
def synth_score(
    dataset: str = typer.Argument(..., metavar="SET", help="Folder written by 'locard synth fingerprints' (or real prints with --reference)."),
    extractor: list[str] = typer.Option(None, "--extractor", help="Minutiae source (repeatable; default locard-fast and locard-accurate): locard-fast, locard-accurate, leader, nbis-bozorth3, nbis-py."),
    reference: str = typer.Option(None, "--reference", help="Score against this source's minutiae instead of the ground truth (real prints)."),
    limit: int = typer.Option(None, "--limit", min=1, help="First N images only."),
    tolerance: float = typer.Option(10.0, "--tolerance", help="Largest distance of a minutia pair, pixels at 500 ppi."),
    json_path: str = typer.Option(None, "--json", help="Write the report as JSON to this file."),
    cache_dir: str = typer.Option(None, "--cache", help="Cache folder for peers' minutiae (default: the fingerprint bench's)."),
) -> None:
    """Minutiae recall, precision and direction error per generated condition (dry, wet, distorted, rotated, partial).

    Against the generator's ground truth, or with --reference against another extractor on real prints; see benchmarks/README.md.
    """
    import json as _json
    from pathlib import Path

    from benchmarks.synth.extractor_score import run

    try:
        report = run(dataset, extractor or ["locard-fast", "locard-accurate"], reference, limit, tolerance,
                     cache_dir, echo=typer.echo)
    except (FileNotFoundError, KeyError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    if json_path:
        Path(json_path).write_text(_json.dumps(report, indent=1) + "\n")
