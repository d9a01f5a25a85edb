"""Train the cross-encoder reranker: synthetic queries, hard negatives, listwise (or pointwise) loss.

Queries come from the library itself (no labels needed), under a *view* that hides the part of
every candidate the query was taken from, so the model cannot win by copying text:

* ``desc``: the query is a skill's description; all candidates are shown as ``name | body``.
* ``name``: the query is the skill's name in words; all candidates are ``description | body``.
* ``full``: a real labelled query (optional); candidates are shown whole.

Each query gets one positive and ``n`` hard negatives mixed from embedding neighbours, BM25
neighbours, the same category and random skills; a false-negative filter drops candidates that are
near-duplicates of the positive. The loss is the softmax cross-entropy of the positive among the
list (``listwise``); ``pointwise`` BCE is kept as an ablation.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import numpy as np

from retriever.docs import RouterDoc
from retriever.evaluation import ranking_metrics
from retriever.minibatches import MiniBatches
from retriever.rerank import CrossEncoderReranker, listwise_loss, pointwise_loss

VIEWS = ("desc", "name", "full")
T = TypeVar("T")


@dataclass(frozen=True)
class TrainQuery:
    """One training query: its text, the id of the right skill and the view candidates are shown in."""

    query: str
    positive: str
    view: str = "full"


@dataclass
class NegativeConfig:
    """How many hard negatives of each source per query, and the false-negative filter threshold."""

    n_dense: int = 4
    n_bm25: int = 2
    n_category: int = 1
    n_random: int = 1
    fn_threshold: float = 0.92

    @property
    def total(self) -> int:
        """Negatives per query."""
        return self.n_dense + self.n_bm25 + self.n_category + self.n_random


@dataclass
class TrainConfig:
    """Reranker training settings (defaults train in a few minutes on CPU).

    ``labelled_repeat``: how many times each labelled query enters an epoch (they are few and
    closer to real requests than the synthetic ones). ``train_layers``: fine-tune only the top N transformer layers (plus the head); the embeddings
    and lower layers stay frozen, which halves the cost of a step. None trains everything.
    ``prior_dropout``: the share of training queries whose first-stage prior is zeroed (z-scored,
    zero is "an average candidate"), so the head must rank those from the text alone; when the
    training queries are ones the first stage already ranks right (a skill's own description or
    name), the prior explains the labels and the text head learns nothing beyond it otherwise.
    """

    loss: str = "listwise"
    epochs: int = 2
    max_steps: int | None = None
    time_budget_s: float | None = 240.0
    batch_queries: int = 4
    lr: float = 4e-5
    head_lr: float = 2e-3
    max_length: int = 128
    train_layers: int | None = 3
    warmup_frac: float = 0.1
    seed: int = 0
    views: tuple[str, ...] = ("desc", "name")
    labelled_repeat: int = 1
    prior_dropout: float = 0.0
    negatives: NegativeConfig = field(default_factory=NegativeConfig)

    def validate(self) -> None:
        """Raise ValueError naming the first bad setting."""
        if self.loss not in ("listwise", "pointwise"):
            raise ValueError(f"unknown loss {self.loss!r}: use listwise or pointwise")
        if unknown := set(self.views) - set(VIEWS):
            raise ValueError(f"unknown query views {sorted(unknown)}: use {', '.join(VIEWS)}")
        if self.batch_queries < 1 or self.epochs < 1 or self.labelled_repeat < 1:
            raise ValueError("batch_queries, epochs and labelled_repeat must be >= 1")
        if not 0.0 <= self.prior_dropout <= 1.0:
            raise ValueError(f"prior_dropout must be in [0, 1], got {self.prior_dropout}")


def render(doc: RouterDoc, view: str) -> str:
    """The text of ``doc`` shown to the cross-encoder under a query view."""
    if view == "desc":
        return " | ".join(p for p in (doc.name, doc.body) if p)
    if view == "name":
        return " | ".join(p for p in (doc.description, doc.body) if p) or doc.name
    return doc.to_text()


def name_to_words(name: str) -> str:
    """``wallet-send_money`` -> ``wallet send money``."""
    return re.sub(r"[-_./]+", " ", re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name)).strip().lower()


def synthesize_queries(docs: Sequence[RouterDoc], views: Sequence[str] = ("desc", "name")) -> list[TrainQuery]:
    """Label-free training queries: each skill's description and its name in words (when informative)."""
    out = []
    for doc in docs:
        if "desc" in views and len(doc.description.split()) >= 3 and doc.body:
            out.append(TrainQuery(doc.description, doc.id, "desc"))
        if "name" in views and len(name_to_words(doc.name).split()) >= 2 and (doc.description or doc.body):
            out.append(TrainQuery(name_to_words(doc.name), doc.id, "name"))
    return out


