"""Fine-tune the dense stage's bi-encoder on labelled (query, skill) pairs.

The cross-encoder teachers (``train_reranker``) learn little beyond their first-stage prior, because
most of their training queries are the skills' own descriptions and names, which dense retrieval
already ranks first. This trains the bi-encoder itself on queries written the way users ask (a
JSONL of ``{"query", "skill"}``, e.g. routing logs), with the in-batch softmax loss of DPR
("Dense Passage Retrieval for Open-Domain Question Answering", Karpukhin et al. 2020): each query
is scored against every positive in its batch plus one mined hard negative per query, and the loss
is the cross-entropy of its own positive::

    L = CE( scale x cos(q_i, [d_1+, ..., d_B+, d_1-, ..., d_B-]),  i )

The model is saved where ``skillkit route`` and the agent load the dense stage's encoder
(``LIB/encoder``), so routing keeps dense latency.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from retriever.encoders import Encoder
from retriever.minibatches import MiniBatches
from retriever.train_reranker import NegativeConfig, TrainQuery, hold_out, mine_negatives, synthesize_queries
from skillkit.core.models import load_embedder


class TrainableBiEncoder:
    """A sentence-transformers bi-encoder (default the embedded MiniLM) in training mode:
    score = ``scale`` x cosine(query, doc). Shared by fine-tuning and Margin-MSE distillation."""

    def __init__(self, base: str = "minilm", scale: float = 20.0, max_length: int = 128) -> None:
        self.model = load_embedder(base, device="cpu")
        self.model.max_seq_length = max_length
        self.scale = scale

    def embed(self, texts: Sequence[str]) -> Any:
        """Unit vectors of ``texts``, with gradients."""
        import torch

        features = self.model.tokenize(list(texts))
        out = self.model(features)["sentence_embedding"]
        return torch.nn.functional.normalize(out, dim=-1)

    def scores(self, queries: Sequence[str], groups: Sequence[Sequence[str]]) -> Any:
        """``(B, W)`` scores of each query against its group of doc texts (W = group width)."""
        q = self.embed(queries)
        width = len(groups[0])
        d = self.embed([t for g in groups for t in g]).view(len(groups), width, -1)
        return self.scale * (d @ q.unsqueeze(-1)).squeeze(-1)


@dataclass
class EncoderTrainConfig:
    """Fine-tuning settings (the defaults train 64 labelled queries in under a minute on 2 CPU cores).

    ``synthetic``: also train on label-free queries of every skill (its description and its name in
    words, as ``train_reranker`` synthesises), so skills without labelled queries are pulled toward
    queries too. ``validation_share``: labelled queries held out to report Hit@1 before and after.
    """

    epochs: int = 3
    max_steps: int | None = None
    time_budget_s: float | None = 600.0
    batch_queries: int = 16
    lr: float = 2e-5
    scale: float = 20.0
    max_length: int = 128
    synthetic: bool = False
    validation_share: float = 0.1
    seed: int = 0

    def validate(self) -> None:
        """Raise ValueError naming the first bad setting."""
        if self.batch_queries < 2:
            raise ValueError(f"batch_queries must be >= 2 (in-batch negatives), got {self.batch_queries}")
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if not 0.0 <= self.validation_share < 1.0:
            raise ValueError(f"validation_share must be in [0, 1), got {self.validation_share}")


def _hit_at_1(queries: Sequence[TrainQuery], query_vecs: np.ndarray, ids: Sequence[str], doc_vecs: np.ndarray) -> float:
    """Share of ``queries`` whose own skill has the highest cosine over the whole library."""
    best = np.argmax(query_vecs @ doc_vecs.T, axis=1)
    return round(float(np.mean([ids[b] == q.positive for q, b in zip(queries, best)])), 4)


def train_encoder(router: Any, labelled: Sequence[TrainQuery], config: EncoderTrainConfig | None = None,
                  base: str = "minilm",
                  on_step: Callable[[int, int, float], None] | None = None) -> tuple[Any, dict]:
    """Fine-tune ``base`` on ``labelled`` queries of ``router``'s library; returns the sentence-transformers
    model (``.save(folder)``) and stats, with ``stats["validation"]`` the held-out queries' Hit@1 over
    the whole library before and after training."""
    import torch

    config = config or EncoderTrainConfig()
    config.validate()
    docs = router.docs
    unknown = sorted({q.positive for q in labelled if q.positive not in docs})
    if unknown:
        raise ValueError(f"labelled queries point to skills this library lacks, e.g. {unknown[0]!r}")
    rng = random.Random(config.seed)
    train, held_out = hold_out(list(labelled), config.validation_share, rng)
    n_labelled = len(train)
    if config.synthetic:
        train += synthesize_queries(list(docs.values()))
    if len(train) < 2:
        raise ValueError(f"fine-tuning needs at least 2 training queries, got {len(train)}")
    torch.manual_seed(config.seed)
    hard = [negs[0] if negs else None
            for negs in mine_negatives(train, router, NegativeConfig(1, 0, 0, 0), config.seed)]
    ids = list(docs)
    model = TrainableBiEncoder(base, config.scale, config.max_length)
    optim = torch.optim.AdamW(model.model.parameters(), lr=config.lr, weight_decay=0.01)
    schedule = MiniBatches(len(train), config.batch_queries, config.epochs, rng, config.max_steps,
                           config.time_budget_s, min_size=2)

    validation: dict[str, Any] = {"queries": len(held_out), "before": None, "after": None}
    if held_out:
        validation["before"] = _hit_at_1(held_out, router.encoder.encode([q.query for q in held_out]), ids,
                                         router.index.get_vectors(ids))
    model.model.train()
    losses: list[float] = []
    for batch_ids in schedule:
        batch = [train[i] for i in batch_ids]
        negatives = [hard[i] or rng.choice(ids) for i in batch_ids]
        q = model.embed([t.query for t in batch])
        d = model.embed([docs[t.positive].to_text() for t in batch] + [docs[n].to_text() for n in negatives])
        logits = config.scale * q @ d.T
        # a batch can hold two queries of one skill: mask the other copies of a query's positive
        # (and another query's hard negative that is this query's positive)
        columns = [u.positive for u in batch] + negatives
        same = torch.tensor([[c == t.positive and j != i for j, c in enumerate(columns)] for i, t in enumerate(batch)])
        logits = logits.masked_fill(same, float("-inf"))
        loss = torch.nn.functional.cross_entropy(logits, torch.arange(len(batch)))
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.model.parameters(), 1.0)
        optim.step()
        losses.append(loss.item())
        if on_step is not None:
            on_step(schedule.steps, schedule.total_steps, losses[-1])
    model.model.eval()
    seconds = round(schedule.seconds, 1)  # training only, not the held-out check after it
    if held_out:
        tuned = Encoder(model.model)
        validation["after"] = _hit_at_1(held_out, tuned.encode([q.query for q in held_out]), ids,
                                        tuned.encode([docs[i].to_text() for i in ids]))
    stats = {"steps": schedule.steps, "planned_steps": schedule.total_steps, "queries": len(train),
             "labelled_queries": n_labelled, "seconds": seconds,
             "stopped_by_time_budget": schedule.stopped_early,
             "first_loss": round(float(np.mean(losses[:5])), 4) if losses else None,
             "last_loss": round(float(np.mean(losses[-5:])), 4) if losses else None,
             "validation": validation, "config": dataclasses.asdict(config)}
    return model.model, stats
