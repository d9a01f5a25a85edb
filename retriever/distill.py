"""Margin-MSE distillation of the router's rankers from a teacher's scores.

Seed paper: "Improving Efficient Neural Ranking Models with Cross-Architecture Knowledge
Distillation" (Hofstaetter et al.). Over (query, positive, hard negative) triples the student
learns the teacher's *margins*, not its raw scores, because architectures score on different
scales::

    L = MSE( s_S(q, p+) - s_S(q, p-),  s_T(q, p+) - s_T(q, p-) )

Two steps, with a file in between so a slow teacher runs once and its scores can be reused:

1. :func:`score_triples` mines the triples the reranker trainer uses (synthetic queries from the
   skills, hard negatives from dense / BM25 / same category / random, false negatives filtered)
   and has the teacher (a trained cross-encoder, the SmolLM2 yes/no judge, any ``Reranker``)
   score every candidate, shown in the query's view; :func:`save_teacher_scores` writes JSONL.
2. :func:`distill` trains a student on that file: ``cross-encoder`` (a fresh MiniLM cross-encoder,
   saved as a reranker folder the router loads) or ``bi-encoder`` (the MiniLM bi-encoder,
   score = ``bi_scale`` x cosine, saved as a sentence-transformers folder usable as ``--encoder``).
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from retriever.docs import RouterDoc
from retriever.minibatches import MiniBatches
from retriever.rerank import CrossEncoderReranker
from retriever.train_encoder import TrainableBiEncoder
from retriever.train_reranker import (
    NegativeConfig,
    TrainQuery,
    freeze_lower_layers,
    hold_out,
    mine_negatives,
    render,
    synthesize_queries,
    view_vectors,
)
from skillkit.core.fileio import atomic_write_text

STUDENTS = ("cross-encoder", "bi-encoder")


@dataclass(frozen=True)
class ScoredQuery:
    """One query with its positive (``candidates[0]``), hard negatives and the teacher's score of each."""

    query: str
    view: str
    candidates: tuple[str, ...]
    scores: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.candidates) != len(self.scores) or len(self.candidates) < 2:
            raise ValueError(f"query {self.query!r}: need a positive, at least one negative and one score each "
                             f"({len(self.candidates)} candidates, {len(self.scores)} scores)")


def margin_mse_loss(student_pos: Any, student_neg: Any, teacher_pos: Any, teacher_neg: Any,
                    mask: Any | None = None) -> Any:
    """``mean(((s+ - s-) - (t+ - t-))^2)`` over (positive, negative) pairs.

    ``*_pos`` have shape ``(B,)``, ``*_neg`` ``(B, N)`` (N negatives per query; ``(B,)`` works for
    one); ``mask`` (bool, like ``*_neg``) marks real negatives in padded rows.
    """
    if student_neg.dim() > student_pos.dim():
        student_pos, teacher_pos = student_pos.unsqueeze(-1), teacher_pos.unsqueeze(-1)
    sq = ((student_pos - student_neg) - (teacher_pos - teacher_neg)) ** 2
    if mask is None:
        return sq.mean()
    return (sq * mask).sum() / mask.sum().clamp(min=1)


def _view_doc(doc: RouterDoc, view: str) -> RouterDoc:
    """``doc`` whose ``to_text()`` is its rendering in ``view`` (what a reranker reads)."""
    return dataclasses.replace(doc, name=render(doc, view), description="", body="")


def score_triples(router: Any, teacher: Any, queries: Sequence[TrainQuery] | None = None,
                  negatives: NegativeConfig | None = None, seed: int = 0,
                  on_query: Callable[[int, int], None] | None = None) -> list[ScoredQuery]:
    """Teacher scores of each mined (query, positive, negatives) group; candidates are shown to the
    teacher in the query's view, with the dense cosine as ``prior`` (used by cross-encoder teachers)."""
    docs = router.docs
    queries = list(queries) if queries is not None else synthesize_queries(list(docs.values()))
    if not queries:
        raise ValueError("no queries to score: skills need descriptions/bodies")
    mined = mine_negatives(queries, router, negatives or NegativeConfig(), seed)
    vecs = view_vectors(router, {q.view for q in queries})
    qvecs = router.encoder.encode([q.query for q in queries])
    out = []
    for n, (q, negs) in enumerate(zip(queries, mined)):
        if not negs:
            continue
        ids = [q.positive, *negs]
        prior = np.asarray([float(qvecs[n] @ vecs[q.view][i]) for i in ids], np.float32)
        scores = teacher.score(q.query, [_view_doc(docs[i], q.view) for i in ids], prior=prior)
        out.append(ScoredQuery(q.query, q.view, tuple(ids), tuple(float(s) for s in scores)))
        if on_query is not None:
            on_query(n + 1, len(queries))
    return out


