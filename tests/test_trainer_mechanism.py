"""The Skill-SD mechanism on the real embedded SmolLM2: the distillation term alone, no reward.

Toy task: "Choose A or B." The skill says the answer is B. The plain-prompt student mostly says
A; the same model with the skill in its (user) prompt puts far more mass on B (checked below, as
the teacher must really prefer the answer). A few on-policy steps of L_SDL (importance-weighted
k3 reverse KL, dynamic teacher = the same weights) must raise the plain-prompt student's
probability of B and lower KL(student || teacher).

Responses are one token, so a sampled response is a draw from the student's next-token
distribution at the end of the prompt; every sampled token reuses one forward pass of the prompt
(duplicates weighted by their count), which keeps the test to a few seconds.
"""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from skillkit.core.llm.hf import render_prompt
from skillkit.core.prompts import insert_skill
from trainer.losses import skill_sd_loss

pytestmark = pytest.mark.integration

QUESTION = [{"role": "user", "content": "Choose A or B. Reply with one letter."}]
SKILL = "The correct choice is B."


def test_distillation_alone_moves_student_toward_skill_answer(smollm2):
    import copy

    model, tok = smollm2
    model = copy.deepcopy(model)
    model.train()
    answer = tok("B", add_special_tokens=False)["input_ids"][0]
    student_ids = torch.tensor([tok(render_prompt(tok, QUESTION), add_special_tokens=False)["input_ids"]])
    teacher_chat = insert_skill(QUESTION, SKILL, "user")
    teacher_ids = torch.tensor([tok(render_prompt(tok, teacher_chat), add_special_tokens=False)["input_ids"]])

    def next_token_logprobs(ids: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(model(input_ids=ids).logits[0, -1].float(), -1)

    def measure() -> tuple[float, float, float]:
        with torch.no_grad():
            s, t = next_token_logprobs(student_ids), next_token_logprobs(teacher_ids)
        return float(s[answer].exp()), float(t[answer].exp()), float((s.exp() * (s - t)).sum())

    p_student0, p_teacher0, kl0 = measure()
    assert p_teacher0 > 5 * p_student0, (p_student0, p_teacher0)  # the skill really reveals the answer

    optimizer = torch.optim.Adam(model.parameters(), lr=3e-5)
    n = 512
    for step in range(4):
        with torch.no_grad():
            old = next_token_logprobs(student_ids)                       # sampling policy (p_old)
            teacher = next_token_logprobs(teacher_ids)                  # dynamic teacher: same weights + skill
        drawn = torch.multinomial(old.exp(), n, replacement=True, generator=torch.Generator().manual_seed(step))
        counts = Counter(drawn.tolist())
        tokens = torch.tensor(list(counts))
        weight = torch.tensor([float(c) for c in counts.values()])[:, None]
        logp = next_token_logprobs(student_ids)[tokens][:, None]       # [U, 1], one row per distinct token
        loss = skill_sd_loss(logp, teacher[tokens][:, None], old[tokens][:, None], weight, denom=float(n))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    p_student1, _, kl1 = measure()
    assert p_student1 > 2 * p_student0, (p_student0, p_student1)
    assert kl1 < kl0, (kl0, kl1)
