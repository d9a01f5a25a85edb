"""The policy update: a token budget per micro-batch changes memory, not the gradient; per-term
gradient norms; the teacher's weight sync every N iterations."""

from __future__ import annotations

import contextlib
import copy

import numpy as np
import pytest
import torch

from trainer.config import load_train_config
from trainer.logprobs import TokenLogprobs
from trainer.rollout import TurnSample
from trainer.teacher import Teacher
from trainer.train import Dist, micro_batches, policy_update


def samples(n: int = 10, seed: int = 0) -> list[TurnSample]:
    g = np.random.default_rng(seed)
    out = []
    for i in range(n):
        prompt = g.integers(10, 1000, size=int(g.integers(5, 30))).tolist()
        response = g.integers(10, 1000, size=int(g.integers(2, 8))).tolist()
        old = (-g.random(len(response)) * 3 - 5).tolist()
        teacher = (-g.random(len(response)) * 3 - 5).tolist() if i % 2 else None
        out.append(TurnSample(prompt, response, old, [], task_id=str(i % 3), episode=i, group=i % 3, turn=0,
                              advantage=float(g.normal()), teacher_logprobs=teacher))
    return out


def update(model, batch, overrides):
    cfg = load_train_config(None, ["method=skillsd", "optim.max_grad_norm=1e9", "model.logprob_chunk_size=8",
                                   "loss.lambda_sdl=0.5", *overrides])
    model = copy.deepcopy(model)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    stats = policy_update(TokenLogprobs(model, 8), optimizer, batch, cfg, np.random.default_rng(0),
                          Dist(cfg, "cpu"), contextlib.nullcontext, pad_id=0)
    return [b - p.detach() for b, p in zip(before, model.parameters())], stats


def test_huge_micro_batch_with_small_token_budget_gives_the_same_gradient(tiny_lm):
    model, _ = tiny_lm
    batch = samples()
    parts = micro_batches(batch, max_rows=1000, max_tokens=60)
    assert len(parts) > 2 and sorted(s.episode for p in parts for s in p) == list(range(len(batch)))
    for part in parts:
        width = max(len(s.prompt_ids) + len(s.response_ids) for s in part)
        assert len(part) * width <= 60 or len(part) == 1
    small, _ = update(model, batch, ["optim.micro_batch_size=2"])
    budget, stats = update(model, batch, ["optim.micro_batch_size=1000", "optim.max_tokens_per_micro_batch=60"])
    whole, _ = update(model, batch, ["optim.micro_batch_size=1000"])
    assert any(g.abs().sum() > 0 for g in small)
    for a, b, c in zip(small, budget, whole):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)
        torch.testing.assert_close(a, c, rtol=1e-4, atol=1e-7)


def test_term_gradient_norms_match_separate_backward_passes(tiny_lm):
    model, _ = tiny_lm
    batch = samples(6, seed=1)
    _, stats = update(model, batch, ["optim.micro_batch_size=2"])
    # the same norms by brute force: the update with each term alone, on the last block
    grpo_only, _ = update(model, batch, ["optim.micro_batch_size=6", "loss.lambda_sdl=0.0"])
    names = [n for n, _ in model.named_parameters()]
    last = [i for i, n in enumerate(names) if "layers.1." in n]

    def norm(grads):
        return float(torch.linalg.vector_norm(torch.stack([grads[i].norm() for i in last])))

    full, _ = update(model, batch, ["optim.micro_batch_size=6", "optim.term_grad_norms=false"])
    sdl_part = [f - g for f, g in zip(full, grpo_only)]
    assert stats["grad_norm_grpo"] == pytest.approx(norm(grpo_only), rel=1e-3)
    assert stats["grad_norm_sdl"] == pytest.approx(norm(sdl_part), rel=1e-2)
    assert 0 < stats["sdl_share"] < 1
    assert stats["sdl_share"] == pytest.approx(stats["grad_norm_sdl"] / (stats["grad_norm_sdl"] + stats["grad_norm_grpo"]))


