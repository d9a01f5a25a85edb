"""Bi-encoder: texts -> L2-normalised float32 vectors, with a content-hash embedding cache.

The default model is the embedded all-MiniLM-L6-v2 (``"minilm"``); any sentence-transformers
folder or hub id works. Vectors are cached by ``sha256(model key + text)`` in memory and,
when ``cache_dir`` is given, in a small SQLite file so a library is embedded only once.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np


def normalize(vecs: np.ndarray) -> np.ndarray:
    """Row-wise L2 normalisation to float32 (zero rows stay zero)."""
    vecs = np.asarray(vecs, dtype=np.float32)
    norms = np.linalg.norm(vecs, axis=-1, keepdims=True)
    return vecs / np.maximum(norms, 1e-12)


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
            from skillkit.core.models import load_embedder

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
