"""FAISS indexes of a store: derived data that says up to which store change it is current.

Two indexes per store folder:

``finger.index``
    Binary Hamming index of the per-minutia shortlist codes
    (:func:`matcher.fingerprint.descriptors.shortlist_codes`: 512 sampled bits of each
    usable binary MCC cylinder, 64 bytes, plus FAISS's 8-byte id).  One vector per
    minutia; its FAISS id is the sample id, so one sample has many vectors and search
    votes per sample (``search.py``).
``face.index``
    Inner-product index of the L2-normalised face embeddings (one vector per sample).

File format (version :data:`INDEX_FORMAT`)::

    b"LCIX"  u16 format  u32 header length  header (UTF-8 JSON)  FAISS serialised index

The header holds the modality, the FAISS factory string the index was built from
(and whether it was chosen by size), the search parameters, the descriptor or
embedding-model version, the vector count, the tombstoned ids (for index types
without ``remove_ids``) and ``last_change``: the store change sequence number the
index contains.  Files are written to a temporary name of their own, fsynced and
renamed, so a file on disk is always whole; one writer at a time (an exclusive
``flock`` on ``<name>.lock`` beside the file), and a writer whose index is older than
the file already there leaves the file alone, so ``locard ingest`` beside ``locard
serve`` neither collides nor moves the file backwards.

:func:`open_index` loads a file, replays the store changes after its ``last_change``
(or rebuilds it when the file is missing, damaged, of another format or descriptor
version, or when the size-based choice of index type has changed), and saves it
when anything was replayed.  :func:`catch_up` brings an index already in memory up
to the store's last change (what a long-running searcher does after each change).
:func:`check_index` compares an index with the store.
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import struct
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np

from .errors import IndexFileError
from .store import GalleryStore

#: Index file format version written by this build.
INDEX_FORMAT = 2
MAGIC = b"LCIX"
_HEAD = struct.Struct("<4sHI")

#: FAISS label of a finger vector = sample id * FINGER_LABEL_SHIFT + popcount of its code
#: (format 2): search gets each hit's set-bit count for free, to normalise Hamming
#: distances as MCC does, and a sample's vectors are removed as one id range.
FINGER_LABEL_SHIFT = 2048
_POP8 = np.array([bin(i).count("1") for i in range(256)], np.int64)


def popcounts(codes: np.ndarray) -> np.ndarray:
    """Set bits per row of bit-packed uint8 codes."""
    return _POP8[np.asarray(codes, np.uint8)].sum(axis=1)
#: Compact (remove tombstones by rebuilding) when they exceed this share of the vectors.
TOMBSTONE_COMPACT_SHARE = 0.2


# -- vectors of a sample -------------------------------------------------------------------------
def finger_codes(template) -> np.ndarray:
    """Per-minutia shortlist codes of a fingerprint template, as FAISS binary codes.

    Returns
    -------
    (n, SHORTLIST_BITS // 8) uint8
        One row per usable cylinder (its sampled bits, bit-packed).
    """
    from matcher.fingerprint.descriptors import shortlist_codes

    return shortlist_codes(template)


def finger_vectors(template_bytes: bytes) -> np.ndarray:
    """:func:`finger_codes` of template bytes."""
    from matcher.fingerprint import Template

    return finger_codes(Template.from_bytes(template_bytes))


def face_vectors(template_bytes: bytes) -> np.ndarray:
    """The L2-normalised embedding of a face template, as a (1, d) float32 row."""
    from matcher.face import FaceTemplate

    return np.asarray(FaceTemplate.from_bytes(template_bytes).embedding, np.float32)[None, :]


def descriptor_version(modality: str) -> str:
    if modality == "finger":
        from matcher.fingerprint.descriptors import SHORTLIST_VERSION

        return SHORTLIST_VERSION
    return "face-embedding"  # the model id is checked per sample (FaceTemplate.model)


VECTORS: dict[str, Callable[[bytes], np.ndarray]] = {"finger": finger_vectors, "face": face_vectors}


# -- choice of index type ------------------------------------------------------------------------
def default_factory(modality: str, n_vectors: int) -> tuple[str, dict]:
    """FAISS factory string and search parameters chosen by size.

    Fingers (binary, ~35 vectors per finger): exact Hamming search (``BFlat``) below
    300,000 vectors (~8,500 fingers); beyond, an inverted file with about ``sqrt(n)``
    lists (a power of two), 16 visited.  Faces (128-d inner product): exact (``Flat``)
    below 200,000; beyond, a flat scan of 4-bit fast-scan product-quantised codes (32
    bytes a face) whose best ``50 * k_factor`` are re-scored exactly (``RFlat``):
    inverted files and HNSW lose too much recall on face embeddings, which have no
    cluster structure across people, while the SIMD code scan stays exhaustive.
    Measured in ``benchmarks/README.md`` (section Search).
    """
    if modality == "finger":
        if n_vectors < 300_000:
            return "BFlat", {}
        nlist = 2 ** round(math.log2(math.sqrt(n_vectors)))
        return f"BIVF{nlist}", {"nprobe": 16}
    if n_vectors < 200_000:
        return "Flat", {}
    return "PQ64x4fs,RFlat", {"k_factor": 40}


@dataclass
class VectorIndex:
    """One FAISS index with its header.

    Attributes
    ----------
    modality : str
    factory : str
        FAISS factory string (``index_binary_factory`` for fingers, ``index_factory``
        with inner product for faces), wrapped in an ID map.
    auto : bool
        The factory was chosen by size (:func:`default_factory`) and is re-chosen on rebuild.
    params : dict
        Search parameters (``nprobe``, ``efSearch``, ``k_factor``).
    dim : int
        Bits (fingers) or float dimensions (faces).
    last_change : int
        Store change sequence number this index contains.
    tombstones : set of int
        Sample ids removed from the store but still in an index type that cannot remove.
    """

    modality: str
    factory: str
    auto: bool
    params: dict
    dim: int
    descriptor: str
    index: object = None
    last_change: int = 0
    tombstones: set = field(default_factory=set)
    model: str = ""
    deferred: dict = field(default_factory=dict)

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def empty(cls, modality: str, dim: int, factory: str, params: dict | None = None,
              auto: bool = False) -> "VectorIndex":
        try:
            if modality == "finger":
                inner = faiss.index_binary_factory(dim, factory)
                index = faiss.IndexBinaryIDMap(inner)
            else:
                inner = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
                index = faiss.IndexIDMap(inner)
        except RuntimeError as exc:
            raise ValueError(f"FAISS cannot build {factory!r} for {modality}: {exc}") from exc
        out = cls(modality=modality, factory=factory, auto=auto, params=dict(params or {}), dim=dim,
                  descriptor=descriptor_version(modality), index=index)
        out.apply_params()
        return out

    def apply_params(self) -> None:
        inner = self._inner_index()
        for k, v in self.params.items():
            if hasattr(inner, k):
                setattr(inner, k, v)
            elif k == "efSearch" and hasattr(inner, "hnsw"):
                inner.hnsw.efSearch = v

    def _inner_index(self):
        inner = self.index.index
        if self.modality == "finger":
            return faiss.downcast_IndexBinary(inner)
        return faiss.downcast_index(inner)

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    @property
    def is_trained(self) -> bool:
        return bool(self.index.is_trained)

    def train(self, vectors: np.ndarray) -> None:
        if not self.index.is_trained:
            self.index.train(vectors)

    def add(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Add vectors (rows) with their sample ids (int64, one per row)."""
        if len(vectors) == 0:
            return
        ids = np.ascontiguousarray(ids, np.int64)
        if self.modality == "finger":
            vectors = np.ascontiguousarray(vectors, np.uint8)
            ids = ids * FINGER_LABEL_SHIFT + popcounts(vectors)
        else:
            vectors = np.ascontiguousarray(vectors, np.float32)
        self.index.add_with_ids(vectors, ids)

    def remove(self, ids: Iterable[int]) -> None:
        """Remove every vector of these sample ids (or tombstone them where FAISS cannot)."""
        ids = np.fromiter(ids, np.int64)
        if len(ids) == 0:
            return
        try:
            if self.modality == "finger":
                for i in ids.tolist():
                    self.index.remove_ids(faiss.IDSelectorRange(i * FINGER_LABEL_SHIFT, (i + 1) * FINGER_LABEL_SHIFT))
            else:
                self.index.remove_ids(ids)
        except RuntimeError:  # e.g. HNSW: no removal; hide until compaction
            self.tombstones.update(int(i) for i in ids)

    def _sample_ids(self, labels: np.ndarray) -> np.ndarray:
        if self.modality != "finger":
            return labels
        return np.where(labels >= 0, labels // FINGER_LABEL_SHIFT, -1)

    def ids(self) -> np.ndarray:
        """The distinct sample ids present (tombstones excluded)."""
        ids = np.unique(self._sample_ids(faiss.vector_to_array(self.index.id_map)))
        if self.tombstones:
            ids = ids[~np.isin(ids, np.fromiter(self.tombstones, np.int64))]
        return ids

    def search_labels(self, queries: np.ndarray, k: int, nprobe: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """k nearest vectors of each query, as FAISS labels (tombstoned samples dropped).

        ``nprobe`` caps the lists an inverted-file index visits for this search only (its own
        setting when None or larger; ignored by other index types)."""
        if self.ntotal == 0:
            q = len(queries)
            return np.zeros((q, 0), np.float32), np.zeros((q, 0), np.int64)
        extra = min(len(self.tombstones), 4 * k) if self.tombstones else 0
        kk = min(k + extra, self.ntotal)
        if self.modality == "finger":
            own = self.params.get("nprobe")
            if nprobe is not None and own is not None and nprobe < own and "IVF" in self.factory:
                d, i = self.index.search(np.ascontiguousarray(queries, np.uint8), kk,
                                         params=faiss.SearchParametersIVF(nprobe=nprobe))
            else:
                d, i = self.index.search(np.ascontiguousarray(queries, np.uint8), kk)
        else:
            d, i = self.index.search(np.ascontiguousarray(queries, np.float32), kk)
        if self.tombstones:
            dead = np.isin(self._sample_ids(i), np.fromiter(self.tombstones, np.int64))
            i = np.where(dead, -1, i)
            order = np.argsort(dead, axis=1, kind="stable")
            d, i = np.take_along_axis(d, order, 1), np.take_along_axis(i, order, 1)
        return d[:, :k], i[:, :k]

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """k nearest vectors of each query.

        Returns
        -------
        scores : (q, k) array
            Hamming distances in bits (fingers, int32; smaller = closer) or inner
            products (faces, float32; larger = closer).
        ids : (q, k) int64
            Sample ids, -1 where fewer than ``k`` vectors exist.
        """
        d, labels = self.search_labels(queries, k)
        return d, self._sample_ids(labels)

    def search_finger(self, codes: np.ndarray, k: int, nprobe: int | None = None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`search` for finger codes, plus each hit's set-bit count.

        Returns
        -------
        distances : (q, k) int32, Hamming, bits
        ids : (q, k) int64 sample ids (-1 = none)
        popcounts : (q, k) int64 set bits of each hit's code
        """
        d, labels = self.search_labels(codes, k, nprobe)
        return d, self._sample_ids(labels), np.where(labels >= 0, labels % FINGER_LABEL_SHIFT, 0)

    def needs_compaction(self) -> bool:
        return len(self.tombstones) > TOMBSTONE_COMPACT_SHARE * max(self.ntotal, 1)

    # -- files -------------------------------------------------------------------------------
    def header(self) -> dict:
        return {"format": INDEX_FORMAT, "modality": self.modality, "factory": self.factory, "auto": self.auto,
                "params": self.params, "dim": self.dim, "descriptor": self.descriptor, "model": self.model,
                "last_change": self.last_change, "ntotal": self.ntotal,
                "tombstones": sorted(self.tombstones), "deferred": self.deferred}

    def save(self, path: str | Path) -> bool:
        """Write atomically, one writer at a time; never replace a newer file.

        Under an exclusive lock on ``<path>.lock``: a temporary file of its own name in
        the same folder, fsync, rename over ``path``, fsync of the folder.  A file
        already there whose ``last_change`` is later than this index's is kept (another
        process saved a newer one).

        Returns
        -------
        bool
            Whether the file was written.
        """
        path = Path(path)
        if self.modality == "finger":
            blob = faiss.serialize_index_binary(self.index)
        else:
            blob = faiss.serialize_index(self.index)
        head = json.dumps(self.header()).encode()
        with _file_lock(path):
            on_disk = read_header(path)
            if on_disk is not None and on_disk.get("last_change", -1) > self.last_change:
                return False
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
            try:
                with open(fd, "wb") as f:
                    f.write(_HEAD.pack(MAGIC, INDEX_FORMAT, len(head)))
                    f.write(head)
                    f.write(memoryview(blob))
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            try:
                dfd = os.open(path.parent, os.O_RDONLY)
                try:
                    os.fsync(dfd)
                finally:
                    os.close(dfd)
            except OSError:
                pass
        return True

    @classmethod
    def load(cls, path: str | Path) -> "VectorIndex":
        """Read an index file.

        Raises
        ------
        IndexFileError
            Missing, damaged, or of a format this build does not read.
        """
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise IndexFileError(f"cannot read {path}: {exc}") from exc
        if len(data) < _HEAD.size or data[:4] != MAGIC:
            raise IndexFileError(f"{path} is not a locard index file")
        _, fmt, hlen = _HEAD.unpack_from(data)
        if fmt != INDEX_FORMAT:
            raise IndexFileError(f"{path}: index format {fmt}, this build reads {INDEX_FORMAT}")
        try:
            head = json.loads(data[_HEAD.size:_HEAD.size + hlen])
            blob = np.frombuffer(data, np.uint8, offset=_HEAD.size + hlen)
            if head["modality"] == "finger":
                index = faiss.deserialize_index_binary(blob)
            else:
                index = faiss.deserialize_index(blob)
        except (ValueError, KeyError, RuntimeError) as exc:
            raise IndexFileError(f"{path} is damaged: {exc}") from exc
        out = cls(modality=head["modality"], factory=head["factory"], auto=head["auto"], params=head["params"],
                  dim=head["dim"], descriptor=head["descriptor"], index=index, last_change=head["last_change"],
                  tombstones=set(head["tombstones"]), model=head.get("model", ""),
                  deferred=head.get("deferred") or {})
        if out.ntotal != head["ntotal"]:
            raise IndexFileError(f"{path} is damaged: {out.ntotal} vectors, header says {head['ntotal']}")
        out.apply_params()
        return out


class _file_lock:
    """Exclusive ``flock`` on ``<path>.lock`` (blocks until held; released on exit or process death)."""

    def __init__(self, path: Path):
        self.lock_path = path.with_name(path.name + ".lock")

    def __enter__(self):
        self.fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(self.fd)
            raise
        return self

    def __exit__(self, *exc) -> None:
        os.close(self.fd)  # closing the descriptor drops the lock


def read_header(path: str | Path) -> dict | None:
    """The JSON header of an index file (without reading the vectors), or ``None`` when the
    file is absent or not a readable index file of this format."""
    try:
        with open(path, "rb") as f:
            magic, fmt, hlen = _HEAD.unpack(f.read(_HEAD.size))
            if magic != MAGIC or fmt != INDEX_FORMAT:
                return None
            return json.loads(f.read(hlen))
    except (OSError, struct.error, ValueError):
        return None


# -- store <-> index ---------------------------------------------------------------------------
def index_path(store: GalleryStore, modality: str) -> Path:
    return store.path / f"{modality}.index"


def _factory_setting_path(store: GalleryStore, modality: str) -> Path:
    return store.path / f"{modality}.factory"


def configured_factory(store: GalleryStore, modality: str) -> str | None:
    """The factory string a user fixed for this store (``locard reindex --factory``), if any."""
    p = _factory_setting_path(store, modality)
    return p.read_text().strip() or None if p.exists() else None


def set_factory(store: GalleryStore, modality: str, factory: str | None) -> None:
    p = _factory_setting_path(store, modality)
    if factory:
        p.write_text(factory + "\n")
    elif p.exists():
        p.unlink()


def _vectors_of(store: GalleryStore, samples, modality: str, cache: dict[int, np.ndarray] | None,
                batch: int = 1000):
    """``(sample, vectors)`` of each sample: from ``cache``, else from the template; a finger
    template's codes come from the cylinders stored beside it (:mod:`indexer.prepared`:
    ~0.1 ms a finger read, ~1.2 ms computed), computed where none are stored."""
    if modality != "finger":
        for s in samples:
            v = cache.get(s.id) if cache else None
            yield s, face_vectors(s.template) if v is None else v
        return
    from matcher.fingerprint import Template
    from matcher.fingerprint.descriptors import load_cylinders

    from .prepared import finger_format

    samples = iter(samples)
    while chunk := [s for _, s in zip(range(batch), samples)]:
        need = [s.id for s in chunk if not (cache and s.id in cache)]
        stored = store.prepared(need, finger_format()) if need else {}
        for s in chunk:
            v = cache.get(s.id) if cache else None
            if v is None:
                t = Template.from_bytes(s.template)
                load_cylinders(t, stored.get(s.id))
                v = finger_codes(t)
            yield s, v


def _too_few_to_train(factory: str, n: int) -> bool:
    """Some 39 training points per k-means centroid (FAISS warns below): per inverted list,
    or per code of a product quantiser (2**bits codes for each sub-vector)."""
    import re

    m = re.search(r"IVF(\d+)", factory)
    if m and n < 39 * int(m.group(1)):
        return True
    m = re.search(r"PQ\d+(?:x(\d+))?", factory)
    return bool(m) and n < 39 * 2 ** int(m.group(1) or 8)


def build_index(store: GalleryStore, modality: str, factory: str | None = None, *,
                params: dict | None = None, cache: dict[int, np.ndarray] | None = None,
                progress: Callable[[int, int], None] | None = None) -> VectorIndex:
    """Build an index of one modality from every sample in the store.

    Parameters
    ----------
    factory : str, optional
        FAISS factory string; default: the store's fixed one, else chosen by size.
    cache : dict, optional
        ``sample id -> vectors`` already computed (by ingest); the caller clears it.
    """
    # one read transaction: the samples read are exactly those of change `last` (WAL snapshot),
    # so a concurrent writer's later changes are replayed on the next open, never doubled
    in_tx = store.con.in_transaction
    if not in_tx:
        store.con.execute("BEGIN")
    try:
        last = store.last_change()
        total = store.count(modality)
        ids_all, vecs_all, model = [], [], ""
        for n, (s, v) in enumerate(_vectors_of(store, store.samples(modality), modality, cache), 1):
            if modality == "face":
                model = model or s.template_version
            if len(v):
                vecs_all.append(v)
                ids_all.append(np.full(len(v), s.id, np.int64))
            if progress:
                progress(n, total)
    finally:
        if not in_tx:
            store.con.execute("COMMIT")
    if modality == "finger":
        from matcher.fingerprint.descriptors import SHORTLIST_BITS

        dim = SHORTLIST_BITS
        vecs = np.concatenate(vecs_all) if vecs_all else np.zeros((0, dim // 8), np.uint8)
    else:
        dim = vecs_all[0].shape[1] if vecs_all else 128
        vecs = np.concatenate(vecs_all) if vecs_all else np.zeros((0, dim), np.float32)
    ids = np.concatenate(ids_all) if ids_all else np.zeros(0, np.int64)
    factory = factory or configured_factory(store, modality)
    auto = factory is None
    if auto:
        factory, chosen = default_factory(modality, len(vecs))
        params = {**chosen, **(params or {})}
    elif "IVF" in factory:
        params = {"nprobe": 32 if modality == "finger" else 64, **(params or {})}
    elif "HNSW" in factory:
        params = {"efSearch": 128, **(params or {})}
    elif "RFlat" in factory:
        params = {"k_factor": 40, **(params or {})}
    idx = VectorIndex.empty(modality, dim, factory, params, auto=auto)
    idx.model = model
    if not idx.is_trained:
        if len(vecs) == 0 or _too_few_to_train(factory, len(vecs)):
            # a fixed IVF factory on a gallery still too small to train it: exact search
            # until it is twice as large as now (then open_index retries the factory)
            flat, _ = default_factory(modality, 0)
            idx = VectorIndex.empty(modality, dim, flat, {}, auto=False)
            idx.model, idx.deferred = model, {"factory": factory, "samples": total}
        else:
            idx.model = model
    if not idx.is_trained:
        rng = np.random.default_rng(0)
        # binary IVF trains float k-means on the unpacked bits: keep its sample smaller
        cap = 100_000 if modality == "finger" else 256 * 1024
        sample = vecs[rng.choice(len(vecs), min(len(vecs), cap), replace=False)]
        idx.train(sample)
    for i in range(0, len(vecs), 200_000):
        idx.add(vecs[i:i + 200_000], ids[i:i + 200_000])
    idx.last_change = last
    return idx


def open_index(store: GalleryStore, modality: str, *, save: bool = True,
               cache: dict[int, np.ndarray] | None = None) -> tuple[VectorIndex, str]:
    """Load the modality's index and bring it up to the store's last change.

    Returns
    -------
    index : VectorIndex
    action : str
        ``"current"``, ``"replayed N changes"`` or ``"rebuilt (reason)"``.
    """
    path = index_path(store, modality)
    reason = None
    idx = None
    if not path.exists():
        reason = "no index file"
    else:
        try:
            idx = VectorIndex.load(path)
        except IndexFileError as exc:
            reason = str(exc)
    if idx is not None:
        if idx.descriptor != descriptor_version(modality):
            reason = f"descriptor {idx.descriptor} is not {descriptor_version(modality)}"
        elif idx.last_change > store.last_change():
            reason = f"index is ahead of the store (change {idx.last_change} > {store.last_change()})"
        else:
            reason = _factory_mismatch(store, idx)
    if reason is None:
        if configured_factory(store, modality) is not None:
            idx.auto = False  # a fixed factory equal to the file's: never re-chosen by size
        changes, reason = catch_up(store, idx, cache)
        action = f"replayed {len(changes)} changes" if changes else "current"
        if reason is None and changes and save:
            idx.save(path)
    if reason is not None:
        idx = build_index(store, modality, cache=cache)
        action = f"rebuilt ({reason})"
        if save:
            idx.save(path)
    return idx, action


def _factory_mismatch(store: GalleryStore, idx: VectorIndex) -> str | None:
    """Why ``idx`` is not of the factory fixed for the store (``locard reindex --factory``), if it
    is not; an index kept flat until the gallery is large enough to train the fixed one is fine."""
    fixed = configured_factory(store, idx.modality)
    if fixed is None or fixed == idx.factory:
        return None
    if idx.deferred.get("factory") == fixed and store.count(idx.modality) < 2 * max(idx.deferred.get("samples", 0), 1):
        return None
    return f"factory {idx.factory} is not the configured {fixed}"


def catch_up(store: GalleryStore, idx: VectorIndex, cache: dict[int, np.ndarray] | None = None
             ) -> tuple[list[tuple[int, str, int]], str | None]:
    """Replay into ``idx`` (in memory) the store's changes after its ``last_change``.

    Returns
    -------
    changes : list of (seq, op, sample id)
        The changes replayed, oldest first.
    rebuild : str or None
        Why the index should be rebuilt from the store instead (it is ahead of the
        store, another factory was fixed for the store meanwhile, its size calls for
        another index type, or it holds too many tombstones); ``None`` when it is fine
        as it is.
    """
    target = store.last_change()
    if idx.last_change > target:
        return [], f"index is ahead of the store (change {idx.last_change} > {target})"
    changes = [c for c in store.changes_since(idx.last_change, idx.modality) if c[0] <= target]
    if changes:
        _replay(store, idx, changes, cache)
    idx.last_change = target
    if (mismatch := _factory_mismatch(store, idx)) is not None:
        return changes, mismatch
    if idx.auto and default_factory(idx.modality, idx.ntotal)[0] != idx.factory:
        return changes, f"size {idx.ntotal} calls for {default_factory(idx.modality, idx.ntotal)[0]}, not {idx.factory}"
    if idx.needs_compaction():
        return changes, f"{len(idx.tombstones)} tombstones to compact"
    return changes, None


def _replay(store: GalleryStore, idx: VectorIndex, changes, cache) -> None:
    adds: list[int] = []

    def flush():
        if not adds:
            return
        vs, ids = [], []
        for s, v in _vectors_of(store, store.samples(idx.modality, ids=adds), idx.modality, cache):
            if idx.modality == "face":
                idx.model = idx.model or s.template_version
            vs.append(v)
            ids.append(np.full(len(v), s.id, np.int64))
        if vs:
            idx.add(np.concatenate(vs), np.concatenate(ids))
        adds.clear()

    for _seq, op, sample_id in changes:
        if op == "add":
            adds.append(sample_id)
        else:
            flush()
            idx.remove([sample_id])
    flush()


def check_index(store: GalleryStore, modality: str) -> list[str]:
    """Problems between the store and the index file as it is on disk (empty = consistent).

    A missing index file is no problem (the next open builds it).  Loads the file, replays the newer changes in memory (without saving) and compares
    the sample ids it holds with the store's.  A store sample may be absent from the
    index only when it yields no vector (a print with no usable cylinder).
    """
    path = index_path(store, modality)
    if not path.exists():
        return []  # a cache not built yet: the next open builds it from the store
    problems = []
    try:
        idx = VectorIndex.load(path)
    except IndexFileError as exc:
        return [f"{modality}: {exc}"]
    if idx.last_change > store.last_change():
        problems.append(f"{modality}: index records change {idx.last_change}, the store ends at {store.last_change()}")
        return problems
    changes = store.changes_since(idx.last_change, modality)
    _replay(store, idx, changes, None)
    in_index = set(idx.ids().tolist())
    in_store = set(store.sample_ids(modality))
    extra = in_index - in_store
    if extra:
        problems.append(f"{modality}: {len(extra)} sample ids in the index are not in the store "
                        f"(e.g. {sorted(extra)[:5]})")
    missing = in_store - in_index
    if missing:
        fn = VECTORS[modality]
        really = [s.id for s in store.samples(modality, ids=sorted(missing)) if len(fn(s.template))]
        if really:
            problems.append(f"{modality}: {len(really)} store samples are missing from the index "
                            f"(e.g. {really[:5]})")
    return problems
