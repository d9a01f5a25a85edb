"""One vector-index class over FAISS: exact, HNSW and IVF(-PQ), stable string ids, save/load,
GPU when available and sharding for very large libraries.

Vectors are compared by inner product (cosine for the unit vectors the encoders produce). Each
shard keeps its own copy of the vectors so any index kind can be rebuilt (after removals, on a
kind change, or when an IVF index has outgrown its training sample) and so filtered searches can
run exactly over a subset.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from skillkit.core.fileio import atomic_directory, atomic_write_text

KINDS = ("auto", "flat", "hnsw", "ivf", "ivfpq")
#: Below this many vectors ``kind="auto"`` uses exact search; above it, IVF (builds far faster than HNSW).
AUTO_FLAT_MAX = 50_000


@dataclass
class IndexConfig:
    """Parameters of a :class:`VectorIndex` (saved with it)."""

    dim: int
    kind: str = "auto"
    nlist: int | None = None
    nprobe: int | None = None
    hnsw_m: int = 32
    ef_construction: int = 80
    ef_search: int = 128
    pq_m: int | None = None
    shards: int = 1
    use_gpu: bool | str = "auto"
    seed: int = 0

    def validate(self) -> None:
        """Raise ValueError naming the first bad parameter."""
        if self.dim <= 0:
            raise ValueError(f"index dim must be positive, got {self.dim}")
        if self.kind not in KINDS:
            raise ValueError(f"unknown index kind {self.kind!r}: use one of {', '.join(KINDS)}")
        if self.shards < 1:
            raise ValueError(f"shards must be >= 1, got {self.shards}")
        if self.pq_m is not None and self.dim % self.pq_m:
            raise ValueError(f"pq_m={self.pq_m} must divide dim={self.dim}")


def default_nlist(n: int) -> int:
    """IVF list count: about 4 * sqrt(n), at least 1 and never more than n / 39 (FAISS's training minimum)."""
    return max(1, min(int(4 * math.sqrt(max(n, 1))), n // 39 if n >= 39 else 1, 65536))


def default_nprobe(nlist: int) -> int:
    """Lists probed per query: enough for recall@10 >= 0.95 on embedding-like data in our benchmark."""
    return max(1, min(nlist, max(16, nlist // 32)))


def gpu_available() -> bool:
    """True when this FAISS build has GPU support and a GPU is visible."""
    import faiss

    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def exact_search(vecs: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force inner-product top-k with numpy: ``(scores, row indices)``, best first."""
    queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
    k = min(k, len(vecs))
    if k == 0:
        return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
    sims = queries @ vecs.T
    top = np.argpartition(-sims, k - 1, axis=1)[:, :k] if k < vecs.shape[0] else np.tile(
        np.arange(vecs.shape[0]), (len(queries), 1))
    top_sims = np.take_along_axis(sims, top, axis=1)
    order = np.argsort(-top_sims, axis=1, kind="stable")
    return np.take_along_axis(top_sims, order, axis=1), np.take_along_axis(top, order, axis=1)


def _faiss_search(index: object, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``index.search`` single-threaded for small query batches."""
    if len(queries) >= 20:
        return index.search(queries, k)  # type: ignore[attr-defined]
    # Below 20 queries FAISS splits a search over the queries only, so extra OpenMP threads bring
    # nothing, and waking them costs milliseconds on a busy machine (9 ms instead of 0.05 ms for one
    # query over 1K vectors; 67 ms instead of 15 ms over 100K, on 2 loaded cores).
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return index.search(queries, k)  # type: ignore[attr-defined]
    finally:
        faiss.omp_set_num_threads(threads)


class _Shard:
    """One FAISS index plus the vectors and id mapping needed to rebuild or filter it."""

    def __init__(self, config: IndexConfig) -> None:
        self.config = config
        self.labels_of: dict[str, int] = {}
        self.id_of: dict[int, str] = {}
        self._next_label = 0
        self._vecs = np.zeros((0, config.dim), np.float32)
        self._labels = np.zeros(0, np.int64)
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []
        self._tombstones: set[int] = set()
        self._has_removed = False
        self.index = None
        self.built_kind: str | None = None
        self._built_size = 0
        self._dirty = True

    # -- storage -------------------------------------------------------------------------
    def _consolidate(self) -> None:
        if not self._pending:
            return
        if len(self._labels) == 0 and len(self._pending) == 1:  # no copy for one big add
            self._labels, self._vecs = self._pending[0]
        else:
            self._vecs = np.concatenate([self._vecs] + [v for _, v in self._pending])
            self._labels = np.concatenate([self._labels] + [lab for lab, _ in self._pending])
        self._pending = []

    def __len__(self) -> int:
        return len(self.labels_of)

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """(labels, vectors) of the live entries."""
        self._consolidate()
        if self._has_removed:
            alive = np.fromiter((lab in self.id_of for lab in self._labels.tolist()), bool, len(self._labels))
            self._vecs, self._labels = self._vecs[alive], self._labels[alive]
            self._has_removed = False
        return self._labels, self._vecs

    def add(self, ids: Sequence[str], vecs: np.ndarray) -> None:
        replaced = [i for i in ids if i in self.labels_of]
        if replaced:
            self.remove(replaced)
        labels = np.arange(self._next_label, self._next_label + len(ids), dtype=np.int64)
        self._next_label += len(ids)
        for doc_id, lab in zip(ids, labels.tolist()):
            self.labels_of[doc_id] = lab
            self.id_of[lab] = doc_id
        self._pending.append((labels, vecs))
        if self.index is not None and not self._dirty:
            if self._resolve_kind(len(self)) != self.built_kind or len(self) > 4 * max(self._built_size, 1) and \
                    self.built_kind in ("ivf", "ivfpq"):
                self._dirty = True
            else:
                self.index.add_with_ids(vecs, labels)

    def remove(self, ids: Iterable[str]) -> int:
        labels = [self.labels_of.pop(i) for i in ids if i in self.labels_of]
        for lab in labels:
            del self.id_of[lab]
        self._has_removed = self._has_removed or bool(labels)
        if labels and self.index is not None and not self._dirty:
            if self.built_kind == "hnsw":  # HNSW cannot delete: hide, rebuild once a quarter is hidden
                self._tombstones.update(labels)
                if len(self._tombstones) > 0.25 * max(len(self), 1):
                    self._dirty = True
            else:
                import faiss

                self.index.remove_ids(faiss.IDSelectorBatch(np.asarray(labels, dtype=np.int64)))
        return len(labels)

    # -- index ---------------------------------------------------------------------------
    def _resolve_kind(self, n: int) -> str:
        if self.config.kind != "auto":
            return self.config.kind
        return "flat" if n <= AUTO_FLAT_MAX else "ivf"

    def build(self) -> None:
        """(Re)build the FAISS index from the stored vectors."""
        import faiss

        labels, vecs = self.vectors()
        cfg = self.config
        kind = self._resolve_kind(len(labels))
        metric = faiss.METRIC_INNER_PRODUCT
        if kind in ("ivf", "ivfpq") and len(labels) < 39:
            kind = "flat"  # too few vectors to train any clustering
        if kind == "flat":
            index = faiss.IndexIDMap2(faiss.IndexFlatIP(cfg.dim))
        elif kind == "hnsw":
            base = faiss.IndexHNSWFlat(cfg.dim, cfg.hnsw_m, metric)
            base.hnsw.efConstruction = cfg.ef_construction
            base.hnsw.efSearch = cfg.ef_search
            index = faiss.IndexIDMap2(base)
        else:
            nlist = cfg.nlist or default_nlist(len(labels))
            quantizer = faiss.IndexFlatIP(cfg.dim)
            if kind == "ivf":
                index = faiss.IndexIVFFlat(quantizer, cfg.dim, nlist, metric)
            else:
                pq_m = cfg.pq_m or max(m for m in (8, 16, 24, 32, 48, 64) if cfg.dim % m == 0 and m <= cfg.dim // 4)
                index = faiss.IndexIVFPQ(quantizer, cfg.dim, nlist, pq_m, 8, metric)
            rng = np.random.default_rng(cfg.seed)
            n_train = min(len(labels), max(64 * nlist, 10_000))
            sample = vecs[rng.choice(len(labels), n_train, replace=False)] if n_train < len(labels) else vecs
            index.cp.seed = cfg.seed
            index.train(sample)
            index.nprobe = cfg.nprobe or default_nprobe(nlist)
            index.quantizer_trains_alone = 0
        if len(labels):
            index.add_with_ids(vecs, labels)
        if self._want_gpu() and kind != "hnsw":
            index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
        self.index, self.built_kind, self._built_size = index, kind, len(labels)
        self._tombstones = set()
        self._dirty = False

    def _want_gpu(self) -> bool:
        if self.config.use_gpu == "auto":
            return gpu_available()
        if self.config.use_gpu and not gpu_available():
            raise ValueError("use_gpu=True but FAISS has no GPU support or no GPU is visible")
        return bool(self.config.use_gpu)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, labels) with -1 labels where fewer than k entries exist."""
        if self._dirty or self.index is None:
            self.build()
        fetch = min(k + len(self._tombstones), max(len(self) + len(self._tombstones), 1))
        scores, labels = _faiss_search(self.index, queries, fetch)
        if self._tombstones:
            dead = np.isin(labels, np.fromiter(self._tombstones, np.int64))
            scores = np.where(dead, -np.inf, scores)
            order = np.argsort(-scores, axis=1, kind="stable")
            scores, labels = np.take_along_axis(scores, order, 1), np.take_along_axis(labels, order, 1)
            labels = np.where(np.isinf(scores), -1, labels)
        return scores[:, :k], labels[:, :k]

    def search_subset(self, queries: np.ndarray, k: int, allowed: set[str]) -> tuple[np.ndarray, np.ndarray]:
        """Exact top-k restricted to ``allowed`` ids (used for tier filters)."""
        labels, vecs = self.vectors()
        allowed_labels = np.fromiter((self.labels_of[i] for i in allowed if i in self.labels_of), np.int64)
        mask = np.isin(labels, allowed_labels)
        scores, rows = exact_search(vecs[mask], queries, k)
        return scores, labels[mask][rows]


class VectorIndex:
    """Inner-product vector index with stable string ids.

    ``kind`` is ``auto`` (exact up to 50K vectors, IVF above), ``flat`` (exact), ``hnsw``, ``ivf``
    (IVF-Flat) or ``ivfpq``. ``shards > 1`` splits the ids over several indexes (by a stable hash)
    and merges their results; ``use_gpu="auto"`` moves flat/IVF indexes to the GPU when FAISS has
    GPU support and a GPU is visible.
    """

    def __init__(self, dim: int, kind: str = "auto", **params: object) -> None:
        self.config = IndexConfig(dim=dim, kind=kind, **params)  # type: ignore[arg-type]
        self.config.validate()
        self._shards = [_Shard(self.config) for _ in range(self.config.shards)]

    def __len__(self) -> int:
        return sum(len(s) for s in self._shards)

    def __contains__(self, doc_id: str) -> bool:
        return doc_id in self._shard_of(doc_id).labels_of

    def ids(self) -> list[str]:
        """Every stored id (shard by shard, in insertion order within a shard)."""
        return [doc_id for shard in self._shards for doc_id in shard.labels_of]

    @property
    def kinds(self) -> list[str | None]:
        """The index kind each shard was last built as (None before the first search)."""
        return [s.built_kind for s in self._shards]

    def _shard_of(self, doc_id: str) -> _Shard:
        return self._shards[zlib.crc32(doc_id.encode()) % len(self._shards)]

    def _check(self, vecs: np.ndarray) -> np.ndarray:
        vecs = np.ascontiguousarray(np.atleast_2d(np.asarray(vecs, dtype=np.float32)))
        if vecs.ndim != 2 or vecs.shape[1] != self.config.dim:
            raise ValueError(f"expected vectors of dim {self.config.dim}, got shape {vecs.shape}")
        return vecs

    def add(self, ids: Sequence[str], vecs: np.ndarray) -> None:
        """Add (or replace) vectors under string ids."""
        ids = [str(i) for i in ids]
        vecs = self._check(vecs)
        if len(ids) != len(vecs):
            raise ValueError(f"{len(ids)} ids but {len(vecs)} vectors")
        if len(set(ids)) != len(ids):
            raise ValueError("duplicate ids in one add() call")
        if len(self._shards) == 1:
            self._shards[0].add(ids, vecs)
            return
        groups: dict[int, list[int]] = {}
        for row, doc_id in enumerate(ids):
            groups.setdefault(zlib.crc32(doc_id.encode()) % len(self._shards), []).append(row)
        for shard_no, rows in groups.items():
            self._shards[shard_no].add([ids[r] for r in rows], vecs[rows])

    def remove(self, ids: Iterable[str]) -> int:
        """Remove ids (unknown ids are ignored); returns how many were removed."""
        return sum(self._shard_of(str(i)).remove([str(i)]) for i in ids)

    def build(self) -> None:
        """Build every shard now (otherwise the first search builds them)."""
        for shard in self._shards:
            shard.build()

    def set_nprobe(self, nprobe: int) -> None:
        """Lists probed per query by IVF shards (recall vs speed); applies to built and future indexes."""
        if nprobe < 1:
            raise ValueError(f"nprobe must be >= 1, got {nprobe}")
        self.config.nprobe = nprobe
        for shard in self._shards:
            if shard.index is not None and hasattr(shard.index, "nprobe"):
                shard.index.nprobe = nprobe

    def search(self, queries: np.ndarray, k: int = 10,
               allowed: set[str] | None = None) -> tuple[np.ndarray, list[list[str]]]:
        """Top-k per query: ``(scores (nq, k'), ids)``, best first; ``allowed`` restricts to those ids (exactly)."""
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        queries = self._check(queries)
        parts = []
        for shard in self._shards:
            if not len(shard):
                continue
            if allowed is not None:
                parts.append((shard, *shard.search_subset(queries, k, allowed)))
            else:
                parts.append((shard, *shard.search(queries, k)))
        if not parts:
            return np.zeros((len(queries), 0), np.float32), [[] for _ in queries]
        if len(parts) == 1:
            shard, scores, labels = parts[0]
            ids = [[shard.id_of[lab] for lab in row if lab >= 0 and lab in shard.id_of] for row in labels.tolist()]
            width = min(len(r) for r in ids)
            return scores[:, :width], [r[:width] for r in ids] if width else [[] for _ in ids]
        all_scores = np.concatenate([p[1] for p in parts], axis=1)
        all_ids = [sum(([p[0].id_of.get(lab) for lab in p[2][q].tolist()] for p in parts), [])
                   for q in range(len(queries))]
        all_scores = np.where(np.array([[i is None for i in row] for row in all_ids]), -np.inf, all_scores)
        order = np.argsort(-all_scores, axis=1, kind="stable")[:, :k]
        scores = np.take_along_axis(all_scores, order, 1)
        ids = [[all_ids[q][j] for j in order[q] if all_ids[q][j] is not None] for q in range(len(queries))]
        width = min(len(r) for r in ids)
        return scores[:, :width], [r[:width] for r in ids]

    def get_vectors(self, ids: Sequence[str]) -> np.ndarray:
        """The stored vectors of ``ids`` (KeyError for unknown ids)."""
        out = np.zeros((len(ids), self.config.dim), np.float32)
        for row, doc_id in enumerate(ids):
            shard = self._shard_of(doc_id)
            if doc_id not in shard.labels_of:
                raise KeyError(f"unknown id {doc_id!r}")
            labels, vecs = shard.vectors()
            out[row] = vecs[np.searchsorted(labels, shard.labels_of[doc_id])]
        return out

    # -- persistence ---------------------------------------------------------------------
    # A flat index is rebuilt from the vectors on load (a copy, as fast as reading it), so only
    # HNSW / IVF indexes, which are slow to build, are written as FAISS files next to the vectors.
    def _state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """The index as JSON metadata plus named arrays (vectors, serialised FAISS indexes)."""
        import faiss

        meta: dict = {"format": 2, "config": asdict(self.config), "shards": []}
        arrays: dict[str, np.ndarray] = {}
        for n, shard in enumerate(self._shards):
            labels, vecs = shard.vectors()
            arrays[f"shard{n}.vectors"] = vecs
            entry: dict = {"ids": [shard.id_of[lab] for lab in labels.tolist()], "kind": None}
            if shard.index is not None and not shard._dirty and not shard._tombstones and shard.built_kind != "flat":
                index = shard.index
                if hasattr(faiss, "index_gpu_to_cpu") and "Gpu" in type(index).__name__:
                    index = faiss.index_gpu_to_cpu(index)
                arrays[f"shard{n}.faiss"] = faiss.serialize_index(index)
                entry["kind"] = shard.built_kind
                entry["labels"] = labels.tolist()
            meta["shards"].append(entry)
        return meta, arrays

    @classmethod
    def _from_state(cls, meta: dict, array: Callable[[str], np.ndarray],
                    use_gpu: bool | str | None) -> VectorIndex:
        import faiss

        if meta.get("format") not in (1, 2):
            raise ValueError(f"unknown vector index format {meta.get('format')!r}")
        config = dict(meta["config"])
        if use_gpu is not None:
            config["use_gpu"] = use_gpu
        self = cls(**config)
        if len(meta["shards"]) != len(self._shards):
            raise ValueError(f"the index metadata lists {len(meta['shards'])} shards, its config {len(self._shards)}")
        for n, (shard, entry) in enumerate(zip(self._shards, meta["shards"])):
            vecs = np.ascontiguousarray(array(f"shard{n}.vectors"), dtype=np.float32)
            if vecs.ndim != 2 or vecs.shape != (len(entry["ids"]), self.config.dim):
                raise ValueError(f"shard {n} holds vectors of shape {vecs.shape} for {len(entry['ids'])} ids "
                                 f"of dim {self.config.dim}")
            if entry["kind"] is not None:
                labels = np.asarray(entry["labels"], np.int64)
                shard._vecs, shard._labels = vecs, labels
                shard.labels_of = dict(zip(entry["ids"], labels.tolist()))
                shard.id_of = {lab: i for i, lab in shard.labels_of.items()}
                shard._next_label = int(labels.max()) + 1 if len(labels) else 0
                index = faiss.deserialize_index(np.asarray(array(f"shard{n}.faiss"), dtype=np.uint8))
                if index.ntotal != len(labels) or index.d != self.config.dim:
                    raise ValueError(f"shard {n}: the FAISS index holds {index.ntotal} vectors of dim {index.d}, "
                                     f"expected {len(labels)} of dim {self.config.dim}")
                if shard._want_gpu() and entry["kind"] != "hnsw":
                    index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
                shard.index, shard.built_kind, shard._built_size, shard._dirty = index, entry["kind"], len(labels), False
            elif entry["ids"]:
                shard.add(list(entry["ids"]), vecs)
        return self

    def save(self, path: str | Path) -> None:
        """Write the index to a folder atomically (config, ids, vectors, and each built HNSW/IVF index)."""
        meta, arrays = self._state()
        with atomic_directory(path) as tmp:
            for name, arr in arrays.items():
                if name.endswith(".faiss"):
                    (tmp / name).write_bytes(arr.tobytes())
                else:
                    np.save(tmp / f"{name}.npy", arr)
            atomic_write_text(tmp / "meta.json", json.dumps(meta))

    @classmethod
    def load(cls, path: str | Path, use_gpu: bool | str | None = None) -> VectorIndex:
        """Read an index written by :meth:`save` (reusing the saved HNSW/IVF indexes, no retraining)."""
        path = Path(path)
        if not (path / "meta.json").exists():
            raise FileNotFoundError(f"no vector index at {path} (missing meta.json)")

        def array(name: str) -> np.ndarray:
            if name.endswith(".faiss"):
                return np.frombuffer((path / name).read_bytes(), dtype=np.uint8)
            return np.load(path / f"{name}.npy", allow_pickle=False)

        return cls._from_state(json.loads((path / "meta.json").read_text()), array, use_gpu)

    def to_bytes(self) -> bytes:
        """The whole index as one blob (an uncompressed ``.npz``), for callers that write one file atomically."""
        meta, arrays = self._state()
        buf = io.BytesIO()
        np.savez(buf, meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8), **arrays)
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, use_gpu: bool | str | None = None) -> VectorIndex:
        """Read a blob written by :meth:`to_bytes` (ValueError when it is not one)."""
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            meta = json.loads(arrays.pop("meta").tobytes().decode("utf-8"))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise ValueError(f"not a serialised vector index ({type(exc).__name__}: {exc})") from exc
        try:
            return cls._from_state(meta, arrays.__getitem__, use_gpu)
        except KeyError as exc:
            raise ValueError(f"the serialised vector index lacks {exc}") from exc
        except RuntimeError as exc:  # FAISS refusing a damaged index
            raise ValueError(f"the serialised vector index is damaged ({exc})") from exc
