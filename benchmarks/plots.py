"""PNG plots for benchmark reports: DET curves, score histograms, CMC curves.

Each function takes already computed data and a path; matplotlib runs headless (Agg).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import norm  # noqa: E402

from .metrics import error_curve  # noqa: E402


def plot_det(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], path: str | Path, title: str = "") -> None:
    """DET curve (FNMR against FMR on normal-deviate axes), one line per system.

    Parameters
    ----------
    curves : mapping name -> (genuine scores, impostor scores)
    """
    fig, ax = plt.subplots(figsize=(5.5, 5.0))
    eps = 1e-5
    for name, (g, i) in curves.items():
        c = error_curve(g, i)
        ax.plot(norm.ppf(np.clip(c.fmr, eps, 1 - eps)), norm.ppf(np.clip(c.fnmr, eps, 1 - eps)), label=name)
    ticks = np.array([1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.5])
    ax.set_xticks(norm.ppf(ticks), [f"{t:g}" for t in ticks])
    ax.set_yticks(norm.ppf(ticks), [f"{t:g}" for t in ticks])
    ax.set_xlim(norm.ppf(eps), norm.ppf(0.5))
    ax.set_ylim(norm.ppf(eps), norm.ppf(0.5))
    ax.set_xlabel("false match rate")
    ax.set_ylabel("false non-match rate")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "DET")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_score_histograms(genuine: np.ndarray, impostor: np.ndarray, path: str | Path, title: str = "") -> None:
    """Genuine and impostor score histograms, each normalised to unit area."""
    fig, ax = plt.subplots(figsize=(6, 4))
    both = np.concatenate([genuine, impostor])
    bins = np.linspace(both.min(), both.max(), 60) if len(both) else 10
    ax.hist(impostor, bins=bins, density=True, alpha=0.6, label=f"impostor ({len(impostor)})")
    ax.hist(genuine, bins=bins, density=True, alpha=0.6, label=f"genuine ({len(genuine)})")
    ax.set_yscale("log")
    ax.set_xlabel("score")
    ax.set_ylabel("density")
    ax.legend(fontsize=8)
    ax.set_title(title or "score distributions")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_cmc(curves: Mapping[str, np.ndarray], path: str | Path, title: str = "") -> None:
    """Cumulative match characteristic: identification rate against rank (from 1)."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, c in curves.items():
        ax.plot(np.arange(1, len(c) + 1), c, marker=".", label=name)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.set_xlabel("rank")
    ax.set_ylabel("identification rate")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title or "CMC")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
