"""Text encoders: texts -> L2-normalised float32 vectors. The one encoder stack of the project
(the router and the skill library both use it).

* :class:`Encoder`: a sentence-transformers bi-encoder, default the embedded all-MiniLM-L6-v2
  (``"minilm"``); any sentence-transformers folder or hub id works. Vectors are cached by
  ``sha256(model key + text)`` in memory and, when ``cache_dir`` is given, in a small SQLite file
  so a library is embedded only once.
* :class:`HashingEncoder`: hashed word unigrams and bigrams, no model (tests, quick runs).
* :class:`PrecomputedEncoder`: vectors come from the caller; encoding text is an error.

:func:`get_encoder` resolves a spec (``minilm``, ``hashing[-DIM]``, ``precomputed[-DIM]``, a
path or hub id) and shares loaded models within the process.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from retriever.docs import beside_library
from skillkit.core.models import load_embedder


def normalize(vecs: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation to float32 (zero rows stay zero)."""
    vecs = np.asarray(vecs, dtype=np.float32)
    norms = np.linalg.norm(vecs, axis=-1, keepdims=True)
    return vecs / np.maximum(norms, 1e-12)


@runtime_checkable
class TextEncoder(Protocol):
    """What the router and the library need from an encoder.

    ``name`` identifies the vectors it produces (same name, same vectors), ``dim`` is their width
    (None for a precomputed encoder that has not seen a vector yet).
    """

    name: str

    @property
    def dim(self) -> int | None: ...

    def encode(self, texts: Sequence[str] | str, batch_size: int | None = None, show_progress: bool = False,
               use_cache: bool = True) -> np.ndarray: ...


class EmbeddingCache:
    """Vectors keyed by content hash: an in-memory dict, optionally backed by SQLite on disk."""

    def __init__(self, path: str | Path | None = None) -> None:
        self._mem: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        if path is not None:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(path), check_same_thread=False)
            self._db.execute("CREATE TABLE IF NOT EXISTS emb (key TEXT PRIMARY KEY, vec BLOB)")
            self._db.commit()

    def get_many(self, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """Cached vectors for the keys that are present."""
        with self._lock:
            found = {k: self._mem[k] for k in keys if k in self._mem}
            missing = [k for k in keys if k not in found]
            if self._db is not None and missing:
                for start in range(0, len(missing), 500):
                    chunk = missing[start:start + 500]
                    rows = self._db.execute(
                        f"SELECT key, vec FROM emb WHERE key IN ({','.join('?' * len(chunk))})", chunk
                    ).fetchall()
                    for key, blob in rows:
                        vec = np.frombuffer(blob, dtype=np.float32).copy()
                        self._mem[key] = vec
                        found[key] = vec
        return found

    def put_many(self, items: dict[str, np.ndarray]) -> None:
        """Store vectors (one transaction on disk)."""
        with self._lock:
            self._mem.update(items)
            if self._db is not None and items:
                self._db.executemany(
                    "INSERT OR REPLACE INTO emb (key, vec) VALUES (?, ?)",
                    [(k, np.asarray(v, dtype=np.float32).tobytes()) for k, v in items.items()],
                )
                self._db.commit()

    def __len__(self) -> int:
        return len(self._mem)


class Encoder:
    """A batched, normalising sentence encoder with a content-hash cache.

    ``model`` is ``"minilm"`` (default), a local folder, a hub id, or an already loaded
    ``SentenceTransformer``.
    """

    def __init__(self, model: Any = "minilm", device: str | None = "cpu", batch_size: int = 64,
                 cache_dir: str | Path | None = None, max_seq_length: int | None = 256) -> None:
        from sentence_transformers import SentenceTransformer

        if isinstance(model, SentenceTransformer):
            self.model = model
            self.name = str(getattr(model[0].auto_model.config, "_name_or_path", "") or "sentence-transformer")
        else:
            self.model = load_embedder(str(model), device=device)
            self.name = str(model)
        if max_seq_length is not None:
            self.model.max_seq_length = min(max_seq_length, self.model.max_seq_length or max_seq_length)
        self.batch_size = batch_size
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(get_dim())
        self._key_prefix = f"{self.name}|{self.model.max_seq_length}|".encode()
        cache_file = Path(cache_dir) / "embeddings.sqlite" if cache_dir is not None else None
        self.cache = EmbeddingCache(cache_file)

    @property
    def fingerprint(self) -> str:
        """Model name and max sequence length: two encoders with the same fingerprint give the same vectors."""
        return f"{self.name}|{self.model.max_seq_length}"

    def _key(self, text: str) -> str:
        return hashlib.sha256(self._key_prefix + text.encode("utf-8")).hexdigest()

    def encode(self, texts: Sequence[str] | str, batch_size: int | None = None,
               show_progress: bool = False, use_cache: bool = True) -> np.ndarray:
        """Encode texts to an ``(n, dim)`` float32 array of unit vectors (one row for a single str)."""
        if isinstance(texts, str):
            texts = [texts]
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not use_cache:
            return self._embed(texts, batch_size, show_progress)
        keys = [self._key(t) for t in texts]
        found = self.cache.get_many(list(dict.fromkeys(keys)))
        todo = list(dict.fromkeys(k for k in keys if k not in found))
        if todo:
            first_text = {}
            for key, text in zip(keys, texts):
                first_text.setdefault(key, text)
            vecs = self._embed([first_text[k] for k in todo], batch_size, show_progress)
            new = dict(zip(todo, vecs))
            self.cache.put_many(new)
            found.update(new)
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)

    def _embed(self, texts: list[str], batch_size: int | None, show_progress: bool) -> np.ndarray:
        vecs = self.model.encode(texts, batch_size=batch_size or self.batch_size, convert_to_numpy=True,
                                 normalize_embeddings=True, show_progress_bar=show_progress)
        return normalize(vecs)


