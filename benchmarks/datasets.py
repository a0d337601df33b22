"""Data sets laid out as ``../shared/data`` promises: a folder with ``labels.csv``.

``labels.csv`` has at least the columns ``file`` (path relative to the folder) and
``identity`` (same value = same finger or person); fingerprint sets may add ``ppi``.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Sample:
    """One image of a data set."""

    path: Path
    identity: str
    ppi: float | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Dataset:
    """A labelled data set."""

    root: Path
    samples: list[Sample]

    @property
    def name(self) -> str:
        return self.root.name

    @property
    def identities(self) -> list[str]:
        return sorted({s.identity for s in self.samples})

    def identity_codes(self) -> np.ndarray:
        """Integer identity label per sample, in sample order."""
        ids = {name: i for i, name in enumerate(self.identities)}
        return np.array([ids[s.identity] for s in self.samples], dtype=np.int64)


def load_dataset(root: str | Path) -> Dataset:
    """Read ``root/labels.csv``.

    Raises
    ------
    FileNotFoundError
        When the folder or its ``labels.csv`` is missing (with what is expected).
    ValueError
        When a required column is missing.
    """
    root = Path(root)
    labels = root / "labels.csv"
    if not labels.is_file():
        raise FileNotFoundError(
            f"{labels} not found: a data set is a folder with labels.csv "
            "(columns file, identity, optional ppi)"
        )
    with labels.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = {"file", "identity"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{labels} lacks the column(s) {', '.join(sorted(missing))}")
        samples = []
        for row in reader:
            ppi = row.get("ppi")
            extra = {k: v for k, v in row.items() if k not in ("file", "identity", "ppi") and k}
            samples.append(Sample(root / row["file"], row["identity"], float(ppi) if ppi else None, extra))
    return Dataset(root, samples)


def all_pairs(labels: np.ndarray, usable: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Every genuine and every impostor pair ``(i, j)``, ``i < j``.

    Parameters
    ----------
    labels : (n,) int array
        Identity per sample.
    usable : (n,) bool array, optional
        Samples to take part; pairs touching others are left out.

    Returns
    -------
    genuine, impostor : (k, 2) int arrays
    """
    n = len(labels)
    idx = np.stack(np.triu_indices(n, 1), axis=1).astype(np.int64)  # (i, j), i < j, row-major
    if usable is not None:
        idx = idx[usable[idx[:, 0]] & usable[idx[:, 1]]]
    same = labels[idx[:, 0]] == labels[idx[:, 1]]
    return idx[same], idx[~same]
