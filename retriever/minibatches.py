"""The mini-batch schedule shared by the router's trainers (reranker, encoder, Margin-MSE students)."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator


class MiniBatches:
    """Shuffled mini-batches of ``range(n)`` for ``epochs`` epochs (at most ``max_steps`` batches, one
    per optimizer step) or until ``time_budget_s`` seconds have passed (then ``stopped_early``).

    An epoch's last batch is dropped when it is smaller than ``min_size`` (in-batch losses need two
    queries). Use as ``for batch in schedule:`` with the loss written in the loop body.
    """

    def __init__(self, n: int, batch_size: int, epochs: int, rng: random.Random, max_steps: int | None = None,
                 time_budget_s: float | None = None, min_size: int = 1) -> None:
        if n < min_size or batch_size < min_size:
            raise ValueError(f"{n} training items in batches of {batch_size} cannot fill a batch of {min_size}")
        self.n, self.batch_size, self.rng, self.time_budget_s, self.min_size = n, batch_size, rng, time_budget_s, min_size
        per_epoch = n // batch_size + (1 if n % batch_size >= min_size else 0)
        #: the planned number of steps (what a learning-rate schedule is sized by)
        self.total_steps = per_epoch * epochs if max_steps is None else min(per_epoch * epochs, max_steps)
        self.steps = 0
        self.stopped_early = False
        self.start = time.perf_counter()

    def __iter__(self) -> Iterator[list[int]]:
        self.start = time.perf_counter()
        order = list(range(self.n))
        while self.steps < self.total_steps:
            self.rng.shuffle(order)
            for b in range(0, self.n, self.batch_size):
                batch = order[b:b + self.batch_size]
                if len(batch) < self.min_size:
                    continue
                if self.steps >= self.total_steps:
                    return
                if self.time_budget_s is not None and time.perf_counter() - self.start > self.time_budget_s:
                    self.stopped_early = True
                    return
                self.steps += 1
                yield batch

    @property
    def seconds(self) -> float:
        """Seconds since the first batch was asked for."""
        return time.perf_counter() - self.start
