"""The one evaluation: episode metrics with intervals and outcomes, and the dense metric on held-out states."""

from __future__ import annotations

import copy

import pytest
import torch

import environments
from environments.sokoban import Level, solve
from skillkit.core.llm.hf import render_prompt
from skillkit.core.prompts import insert_skill
from skillkit.core.schemas import Trajectory
from trainer.evaluation import (
    DenseProbe,
    EvalResult,
    _move_logprobs,
    evaluate,
    summarize_trajectories,
    visited_teacher_advantage,
)


@pytest.fixture(scope="module")
def sokoban():
    return environments.make("sokoban", variant="1box", max_steps=20)


@pytest.fixture(scope="module")
def probe(sokoban):
    return DenseProbe.build(sokoban, sokoban.task_ids("test")[:4], 24, seed=3)


def test_probe_states_are_deterministic_held_out_and_on_and_off_the_solver_path(sokoban, probe):
    tasks = sokoban.task_ids("test")[:4]
    again = DenseProbe.build(sokoban, tasks, 24, seed=3)
    assert len(probe) == 24 and [i.chat for i in again.items] == [i.chat for i in probe.items]
    assert {i.task_id for i in probe.items} == set(tasks)        # round-robin over levels
    on_path = set()
    for task in tasks:
        level = Level.from_text(sokoban.level_grid(task))
        on_path.add(level.to_text())
        for move in solve(level.to_text()):
            level = level.move(move)[0]
            on_path.add(level.to_text())
    grids = ["\n".join(i.chat[-1]["content"].splitlines()[:6]) for i in probe.items]
    assert len(set(grids)) == len(grids)
    assert any(g in on_path for g in grids) and any(g not in on_path for g in grids)
    for item in probe.items:
        assert item.chat[0]["content"].startswith(sokoban.instructions) and len(item.chat) == 2  # plain prompt
        assert item.optimal and set(item.optimal) <= set(item.moves) == {"Up", "Down", "Left", "Right"}
        assert item.optimal == sokoban.oracle().optimal_next_actions(item.chat[-1]["content"])
    assert len(DenseProbe.build(sokoban, tasks, 5, seed=3)) == 5
    assert len(DenseProbe.build(environments.make("apps"), ["x"], 8)) == 0   # no probe states there


def _move_logprob(model, tok, chat, move):
    prompt = tok(render_prompt(tok, chat), add_special_tokens=False)["input_ids"]
    response = tok(move, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt + response])
    with torch.no_grad():
        logp = model(ids).logits.float().log_softmax(-1)[0]
    return sum(float(logp[len(prompt) + k - 1, t]) for k, t in enumerate(response))


def test_dense_scores_match_a_plain_forward_and_move_with_training(tiny_lm, probe):
    model, tok = tiny_lm
    model = copy.deepcopy(model)
    first = probe.items[0]
    skill = "Push the box toward the target."
    small = DenseProbe(probe.items[:12])
    scores = small.score(model, tok, skill_text=lambda t: skill if t == first.task_id else None, batch_size=7)
    lp = {m: _move_logprob(model, tok, first.chat, m) for m in first.moves}
    n_first = sum(i.task_id == first.task_id for i in small.items)
    assert scores["dense_states"] == len(small) and scores["dense_teacher_states"] == n_first
    assert 0.0 <= scores["dense_greedy_optimal"] <= 1.0 and scores["dense_logprob_optimal"] < 0
    low, high = scores["intervals"]["dense_logprob_optimal"]
    assert low <= scores["dense_logprob_optimal"] <= high
    single = DenseProbe([first]).score(model, tok, skill_text=lambda t: skill)
    expected = float(torch.logsumexp(torch.tensor([lp[m] for m in first.optimal]), 0))
    assert single["dense_logprob_optimal"] == pytest.approx(expected, abs=1e-4)
    assert single["dense_greedy_optimal"] == float(max(lp, key=lp.get) in first.optimal)
    teacher_chat = insert_skill(first.chat, skill, "user")
    teacher = float(torch.logsumexp(torch.tensor([_move_logprob(model, tok, teacher_chat, m) for m in first.optimal]), 0))
    assert single["dense_teacher_advantage"] == pytest.approx(teacher - expected, abs=1e-4)

    # a few steps of supervised learning on the optimal moves raise the metric: it moves on a CPU
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for item in small.items[:4]:
        prompt = tok(render_prompt(tok, item.chat), add_special_tokens=False)["input_ids"]
        target = tok(item.optimal[0], add_special_tokens=False)["input_ids"]
        logp = model(torch.tensor([prompt + target])).logits.float().log_softmax(-1)[0, len(prompt) - 1:-1]
        loss = -logp.gather(-1, torch.tensor(target)[:, None]).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = small.score(model, tok)
    assert after["dense_logprob_optimal"] > scores["dense_logprob_optimal"] + 0.5
    assert after["dense_greedy_optimal"] >= scores["dense_greedy_optimal"]


