"""Losses of trainer/losses.py against hand-computed values, and their gradient properties."""

from __future__ import annotations

import math

import pytest
import torch

from trainer.losses import (
    anchored_logprobs,
    auto_gt_alpha,
    diagnostics,
    group_advantages,
    grpo_loss,
    guided_distillation,
    masked_mean,
    opd_loss,
    oracle_nll,
    paced_weight,
    sdar_gate,
    sft_loss,
    skill_sd_loss,
    srpo_masks,
    total_loss,
    uncertainty_weight,
)

L = math.log


def t(*rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_masked_mean_and_external_denominator():
    x, m = t([1.0, 2.0, 3.0]), t([1.0, 0.0, 1.0])
    assert masked_mean(x, m).item() == pytest.approx(2.0)
    assert masked_mean(x, m, denom=4.0).item() == pytest.approx(1.0)
    assert masked_mean(x, torch.zeros_like(m)).item() == 0.0


def test_group_advantages_hand_computed():
    returns = torch.tensor([1.0, 3.0, 5.0, 5.0, 2.0])
    groups = torch.tensor([0, 0, 1, 1, 2])
    adv = group_advantages(returns, groups)
    s = math.sqrt(2.0)  # unbiased std of (1, 3)
    assert adv[0].item() == pytest.approx(-1 / s, rel=1e-5)
    assert adv[1].item() == pytest.approx(1 / s, rel=1e-5)
    assert adv[2:].tolist() == [0.0, 0.0, 0.0]  # equal returns / singleton group -> no signal


def test_grpo_loss_hand_computed():
    # ratio = 0.5/0.4 = 1.25 on token 0, 0.3/0.3 = 1 on token 1, token 2 masked out.
    logp = t([L(0.5), L(0.3), L(0.9)], [L(0.5), L(0.3), L(0.9)])
    old = t([L(0.4), L(0.3), L(0.1)], [L(0.4), L(0.3), L(0.1)])
    mask = t([1, 1, 0], [1, 1, 0])
    adv = torch.tensor([1.0, -1.0])
    # A=+1: max(-1.25, -1.2) = -1.2 ; max(-1, -1) = -1
    # A=-1: max(1.25, 1.2) = 1.25   ; max(1, 1) = 1
    expected = (-1.2 - 1.0 + 1.25 + 1.0) / 4
    assert grpo_loss(logp, old, adv, mask, clip_eps=0.2).item() == pytest.approx(expected, rel=1e-5)
    stats = diagnostics(logp, old, mask, adv, clip_eps=0.2)
    assert stats["clip_frac"] == pytest.approx(0.25)  # only (A=+1, r=1.25) is clipped


def test_skill_sd_loss_hand_computed_and_rho_clipping():
    s, te = L(0.5), L(0.25)
    k3 = 0.5 - 1 + math.log(2)  # exp(-l) - 1 + l with l = log 2
    logp, teacher, mask = t([s]), t([te]), t([1.0])
    assert skill_sd_loss(logp, teacher, t([s]), mask).item() == pytest.approx(k3, rel=1e-5)  # rho = 1
    assert skill_sd_loss(logp, teacher, t([L(0.4)]), mask, rho_max=10).item() == pytest.approx(1.25 * k3, rel=1e-5)
    # rho = 0.5/0.2 = 2.5 is clipped to 2
    assert skill_sd_loss(logp, teacher, t([L(0.2)]), mask, rho_max=2.0).item() == pytest.approx(2 * k3, rel=1e-5)
    assert opd_loss(logp, teacher, t([s]), mask).item() == pytest.approx(k3, rel=1e-5)


def test_skill_sd_gradient_flows_through_rho_unless_clipped():
    s, te = L(0.5), L(0.25)
    k3 = 0.5 - 1 + math.log(2)
    dk3 = 1 - 0.5  # d k3 / d logp_s = 1 - exp(-l)
    for old, rho_max, expected in [
        (L(0.4), 10.0, 1.25 * k3 + 1.25 * dk3),  # unclipped: d rho / d logp_s = rho
        (L(0.2), 2.0, 2.0 * dk3),                 # clipped: rho is constant
    ]:
        logp = t([s]).requires_grad_()
        teacher = t([te]).requires_grad_()
        skill_sd_loss(logp, teacher, t([old]), t([1.0]), rho_max=rho_max).backward()
        assert logp.grad.item() == pytest.approx(expected, rel=1e-5)
        assert teacher.grad is None or teacher.grad.abs().sum() == 0  # stop-gradient on the teacher


def test_k3_nonnegative_and_zero_when_equal():
    g = torch.Generator().manual_seed(0)
    logp = torch.log_softmax(torch.randn(4, 50, generator=g), -1)[:, :20]
    teacher = torch.log_softmax(torch.randn(4, 50, generator=g), -1)[:, :20]
    mask = torch.ones_like(logp)
    lt = logp - teacher
    assert ((torch.exp(-lt) - 1 + lt) >= 0).all()
    assert skill_sd_loss(logp, teacher, logp, mask).item() >= 0
    assert skill_sd_loss(logp, logp, logp, mask).item() == 0.0
    assert diagnostics(logp, logp, mask, logp_teacher=logp)["kl_student_teacher"] == 0.0


def test_sft_loss_hand_computed():
    logp, mask = t([L(0.5), L(0.25), L(0.1)]), t([1.0, 1.0, 0.0])
    assert sft_loss(logp, mask).item() == pytest.approx(-(L(0.5) + L(0.25)) / 2, rel=1e-6)


def test_masked_tokens_get_zero_gradient():
    g = torch.Generator().manual_seed(1)
    logp = (-torch.rand(3, 6, generator=g)).requires_grad_()
    old = -torch.rand(3, 6, generator=g)
    teacher = -torch.rand(3, 6, generator=g)
    mask = torch.tensor([[0, 0, 1, 1, 1, 0], [0, 1, 1, 0, 0, 0], [0, 0, 0, 1, 1, 1]], dtype=torch.float32)
    adv = torch.tensor([0.7, -1.2, 0.3])
    loss = total_loss(grpo_loss(logp, old, adv, mask), skill_sd_loss(logp, teacher, old, mask), lam=0.5)
    loss = loss + sft_loss(logp, mask)
    loss.backward()
    assert (logp.grad[mask == 0] == 0).all()
    assert (logp.grad[mask == 1] != 0).all()


def test_lambda_zero_is_exactly_grpo_gradient(tiny_lm):
    from trainer.logprobs import token_logprobs

    model, _ = tiny_lm
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(10, 1000, (2, 12), generator=g)
    attn = torch.ones_like(ids)
    mask = torch.zeros_like(ids)
    mask[:, 6:] = 1
    old = -torch.rand(2, 12, generator=g) - 5
    teacher = -torch.rand(2, 12, generator=g) - 5
    adv = torch.tensor([1.0, -0.5])

    def grads(lam: float | None) -> list[torch.Tensor]:
        model.zero_grad(set_to_none=True)
        logp = token_logprobs(model, ids, attn, mask, chunk_size=4)
        loss = grpo_loss(logp, old, adv, mask)
        if lam is not None:
            loss = total_loss(loss, skill_sd_loss(logp, teacher, old, mask), lam)
        loss.backward()
        return [p.grad.clone() for p in model.parameters() if p.grad is not None]

    plain, with_zero, with_some = grads(None), grads(0.0), grads(0.1)
    model.zero_grad(set_to_none=True)
    assert all(torch.equal(a, b) for a, b in zip(plain, with_zero))
    assert not all(torch.equal(a, b) for a, b in zip(plain, with_some))


def test_rows_without_teacher_contribute_exactly_zero_even_at_very_low_student_logprob():
    # row 0 has a teacher, row 1 has none (teacher log-prob 0 at its response positions, sdl mask 0);
    # a student log-prob of -100 there used to give exp(100) = inf, inf * 0 = NaN
    logp = t([-1.0, -2.0], [-100.0, -3.0]).requires_grad_()
    teacher = t([-1.5, -1.0], [0.0, 0.0])
    sdl_mask = t([1.0, 1.0], [0.0, 0.0])
    loss = skill_sd_loss(logp, teacher, logp.detach(), sdl_mask, denom=2.0)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logp.grad).all()
    assert (logp.grad[1] == 0).all()
    alone = skill_sd_loss(t([-1.0, -2.0]), t([-1.5, -1.0]), t([-1.0, -2.0]), t([1.0, 1.0]), denom=2.0)
    assert loss.item() == pytest.approx(alone.item(), rel=1e-6)


