"""Scale-out: one gallery sharded over several machines, on Ray.

- :mod:`~indexer.cluster.hashring` -- consistent hashing of subject names onto shards.
- :mod:`~indexer.cluster.config` -- ``cluster.json``: shards, ring, epoch (versioned).
- :mod:`~indexer.cluster.shard` -- one shard: a normal store and its searcher, the body of a Ray actor.
- :mod:`~indexer.cluster.merge` -- the shards' answers merged into the one a single store would give.
- :mod:`~indexer.cluster.gallery` -- :class:`ClusterGallery`, the coordinator (ingest, search).
- :mod:`~indexer.cluster.rebalance` -- adding a shard online.

The single embedded store (:mod:`indexer.store`, :mod:`indexer.search`) stays the
default and knows nothing of this package; Ray is imported only when a cluster is used
(extra ``locard[cluster]``).
"""
