"""Teachers for Margin-MSE distillation: trained cross-encoders (several seeds or query views) and their ensemble.

The seed paper's strongest teacher is an ensemble: each member scores on its own scale, so the
members' scores are normalised per query (z-scores over the query's candidates) and averaged.
:class:`EnsembleTeacher` does that over any rerankers (trained cross-encoders, the SmolLM2 judge).
:func:`train_teachers` trains the cross-encoder members: the same recipe as the library's reranker
(:func:`retriever.train_reranker.train_reranker`) with different seeds and query views, so the
members make different mistakes and the ensemble is stronger than each.

No pretrained ranker ships offline: the packaged ``bge-small-en-v1.5`` the issue asked about is not
on PyPI with its weights (the packages that name it download the weights from a hub on first use
or ship an empty wheel), so it is not a teacher here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from retriever.docs import RouterDoc, beside_library
from retriever.rerank import CrossEncoderReranker, resolve_reranker, zscore
from retriever.train_reranker import TrainConfig, TrainQuery, train_reranker

#: The query views each trained teacher learns from, cycled over the seeds.
TEACHER_VIEWS: tuple[tuple[str, ...], ...] = (("desc", "name"), ("desc",), ("name",))


class EnsembleTeacher:
    """Mean of the members' per-query z-normalised scores (a :class:`~retriever.rerank.Reranker`)."""

    def __init__(self, members: Sequence[Any], names: Sequence[str] | None = None) -> None:
        if not members:
            raise ValueError("an ensemble teacher needs at least one member")
        if any(not callable(getattr(m, "score", None)) for m in members):
            raise TypeError("every ensemble member needs a score(query, docs, prior) method")
        self.members = list(members)
        self.names = list(names) if names is not None else [f"member-{i}" for i in range(len(members))]

    def score(self, query: str, docs: Sequence[RouterDoc], prior: np.ndarray | None = None) -> np.ndarray:
        """One score per doc: the mean over members of ``zscore(member.score(...))``."""
        if not docs:
            return np.zeros(0, np.float32)
        return np.mean([zscore(m.score(query, docs, prior=prior)) for m in self.members], axis=0).astype(np.float32)


def train_teachers(router: Any, n: int, labelled: Sequence[TrainQuery] = (), config: TrainConfig | None = None,
                   on_teacher: Callable[[int, dict], None] | None = None) -> list[CrossEncoderReranker]:
    """Train ``n`` cross-encoders on ``router``'s library, teacher ``i`` with seed ``config.seed + i`` and the
    query views ``TEACHER_VIEWS[i % 3]``; ``on_teacher(i, stats)`` is called after each."""
    if n < 1:
        raise ValueError(f"train at least one teacher, got {n}")
    base = config or TrainConfig()
    out = []
    for i in range(n):
        cfg = TrainConfig(**{**vars(base), "seed": base.seed + i, "views": TEACHER_VIEWS[i % len(TEACHER_VIEWS)]})
        reranker, stats = train_reranker(router, labelled, cfg)
        reranker.meta["teacher"] = {"seed": cfg.seed, "views": list(cfg.views)}
        out.append(reranker)
        if on_teacher is not None:
            on_teacher(i, stats)
    return out


class NoTrainedReranker(ValueError):
    """``auto`` was asked for as a teacher and no trained reranker is saved next to the library."""


def resolve_teacher(specs: Sequence[str], library_path: str | Path | None = None) -> tuple[Any, str]:
    """A teacher from one or more specs (``auto``, ``llm`` or a reranker folder; see
    :func:`retriever.rerank.resolve_reranker`): one spec gives that reranker, several their ensemble.

    Returns ``(teacher, name)``; :class:`NoTrainedReranker` when ``auto`` finds no trained reranker,
    ValueError for a spec that names no teacher.
    """
    if not specs:
        raise ValueError("name at least one teacher")
    members = []
    for spec in specs:
        member = resolve_reranker(spec, library_path)
        if member is None:
            raise NoTrainedReranker(f"no trained reranker next to {library_path} to act as teacher {spec!r}")
        members.append(member)
    if len(members) == 1:
        return members[0], str(specs[0])
    return EnsembleTeacher(members, [str(s) for s in specs]), "ensemble(" + ",".join(map(str, specs)) + ")"


def default_teachers_path(library_path: str | Path) -> Path:
    """Where ``teacher-scores --train-teachers`` saves its teachers: ``LIB/teachers`` or ``LIB.teachers``."""
    return beside_library(library_path, "teachers")