# --- the distillation methods (ground-truth guidance, anchored teacher, PACED, SRPO, SDAR) -------------

def test_oracle_nll_is_the_log_sum_exp_over_a_states_optimal_moves():
    # state 0 has two optimal moves (p = 0.2 and 0.3: p(optimal) = 0.5), state 1 one (p = 0.25), state 2 none
    lp = torch.tensor([L(0.2), L(0.3), L(0.25)], requires_grad=True)
    loss = oracle_nll(lp, torch.tensor([0, 0, 1]), n_states=3)
    assert loss.item() == pytest.approx(-(L(0.5) + L(0.25)) / 2, rel=1e-6)
    loss.backward()
    # d/d logp_m of -log sum p = -p_m / sum p, halved by the mean over 2 states
    assert lp.grad.tolist() == pytest.approx([-0.2 / 0.5 / 2, -0.3 / 0.5 / 2, -1.0 / 2], rel=1e-5)
    assert oracle_nll(lp.detach(), torch.tensor([0, 0, 1]), 3, denom=4.0).item() == pytest.approx(
        -(L(0.5) + L(0.25)) / 4, rel=1e-6)


def test_guided_distillation_mixes_the_losses():
    sdl, gt = torch.tensor(2.0), torch.tensor(6.0)
    assert guided_distillation(sdl, gt, 0.0).item() == 2.0
    assert guided_distillation(sdl, gt, 1.0).item() == 6.0
    assert guided_distillation(sdl, gt, 0.25).item() == pytest.approx(0.75 * 2 + 0.25 * 6)
    with pytest.raises(ValueError, match="alpha"):
        guided_distillation(sdl, gt, 1.5)


