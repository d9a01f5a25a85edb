"""The Skill-SD teacher: the same model, with a skill in its prompt, re-scoring the student's tokens.

The teacher never generates. For every turn sample it renders the student's chat with the task's
skill inserted (:func:`skillkit.core.prompts.insert_skill`), appends the *student's* response tokens and
computes their log-probs under no_grad. Its weights follow ``sync_every``:

* ``1`` (Skill-SD): the live student weights, used under ``torch.no_grad`` - no second copy in
  memory; scoring happens right after the rollouts, so the teacher is the current policy.
* ``0`` (frozen ablation): a copy of the weights taken once at the start of training.
* ``N >= 2``: a copy refreshed with the student's weights at the start of iterations
  1, 1 + N, 1 + 2N, ... (:meth:`Teacher.sync`), so it lags the student by up to N - 1 updates.

Anchored generations (:meth:`Teacher.next_generation`): from generation 1 on, the teacher is a
frozen copy of the previous generation's final student ``p_k``, anchored to the generation-0
weights ``p_0``: ``log p_T = log((1 - beta) p_k + beta p_0)`` on every scored token
(:func:`trainer.losses.anchored_logprobs`), both with the skill in the prompt.

The skills themselves come from a :class:`trainer.skills.SkillSource` (UCB over the library).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from skillkit.core.prompts import insert_skill
from trainer.logprobs import token_logprobs, token_logprobs_and_entropy
from trainer.losses import anchored_logprobs
from trainer.rollout import TurnSample, chat_token_ids, collate, response_logprobs


class Teacher:
    """Scores student responses with a skill in the prompt (see module docstring); ``entropy`` also
    keeps the entropy of its next-token distribution at every scored token (SRPO's uncertainty; for
    an anchored teacher, that of ``p_k``)."""

    def __init__(self, model: nn.Module, tokenizer: Any, sync_every: int = 1, skill_position: str = "user",
                 chunk_size: int | None = 512, batch_size: int = 16, entropy: bool = False) -> None:
        if sync_every < 0:
            raise ValueError(f"teacher sync_every must be >= 0, got {sync_every}")
        self.sync_every = sync_every
        self.student = model
        self.model = model if sync_every == 1 else copy.deepcopy(model).requires_grad_(False).eval()
        self.tokenizer = tokenizer
        self.skill_position = skill_position
        self.chunk_size = chunk_size
        self.batch_size = batch_size
        self.entropy = entropy
        self.anchor: nn.Module | None = None
        self.beta = 0.0

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

    @torch.no_grad()
    def next_generation(self, anchor_state: dict[str, Any], beta: float) -> None:
        """Start a generation: the teacher becomes a frozen copy of the student's current weights (the
        finished generation's student), anchored with weight ``beta`` to ``anchor_state`` (generation 0)."""
        if self.has_copy:
            self.model.load_state_dict(self.student.state_dict())
        else:
            self.model = copy.deepcopy(self.student).requires_grad_(False).eval()
        if self.anchor is None:
            self.anchor = copy.deepcopy(self.student).requires_grad_(False).eval()
            self.anchor.load_state_dict(anchor_state)
        self.sync_every = 0
        self.beta = beta

    def generation_state(self) -> dict[str, Any] | None:
        """A later generation's teacher (its frozen weights, the anchor, beta) for a checkpoint; None in
        generation 0, where :meth:`state_dict` says all."""
        if self.anchor is None:
            return None
        return {"model": self.model.state_dict(), "anchor": self.anchor.state_dict(), "beta": self.beta}

    def load_generation_state(self, state: dict[str, Any] | None) -> None:
        """Restore :meth:`generation_state` (nothing for None)."""
        if state is not None:
            self.next_generation(state["anchor"], state["beta"])
            self.model.load_state_dict(state["model"])

    def prompt_ids(self, sample: TurnSample, skill_text: str) -> list[int]:
        """Token ids of the teacher's prompt: the student's chat with the skill inserted."""
        return chat_token_ids(self.tokenizer, insert_skill(sample.messages, skill_text, self.skill_position))

    @torch.no_grad()
    def score(self, samples: Sequence[TurnSample], skills: dict[str, tuple[str, str]]) -> int:
        """Fill ``teacher_logprobs`` (and ``skill_name``, ``teacher_entropy``) of every sample whose task
        has a skill. ``skills`` maps task id -> (skill name, skill text). Returns how many were scored."""
        todo = [s for s in samples if s.task_id in skills]
        logps, entropies = self.logprobs(todo, [skills[s.task_id][1] for s in todo])
        for k, s in enumerate(todo):
            s.teacher_logprobs = logps[k]
            s.teacher_entropy = entropies[k] if entropies is not None else None
            s.skill_name = skills[s.task_id][0]
        return len(todo)

    @torch.no_grad()
    def logprobs(self, samples: Sequence[TurnSample], skill_texts: Sequence[str]
                 ) -> tuple[list[list[float]], list[list[float]] | None]:
        """The teacher's log-probs of each sample's response tokens with ``skill_texts[k]`` in its prompt
        (anchored when a generation set an anchor), and the entropies when ``entropy`` is on."""
        device = next(self.model.parameters()).device
        logps: list[list[float]] = []
        entropies: list[list[float]] | None = [] if self.entropy else None
        models = [m for m in (self.model, self.anchor) if m is not None]
        modes = [m.training for m in models]
        for m in models:
            m.eval()
        try:
            for start in range(0, len(samples), self.batch_size):
                chunk = samples[start:start + self.batch_size]
                prompts = [self.prompt_ids(s, text) for s, text in zip(chunk, skill_texts[start:start + self.batch_size])]
                batch = collate(chunk, self.tokenizer.pad_token_id, prompts=prompts, device=device)
                args = (batch["input_ids"], batch["attention_mask"], batch["mask"])
                if self.entropy:
                    logp, ent = token_logprobs_and_entropy(self.model, *args, self.chunk_size)
                    entropies.extend(response_logprobs(ent, batch))
                else:
                    logp = token_logprobs(self.model, *args, self.chunk_size)
                if self.anchor is not None:
                    logp = anchored_logprobs(logp, token_logprobs(self.anchor, *args, self.chunk_size), self.beta)
                logps.extend(response_logprobs(logp, batch))
        finally:
            for m, mode in zip(models, modes):
                m.train(mode)
        return logps, entropies

    def state_dict(self) -> dict[str, Any] | None:
        """The teacher's own weights (None when it uses the student's live weights)."""
        return self.model.state_dict() if self.has_copy else None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Restore the weights saved by :meth:`state_dict` (a checkpoint)."""
        if self.has_copy and state is not None:
            self.model.load_state_dict(state)