class HashingEncoder:
    """A dependency-free encoder (hashed word unigrams and bigrams), for tests and quick runs.

    Named ``hashing-<dim>``; deterministic across processes. Much weaker than a real model.
    """

    def __init__(self, dim: int = 256) -> None:
        if dim < 1:
            raise ValueError(f"a hashing encoder needs dim >= 1, got {dim}")
        self.dim = int(dim)
        self.name = f"hashing-{self.dim}"
        self.fingerprint = self.name

    @staticmethod
    def _features(text: str) -> list[str]:
        words = re.findall(r"[a-z0-9]+", text.lower())
        return words + [f"{a} {b}" for a, b in zip(words, words[1:])]

    def encode(self, texts: Sequence[str] | str, batch_size: int | None = None, show_progress: bool = False,
               use_cache: bool = True) -> np.ndarray:
        """Encode texts to an ``(n, dim)`` float32 array of unit vectors (zero rows for texts without words)."""
        if isinstance(texts, str):
            texts = [texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for feat in self._features(text):
                h = int.from_bytes(hashlib.blake2b(feat.encode(), digest_size=8).digest(), "little")
                out[row, h % self.dim] += 1.0 if (h >> 63) & 1 else -1.0
        return normalize(out)


class PrecomputedEncoder:
    """Stands for vectors computed elsewhere (named ``precomputed[-DIM]``): encoding text is an error."""

    def __init__(self, dim: int | None = None) -> None:
        self.dim = dim
        self.name = f"precomputed-{dim}" if dim else "precomputed"
        self.fingerprint = self.name

    def encode(self, texts: Sequence[str] | str, batch_size: int | None = None, show_progress: bool = False,
               use_cache: bool = True) -> np.ndarray:
        """Always raises: there is no model to encode text with."""
        raise ValueError(f"the {self.name!r} encoder has no model: pass vectors (add_embeddings / search_vector), "
                         "or use a real encoder such as 'minilm' to embed text")


_SHARED: dict[tuple[str, str | None], Any] = {}
_SHARED_LOCK = threading.Lock()


def default_encoder_path(library_path: str | Path) -> Path:
    """Where ``skillkit router train-encoder`` (fine-tuned on labelled queries) and ``skillkit router distill
    --student bi-encoder`` put a library's trained dense-stage encoder by default: ``LIB/encoder`` or
    ``LIB.encoder``."""
    return beside_library(library_path, "encoder")


def trained_encoder(library_path: str | Path | None) -> str | None:
    """The folder of the bi-encoder trained for this library (fine-tuned or distilled, a
    sentence-transformers model saved at :func:`default_encoder_path`), or None when there is none."""
    if library_path is None:
        return None
    folder = default_encoder_path(library_path)
    return str(folder) if (folder / "modules.json").exists() else None


def get_encoder(spec: str | TextEncoder | None = "minilm", cache_dir: str | Path | None = None) -> TextEncoder:
    """Resolve an encoder spec: ``minilm`` (default), ``hashing[-DIM]`` (DIM 256 by default),
    ``precomputed[-DIM]``, a sentence-transformers folder or hub id, or an encoder object (returned as is).

    Encoders built from a spec are shared within the process (a model is loaded once per spec and cache folder).
    """
    if spec is None:
        spec = "minilm"
    if not isinstance(spec, str):
        if not callable(getattr(spec, "encode", None)) or not hasattr(spec, "name"):
            raise TypeError(f"an encoder needs a 'name' and an 'encode(texts)' method, got {type(spec).__name__}")
        return spec
    key = (spec, str(cache_dir) if cache_dir is not None else None)
    with _SHARED_LOCK:
        if key not in _SHARED:
            hashing = re.fullmatch(r"hashing(?:-(\d+))?", spec)
            precomputed = re.fullmatch(r"precomputed(?:-(\d+))?", spec)
            if hashing:
                _SHARED[key] = HashingEncoder(int(hashing.group(1) or 256))
            elif precomputed:
                _SHARED[key] = PrecomputedEncoder(int(precomputed.group(1)) if precomputed.group(1) else None)
            else:
                _SHARED[key] = Encoder(spec, cache_dir=cache_dir)
        return _SHARED[key]


def same_vectors(a: TextEncoder, b: TextEncoder) -> bool:
    """True when two encoders produce the same vectors for the same text (same object or same fingerprint)."""
    if a is b:
        return True
    fa, fb = getattr(a, "fingerprint", None), getattr(b, "fingerprint", None)
    return fa is not None and fa == fb