def test_auto_gt_alpha_hand_computed_and_limits():
    q_t, q_s = torch.tensor([0.5, 0.9]), torch.tensor([0.3, 0.5])
    b2 = 0.5 ** 2 + 0.1 ** 2          # teacher's distance to the ground truth
    g2 = 0.2 ** 2 + 0.4 ** 2          # what the teacher teaches beyond the student
    assert auto_gt_alpha(q_t, q_s) == pytest.approx(b2 / (b2 + g2))
    assert auto_gt_alpha(torch.ones(3), torch.tensor([0.1, 0.2, 0.3])) == 0.0   # a right teacher
    assert auto_gt_alpha(torch.tensor([0.4, 0.6]), torch.tensor([0.4, 0.6])) == 1.0  # teacher == student
    assert auto_gt_alpha(torch.zeros(0), torch.zeros(0)) == 1.0                    # no state to weigh


def test_anchored_logprobs_mix_in_probability_space():
    lk, l0 = torch.tensor([L(0.2), L(0.6)]), torch.tensor([L(0.8), L(0.1)])
    out = anchored_logprobs(lk, l0, 0.25)
    assert out.tolist() == pytest.approx([L(0.75 * 0.2 + 0.25 * 0.8), L(0.75 * 0.6 + 0.25 * 0.1)], rel=1e-6)
    assert torch.equal(anchored_logprobs(lk, l0, 0.0), lk) and torch.equal(anchored_logprobs(lk, l0, 1.0), l0)
    # stable in log space where the probabilities underflow
    tiny = anchored_logprobs(torch.tensor([-1000.0]), torch.tensor([-1001.0]), 0.5)
    assert tiny.item() == pytest.approx(L(0.5) + -1000 + L(1 + math.exp(-1)), rel=1e-6)


def test_paced_weight_hand_computed():
    p = torch.tensor([0.0, 0.25, 0.5, 1.0])
    w = paced_weight(p, a=1.0, b=1.0)                  # p (1 - p) / 0.25
    assert w.tolist() == pytest.approx([0.0, 0.75, 1.0, 0.0])
    w = paced_weight(torch.tensor([0.5]), a=2.0, b=1.0)  # max at 2/3: (4/9)(1/3) = 4/27
    assert w.item() == pytest.approx(0.25 * 0.5 / (4 / 27))
    assert paced_weight(p, 0.0, 0.0).tolist() == [1.0, 1.0, 1.0, 1.0]


def test_srpo_routes_successes_to_grpo_and_failures_to_distillation():
    mask = t([1.0, 1.0], [1.0, 0.0], [1.0, 1.0])
    sdl_mask = t([1.0, 1.0], [0.0, 0.0], [1.0, 1.0])
    grpo_m, sdl_m = srpo_masks(mask, sdl_mask, torch.tensor([True, True, False]))
    assert grpo_m.tolist() == [[1, 1], [1, 0], [0, 0]]
    assert sdl_m.tolist() == [[0, 0], [0, 0], [1, 1]]
    assert uncertainty_weight(torch.tensor([0.0, 1.0]), 0.5).tolist() == pytest.approx([1.0, math.exp(-0.5)])


def test_sdar_gate_strengthens_endorsed_and_softens_rejected_tokens():
    student = torch.tensor([L(0.25), L(0.5), L(0.5)]).requires_grad_()
    teacher = torch.tensor([L(0.5), L(0.5), L(0.125)])
    w = sdar_gate(student, teacher, tau=1.0)
    sig = [1 / (1 + math.exp(-x)) for x in (math.log(2), 0.0, -math.log(4))]
    assert w.tolist() == pytest.approx([2 * s for s in sig], rel=1e-6)
    assert w[0] > 1 and w[1] == pytest.approx(1.0) and w[2] < 1 and not w.requires_grad
    # as a weight of L_SDL: each token's k3 term scaled by its gate
    old, mask = student.detach(), torch.ones(1, 3)
    loss = skill_sd_loss(student[None], teacher[None], old[None], mask, weight=w[None])
    lt = (student - teacher).detach()
    k3 = torch.exp(-lt) - 1 + lt
    assert loss.item() == pytest.approx(float((w * k3).mean()), rel=1e-6)
    per_row = skill_sd_loss(student[None], teacher[None], old[None], mask, weight=torch.tensor([0.5]))
    assert per_row.item() == pytest.approx(0.5 * float(k3.mean()), rel=1e-6)