def save_teacher_scores(path: str | Path, scored: Sequence[ScoredQuery], teacher: str) -> None:
    """Write one JSON line per query: ``{"query", "view", "candidates", "scores", "teacher"}`` (atomically)."""
    lines = [json.dumps({**dataclasses.asdict(s), "teacher": teacher}, ensure_ascii=False) for s in scored]
    atomic_write_text(path, "\n".join(lines) + "\n")


def load_teacher_scores(path: str | Path) -> list[ScoredQuery]:
    """Read a file written by :func:`save_teacher_scores` (ValueError naming the bad line)."""
    out = []
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            out.append(ScoredQuery(str(data["query"]), str(data["view"]), tuple(map(str, data["candidates"])),
                                   tuple(float(x) for x in data["scores"])))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{lineno}: not a teacher-score line ({exc})") from exc
    if not out:
        raise ValueError(f"{path}: no teacher scores")
    return out


@dataclass
class DistillConfig:
    """Distillation settings (defaults fit a few CPU minutes)."""

    student: str = "cross-encoder"
    epochs: int = 2
    max_steps: int | None = None
    time_budget_s: float | None = 240.0
    batch_queries: int = 4
    lr: float = 4e-5
    head_lr: float = 2e-3
    max_length: int = 128
    train_layers: int | None = 3
    bi_scale: float = 20.0
    seed: int = 0
    #: share of the scored queries held out to check the student against the teacher (0: none; kept
    #: only when it leaves at least 2 queries on each side)
    validation_share: float = 0.1

    def validate(self) -> None:
        """Raise ValueError naming the first bad setting."""
        if self.student not in STUDENTS:
            raise ValueError(f"unknown student {self.student!r}: use {' or '.join(STUDENTS)}")
        if self.batch_queries < 1 or self.epochs < 1:
            raise ValueError("batch_queries and epochs must be >= 1")
        if not 0.0 <= self.validation_share < 1.0:
            raise ValueError(f"validation_share must be in [0, 1), got {self.validation_share}")


def _agreement(forward: Callable[[Sequence[ScoredQuery]], tuple[Any, Any, Any]], held_out: Sequence[ScoredQuery],
               batch: int) -> dict[str, float] | None:
    """How well the student follows the teacher on held-out queries: the Margin-MSE loss and the share
    of queries where both put the same candidate first (None without held-out queries)."""
    import torch

    if not held_out:
        return None
    losses, same_top = [], []
    with torch.inference_mode():
        for b in range(0, len(held_out), batch):
            chunk = held_out[b:b + batch]
            pred, teacher, mask = forward(chunk)
            losses.append(margin_mse_loss(pred[:, 0], pred[:, 1:], teacher[:, 0], teacher[:, 1:], mask).item() * len(chunk))
            width = [len(s.candidates) for s in chunk]
            same_top += [float(torch.argmax(pred[i, :w]) == torch.argmax(teacher[i, :w])) for i, w in enumerate(width)]
    return {"margin_mse": round(sum(losses) / len(held_out), 4), "teacher_top1": round(float(np.mean(same_top)), 4)}


