"""Extraction noise: what minutia extraction does to an impression's true minutiae.

Fitted on rendered impressions, against their ground truth (:class:`NoiseFit`,
:func:`.template_level.fit_on_tenprints`); applied to
the ground truth of impressions that are never rendered (:func:`noisy_template`,
used by :mod:`.template_level`).  One model per impression kind (rolled, flat), in
cells of *edge distance* (signed distance in pixels from a point to the edge of the area
the finger touched, contact > 0.6, negative outside it) and of either

- *ridge intactness* (for finding true minutiae): the share of ink that dry skin leaves
  on the ridges there (:func:`.impression.ridge_intact`, smoothed over
  :data:`INTACT_SMOOTH` px; the very field the rendered image was drawn with).
  Extraction misses true minutiae where ridges break up, so its misses cluster there;
  cells of the press's pressure alone scattered them evenly over a dry print; or
- *pressure* (for spurious minutiae): the press's -1 dry .. +1 wet
  (:class:`.impression.Press`).

Then:

- a true minutia is found with the probability of its cell times a factor of the
  distance to its nearest true neighbour (:data:`NEIGHBOUR_EDGES`); found, it moves by
  the extractor's mean offset along its direction (``along_offset``, per type), turns by
  a half turn (``flip_share`` of them), keeps its type with ``type_kept``; of found ones
  closer together than ``min_distance`` one is kept (:func:`find_true`);
- the spread of the extractor's errors (``position_sd`` px per axis, ``direction_sd``
  rad) is measured and kept, not drawn: drawn independently per minutia it lowers
  impostor scores, which the extractor's own errors do not (benchmarks/README.md,
  Template-level subjects);
- spurious minutiae fall in each cell as a Poisson process of the cell's rate (per px^2),
  uniform over its pixels, along the local ridge orientation (either way, Gaussian
  ``spurious_direction_sd``), of either type, never closer than ``min_distance`` to one
  kept before them;
- minutia and template qualities are drawn from the fitted quantiles; the template's
  print area is the contact area above ``mask_level`` grown by ``mask_grow`` px, in blocks.

Pairs of true and found minutiae are those of :func:`.extractor_score.pair_minutiae`
(within 10 px, one to one).  The fitted parameters are versioned JSON
(``extraction_noise.json`` beside this module, :data:`NOISE_FORMAT`), with the
extractor and matcher version they describe.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from .extractor_score import pair_minutiae
from .groundtruth import Minutiae

NOISE_FORMAT = 2
NOISE_FILE = Path(__file__).with_name("extraction_noise.json")
#: Pressure cell edges (5 cells: very dry, dry, normal, wet, very wet).
PRESSURE_EDGES = (-0.5, -0.2, 0.2, 0.5)
#: Ridge-intactness cell edges (6 cells: ridges broken up .. whole).  On seed 33 (not the fit
#: set) extraction found 46 % of the true minutiae well inside the print in the lowest cell,
#: 94 % in the highest.
INTACT_EDGES = (0.5, 0.7, 0.8, 0.9, 0.95)
#: Smoothing of the intactness field, px (about a ridge period and a half: a minutia is lost
#: to the breaks around it, not to the pixel under it).
INTACT_SMOOTH = 6.0
#: Edge-distance cell edges, px (7 cells: far outside .. deep inside the contact area).
EDGE_EDGES = (-16.0, 0.0, 8.0, 16.0, 32.0, 64.0)
#: Cells of the distance from a true minutia to its nearest true neighbour, px (5 cells):
#: extraction merges or drops minutiae that close (found 35 % of the time under 6 px, 95 % beyond 15).
NEIGHBOUR_EDGES = (6.0, 9.0, 12.0, 15.0)
#: Contact level of the touched area (as :func:`.impression._visible` uses).
CONTACT_LEVEL = 0.6
#: Largest distance of a true-found pair, px.
TOLERANCE = 10.0
#: Extraction's spacing (``min_distance``) is this quantile of the distances from each extracted
#: minutia to its nearest neighbour: 10.0 px on the fit set.  With it, 6.9 % of template-level
#: minutiae have a neighbour closer than 12 px, against 7.5 % of extracted ones (seed 33); with
#: the 0.5 % quantile (7.3 px) it was 11 %.
SPACING_QUANTILE = 0.03
#: Rounds of fitting the neighbour factor under the spacing rule (:meth:`NoiseFit._spacing_factor`),
#: each a run of the model over the fit set's presses.
SPACING_ROUNDS = 4
#: Quantile levels stored for quality distributions.
QUANTILES = tuple(np.linspace(0, 1, 21).round(3))
#: Candidate print areas tried by the fit: contact level, then grown by this many px.
MASK_CANDIDATES = tuple((level, grow) for level in (0.02, 0.1, 0.3, 0.6) for grow in (0, 8, 16, 24, 32))


def print_area(contact: np.ndarray, level: float, grow: float) -> np.ndarray:
    """Template mask (blocks) of a contact area: above ``level``, grown by ``grow`` px."""
    from matcher.fingerprint.template import block_mask

    area = (contact > level).astype(np.uint8)
    if grow > 0:
        k = 2 * int(grow) + 1
        area = cv2.dilate(area, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    return block_mask(area > 0)


def cells(pressure: float, edge: np.ndarray) -> tuple[int, np.ndarray]:
    """Pressure cell and edge-distance cells of points."""
    return int(np.searchsorted(PRESSURE_EDGES, pressure)), np.searchsorted(EDGE_EDGES, edge)


def intact_cells(intact: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Ridge-intactness cells (:data:`INTACT_EDGES`) of points, from the unsmoothed field."""
    smooth = cv2.GaussianBlur(np.asarray(intact, np.float32), (0, 0), INTACT_SMOOTH)
    return np.searchsorted(INTACT_EDGES, at(smooth, x, y))