def filter_false_negatives(positive: str, candidates: Sequence[str], vectors: dict[str, np.ndarray],
                           docs: dict[str, RouterDoc], threshold: float) -> list[str]:
    """Drop candidates that are the positive, share its name or text, or embed within ``threshold`` cosine."""
    pos = docs[positive]
    pos_vec = vectors[positive]
    out = []
    for cand in dict.fromkeys(candidates):
        doc = docs[cand]
        if cand == positive or doc.name == pos.name or doc.to_text() == pos.to_text():
            continue
        if float(vectors[cand] @ pos_vec) >= threshold:
            continue
        out.append(cand)
    return out


def category_of(doc: RouterDoc) -> str | None:
    """The grouping used for same-category negatives: category, else the first tag, else the tier."""
    return doc.category or (doc.tags[0] if doc.tags else None) or doc.tier


def mine_negatives(queries: Sequence[TrainQuery], router: Any, config: NegativeConfig,
                   seed: int = 0) -> list[list[str]]:
    """Hard negatives per query from the router's own index and BM25, same category and random."""
    rng = random.Random(seed)
    docs = router.docs
    ids = list(docs)
    vectors = dict(zip(ids, router.index.get_vectors(ids)))
    by_cat: dict[str | None, list[str]] = {}
    for doc_id, doc in docs.items():
        by_cat.setdefault(category_of(doc), []).append(doc_id)
    texts = [q.query for q in queries]
    depth = min(len(ids), 4 * (config.n_dense + config.n_bm25) + 8)
    _, dense = router.index.search(router.encoder.encode(texts), depth)
    sparse = router.bm25.search(texts, depth)
    out = []
    for q, d_row, s_row in zip(queries, dense, sparse):
        chosen: list[str] = []

        def take(pool: Sequence[str], n: int, positive: str = q.positive, chosen: list[str] = chosen) -> None:
            fresh = [p for p in pool if p not in chosen]
            chosen.extend(filter_false_negatives(positive, fresh, vectors, docs, config.fn_threshold)[:max(n, 0)])

        take(d_row, config.n_dense)
        take([i for i, _ in s_row], config.n_bm25)
        same = by_cat.get(category_of(docs[q.positive]), [])
        take(rng.sample(same, min(len(same), 4 * config.n_category + 4)), config.n_category)
        take(rng.sample(ids, min(len(ids), 4 * config.n_random + 8)), config.n_random)
        # top up from the dense list when a source ran dry, so every list has the same length
        take(d_row, config.total - len(chosen))
        out.append(chosen)
    return out


def hold_out(items: Sequence[T], share: float, rng: random.Random) -> tuple[list[T], list[T]]:
    """(training, held-out) items: a seeded ``share`` held out, when that leaves 2 or more on each side
    (else nothing is held out); the training items keep their order."""
    n_out = round(len(items) * share)
    if n_out < 2 or len(items) - n_out < 2:
        return list(items), []
    order = list(range(len(items)))
    rng.shuffle(order)
    held = set(order[:n_out])
    return [x for i, x in enumerate(items) if i not in held], [x for i, x in enumerate(items) if i in held]


def held_out_check(router: Any, reranker: Any, queries: Sequence[TrainQuery]) -> dict[str, Any]:
    """Hit@1, MRR@10, nDCG@10 and Recall@10 of ``router``'s dense stage and of ``reranker`` behind it, on
    labelled ``queries`` it was not trained on: the record kept in the reranker's folder
    (``meta["validation"]``) that tells ``auto`` routing whether it earns its latency."""
    texts, positives = [q.query for q in queries], [q.positive for q in queries]
    dense = router.route_batch(texts, k=10, method="dense")
    first = router.reranker
    router.reranker = reranker
    try:
        reranked = router.route_batch(texts, k=10, method="rerank")
    finally:
        router.reranker = first

    def metrics(rows: list[list[Any]]) -> dict[str, float]:
        # only the cut-offs within the 10 results routed
        found = ranking_metrics([[r.id for r in row] for row in rows], positives)
        return {k: found[k] for k in ("hit@1", "mrr@10", "ndcg@10", "recall@10")}

    return {"queries": len(queries), "encoder": router.encoder.name, "dense": metrics(dense),
            "reranked": metrics(reranked)}


def view_vectors(router: Any, views: set[str]) -> dict[str, dict[str, np.ndarray]]:
    """Per view, every skill's vector as the router's encoder embeds it in that view (``full``: the index's)."""
    ids = list(router.docs)
    out = {"full": dict(zip(ids, router.index.get_vectors(ids)))}
    for view in views - {"full"}:
        out[view] = dict(zip(ids, router.encoder.encode([render(router.docs[i], view) for i in ids])))
    return out