def distill(router: Any, scored: Sequence[ScoredQuery], config: DistillConfig | None = None,
            on_step: Callable[[int, int, float], None] | None = None) -> tuple[Any, dict]:
    """Train the ``config.student`` on the teacher's margins; returns ``(student, stats)``.

    The student is a :class:`~retriever.rerank.CrossEncoderReranker` or a sentence-transformers
    model; save it with ``.save(folder)``. ``config.validation_share`` of the queries is held out and
    ``stats["validation"]`` gives the student's agreement with the teacher on them before and after.
    """
    import torch

    config = config or DistillConfig()
    config.validate()
    docs = router.docs
    unknown = sorted({c for s in scored for c in s.candidates if c not in docs})
    if unknown:
        raise ValueError(f"the teacher scores name skills this library lacks, e.g. {unknown[0]!r}")
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    width = max(len(s.candidates) for s in scored)
    train, held_out = hold_out(scored, config.validation_share, rng)
    if config.student == "cross-encoder":
        student: Any = CrossEncoderReranker.from_base("minilm", max_length=config.max_length, seed=config.seed)
        module = student.module
        freeze_lower_layers(module.bert, config.train_layers)
        groups = [{"params": [p for p in module.bert.parameters() if p.requires_grad], "lr": config.lr},
                  {"params": list(module.head.parameters()) + [module.prior_weight], "lr": config.head_lr}]
        vecs = view_vectors(router, {s.view for s in scored})
        qvecs = dict(zip([s.query for s in scored], router.encoder.encode([s.query for s in scored])))
    else:
        student = TrainableBiEncoder("minilm", config.bi_scale, config.max_length)
        module = student.model
        groups = [{"params": [p for p in module.parameters() if p.requires_grad], "lr": config.lr}]
    optim = torch.optim.AdamW(groups, weight_decay=0.01)
    schedule = MiniBatches(len(train), config.batch_queries, config.epochs, rng, config.max_steps, config.time_budget_s)

    def forward(batch: Sequence[ScoredQuery]) -> tuple[Any, Any, Any]:
        """(student scores, teacher scores, mask of real negatives) of a batch; rows are padded to one
        width by repeating the positive and the mask drops the padding."""
        cands = [list(s.candidates) + [s.candidates[0]] * (width - len(s.candidates)) for s in batch]
        texts = [[render(docs[c], s.view) for c in row] for s, row in zip(batch, cands)]
        teacher = torch.tensor([list(s.scores) + [s.scores[0]] * (width - len(s.scores)) for s in batch])
        mask = torch.tensor([[j < len(s.candidates) for j in range(1, width)] for s in batch])
        if config.student == "cross-encoder":
            prior = torch.tensor(np.stack([student.prepare_prior([float(qvecs[s.query] @ vecs[s.view][c]) for c in row])
                                           for s, row in zip(batch, cands)]), dtype=torch.float32)
            flat_q = [s.query for s in batch for _ in range(width)]
            pred = student.forward_texts(flat_q, [t for row in texts for t in row], prior.view(-1))
            return pred.view(len(batch), width), teacher, mask
        return student.scores([s.query for s in batch], texts), teacher, mask

    validation = {"queries": len(held_out), "before": _agreement(forward, held_out, config.batch_queries)}
    module.train()
    losses: list[float] = []
    for batch in schedule:
        pred, teacher, mask = forward([train[i] for i in batch])
        loss = margin_mse_loss(pred[:, 0], pred[:, 1:], teacher[:, 0], teacher[:, 1:], mask)
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in groups for p in g["params"]], 1.0)
        optim.step()
        losses.append(loss.item())
        if on_step is not None:
            on_step(schedule.steps, schedule.total_steps, losses[-1])
    module.eval()
    seconds = round(schedule.seconds, 1)  # training only, not the held-out check after it
    validation["after"] = _agreement(forward, held_out, config.batch_queries)
    stats = {"student": config.student, "steps": schedule.steps, "planned_steps": schedule.total_steps,
             "queries": len(train), "seconds": seconds,
             "stopped_by_time_budget": schedule.stopped_early,
             "first_loss": round(float(np.mean(losses[:10])), 4) if losses else None,
             "last_loss": round(float(np.mean(losses[-10:])), 4) if losses else None,
             "validation": validation, "config": dataclasses.asdict(config)}
    if config.student == "cross-encoder":
        student.meta.update({"trained": True, "distilled": stats})
        return student, stats
    return student.model, stats