def at(field: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Values of an image-sized field at points, px (nearest pixel, clipped to the image)."""
    h, w = field.shape
    return field[np.clip(np.rint(y).astype(np.int64), 0, h - 1), np.clip(np.rint(x).astype(np.int64), 0, w - 1)]


def neighbour_cells(m: Minutiae) -> np.ndarray:
    """Cell of each minutia's distance to its nearest other minutia (:data:`NEIGHBOUR_EDGES`)."""
    if len(m) < 2:
        return np.full(len(m), len(NEIGHBOUR_EDGES), np.int64)
    d = np.hypot(m.x[:, None] - m.x[None, :], m.y[:, None] - m.y[None, :])
    np.fill_diagonal(d, np.inf)
    return np.searchsorted(NEIGHBOUR_EDGES, d.min(axis=1))


def signed_edge_distance(contact: np.ndarray) -> np.ndarray:
    """Distance of every pixel to the edge of the touched area, px (negative outside)."""
    inside = (contact > CONTACT_LEVEL).astype(np.uint8)
    d_in = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
    d_out = cv2.distanceTransform(1 - inside, cv2.DIST_L2, 5)
    return np.where(inside > 0, d_in, -d_out).astype(np.float32)


def ridge_orientation(master, placement, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Ridge orientation of the master at impression points, radians in the impression frame.

    Points whose master point is off the master canvas get a random orientation.
    """
    mx, my = placement.maps
    u, v = np.rint(at(mx, x, y)).astype(np.int64), np.rint(at(my, x, y)).astype(np.int64)
    mh, mw = master.orientation.shape
    ok = (u >= 0) & (v >= 0) & (u < mw) & (v < mh)
    out = rng.uniform(0, np.pi, len(x))
    out[ok] = master.orientation[v[ok], u[ok]] + placement.transform.angle
    return out


@dataclass
class KindNoise:
    """Noise of one impression kind (attributes: module docstring; cells ``detect[intactness][edge]``,
    ``spurious_rate[pressure][edge]``)."""

    detect: list[list[float]]
    neighbour_factor: list[float]
    spurious_rate: list[list[float]]
    along_offset: list[float]
    position_sd: float
    direction_sd: float
    flip_share: float
    type_kept: float
    spurious_direction_sd: float
    found_quality: list[float]
    spurious_quality: list[float]
    template_quality: list[float]
    mask_level: float
    mask_grow: float
    min_distance: float
    images: int


@dataclass
class ExtractionNoise:
    """Fitted extraction noise of one extractor, per impression kind."""

    kinds: dict[str, KindNoise]
    extractor: str
    matcher_version: str
    source: str = ""
    format: int = field(default=NOISE_FORMAT)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "ExtractionNoise":
        """Read :meth:`to_json` output.

        Raises
        ------
        ValueError
            Another format, or fields missing.
        """
        doc = json.loads(text)
        if doc.get("format") != NOISE_FORMAT:
            raise ValueError(f"extraction-noise format {doc.get('format')!r}; this build reads {NOISE_FORMAT}")
        try:
            kinds = {k: KindNoise(**v) for k, v in doc["kinds"].items()}
            return cls(kinds, doc["extractor"], doc["matcher_version"], doc.get("source", ""))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"extraction-noise file lacks fields: {exc}") from exc


def load(path: str | Path | None = None) -> ExtractionNoise:
    """The fitted model (default: the one shipped beside this module).

    Raises
    ------
    FileNotFoundError, ValueError
    """
    return ExtractionNoise.from_json(Path(path or NOISE_FILE).read_text())


def model_id(path: str | Path | None = None) -> str:
    """Identity of a model file, ``<format>:<first 16 hex digits of its SHA-256>``: template-level
    samples record it, so a store never mixes templates drawn by two models unawares."""
    import hashlib

    return f"{NOISE_FORMAT}:{hashlib.sha256(Path(path or NOISE_FILE).read_bytes()).hexdigest()[:16]}"


def _draw(quantiles: list[float], n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` values from the distribution whose quantiles at :data:`QUANTILES` are given."""
    return np.interp(rng.random(n), QUANTILES, quantiles)


def noisy_template(truth: Minutiae, contact: np.ndarray, intact: np.ndarray, pressure: float, orientation,
                   noise: KindNoise, rng: np.random.Generator, extractor: str = "accurate"):
    """A template as extraction would make it from an impression with these true minutiae.

    Parameters
    ----------
    truth : Minutiae
        True minutiae, impression pixels (the ground truth of the press).
    contact : (H, W) float array
        Where the finger touched, ``[0, 1]``; its shape is the image's.
    intact : (H, W) float array
        Ridge intactness of the press, ``[0, 1]`` (:func:`.impression.ridge_intact`).
    pressure : float
    orientation : callable ``(x, y) -> radians``
        Local ridge orientation at impression points (spurious minutiae follow it).
    noise : KindNoise
    rng : numpy.random.Generator

    Returns
    -------
    matcher.fingerprint.Template
    """
    from matcher.fingerprint import MINUTIA_DTYPE, Template

    h, w = contact.shape
    edge = signed_edge_distance(contact)
    pb, eb = cells(pressure, at(edge, truth.x, truth.y))
    ib = intact_cells(intact, truth.x, truth.y)
    p_found = np.asarray(noise.detect)[ib, eb] * np.asarray(noise.neighbour_factor)[neighbour_cells(truth)]
    found, x, y = find_true(truth, p_found, noise.along_offset, noise.min_distance, rng)
    n = len(found)
    d = truth.direction[found] + np.pi * (rng.random(n) < noise.flip_share)
    kind = np.where(rng.random(n) < noise.type_kept, truth.kind[found], 1 - truth.kind[found])
    quality = _draw(noise.found_quality, n, rng)
    # spurious minutiae: Poisson per edge-distance cell, uniform over its pixels
    all_cells = np.searchsorted(EDGE_EDGES, edge).ravel()
    sx, sy = [], []
    for e, rate in enumerate(noise.spurious_rate[pb]):
        where = np.flatnonzero(all_cells == e)
        k = rng.poisson(rate * len(where)) if len(where) else 0
        if k:
            pick = where[rng.integers(0, len(where), k)]
            sx.append(pick % w + rng.random(k) - 0.5)
            sy.append(pick // w + rng.random(k) - 0.5)
    sx = np.concatenate(sx) if sx else np.zeros(0)
    sy = np.concatenate(sy) if sy else np.zeros(0)
    k = len(sx)
    sd = orientation(sx, sy) + np.pi * rng.integers(0, 2, k) + rng.normal(0, noise.spurious_direction_sd, k)
    m = np.zeros(n + k, MINUTIA_DTYPE)
    m["x"] = np.clip(np.concatenate([x, sx]), 0, w - 1)
    m["y"] = np.clip(np.concatenate([y, sy]), 0, h - 1)
    m["direction"] = np.mod(np.concatenate([d, sd]), 2 * np.pi)
    m["type"] = np.concatenate([kind, rng.integers(0, 2, k)]) + 1  # ground truth 0/1, templates 1/2
    m["quality"] = np.clip(np.rint(np.concatenate([quality, _draw(noise.spurious_quality, k, rng)])), 0, 100)
    # no spurious minutia closer than extraction's spacing to one kept before it (found ones first)
    m = m[np.union1d(np.arange(n), spaced(m["x"], m["y"], noise.min_distance, first=n))]
    q = int(np.clip(np.rint(_draw(noise.template_quality, 1, rng)[0]), 0, 100))
    return Template(minutiae=m, width=w, height=h, quality=q, mask=print_area(contact, noise.mask_level, noise.mask_grow),
                    extractor=extractor)


def find_true(truth: Minutiae, p_found: np.ndarray, along_offset: list[float], min_distance: float,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The true minutiae extraction reports: their indices in ``truth`` and positions, px.

    Each is found with its probability (a probability above 1 is a sure find) and moved
    by the extractor's mean offset along its direction, by type (its spread is not drawn
    independently per minutia: module docstring).  Extraction never reports two minutiae
    closer than ``min_distance``: of found ones that close, one is kept (taken in random
    order).  Without that rule 2.4 % of template-level minutiae had another within 8 px,
    against 0.5 % of extracted ones (benchmarks/README.md, Template-level subjects); the
    neighbour factor of the detection rate is fitted with it (:meth:`NoiseFit.result`).
    """
    idx = np.flatnonzero(rng.random(len(truth)) < p_found)
    along = np.asarray(along_offset)[truth.kind[idx].astype(np.int64)]
    x = truth.x[idx] + along * np.cos(truth.direction[idx])
    y = truth.y[idx] + along * np.sin(truth.direction[idx])
    order = rng.permutation(len(idx))
    keep = np.sort(order[spaced(x[order], y[order], min_distance)])
    return idx[keep], x[keep], y[keep]


def spaced(x: np.ndarray, y: np.ndarray, min_distance: float, first: int = 0) -> np.ndarray:
    """Indices of the points kept when each, in order, drops the points from ``first`` on that
    come after it closer than ``min_distance`` (extraction never reports two minutiae closer
    than its peak suppression allows)."""
    if len(x) < 2 or min_distance <= 0:
        return np.arange(len(x))
    close = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :]) < min_distance
    keep = np.ones(len(x), bool)
    for i in range(len(x)):
        if keep[i]:
            keep[max(i + 1, first):] &= ~close[i, max(i + 1, first):]
    return np.flatnonzero(keep)


class NoiseFit:
    """Counts gathered over rendered impressions of one kind, turned into :class:`KindNoise`."""

    def __init__(self):
        shape = (len(PRESSURE_EDGES) + 1, len(EDGE_EDGES) + 1)
        self.true_n, self.true_found = (np.zeros((len(INTACT_EDGES) + 1, len(EDGE_EDGES) + 1)) for _ in range(2))
        self.area, self.spurious = np.zeros(shape), np.zeros(shape)
        self.dxy, self.ddir, self.same_type, self.sp_dir = [], [], [], []
        self.along = ([], [])  # offsets along the true direction, endings and bifurcations
        self.q_found, self.q_spurious, self.q_template = [], [], []
        self.mask_agree = np.zeros(len(MASK_CANDIDATES))
        self.nb_n, self.nb_found = np.zeros(len(NEIGHBOUR_EDGES) + 1), np.zeros(len(NEIGHBOUR_EDGES) + 1)
        self.nearest = []
        self.presses = []  # (truth, intactness cells, edge cells, neighbour cells) of each impression
        self.images = 0

    def add(self, truth: Minutiae, contact: np.ndarray, intact: np.ndarray, pressure: float, orientation,
            template) -> None:
        """One rendered impression: its ground truth, contact area, ridge intactness and extracted template."""
        edge = signed_edge_distance(contact)
        m = template.minutiae
        found = Minutiae(m["x"].astype(np.float64), m["y"].astype(np.float64), m["direction"].astype(np.float64),
                         (m["type"].astype(np.int8) - 1))
        pairs = pair_minutiae(truth, found, TOLERANCE)
        pb, eb_true = cells(pressure, at(edge, truth.x, truth.y))
        ib_true = intact_cells(intact, truth.x, truth.y)
        np.add.at(self.true_n, (ib_true, eb_true), 1)
        ti = np.array([i for i, _ in pairs], int)
        fi = np.array([j for _, j in pairs], int)
        np.add.at(self.true_found, (ib_true[ti], eb_true[ti]), 1)
        nb = neighbour_cells(truth)
        np.add.at(self.nb_n, nb, 1)
        np.add.at(self.nb_found, nb[ti], 1)
        self.presses.append((truth, ib_true, eb_true, nb))
        self.area[pb] += np.bincount(np.searchsorted(EDGE_EDGES, edge).ravel(), minlength=self.area.shape[1])
        spur = np.setdiff1d(np.arange(len(found)), fi)
        _, eb_sp = cells(pressure, at(edge, found.x[spur], found.y[spur]))
        np.add.at(self.spurious[pb], eb_sp, 1)
        if len(pairs):
            dx, dy = found.x[fi] - truth.x[ti], found.y[fi] - truth.y[ti]
            along = dx * np.cos(truth.direction[ti]) + dy * np.sin(truth.direction[ti])
            for k in (0, 1):
                self.along[k].extend(along[truth.kind[ti] == k])
            self.dxy += list(dx) + list(dy)
            self.ddir += list(np.angle(np.exp(1j * (found.direction[fi] - truth.direction[ti]))))
            self.same_type += list(found.kind[fi] == truth.kind[ti])
        if len(spur):
            rel = np.mod(found.direction[spur] - orientation(found.x[spur], found.y[spur]) + np.pi / 2, np.pi) - np.pi / 2
            self.sp_dir += list(rel)
        self.q_found += list(m["quality"][fi])
        self.q_spurious += list(m["quality"][spur])
        self.q_template.append(template.quality)
        if len(found) > 1:
            d = np.hypot(found.x[:, None] - found.x[None, :], found.y[:, None] - found.y[None, :])
            np.fill_diagonal(d, np.inf)
            self.nearest += list(d.min(axis=1))
        for i, (level, grow) in enumerate(MASK_CANDIDATES):
            mk = print_area(contact, level, grow)
            rows, cols = min(mk.shape[0], template.mask.shape[0]), min(mk.shape[1], template.mask.shape[1])
            self.mask_agree[i] += np.mean(mk[:rows, :cols] == template.mask[:rows, :cols])
        self.images += 1

    def result(self) -> KindNoise:
        """The fitted parameters (a cell without data borrows the pooled value of its row)."""
        def ratio(num, den):
            pooled = num.sum(axis=1, keepdims=True) / np.maximum(den.sum(axis=1, keepdims=True), 1)
            pooled = np.where(den.sum(axis=1, keepdims=True) > 0, pooled, num.sum() / max(den.sum(), 1))
            return np.where(den >= 20, num / np.maximum(den, 1), pooled)

        ddir = np.array(self.ddir)
        flipped = np.abs(ddir) > np.pi / 2
        straight = ddir[~flipped]
        quant = lambda v: [float(q) for q in np.quantile(v, QUANTILES)] if len(v) else [0.0] * len(QUANTILES)  # noqa: E731
        # detection = cell rate x neighbour factor; the factor starts normalised to mean 1 over true
        # minutiae and is then fitted under the spacing rule
        factor = self.nb_found / np.maximum(self.nb_n, 1) / max(self.nb_found.sum() / max(self.nb_n.sum(), 1), 1e-9)
        factor = np.where(self.nb_n > 0, factor, 1.0)
        factor /= max(float(np.sum(factor * self.nb_n) / max(self.nb_n.sum(), 1)), 1e-9)
        detect = ratio(self.true_found, self.true_n).round(4)
        along = [round(float(np.mean(a)), 3) if a else 0.0 for a in self.along]
        min_distance = round(float(np.quantile(self.nearest, SPACING_QUANTILE)), 2) if self.nearest else 0.0
        return KindNoise(
            detect=detect.tolist(),
            neighbour_factor=self._spacing_factor(detect, factor, along, min_distance).round(4).tolist(),
            spurious_rate=(ratio(self.spurious, self.area) if self.area.sum() else self.area).round(8).tolist(),
            along_offset=along,
            position_sd=round(float(np.std(self.dxy)), 3) if self.dxy else 0.0,
            direction_sd=round(float(np.sqrt(np.mean(straight ** 2))), 4) if len(straight) else 0.0,
            flip_share=round(float(np.mean(flipped)), 4) if len(ddir) else 0.0,
            type_kept=round(float(np.mean(self.same_type)), 4) if self.same_type else 1.0,
            spurious_direction_sd=round(float(np.sqrt(np.mean(np.square(self.sp_dir)))), 4) if self.sp_dir else 1.0,
            found_quality=quant(self.q_found), spurious_quality=quant(self.q_spurious),
            template_quality=quant(self.q_template),
            mask_level=MASK_CANDIDATES[int(np.argmax(self.mask_agree))][0],
            mask_grow=MASK_CANDIDATES[int(np.argmax(self.mask_agree))][1],
            min_distance=min_distance,
            images=self.images)

    def _spacing_factor(self, detect: np.ndarray, factor: np.ndarray, along: list[float], min_distance: float,
                        rounds: int = SPACING_ROUNDS) -> np.ndarray:
        """The neighbour factor that gives each neighbour cell its measured found rate *after*
        the spacing rule of :func:`find_true` (which drops found minutiae of close pairs):
        the model is run on the fit set's presses and the factor scaled by measured/modelled,
        ``rounds`` times."""
        rng = np.random.default_rng(0)
        measured = self.nb_found / np.maximum(self.nb_n, 1)
        for _ in range(rounds):
            kept = np.zeros_like(self.nb_n)
            for truth, ib, eb, nb in self.presses:
                idx, _, _ = find_true(truth, detect[ib, eb] * factor[nb], along, min_distance, rng)
                np.add.at(kept, nb[idx], 1)
            modelled = kept / np.maximum(self.nb_n, 1)
            factor = np.where(modelled > 0, factor * measured / np.maximum(modelled, 1e-9), factor)
        return factor
