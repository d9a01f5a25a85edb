"""The Router: retrieve with a bi-encoder (+ BM25), then rerank.

Methods: ``dense`` (bi-encoder + vector index), ``bm25``, ``hybrid`` (both fused by reciprocal
rank), ``rerank`` (dense top-``candidates``, then the reranker) and ``auto`` (the default:
``rerank`` when the router has a reranker, else ``dense``; :attr:`Router.last_method` says which).
An untrained cross-encoder is no better than dense, so none is used unless one is given or a
trained one sits next to the library, and asking for ``rerank`` without one is an error
(:class:`RerankerMissingError`) rather than a silent fallback. A reranker whose own held-out check
(recorded by ``skillkit router train-reranker --queries``) found it no better than this dense stage
is not paid for by ``auto``: :attr:`Router.reranker_shortfall` says why, and ``rerank`` still uses it.

The retriever does not depend on the skill layer: :meth:`Router.from_library` takes any library
object with ``list()`` (a ``skillkit.skills.library.SkillLibrary`` among them) or a JSON/JSONL
file of skill records.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from retriever.bm25 import BM25Index
from retriever.docs import RouterDoc, load_docs_file, to_docs
from retriever.encoders import TextEncoder, get_encoder, same_vectors, trained_encoder
from retriever.fusion import reciprocal_rank_fusion
from retriever.index import VectorIndex
from retriever.rerank import measured_shortfall, resolve_reranker

METHODS = ("auto", "rerank", "dense", "bm25", "hybrid")
TRAIN_RERANKER_HINT = "skillkit router train-reranker --library LIBRARY"


class RerankerMissingError(ValueError):
    """``method="rerank"`` was asked of a router that has no reranker."""


@dataclass
class RoutedSkill:
    """One routed skill: its id, name, tier, final score, rank (from 1) and the stage scores."""

    id: str
    name: str
    score: float
    rank: int
    tier: str | None
    doc: RouterDoc = field(repr=False)
    stage_scores: dict[str, float] = field(default_factory=dict)

    @property
    def skill(self) -> Any:
        """The original skill object (or the dict it was read from)."""
        return self.doc.skill if self.doc.skill is not None else self.doc

    def to_dict(self, with_text: bool = False) -> dict[str, Any]:
        """JSON-ready dict: name, score, id, tier, rank, description, stage scores (+ body when asked)."""
        out = {"name": self.name, "score": round(float(self.score), 6), "id": self.id, "tier": self.tier,
               "rank": self.rank, "description": self.doc.description,
               "stage_scores": {k: round(float(v), 6) for k, v in self.stage_scores.items()}}
        if with_text:
            out["body"] = self.doc.body
        return out


def load_library_docs(library: Any) -> list[RouterDoc]:
    """Docs from a library object (anything with ``list()``), an iterable of skills, or a JSON/JSONL file."""
    if hasattr(library, "list") and callable(library.list):
        return to_docs(library.list())
    if isinstance(library, Iterable) and not isinstance(library, str | Path):
        return to_docs(library)
    path = Path(library)
    if not path.exists():
        raise FileNotFoundError(f"no skill library at {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder: open a skill library folder first "
                         "(skillkit.skills.library.SkillLibrary.load) and pass the library object")
    return load_docs_file(path)


def _library_vectors(library: Any, docs: Sequence[RouterDoc], encoder: TextEncoder) -> np.ndarray | None:
    """The library's stored vectors of ``docs`` when they are what ``encoder`` would compute, else None.

    Reused only when the library exposes ``encoder`` and ``embeddings(skills)``, its encoder gives the
    same vectors as the router's, and every skill embeds the same text the router routes on.
    """
    lib_encoder = getattr(library, "encoder", None)
    if lib_encoder is None or not callable(getattr(library, "embeddings", None)) or not docs:
        return None
    if not same_vectors(lib_encoder, encoder):
        return None
    skills = [d.skill for d in docs]
    if any(not callable(getattr(s, "to_text", None)) or s.to_text() != d.to_text() for s, d in zip(skills, docs)):
        return None
    return np.asarray(library.embeddings(skills), dtype=np.float32)


class Router:
    """Route queries to skills. Build with :meth:`from_library` or :meth:`from_docs`."""

    def __init__(self, docs: Sequence[RouterDoc], encoder: TextEncoder, index: VectorIndex | None = None,
                 reranker: Any | None = None, index_kind: str = "auto", candidates: int = 20,
                 hybrid_depth: int = 50, rrf_k: int = 60, index_params: dict[str, Any] | None = None) -> None:
        self.encoder = encoder
        self.reranker = reranker
        self.candidates = candidates
        self.hybrid_depth = hybrid_depth
        self.rrf_k = rrf_k
        self.docs: dict[str, RouterDoc] = {}
        self._by_name: dict[str, str] = {}
        self._tiers: dict[str, set[str]] = {}
        self.index = index if index is not None else VectorIndex(encoder.dim, kind=index_kind, **(index_params or {}))
        self.bm25 = BM25Index()
        self.last_timings: dict[str, float] = {}
        self.last_method: str | None = None
        self.add(docs, _vectors_known=index is not None)

    # -- construction --------------------------------------------------------------------
    @classmethod
    def from_docs(cls, docs: Iterable[Any], encoder: Any = "minilm", reranker: Any = None,
                  index_kind: str = "auto", cache_dir: str | Path | None = None, **kwargs: Any) -> Router:
        """A router over skill objects, dicts or :class:`RouterDoc` s. ``encoder``: a spec (see
        :func:`retriever.encoders.get_encoder`) or an encoder object."""
        enc = get_encoder(encoder, cache_dir=cache_dir)
        return cls(to_docs(docs), enc, reranker=resolve_reranker(reranker), index_kind=index_kind, **kwargs)

    @classmethod
    def from_library(cls, library: Any, encoder: Any = "auto", reranker: Any = "auto",
                     index_kind: str = "auto", cache_dir: str | Path | None = None,
                     index_params: dict[str, Any] | None = None, **kwargs: Any) -> Router:
        """A router over a skill library object (anything with ``list()``) or a JSON/JSONL file of skills.

        ``encoder`` None means the library's own (``library.encoder``; ``minilm`` for a file); ``"auto"``
        the bi-encoder trained for this library by ``skillkit router train-encoder`` or ``distill --student
        bi-encoder`` (:func:`~retriever.encoders.default_encoder_path`) when there is one, else as for None. When the
        router's encoder gives the same vectors as the library's, the library's stored vectors are
        reused (``library.embeddings``) and nothing is re-embedded; otherwise the skills are encoded
        with the router's encoder. A library *folder* is opened by the caller
        (``SkillLibrary.load(path)``): the retriever does not import the skill layer.
        ``reranker="auto"`` uses the trained reranker saved next to the library by
        ``skillkit router train-reranker`` when there is one; otherwise routing is dense.
        """
        docs = load_library_docs(library)
        lib_path = library if isinstance(library, str | Path) else getattr(library, "path", None)
        is_object = not isinstance(library, str | Path)
        lib_encoder = getattr(library, "encoder", None) if is_object else None
        if encoder == "auto":
            encoder = trained_encoder(lib_path)
        if encoder is None:
            encoder = lib_encoder if lib_encoder is not None else "minilm"
        elif isinstance(encoder, str) and lib_encoder is not None and encoder == getattr(library, "embedding_model", None):
            encoder = lib_encoder  # the same spec: share the loaded model
        enc = get_encoder(encoder, cache_dir=cache_dir)
        vectors = _library_vectors(library, docs, enc) if is_object else None
        index = None
        if vectors is not None:
            index = VectorIndex(vectors.shape[1], kind=index_kind, **(index_params or {}))
            index.add([d.id for d in docs], vectors)
        return cls(docs, enc, index=index, reranker=resolve_reranker(reranker, lib_path), index_kind=index_kind,
                   index_params=index_params, **kwargs)

    # -- mutation ------------------------------------------------------------------------
    def add(self, items: Iterable[Any], _vectors_known: bool = False) -> None:
        """Add or replace skills (encoded with the router's encoder)."""
        docs = to_docs(items)
        if not docs:
            return
        for doc in docs:
            if doc.id in self.docs:
                self._forget(doc.id)
            self.docs[doc.id] = doc
            self._by_name.setdefault(doc.name, doc.id)
            self._tiers.setdefault(doc.tier or "", set()).add(doc.id)
        texts = [d.to_text() for d in docs]
        ids = [d.id for d in docs]
        if not _vectors_known:
            self.index.add(ids, self.encoder.encode(texts))
        self.bm25.add(ids, texts)

    def _forget(self, doc_id: str) -> None:
        doc = self.docs.pop(doc_id)
        if self._by_name.get(doc.name) == doc_id:
            del self._by_name[doc.name]
        self._tiers.get(doc.tier or "", set()).discard(doc_id)

    def remove(self, ids: Iterable[str]) -> int:
        """Remove skills by id; returns how many existed."""
        ids = [i for i in ids if i in self.docs]
        for doc_id in ids:
            self._forget(doc_id)
        self.index.remove(ids)
        self.bm25.remove(ids)
        return len(ids)

    def __len__(self) -> int:
        return len(self.docs)

    def get(self, name_or_id: str) -> RouterDoc:
        """A skill by id or name (KeyError when unknown)."""
        if name_or_id in self.docs:
            return self.docs[name_or_id]
        if name_or_id in self._by_name:
            return self.docs[self._by_name[name_or_id]]
        raise KeyError(f"no skill named {name_or_id!r}")

    # -- routing -------------------------------------------------------------------------
    def route(self, query: str, k: int = 5, tier: str | None = None, method: str = "auto") -> list[RoutedSkill]:
        """The ``k`` best skills for ``query`` (optionally only of ``tier``), best first."""
        return self.route_batch([query], k=k, tier=tier, method=method)[0]

    def route_batch(self, queries: Sequence[str], k: int = 5, tier: str | None = None,
                    method: str = "auto") -> list[list[RoutedSkill]]:
        """Route many queries at once (one batched encode and index search); timings are totals.

        ``method="rerank"`` without a reranker raises :class:`RerankerMissingError`; ``auto`` reranks
        when there is a reranker not measured to fall short (:attr:`reranker_shortfall`) and answers
        densely otherwise.
        """
        method = self.resolve_method(method)
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if isinstance(queries, str):
            raise ValueError("route_batch takes a list of queries; use route() for one")
        if any(not isinstance(q, str) or not q.strip() for q in queries):
            raise ValueError("every query must be a non-empty string")
        self.last_method = method
        allowed = None
        if tier is not None:
            allowed = self._tiers.get(tier, set())
        timings: dict[str, float] = {}
        start = time.perf_counter()
        if not queries or not self.docs or (allowed is not None and not allowed):
            self.last_timings = {"total": 0.0}
            return [[] for _ in queries]
        if method == "bm25":
            results = [self._finish(row, k, "bm25") for row in self._bm25(queries, k, allowed, timings)]
        elif method == "dense":
            results = [self._finish(row, k, "dense") for row in self._dense(queries, k, allowed, timings)]
        elif method == "hybrid":
            depth = max(self.hybrid_depth, k)
            dense = self._dense(queries, depth, allowed, timings)
            sparse = self._bm25(queries, depth, allowed, timings)
            t = time.perf_counter()
            results = []
            for d_row, s_row in zip(dense, sparse):
                fused = reciprocal_rank_fusion([[i for i, _ in d_row], [i for i, _ in s_row]], k=self.rrf_k)
                results.append(self._finish(fused, k, "rrf", {"dense": dict(d_row), "bm25": dict(s_row)}))
            timings["fuse"] = time.perf_counter() - t
        else:
            dense = self._dense(queries, max(self.candidates, k), allowed, timings)
            t = time.perf_counter()
            results = []
            for query, row in zip(queries, dense):
                docs = [self.docs[i] for i, _ in row]
                prior = np.asarray([s for _, s in row], np.float32)
                scores = self.reranker.score(query, docs, prior=prior) if docs else np.zeros(0)
                order = np.argsort(-np.asarray(scores), kind="stable")
                ranked = [(row[j][0], float(scores[j])) for j in order]
                results.append(self._finish(ranked, k, "rerank", {"dense": dict(row)}))
            timings["rerank"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - start
        self.last_timings = timings
        return results

    def resolve_method(self, method: str) -> str:
        """The method a request for ``method`` runs: ``auto`` becomes ``rerank`` or ``dense``; ``rerank``
        without a reranker raises :class:`RerankerMissingError` naming the command that trains one."""
        if method not in METHODS:
            raise ValueError(f"unknown routing method {method!r}: use one of {', '.join(METHODS)}")
        if method == "auto":
            return "rerank" if self.reranker is not None and self.reranker_shortfall is None else "dense"
        if method == "rerank" and self.reranker is None:
            raise RerankerMissingError(f"method 'rerank' needs a trained reranker and this router has none: "
                                       f"train one with `{TRAIN_RERANKER_HINT}` (or use --method dense or auto)")
        return method

    @property
    def reranker_shortfall(self) -> str | None:
        """Why ``auto`` routes without this router's reranker (its recorded held-out check behind this dense
        stage found no gain; see :func:`retriever.rerank.measured_shortfall`), or None when ``auto`` uses it."""
        return None if self.reranker is None else measured_shortfall(self.reranker, self.encoder.name)

    def _dense(self, queries: Sequence[str], depth: int, allowed: set[str] | None,
               timings: dict[str, float]) -> list[list[tuple[str, float]]]:
        t = time.perf_counter()
        qvecs = self.encoder.encode(list(queries), use_cache=False)
        timings["encode"] = time.perf_counter() - t
        t = time.perf_counter()
        scores, ids = self.index.search(qvecs, min(depth, len(self.docs)), allowed=allowed)
        timings["search"] = time.perf_counter() - t
        return [list(zip(row_ids, row_scores.tolist())) for row_ids, row_scores in zip(ids, scores)]

    def _bm25(self, queries: Sequence[str], depth: int, allowed: set[str] | None,
              timings: dict[str, float]) -> list[list[tuple[str, float]]]:
        t = time.perf_counter()
        out = self.bm25.search(list(queries), depth, allowed=allowed)
        timings["bm25"] = time.perf_counter() - t
        return out

    def _finish(self, ranked: Sequence[tuple[str, float]], k: int, stage: str,
                extra: dict[str, dict[str, float]] | None = None) -> list[RoutedSkill]:
        out = []
        for rank, (doc_id, score) in enumerate(ranked[:k], start=1):
            doc = self.docs[doc_id]
            stages = {stage: score}
            for name, table in (extra or {}).items():
                if doc_id in table:
                    stages[name] = table[doc_id]
            out.append(RoutedSkill(doc.id, doc.name, float(score), rank, doc.tier, doc, stages))
        return out
