"""Score <-> false match rate, from a matcher's measured impostor scores.

One table per matcher version serves thresholds ("decide at FMR 0.1 %"), score
fusion on a common scale (``-log10 FMR``) and the expected number of false hits in
a gallery of N.  The table is a set of points ``(fmr, threshold)`` on a log-spaced
FMR grid, read off the sorted impostor scores: FMR(t) = share of impostor scores
``>= t``.  Below ``1 / n_impostors`` nothing was measured; :meth:`Calibration.fmr`
then answers that bound, never zero.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

#: Target false match rates that thresholds are reported for.
STANDARD_FMRS = (0.01, 0.001, 0.0001)

CALIBRATION_FORMAT = 1


@dataclass(frozen=True)
class Calibration:
    """Measured impostor score distribution of one matcher version.

    Attributes
    ----------
    matcher : str
        Matcher name, e.g. ``"locard-fingerprint"``.
    version : str
        Matcher (template + comparator) version the scores were measured with.
    n_impostors : int
        Number of impostor comparisons behind the table.
    fmr_grid : list of float
        Decreasing FMR values, from 1 down to ``1 / n_impostors``.
    thresholds : list of float
        ``thresholds[i]`` is the smallest score with FMR <= ``fmr_grid[i]``.
    source : str
        Free text: the data and command that produced the scores.
    """

    matcher: str
    version: str
    n_impostors: int
    fmr_grid: list[float]
    thresholds: list[float]
    source: str = ""
    format: int = field(default=CALIBRATION_FORMAT)

    @classmethod
    def from_impostor_scores(
        cls, scores: np.ndarray, *, matcher: str, version: str, source: str = "",
        points_per_decade: int = 20,
    ) -> "Calibration":
        """Build the table from raw impostor scores (higher = more alike)."""
        s = np.sort(np.asarray(scores, dtype=np.float64))[::-1]  # descending
        n = len(s)
        if n < 100:
            raise ValueError(f"need at least 100 impostor scores to calibrate, got {n}")
        decades = np.log10(n)
        # aligned on whole decades so that 1 %, 0.1 %, ... are grid points, then 1/n.
        steps = np.arange(int(np.floor(decades * points_per_decade + 1e-9)) + 1) / points_per_decade
        grid = np.unique(np.concatenate([10.0 ** -steps, [1.0 / n]]))[::-1]
        thresholds = []
        for f in grid:
            k = int(np.floor(f * n * (1 + 1e-9)))  # at most k impostors may reach the threshold
            if k >= n:
                thresholds.append(float(s[-1]))
            elif k == 0:
                thresholds.append(float(np.nextafter(s[0], np.inf)))
            else:
                # strictly above the (k+1)-th highest score: at most k impostors pass.
                thresholds.append(float(np.nextafter(s[k], np.inf)) if s[k - 1] == s[k] else float((s[k - 1] + s[k]) / 2))
        return cls(matcher=matcher, version=version, n_impostors=n,
                   fmr_grid=[float(g) for g in grid], thresholds=thresholds, source=source)

    def threshold(self, fmr: float) -> float:
        """Smallest score whose measured FMR is at most ``fmr``.

        Raises ``ValueError`` when ``fmr`` is below what the table resolves.
        """
        if not 0 < fmr <= 1:
            raise ValueError(f"fmr must be in (0, 1], got {fmr}")
        grid = np.asarray(self.fmr_grid)
        if fmr < grid[-1] * (1 - 1e-9):
            raise ValueError(
                f"FMR {fmr:g} is below what {self.n_impostors} impostor scores can resolve "
                f"(smallest: {grid[-1]:.2g}); calibrate on more impostor pairs"
            )
        i = int(np.argmax(grid <= fmr * (1 + 1e-9)))  # first grid point at or below fmr
        return float(self.thresholds[i])

    def fmr(self, score: np.ndarray | float) -> np.ndarray | float:
        """False match rate of ``score``: the smallest tabled FMR whose threshold it reaches.

        A step function on the table's grid (20 points a decade), so it never claims
        more than was measured; the floor is ``1 / n_impostors``.
        """
        t = np.asarray(self.thresholds)
        grid = np.asarray(self.fmr_grid)
        i = np.searchsorted(t, np.asarray(score, dtype=np.float64), side="right") - 1
        out = np.where(i < 0, 1.0, grid[np.clip(i, 0, len(grid) - 1)])
        return float(out) if np.ndim(score) == 0 else out

    def log_fmr_score(self, score: np.ndarray | float) -> np.ndarray | float:
        """``-log10 FMR(score)``: the common scale for fusing matchers."""
        return -np.log10(self.fmr(score))

    def standard_thresholds(self) -> dict[str, float]:
        """Thresholds at FMR 1 %, 0.1 % and 0.01 % (those the data resolves)."""
        out = {}
        for f in STANDARD_FMRS:
            try:
                out[f"{f:g}"] = self.threshold(f)
            except ValueError:
                pass
        return out

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "Calibration":
        d = json.loads(text)
        if d.get("format") != CALIBRATION_FORMAT:
            raise ValueError(f"calibration format {d.get('format')} is not {CALIBRATION_FORMAT}")
        return cls(**d)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> "Calibration":
        return cls.from_json(Path(path).read_text())
