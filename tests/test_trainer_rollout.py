"""Rollout engine, collation and teacher on a tiny deterministic environment (no real env needed)."""

from __future__ import annotations

import pytest
import torch

from environments.base import Environment, Oracle, StepResult
from environments.episodes import LocalEnvPool
from skillkit.core.llm.base import SamplingParams
from skillkit.core.llm.hf import render_prompt
from skillkit.core.prompts import build_messages, insert_skill
from trainer.logprobs import token_logprobs
from trainer.rollout import (
    assign_group_advantages,
    collate,
    collect_rollouts,
    expert_trajectories,
    response_logprobs,
    supervised_samples,
)
from trainer.teacher import Teacher


class LetterOracle(Oracle):
    def expert_actions(self, task_id: str) -> list[str]:
        return ["z", task_id]  # one wrong turn, then the answer


class LetterEnv(Environment):
    """Say the task's letter: reward 1 and done when the action contains it; at most 3 steps."""

    name = "letters"
    max_steps = 3
    instructions = "Reply with a single letter."

    def __init__(self) -> None:
        self.letter, self.steps = "a", 0

    def task_ids(self, split: str) -> list[str]:
        return ["a", "b", "c"] if split == "train" else ["d"]

    def task_instruction(self) -> str:
        return f"Say the letter {self.letter}."

    def oracle(self) -> Oracle:
        return LetterOracle()

    def reset(self, task_id: str | None = None, seed: int | None = None) -> str:
        self.letter, self.steps = task_id or "a", 0
        return "Your letter?"

    def step(self, action: str) -> StepResult:
        self.steps += 1
        hit = self.letter in action.lower()
        done = hit or self.steps >= self.max_steps
        info = {"success": hit} if done else {}
        return StepResult(f"Turn {self.steps} done.", 1.0 if hit else 0.0, done, info)


def test_messages_window_and_skill_insertion():
    history = [("o1", "a1"), ("o2", "a2"), ("o3", "a3")]
    msgs = build_messages("SYS", "TASK", history, "o4", window=2)
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert msgs[0]["content"] == "SYS\n\nTask: TASK"
    assert [m["content"] for m in msgs[1:]] == ["o2", "a2", "o3", "a3", "o4"]
    assert len(build_messages("SYS", "", history, "o4", window=0)) == 2
    user = insert_skill(msgs, "use B", "user")
    assert user[-1]["content"].endswith("use B\n\no4") and user[0] == msgs[0]
    system = insert_skill(msgs, "use B", "system")
    assert system[0]["content"].endswith("use B") and system[-1] == msgs[-1]
    assert msgs[-1]["content"] == "o4"  # the student's chat is not modified


def test_rollouts_layout_advantages_and_old_logprobs(tiny_backend, tiny_lm):
    model, tok = tiny_lm
    pool = LocalEnvPool(LetterEnv)
    sampling = SamplingParams(temperature=1.0, max_new_tokens=3)
    batch = collect_rollouts(tiny_backend, pool, ["a", "b"], 3, sampling, window=1, seed=5)
    assert len(batch.trajectories) == 6 and batch.groups == [[0, 1, 2], [3, 4, 5]]
    assert len(batch.samples) == sum(t.num_steps for t in batch.trajectories)
    for s in batch.samples:
        traj = batch.trajectories[s.episode]
        assert s.group == s.episode // 3 and s.task_id == traj.task_id
        assert s.prompt_ids == tok(render_prompt(tok, s.messages), add_special_tokens=False)["input_ids"]
        assert len(s.response_ids) == len(s.old_logprobs) >= 1
        assert tok.decode(s.response_ids, skip_special_tokens=True).strip() == traj.turns[s.turn].action.strip()
    # windowed history: the second turn of an episode shows the first (observation, action)
    second = [s for s in batch.samples if s.turn == 1]
    for s in second:
        assert s.messages[1]["content"] == "Your letter?"
        assert s.messages[2]["content"] == batch.trajectories[s.episode].turns[0].action

    adv = assign_group_advantages(batch)
    for members in batch.groups:
        assert abs(float(adv[members].sum())) < 1e-4
    for s in batch.samples:
        assert s.advantage == float(adv[s.episode])

    # the sampling log-probs line up with a fresh forward pass over prompt + response
    b = collate(batch.samples, tok.pad_token_id)
    assert torch.equal(b["mask"].sum(1), torch.tensor([len(s.response_ids) for s in batch.samples], dtype=torch.float32))
    with torch.no_grad():
        logp = token_logprobs(model, b["input_ids"], b["attention_mask"], b["mask"], chunk_size=7)
    assert torch.allclose(logp, b["old_logprobs"], atol=1e-4)
    assert response_logprobs(logp, b)[0] == logp[0][b["mask"][0].bool()].tolist()
    # reproducible for the same seed
    again = collect_rollouts(tiny_backend, pool, ["a", "b"], 3, sampling, window=1, seed=5)
    assert [s.response_ids for s in again.samples] == [s.response_ids for s in batch.samples]


