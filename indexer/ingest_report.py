"""What an ingest reports: its counts (:class:`IngestReport`) and the CSV of the images and
transaction records it did not store (:class:`ErrorReport`)."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

ERROR_FIELDS = ["file", "identity", "modality", "error", "reason", "record"]


@dataclass
class IngestReport:
    """What one ingest did.

    Attributes
    ----------
    added : int
        Samples committed.
    skipped : int
        Images already in the store (same SHA-256), including repeats within the source.
    failed : int
        Images in the error report (records set aside not counted).
    set_aside : int
        Records of transactions not enrolled by design (latents, palms, slaps, ...), each in
        the report with why.
    seconds : float
        Wall time of the whole ingest, index synchronisation included.
    error_report : Path or None
        CSV with one row per failed image or record set aside (``file, identity, modality,
        error, reason, record``; ``record`` names a transaction's record, empty for image files).
    index_actions : dict
        What the index synchronisation did, per modality.
    """

    total: int = 0
    added: int = 0
    skipped: int = 0
    failed: int = 0
    set_aside: int = 0
    seconds: float = 0.0
    error_report: Path | None = None
    index_actions: dict = field(default_factory=dict)

    @property
    def per_second(self) -> float:
        """Samples added per second of wall time."""
        return self.added / self.seconds if self.seconds > 0 else 0.0



class ErrorReport:
    """CSV written as failures happen (so a killed ingest keeps its report)."""

    def __init__(self, path: Path):
        self.path = path
        self.n = 0
        self._fh = None

    def add(self, e) -> None:
        """One row for ``e``, an :class:`indexer.ingest.Extracted` with its error and reason."""
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            new = not self.path.exists()
            self._fh = self.path.open("a", newline="")
            self._w = csv.writer(self._fh)
            if new:
                self._w.writerow(ERROR_FIELDS)
        self._w.writerow([str(e.item.path), e.item.identity, e.item.modality, e.error, e.reason,
                          e.item.record_label])
        self._fh.flush()
        self.n += 1

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
