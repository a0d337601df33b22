"""The cluster's configuration: a versioned JSON file, ``cluster.json``, in the cluster folder.

Layout of a cluster folder (on storage every node can reach, e.g. NFS, or one machine)::

    cluster.json            this file: shards, ring, epoch
    shards/<name>/          one normal locard store per shard (gallery.sqlite + FAISS files)

Fields: ``format`` (``"locard-cluster"``), ``format_version`` (:data:`FORMAT_VERSION`;
a newer one is refused), ``cluster_id`` (names the Ray actors), ``epoch`` (bumped by
every change, so a coordinator sees that its copy is stale), ``vnodes`` (points per
shard on the ring), ``shards`` (name, store folder relative to the cluster folder or
absolute, CPUs its actor reserves, state ``active`` or ``joining``).  A ``joining``
shard is being filled by a rebalance: it is neither searched nor routed to until the
rebalance makes it ``active`` (:meth:`indexer.cluster.gallery.ClusterGallery.add_shard`).
The file is written to a temporary name, fsynced and renamed: a reader never sees
half of it.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from ..errors import StoreError, StoreNotFoundError, StoreVersionError
from ..store import private_folder
from .hashring import DEFAULT_VNODES, HashRing

CONFIG_NAME = "cluster.json"
FORMAT = "locard-cluster"
#: Format of ``cluster.json`` written by this build.
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ShardSpec:
    """One shard: its name, store folder, the CPUs its actor reserves, and its state."""

    name: str
    store: str
    cpus: float = 1.0
    state: str = "active"


@dataclass(frozen=True)
class ClusterConfig:
    """The content of ``cluster.json`` (see the module docstring)."""

    cluster_id: str
    epoch: int
    shards: tuple[ShardSpec, ...]
    vnodes: int = DEFAULT_VNODES

    @property
    def active(self) -> tuple[ShardSpec, ...]:
        """Shards that are searched and own ring arcs."""
        return tuple(s for s in self.shards if s.state == "active")

    def ring(self) -> HashRing:
        return HashRing(tuple(s.name for s in self.active), self.vnodes)

    def shard(self, name: str) -> ShardSpec:
        for s in self.shards:
            if s.name == name:
                return s
        raise KeyError(name)

    def store_path(self, root: Path, name: str) -> Path:
        p = Path(self.shard(name).store)
        return p if p.is_absolute() else Path(root) / p

    def next_shard_name(self) -> str:
        taken = {s.name for s in self.shards}
        return next(f"s{i}" for i in range(len(taken) + 1) if f"s{i}" not in taken)

    def with_changes(self, shards: tuple[ShardSpec, ...]) -> "ClusterConfig":
        """The next epoch of this configuration with ``shards``."""
        return replace(self, epoch=self.epoch + 1, shards=shards)

    def to_json(self) -> dict:
        return {"format": FORMAT, "format_version": FORMAT_VERSION, "cluster_id": self.cluster_id,
                "epoch": self.epoch, "vnodes": self.vnodes, "shards": [asdict(s) for s in self.shards]}


def new_config(shards: int, *, cpus: float = 1.0, vnodes: int = DEFAULT_VNODES) -> ClusterConfig:
    """A fresh configuration of ``shards`` shards ``s0``.. stored under ``shards/``."""
    if shards < 1:
        raise ValueError(f"a cluster needs at least one shard, got {shards}")
    return ClusterConfig(cluster_id=secrets.token_hex(6), epoch=1, vnodes=vnodes,
                         shards=tuple(ShardSpec(f"s{i}", f"shards/s{i}", cpus) for i in range(shards)))


def config_path(root: str | Path) -> Path:
    return Path(root) / CONFIG_NAME


def read_config(root: str | Path) -> ClusterConfig:
    """Read ``cluster.json`` of a cluster folder.

    Raises
    ------
    StoreNotFoundError
        No ``cluster.json`` there.
    StoreVersionError
        Written by a newer format.
    StoreError
        Not a readable cluster configuration.
    """
    path = config_path(root)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise StoreNotFoundError(f"no cluster configuration at {path}; `locard ingest SOURCE --store "
                                 f"{root} --cluster ADDRESS --shards N` creates one") from exc
    except (OSError, ValueError) as exc:
        raise StoreError(f"cannot read {path}: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise StoreError(f"{path} is not a locard cluster configuration")
    if int(raw.get("format_version", 0)) > FORMAT_VERSION:
        raise StoreVersionError(f"{path} has format {raw['format_version']}, this build reads up to "
                                f"{FORMAT_VERSION}: upgrade locard")
    try:
        return ClusterConfig(cluster_id=str(raw["cluster_id"]), epoch=int(raw["epoch"]), vnodes=int(raw["vnodes"]),
                             shards=tuple(ShardSpec(**s) for s in raw["shards"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"{path} lacks or mangles a field: {exc}") from exc


def write_config(root: str | Path, config: ClusterConfig) -> None:
    """Write ``cluster.json`` whole (temporary file, fsync, rename)."""
    folder = private_folder(Path(root))
    tmp = folder / f".{CONFIG_NAME}.{os.getpid()}.tmp"
    with open(tmp, "w") as fh:
        json.dump(config.to_json(), fh, indent=1)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, config_path(folder))