def test_one_token_moves_share_one_prompt_pass_and_longer_moves_match_a_plain_forward(tiny_lm, probe):
    model, tok = tiny_lm
    moves = ["Up", "Left", "push the box up twice"]
    assert [len(tok(m, add_special_tokens=False)["input_ids"]) == 1 for m in moves] == [True, True, False]
    chats = [item.chat for item in probe.items[:5]]
    calls = []
    handle = model.model.register_forward_hook(lambda m, args, kwargs, out: calls.append(kwargs["input_ids"].shape[0]),
                                               with_kwargs=True)
    try:
        got = _move_logprobs(model, tok, [(chat, moves) for chat in chats], batch_size=3, chunk_size=8)
    finally:
        handle.remove()
    assert sum(calls) == 2 * len(chats)          # one prompt pass per chat + one pass for the long move
    for chat, scores in zip(chats, got):
        for move, value in zip(moves, scores):
            assert value == pytest.approx(_move_logprob(model, tok, chat, move), abs=1e-4)


def test_visited_teacher_advantage_is_the_skills_gain_on_the_oracles_moves(tiny_lm, sokoban, probe):
    model, tok = tiny_lm
    items = probe.items[:6]
    skill = "Push the box toward the target."
    got = visited_teacher_advantage(model, tok, sokoban, [(i.chat, skill, i.task_id) for i in items])
    gains = []
    for item in items:
        plain = [_move_logprob(model, tok, item.chat, m) for m in item.optimal]
        taught = [_move_logprob(model, tok, insert_skill(item.chat, skill, "user"), m) for m in item.optimal]
        gains.append(float(torch.logsumexp(torch.tensor(taught), 0) - torch.logsumexp(torch.tensor(plain), 0)))
    assert got["teacher_advantage_states"] == len(items)
    assert got["teacher_advantage"] == pytest.approx(sum(gains) / len(gains), abs=1e-4)
    assert got["teacher_advantage_low"] <= got["teacher_advantage"] <= got["teacher_advantage_high"]
    assert visited_teacher_advantage(model, tok, None, [(items[0].chat, skill, "t")]) is None   # no oracle


def test_evaluate_plays_in_batches_and_pairs_outcomes():
    def play(ids):
        return [Trajectory(id=t, env="toy", task_id=t, success=t.endswith("1"), total_reward=1.0,
                           turns=[]) for t in ids]

    seen = []
    result, trajs = evaluate(play, ["t0", "t1", "t2", "t3", "t4"], "arm", "toy", "test", batch_size=2,
                             on_batch=seen.append)
    assert seen == [2, 2, 1] and [t.metadata["eval_label"] for t in trajs] == ["arm"] * 5
    assert isinstance(result, EvalResult) and result.success_rate == 0.2 and result.sgc is None
    assert result.outcomes == {"t0": 0, "t1": 1, "t2": 0, "t3": 0, "t4": 0}
    assert result.dense_greedy_optimal is None and result.metrics("eval_")["eval_success_rate"] == 0.2
    with pytest.raises(ValueError, match="no episodes"):
        summarize_trajectories([], "arm", "toy", "test")
