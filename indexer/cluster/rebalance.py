"""Online rebalancing of a sharded gallery: adding a shard (consistent hashing moves only its subjects)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from .config import ShardSpec
from .gallery import ClusterGallery, _ray


def add_shard(gallery: ClusterGallery, *, cpus: float | None = None, batch: int = 32,
              progress: Callable[[str], None] | None = None) -> dict:
    """Add a shard and move to it the subjects the new ring gives it, online.

    1. ``cluster.json`` gets the shard as ``joining`` (not searched, not routed to) and
       its actor starts.
    2. Every old shard lists the subjects whose owner under the new ring is another
       shard (consistent hashing: only the new one) and they are copied there.
    3. ``cluster.json`` makes it ``active``: searches and writes use the new ring; an
       old shard hides what it no longer owns, so each subject is seen once.
    4. The old shards list again what they no longer own (subjects and samples that
       reached them between 2 and 3) and it is copied too (stored samples are skipped by
       SHA-256); then they delete it (each deletion in that shard's audit log, with the
       reason) and from then on refuse searches planned under an older epoch, which the
       coordinator plans again under the new ring (a search planned before 3 does not
       look at the new shard, so it must not run on old shards that deleted its subjects).

    Searches go on throughout and see every subject exactly once.  Run again after an
    interruption, it finishes the rebalance under way.  Returns what moved.
    """
    say = progress or (lambda msg: None)
    config = gallery.refresh_config()
    joining = [s for s in config.shards if s.state == "joining"]
    if joining:  # a rebalance that stopped half-way: finish it (copies skip what is there)
        name = joining[0].name
        say(f"resuming the rebalance that adds {name}")
    else:
        name = config.next_shard_name()
        spec = ShardSpec(name, f"shards/{name}", config.shards[0].cpus if cpus is None else cpus, "joining")
        gallery.save_config(config.with_changes(config.shards + (spec,)))
    new_ring = config.ring().with_shard(name)
    ray = _ray()
    ray.get(gallery.actor(name).info.remote(), timeout=gallery.write_timeout_s)
    old = [s.name for s in config.active]
    leaving = _leaving(gallery, old, new_ring)
    say(f"{sum(map(len, leaving.values()))} subjects move to {name}")
    _copy(gallery, leaving, name, batch)
    activated = tuple(replace(s, state="active") if s.name == name else s for s in gallery.config.shards)
    gallery.save_config(gallery.config.with_changes(activated))
    epoch = gallery.config.epoch
    say(f"{name} active (epoch {epoch}); deleting the moved subjects from the old shards")
    leaving = _leaving(gallery, old, new_ring)  # again: writes routed by the old ring until now
    _copy(gallery, leaving, name, batch)
    actor = {"actor": "locard-cluster", "action": "delete"}
    refs = [(n, gallery.actor(n).delete_subjects.remote(
        names, f"moved to shard {name} by a rebalance (epoch {epoch})", actor, epoch), len(names))
        for n, names in leaving.items() if names]
    gallery.acknowledged(refs)
    return {"shard": name, "epoch": gallery.config.epoch, "moved": {n: len(v) for n, v in leaving.items()}}

def _leaving(gallery: ClusterGallery, old: list[str], new_ring) -> dict[str, list[str]]:
    """Old shard -> the subjects it stores that ``new_ring`` gives to another shard."""
    ray = _ray()
    return dict(zip(old, ray.get([gallery.actor(n).names_not_owned.remote(new_ring) for n in old],
                                 timeout=gallery.write_timeout_s)))


def _copy(gallery: ClusterGallery, leaving: dict[str, list[str]], to: str, batch: int) -> int:
    """Copy subjects from their old shards to ``to`` in batches (acknowledged by ``to``)."""
    ray = _ray()
    added = 0
    for frm, names in leaving.items():
        for i in range(0, len(names), batch):
            enc = ray.get(gallery.actor(frm).export_subjects.remote(names[i:i + batch]), timeout=gallery.write_timeout_s)
            added += gallery.acknowledged([(to, gallery.actor(to).import_subjects.remote(enc), len(enc))])[0]
    return added