def test_teacher_scores_same_tokens_with_skill_and_frozen_copy(tiny_lm, tiny_backend):
    import copy

    model, tok = tiny_lm
    model = copy.deepcopy(model)
    from skillkit.core.llm.hf import HFBackend

    backend = HFBackend(model, tok)
    batch = collect_rollouts(backend, LocalEnvPool(LetterEnv), ["a", "b"], 2,
                             SamplingParams(max_new_tokens=2), window=1, seed=1)
    skills = {"a": ("skill-a", "The answer is a.")}
    dynamic = Teacher(model, tok, "dynamic", "user", chunk_size=4)
    assert dynamic.model is model
    n = dynamic.score(batch.samples, skills)
    scored = [s for s in batch.samples if s.task_id == "a"]
    assert n == len(scored) > 0
    for s in batch.samples:
        if s.task_id == "a":
            assert s.skill_name == "skill-a" and len(s.teacher_logprobs) == len(s.response_ids)
            assert "The answer is a." in tok.decode(dynamic.prompt_ids(s, "The answer is a."))
            assert all(lp <= 0 for lp in s.teacher_logprobs)
        else:
            assert s.teacher_logprobs is None
    b = collate(batch.samples, tok.pad_token_id)
    assert torch.equal(b["sdl_mask"].sum(1) > 0, torch.tensor([s.task_id == "a" for s in batch.samples]))
    # the skill changes the scores (different context, same tokens)
    assert any(abs(t - o) > 1e-6 for s in scored for t, o in zip(s.teacher_logprobs, s.old_logprobs))

    frozen = Teacher(model, tok, "frozen", "user", chunk_size=4)
    assert frozen.model is not model and not any(p.requires_grad for p in frozen.model.parameters())
    before = [list(s.teacher_logprobs) for s in scored]
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    frozen.score(batch.samples, skills)
    assert [s.teacher_logprobs for s in scored] == before  # the frozen copy did not move
    dynamic.score(batch.samples, skills)
    assert not all(torch.allclose(torch.tensor(a), torch.tensor(b), atol=1e-5)
                   for a, b in zip(before, [s.teacher_logprobs for s in scored]))


def test_expert_trajectories_and_supervised_samples(tiny_lm):
    _, tok = tiny_lm
    trajs = expert_trajectories(LetterEnv, ["a", "b"])
    assert [t.success for t in trajs] == [True, True]
    assert [[turn.action for turn in t.turns] for t in trajs] == [["z", "a"], ["z", "b"]]
    samples = supervised_samples(trajs, tok, window=2)
    assert len(samples) == 4
    s = samples[1]
    assert s.messages[0]["content"] == "Reply with a single letter.\n\nTask: Say the letter a."
    assert [m["content"] for m in s.messages[1:]] == ["Your letter?", "z", "Turn 1 done."]
    assert s.response_ids[-1] == tok.eos_token_id
    assert tok.decode(s.response_ids[:-1]) == "a"


def test_ray_env_pool_matches_local_pool(tiny_backend):
    """Environments in Ray actors (a local cluster: this Ray has no ``local_mode``) play the same episodes."""
    ray = pytest.importorskip("ray")
    import functools

    import environments
    from trainer.ray_rollout import RayEnvPool

    options = {"variant": "1box", "max_steps": 3}
    tasks = environments.make("sokoban", **options).task_ids("train")[:2]
    sampling = SamplingParams(max_new_tokens=3)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        pool = RayEnvPool("sokoban", options, num_workers=2)
        remote = collect_rollouts(tiny_backend, pool, tasks, 2, sampling, window=1, seed=3)
        pool.close()
    finally:
        ray.shutdown()
    local = collect_rollouts(tiny_backend, LocalEnvPool(functools.partial(environments.make, "sokoban", **options)),
                             tasks, 2, sampling, window=1, seed=3)
    assert [t.model_dump() for t in remote.trajectories] == [t.model_dump() for t in local.trajectories]
    assert [s.response_ids for s in remote.samples] == [s.response_ids for s in local.samples]
