"""The Skill-SD teacher: the same model, with a skill in its prompt, re-scoring the student's tokens.

The teacher never generates. For every turn sample it renders the student's chat with the task's
skill inserted (:func:`skillkit.core.prompts.insert_skill`), appends the *student's* response tokens and
computes their log-probs under no_grad. Its weights follow ``sync_every``:

* ``1`` (Skill-SD): the live student weights, used under ``torch.no_grad`` - no second copy in
  memory; scoring happens right after the rollouts, so the teacher is the current policy.
* ``0`` (frozen ablation): a copy of the weights taken once at the start of training.
* ``N >= 2``: a copy refreshed with the student's weights at the start of iterations
  1, 1 + N, 1 + 2N, ... (:meth:`Teacher.sync`), so it lags the student by up to N - 1 updates.

The skills themselves come from a :class:`trainer.skills.SkillSource` (UCB over the library).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from skillkit.core.prompts import insert_skill
from trainer.logprobs import token_logprobs
from trainer.rollout import TurnSample, chat_token_ids, collate, response_logprobs


class Teacher:
    """Scores student responses with a skill in the prompt (see module docstring)."""

    def __init__(self, model: nn.Module, tokenizer: Any, sync_every: int = 1, skill_position: str = "user",
                 chunk_size: int | None = 512, batch_size: int = 16) -> None:
        if sync_every < 0:
            raise ValueError(f"teacher sync_every must be >= 0, got {sync_every}")
        self.sync_every = sync_every
        self.student = model
        self.model = model if sync_every == 1 else copy.deepcopy(model).requires_grad_(False).eval()
        self.tokenizer = tokenizer
        self.skill_position = skill_position
        self.chunk_size = chunk_size
        self.batch_size = batch_size

    @property
    def has_copy(self) -> bool:
        """Whether the teacher holds its own weights (every ``sync_every`` but 1)."""
        return self.model is not self.student

    @torch.no_grad()
    def sync(self, iteration: int) -> bool:
        """Copy the student's weights into the teacher at the iterations ``sync_every`` asks for
        (1, 1 + N, ...); returns whether it did. Nothing to do for the live (1) or frozen (0) teacher."""
        if self.sync_every < 2 or (iteration - 1) % self.sync_every:
            return False
        for mine, theirs in zip(self.model.parameters(), self.student.parameters(), strict=True):
            mine.copy_(theirs)
        for mine, theirs in zip(self.model.buffers(), self.student.buffers(), strict=True):
            mine.copy_(theirs)
        return True

    def prompt_ids(self, sample: TurnSample, skill_text: str) -> list[int]:
        """Token ids of the teacher's prompt: the student's chat with the skill inserted."""
        return chat_token_ids(self.tokenizer, insert_skill(sample.messages, skill_text, self.skill_position))

    @torch.no_grad()
    def score(self, samples: Sequence[TurnSample], skills: dict[str, tuple[str, str]]) -> int:
        """Fill ``teacher_logprobs`` (and ``skill_name``) of every sample whose task has a skill.

        ``skills`` maps task id -> (skill name, skill text). Returns how many samples were scored.
        """
        todo = [s for s in samples if s.task_id in skills]
        device = next(self.model.parameters()).device
        was_training = self.model.training
        self.model.eval()
        try:
            for start in range(0, len(todo), self.batch_size):
                chunk = todo[start:start + self.batch_size]
                prompts = [self.prompt_ids(s, skills[s.task_id][1]) for s in chunk]
                batch = collate(chunk, self.tokenizer.pad_token_id, prompts=prompts, device=device)
                logp = token_logprobs(self.model, batch["input_ids"], batch["attention_mask"], batch["mask"],
                                      self.chunk_size)
                for s, lp in zip(chunk, response_logprobs(logp, batch)):
                    s.teacher_logprobs = lp
                    s.skill_name = skills[s.task_id][0]
        finally:
            self.model.train(was_training)
        return len(todo)

    def state_dict(self) -> dict[str, Any] | None:
        """The teacher's own weights (None when it uses the student's live weights)."""
        return self.model.state_dict() if self.has_copy else None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Restore the weights saved by :meth:`state_dict` (a checkpoint)."""
        if self.has_copy and state is not None:
            self.model.load_state_dict(state)

