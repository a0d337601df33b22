"""Peer from the ``nbis-py`` package (MIT): Rust port of NIST NBIS, MINDTCT + Bozorth3.

``nbis-py`` takes encoded image bytes; the image is resampled to 500 ppi first
(see :mod:`._image`) and handed over as PNG with ``ppi=500``.  Scores are
Bozorth3's raw counts.  Do not install ``nbis-python``: it also imports as
``nbis`` and its bundled OpenCV needs a newer glibc.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from matcher.errors import FailureToEnrol

from . import PeerUnavailable
from ._image import PEER_PPI, gray_at_500ppi, png_bytes

ADAPTER_REVISION = 1


class NbisPyPeer:
    name = "nbis-py"
    label = "NBIS MINDTCT + Bozorth3 (nbis-py, Rust)"

    def __init__(self) -> None:
        try:
            ver = version("nbis-py")
            import nbis
        except (PackageNotFoundError, ImportError) as exc:
            raise PeerUnavailable(
                "nbis-py is not installed: pip install -e '.[peers]' (see benchmarks/README.md)"
            ) from exc
        self.version = f"nbis-py {ver} (adapter r{ADAPTER_REVISION})"
        self.template_key = f"nbis-py-{ver}-r{ADAPTER_REVISION}"
        settings = nbis.NbisExtractorSettings(
            min_quality=0.0, get_center=False, check_fingerprint=False,
            compute_nfiq2=False, ppi=PEER_PPI,
        )
        self._ex = nbis.new_nbis_extractor(settings)

    def extract(self, data: bytes, ppi: float) -> Any:
        m = self._ex.extract_minutiae(png_bytes(gray_at_500ppi(data, ppi)))
        if len(m.get()) == 0:
            raise FailureToEnrol("nbis-py: no minutiae found")
        return m

    def compare(self, a: Any, b: Any) -> float:
        return float(a.compare(b))
