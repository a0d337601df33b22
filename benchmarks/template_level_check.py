"""Do template-level distractors score like rendered ones?  Impostor scores against rendered probes.

Every probe impression (rendered, extracted) is compared with every distractor
impression of the same finger position, once with rendered distractors (images,
extracted) and once with template-level ones (:mod:`benchmarks.synth.template_level`,
from a store ``locard synth tenprints --template-level`` wrote).  The two impostor-score samples are compared with a
two-sample Kolmogorov-Smirnov test, and by the share of each above the matcher's
threshold at FMR 1e-4 (with Clopper-Pearson 95 % intervals and Fisher's exact test of
the two shares).  Scores of one distractor share that distractor, so they are not
independent draws: besides the KS p-value of independent samples (which overstates the
evidence), ``ks_pvalue_subject_permutation`` deals the distractor subjects of both sides
out again at random and counts how often the KS statistic is as large as observed.

Made with the rendered distractors' seed, the template-level subjects are the same
people pressed the same way (paired: only extraction differs); with another seed,
other people.

``python -m benchmarks.template_level_check --probes SET ... --rendered SET ...
--template-level STORE [--json OUT]``; a SET is a ``locard synth tenprints`` folder (or a
folder of such folders ``part*/``) with its extracted templates in ``SET/templates``
(``<image stem>.lcfp``, as ``locard synth fit-extraction-noise --templates`` writes them).
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

#: FMR of the threshold whose tail share is compared.
TAIL_FMR = 1e-4


def label_files(folder: str | Path) -> list[Path]:
    """``labels.csv`` of a ten-print folder, or of each ``part*`` folder in it."""
    root = Path(folder)
    if (root / "labels.csv").is_file():
        return [root / "labels.csv"]
    parts = sorted(root.glob("part*/labels.csv"))
    if not parts:
        raise FileNotFoundError(f"{root} has no labels.csv (nor part*/labels.csv)")
    return parts


def rendered_templates(folder: str | Path) -> list[tuple[str, int, str, object]]:
    """``(subject, position, kind, Template)`` of every extracted impression of a rendered set."""
    from matcher.fingerprint import Template

    tdir = Path(folder) / "templates"
    out = []
    for labels in label_files(folder):
        with labels.open(newline="") as fh:
            for row in csv.DictReader(fh):
                p = tdir / f"{Path(row['file']).stem}.lcfp"
                if p.is_file():
                    out.append((row["identity"], int(row["finger_position"]), row["impression_kind"],
                                Template.from_bytes(p.read_bytes())))
    return out


def store_templates(store_path: str | Path, kinds: set[str] | None = None) -> list[tuple[str, int, str, object]]:
    """``(subject, position, kind, Template)`` of a template-level store (``locard synth tenprints --template-level``)."""
    from indexer.store import GalleryStore
    from matcher.fingerprint import Template

    with GalleryStore(store_path) as store:
        return [(s.subject, s.finger_position, s.metadata.get("impression_kind", ""), Template.from_bytes(s.template))
                for s in store.samples("finger") if kinds is None or s.metadata.get("impression_kind") in kinds]


def impostor_scores(probes: list, gallery: list) -> tuple[np.ndarray, np.ndarray]:
    """Scores of every probe against every gallery template of its finger position, and the
    gallery subject of each score."""
    from matcher.fingerprint.comparison import compare_scores, pack_templates

    scores, subjects = [], []
    for pos in sorted({p for _, p, _, _ in probes}):
        g = [(s, t) for s, p, _, t in gallery if p == pos]
        if not g:
            continue
        packed = pack_templates([t for _, t in g])
        names = np.array([s for s, _ in g])
        for _, p, _, t in probes:
            if p == pos:
                scores.append(compare_scores(t, packed))
                subjects.append(names)
    if not scores:
        return np.zeros(0), np.zeros(0, str)
    return np.concatenate(scores), np.concatenate(subjects)


def subject_permutation_pvalue(a: np.ndarray, subj_a: np.ndarray, b: np.ndarray, subj_b: np.ndarray,
                               permutations: int = 1000, seed: int = 0) -> float:
    """p-value of the KS statistic of ``a`` against ``b`` when distractor subjects, not scores,
    are the independent units: the subjects of both sides are pooled and dealt out again
    at random (as many to each side as it had), and the KS statistic recomputed."""
    from scipy.stats import ks_2samp

    observed = ks_2samp(a, b).statistic
    scores = np.concatenate([a, b])
    labels = np.concatenate([np.char.add("a:", subj_a.astype(str)), np.char.add("b:", subj_b.astype(str))])
    names, inverse = np.unique(labels, return_inverse=True)
    n_a = len(np.unique(subj_a))
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(permutations):
        to_a = np.zeros(len(names), bool)
        to_a[rng.choice(len(names), n_a, replace=False)] = True
        pick = to_a[inverse]
        hits += ks_2samp(scores[pick], scores[~pick]).statistic >= observed
    return (hits + 1) / (permutations + 1)


def tail(scores: np.ndarray, threshold: float) -> dict:
    """Share of ``scores`` at or above ``threshold`` with its Clopper-Pearson 95 % interval."""
    from scipy.stats import beta

    k, n = int(np.sum(scores >= threshold)), len(scores)
    lo = float(beta.ppf(0.025, k, n - k + 1)) if k > 0 else 0.0
    hi = float(beta.ppf(0.975, k + 1, n - k)) if k < n else 1.0
    return {"above": k, "scores": n, "share": k / n if n else None, "ci95": [lo, hi]}


def compare_samples(rendered: np.ndarray, template_level: np.ndarray, threshold: float) -> dict:
    """KS test and tail shares of two impostor-score samples (scores as independent draws)."""
    from scipy.stats import fisher_exact, ks_2samp

    ks = ks_2samp(rendered, template_level)
    a, b = tail(rendered, threshold), tail(template_level, threshold)
    _, p_tail = fisher_exact([[a["above"], a["scores"] - a["above"]], [b["above"], b["scores"] - b["above"]]])
    q = (0.5, 0.9, 0.99, 0.999)
    return {"ks_statistic": float(ks.statistic), "ks_pvalue": float(ks.pvalue), "threshold": threshold,
            "tail_rendered": a, "tail_template_level": b, "tail_fisher_pvalue": float(p_tail),
            "quantiles": {f"{x:g}": [float(np.quantile(rendered, x)), float(np.quantile(template_level, x))]
                          for x in q}}


def run(probes: list[str], rendered: list[str], template_level: str, *, json_path: str | None = None,
        permutations: int = 1000, echo=print) -> dict:
    """The check (module docstring); the report as a dict.

    Both sides keep the same number of subjects: the first ones (by name) of the side
    that has more.
    """
    from indexer.fusion import load_calibration
    from matcher.fingerprint import MATCHER_VERSION

    prb = [x for f in probes for x in rendered_templates(f)]
    ren = [x for f in rendered for x in rendered_templates(f)]
    if not prb or not ren:
        raise ValueError("no extracted templates found for the probes or the rendered distractors")
    kinds = {k for _, _, k, _ in ren}
    tl = store_templates(template_level, kinds)
    # as many subjects on both sides: the first ones (by name) of the side that has more
    n_subjects = min(len({s for s, *_ in ren}), len({s for s, *_ in tl}))
    for side in (ren, tl):
        keep = set(sorted({s for s, *_ in side})[:n_subjects])
        side[:] = [x for x in side if x[0] in keep]
    echo(f"{len(prb)} probes; {len(ren)} rendered and {len(tl)} template-level impressions of {n_subjects} subjects")
    threshold = load_calibration("finger").threshold(TAIL_FMR)
    (s_ren, who_ren), (s_tl, who_tl) = impostor_scores(prb, ren), impostor_scores(prb, tl)
    report = {
        "matcher": MATCHER_VERSION, "probe_sets": probes, "rendered_sets": rendered, "template_level": template_level,
        "probes": len(prb), "subjects": n_subjects, "rendered_distractors": len(ren),
        "template_level_distractors": len(tl), "kinds": sorted(kinds),
        "minutiae_mean": {"probes": float(np.mean([len(t) for *_, t in prb])),
                          "rendered": float(np.mean([len(t) for *_, t in ren])),
                          "template_level": float(np.mean([len(t) for *_, t in tl]))},
        "tail_fmr": TAIL_FMR, **compare_samples(s_ren, s_tl, threshold),
        "ks_pvalue_subject_permutation": subject_permutation_pvalue(s_ren, who_ren, s_tl, who_tl, permutations),
        "permutations": permutations}
    if json_path:
        Path(json_path).write_text(json.dumps(report, indent=1))
    return report


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--probes", nargs="+", required=True, help="Rendered ten-print sets searched as probes.")
    ap.add_argument("--rendered", nargs="+", required=True, help="Rendered ten-print distractor sets.")
    ap.add_argument("--template-level", required=True, help="Store of template-level distractors "
                    "(locard synth tenprints --template-level).")
    ap.add_argument("--json", default=None, help="Write the report here.")
    ap.add_argument("--permutations", type=int, default=1000, help="Deals of the subject-permutation test "
                    "(at 10,000 fingers a side each is a KS test on 1.3 M scores, ~1 s).")
    a = ap.parse_args(argv)
    if a.permutations < 1:
        ap.error("--permutations must be at least 1")
    print(json.dumps(run(a.probes, a.rendered, a.template_level, json_path=a.json, permutations=a.permutations),
                     indent=1))


if __name__ == "__main__":
    main()
