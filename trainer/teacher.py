"""The Skill-SD teacher: the same model, with a skill in its prompt, re-scoring the student's tokens.

The teacher never generates. For every turn sample it renders the student's chat with the task's
skill inserted (:func:`skillkit.core.prompts.insert_skill`), appends the *student's* response tokens and
computes their log-probs under no_grad. Modes:

* ``dynamic`` (Skill-SD): the live student weights, used under ``torch.no_grad`` - no second copy
  in memory; scoring happens right after the rollouts, so the teacher is the current policy.
* ``frozen`` (ablation): a deep copy of the weights taken once at the start of training.

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

    def __init__(self, model: nn.Module, tokenizer: Any, mode: str = "dynamic", skill_position: str = "user",
                 chunk_size: int | None = 512, batch_size: int = 16) -> None:
        if mode not in ("dynamic", "frozen"):
            raise ValueError(f"teacher mode must be 'dynamic' or 'frozen', got {mode!r}")
        self.mode = mode
        self.model = model if mode == "dynamic" else copy.deepcopy(model).requires_grad_(False).eval()
        self.tokenizer = tokenizer
        self.skill_position = skill_position
        self.chunk_size = chunk_size
        self.batch_size = batch_size

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
        """The frozen copy's weights (None in dynamic mode: they are the student's)."""
        return self.model.state_dict() if self.mode == "frozen" else None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        if self.mode == "frozen" and state is not None:
            self.model.load_state_dict(state)

