"""Ground-truth guidance (method ``skillsd_gt``): the oracle's targets on the states the student visits.

"Even your Teacher Needs Guidance" (Borup & Andersen, 2021): iterated self-distillation
over-regularises, and mixing the ground truth into the target with weight alpha damps it. Here the
ground truth of a visited state is what ``env.oracle()`` says (a ground-truth method, so it may ask):
the Sokoban solver's optimal next moves on every visited state, the app suite's reference solution
on the first turn only (later turns have none). A target is the action text's tokens followed by
end of turn, rendered with ``sft.response_template`` as the supervised warm start renders them.

The loss (:func:`trainer.losses.oracle_nll`, :func:`trainer.losses.guided_distillation`) is
computed in :func:`trainer.train.policy_update`; this module finds the targets, builds their rows
and estimates ``alpha`` when ``loss.gt_alpha: auto`` (:func:`estimate_alpha`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from environments.base import Environment, Oracle
from trainer.logprobs import token_logprobs
from trainer.losses import auto_gt_alpha
from trainer.rollout import TurnSample, collate, response_logprobs
from trainer.teacher import Teacher


class OracleTargets:
    """Attaches the oracle's target token ids to visited states (``TurnSample.oracle_targets``)."""

    def __init__(self, env: Environment, tokenizer: Any, response_template: str = "{action}") -> None:
        oracle = env.oracle()
        if oracle is None:
            raise ValueError(f"ground-truth guidance needs an environment with an oracle; {env.name!r} has none")
        self.oracle: Oracle = oracle
        self.tokenizer = tokenizer
        self.template = response_template
        self._optimal: dict[str, list[str] | None] = {}
        self._expert: dict[str, list[str] | None] = {}

    def actions_for(self, sample: TurnSample) -> list[str]:
        """The ground-truth actions of the sample's state: the oracle's optimal next actions for the
        observation (its last message), else on the first turn the first step of the reference
        solution, else none (also for solved or dead states)."""
        observation = sample.messages[-1]["content"]
        if observation not in self._optimal:
            self._optimal[observation] = self.oracle.optimal_next_actions(observation)
        optimal = self._optimal[observation]
        if optimal is None and sample.turn == 0:
            if sample.task_id not in self._expert:
                self._expert[sample.task_id] = self.oracle.expert_actions(sample.task_id)
            expert = self._expert[sample.task_id]
            return expert[:1] if expert else []
        return list(optimal or [])

    def attach(self, samples: Sequence[TurnSample]) -> int:
        """Set ``oracle_targets`` of every sample whose state has ground truth; returns how many have."""
        eos = self.tokenizer.eos_token_id
        n = 0
        for s in samples:
            actions = self.actions_for(s)
            s.oracle_targets = [self.tokenizer(self.template.format(action=a), add_special_tokens=False)["input_ids"]
                                + [eos] for a in actions] or None
            n += s.oracle_targets is not None
        return n


def target_rows(samples: Sequence[TurnSample]) -> tuple[list[TurnSample], list[int]]:
    """One row per oracle target (the sample's prompt, the target as response) and, per row, the index
    of its sample in ``samples`` (:func:`trainer.losses.oracle_nll` groups by it)."""
    rows, index = [], []
    for k, s in enumerate(samples):
        for target in s.oracle_targets or []:
            rows.append(TurnSample(s.prompt_ids, target, [0.0] * len(target), s.messages, s.task_id, s.episode,
                                   s.group, s.turn))
            index.append(k)
    return rows, index


@torch.no_grad()
def _row_logprobs(model: torch.nn.Module, rows: Sequence[TurnSample], pad_id: int, chunk_size: int | None,
                  batch_size: int) -> list[float]:
    device = next(model.parameters()).device
    out: list[float] = []
    for start in range(0, len(rows), batch_size):
        batch = collate(rows[start:start + batch_size], pad_id, device=device)
        logp = token_logprobs(model, batch["input_ids"], batch["attention_mask"], batch["mask"], chunk_size)
        out.extend(sum(lp) for lp in response_logprobs(logp, batch))
    return out


def estimate_alpha(model: torch.nn.Module, teacher: Teacher, samples: Sequence[TurnSample],
                   skills: dict[str, tuple[str, str]], pad_id: int, chunk_size: int | None = 512,
                   batch_size: int = 16) -> tuple[float, int]:
    """``loss.gt_alpha: auto`` for one iteration (:func:`trainer.losses.auto_gt_alpha`) and the number of
    states it used: on the samples that have oracle targets and a teacher skill, the probability that
    the next action is an optimal one, ``q = sum_m p(target_m)``, under the teacher (skill in the
    prompt) and under the student (plain prompt), both before the update."""
    guided = [s for s in samples if s.oracle_targets and s.task_id in skills]
    if not guided:
        return auto_gt_alpha(torch.zeros(0), torch.zeros(0)), 0
    rows, index = target_rows(guided)
    was_training = model.training
    model.eval()
    try:
        student = _row_logprobs(model, rows, pad_id, chunk_size, batch_size)
    finally:
        model.train(was_training)
    teacher_lp, _ = teacher.logprobs(rows, [skills[r.task_id][1] for r in rows])
    q_s, q_t = torch.zeros(len(guided), dtype=torch.float64), torch.zeros(len(guided), dtype=torch.float64)
    idx = torch.tensor(index)
    q_s.index_add_(0, idx, torch.tensor(student, dtype=torch.float64).exp())
    q_t.index_add_(0, idx, torch.tensor([sum(lp) for lp in teacher_lp], dtype=torch.float64).exp())
    return auto_gt_alpha(q_t, q_s), len(guided)
