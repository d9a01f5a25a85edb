"""Ranking metrics for routing (one relevant skill per query): Hit@1, MRR@10, nDCG@k, Recall@k."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

NDCG_KS = (1, 3, 10)
RECALL_KS = (10, 20, 50)


def rank_of(ranking: Sequence[str], positive: str) -> int | None:
    """1-based rank of ``positive`` in ``ranking`` or None."""
    for rank, doc_id in enumerate(ranking, start=1):
        if doc_id == positive:
            return rank
    return None


def ranking_metrics(rankings: Sequence[Sequence[str]], positives: Sequence[str]) -> dict[str, float]:
    """Mean metrics over queries; each ranking is a list of ids best first, with one relevant id.

    With a single relevant item nDCG@k is ``1 / log2(1 + rank)`` when rank <= k (the ideal DCG is 1).
    """
    if len(rankings) != len(positives):
        raise ValueError(f"{len(rankings)} rankings for {len(positives)} positives")
    if not rankings:
        raise ValueError("no queries to evaluate")
    ranks = [rank_of(r, p) for r, p in zip(rankings, positives)]
    out = {"hit@1": np.mean([r == 1 for r in ranks]),
           "mrr@10": np.mean([1.0 / r if r is not None and r <= 10 else 0.0 for r in ranks])}
    for k in NDCG_KS:
        out[f"ndcg@{k}"] = np.mean([1.0 / math.log2(1 + r) if r is not None and r <= k else 0.0 for r in ranks])
    for k in RECALL_KS:
        out[f"recall@{k}"] = np.mean([r is not None and r <= k for r in ranks])
    return {k: round(float(v), 4) for k, v in out.items()}