def test_teacher_synced_every_two_iterations(tiny_lm):
    model, tok = tiny_lm
    student = copy.deepcopy(model)
    teacher = Teacher(student, tok, sync_every=2)
    assert teacher.has_copy and teacher.state_dict() is not None

    def same() -> bool:
        return all(torch.equal(a, b) for a, b in zip(teacher.model.parameters(), student.parameters()))

    def step() -> None:
        with torch.no_grad():
            for p in student.parameters():
                p.add_(0.01)

    assert teacher.sync(1) and same()
    step()
    assert not teacher.sync(2) and not same()        # iteration 2: the teacher lags one update
    assert teacher.sync(3) and same()                # iteration 3: synced again
    step()
    assert not teacher.sync(4) and not same()
    live = Teacher(student, tok, sync_every=1)
    assert live.model is student and live.state_dict() is None and not live.sync(3)
    frozen = Teacher(student, tok, sync_every=0)
    step()
    assert not frozen.sync(1) and not frozen.sync(3)
    assert not all(torch.equal(a, b) for a, b in zip(frozen.model.parameters(), student.parameters()))


def test_rows_without_gradient_are_not_forwarded_and_do_not_change_the_update(tiny_lm):
    model, _ = tiny_lm
    batch = samples(8, seed=2)
    dead = samples(6, seed=3)
    for s in dead:                       # equal rewards in their group and no teacher: every term is zero
        s.advantage, s.teacher_logprobs = 0.0, None
    calls = []
    def count(module, args, kwargs, out):
        calls.append((args[0] if args else kwargs["input_ids"]).shape[0])

    handle = model.register_forward_hook(count, with_kwargs=True)
    try:
        live_only, _ = update(model, batch, ["optim.micro_batch_size=100", "optim.num_minibatches=1"])
        n_live = sum(calls)
        calls.clear()
        with_dead, _ = update(model, batch + dead, ["optim.micro_batch_size=100", "optim.num_minibatches=1"])
        assert sum(calls) == n_live      # the dead rows never reach the model
        calls.clear()
        nothing, stats = update(model, dead, ["optim.micro_batch_size=100", "optim.num_minibatches=1"])
        assert calls == [] and stats["optimizer_steps"] == 1
    finally:
        handle.remove()
    # the dead rows' tokens stay in the GRPO denominator: the update is the live one, scaled
    n_tok = sum(len(s.response_ids) for s in batch)
    n_all = n_tok + sum(len(s.response_ids) for s in dead)
    assert all(float(g.abs().sum()) == 0.0 for g in nothing)
    grpo_only, _ = update(model, batch, ["optim.micro_batch_size=100", "optim.num_minibatches=1", "loss.lambda_sdl=0"])
    sdl_part = [a - b for a, b in zip(live_only, grpo_only)]
    for full, g, d in zip(with_dead, grpo_only, sdl_part):
        torch.testing.assert_close(full, g * n_tok / n_all + d, rtol=1e-3, atol=1e-6)


def test_srpo_routes_by_masking_with_the_unrouted_denominators(tiny_lm):
    model, _ = tiny_lm
    batch = samples(8, seed=4)
    for i, s in enumerate(batch):
        s.success = i % 3 == 0
    common = ["optim.micro_batch_size=100", "optim.num_minibatches=1"]
    # GRPO part: the successes with the weight they have in GRPO (failed rows stay in the denominator)
    srpo_grpo, _ = update(model, batch, [*common, "loss.lambda_sdl=0", "loss.srpo={enabled: true}"])
    only_successes = copy.deepcopy(batch)
    for s in only_successes:
        s.advantage = s.advantage if s.success else 0.0
    grpo_ref, _ = update(model, only_successes, [*common, "loss.lambda_sdl=0"])
    assert any(float(g.abs().sum()) > 0 for g in grpo_ref)
    for a, b in zip(srpo_grpo, grpo_ref):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-7)
    # distillation part: the failures with the weight they have in Skill-SD
    srpo_full, _ = update(model, batch, [*common, "loss.srpo={enabled: true}"])
    only_failures = copy.deepcopy(batch)
    for s in only_failures:
        s.advantage = 0.0
        s.teacher_logprobs = None if s.success else s.teacher_logprobs
    sdl_ref, _ = update(model, only_failures, common)
    n_teacher = sum(len(s.response_ids) for s in batch if s.teacher_logprobs is not None)
    n_failed_teacher = sum(len(s.response_ids) for s in only_failures if s.teacher_logprobs is not None)
    for full, g, d in zip(srpo_full, srpo_grpo, sdl_ref):
        torch.testing.assert_close(full - g, d * n_failed_teacher / n_teacher, rtol=1e-3, atol=1e-6)