def freeze_lower_layers(bert: Any, train_layers: int | None) -> None:
    """Freeze embeddings and all but the top ``train_layers`` encoder layers (None: train all)."""
    layers = getattr(getattr(bert, "encoder", None), "layer", None)
    for param in bert.parameters():
        param.requires_grad = train_layers is None or layers is None
    if train_layers is not None and layers is not None:
        for layer in list(layers)[-train_layers:] if train_layers > 0 else []:
            for param in layer.parameters():
                param.requires_grad = True


def train_reranker(router: Any, labelled: Sequence[TrainQuery] = (), config: TrainConfig | None = None,
                   reranker: CrossEncoderReranker | None = None,
                   on_step: Callable[[int, int, float], None] | None = None) -> tuple[CrossEncoderReranker, dict]:
    """Train a cross-encoder for ``router``'s library; returns the reranker and training stats.

    Queries: synthetic ones from ``config.views`` plus ``labelled`` (view ``full``). ``on_step``
    is called as ``on_step(step, total_steps, loss)``.
    """
    import torch

    config = config or TrainConfig()
    config.validate()
    docs = router.docs
    queries = synthesize_queries(list(docs.values()), config.views) + list(labelled) * config.labelled_repeat
    if not queries:
        raise ValueError("no training queries: skills need descriptions/bodies, or pass labelled queries")
    if len(docs) < 2:
        raise ValueError("training a reranker needs at least 2 skills")
    unknown = [q.positive for q in queries if q.positive not in docs]
    if unknown:
        raise ValueError(f"labelled queries point to unknown skill ids, e.g. {unknown[0]!r}")
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    negatives = mine_negatives(queries, router, config.negatives, config.seed)
    view_vecs = view_vectors(router, {q.view for q in queries})
    qvecs = router.encoder.encode([q.query for q in queries])

    reranker = reranker or CrossEncoderReranker.from_base("minilm", seed=config.seed)
    reranker.max_length = config.max_length
    module = reranker.module
    freeze_lower_layers(module.bert, config.train_layers)
    head_params = list(module.head.parameters()) + [module.prior_weight]
    optim = torch.optim.AdamW([
        {"params": [p for p in module.bert.parameters() if p.requires_grad], "lr": config.lr},
        {"params": head_params, "lr": config.head_lr},
    ], weight_decay=0.01)
    schedule = MiniBatches(len(queries), config.batch_queries, config.epochs, rng, config.max_steps,
                           config.time_budget_s)
    total = schedule.total_steps
    warmup = max(1, int(config.warmup_frac * total))
    sched = torch.optim.lr_scheduler.LambdaLR(
        optim, lambda s: min((s + 1) / warmup, max(0.0, (total - s) / max(1, total - warmup))))
    loss_fn = listwise_loss if config.loss == "listwise" else pointwise_loss
    width = 1 + config.negatives.total

    module.train()
    losses: list[float] = []
    for batch in schedule:
        q_texts, d_texts, priors, mask = [], [], [], []
        for qi in batch:
            q = queries[qi]
            cands = [q.positive] + negatives[qi]
            row_prior = reranker.prepare_prior([float(qvecs[qi] @ view_vecs[q.view][c]) for c in cands])
            if config.prior_dropout and rng.random() < config.prior_dropout:
                row_prior = np.zeros_like(row_prior)
            for slot in range(width):
                j = slot if slot < len(cands) else 0
                q_texts.append(q.query)
                d_texts.append(render(docs[cands[j]], q.view))
                priors.append(float(row_prior[j]))
                mask.append(slot < len(cands))
        prior = torch.tensor(priors, dtype=torch.float32)
        scores = reranker.forward_texts(q_texts, d_texts, prior).view(len(batch), width)
        loss = loss_fn(scores, torch.tensor(mask).view(len(batch), width))
        optim.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        optim.step()
        sched.step()
        losses.append(loss.item())
        if on_step is not None:
            on_step(schedule.steps, total, losses[-1])
    module.eval()
    stats = {"steps": schedule.steps, "planned_steps": total, "seconds": round(schedule.seconds, 1),
             "queries": len(queries), "labelled_queries": len(labelled), "docs": len(docs), "loss": config.loss,
             "first_loss": round(float(np.mean(losses[:10])), 4) if losses else None,
             "last_loss": round(float(np.mean(losses[-10:])), 4) if losses else None,
             "stopped_by_time_budget": schedule.stopped_early, "prior_weight": round(module.prior_weight.item(), 3),
             "config": {**asdict(config), "views": list(config.views)}}
    reranker.meta.update({"trained": True, "training": stats})
    return reranker, stats
