"""The training objectives, each a small pure function of per-token tensors (DESIGN.md section 6).

Shapes: per-token tensors are ``[B, T]`` (one row per training sample = one turn); ``mask`` is 1
on model-generated response tokens and 0 on prompt/observation tokens and padding, so masked
tokens contribute nothing to any loss and get zero gradient.

Normalisation (token mean): every loss is ``sum_t mask_t * x_t / denom``. The trainer
(:func:`trainer.train.policy_update`) passes as ``denom`` the number of tokens the term is defined
on in the *whole minibatch of one optimiser step*:

* ``L_GRPO`` and ``L_SFT``: all response tokens of the minibatch (every turn of every episode);
* ``L_SDL``: the response tokens of the minibatch's samples that have teacher scores (a task
  without a skill this iteration contributes nothing, and does not dilute the term).

Each term is therefore a mean per token of its own support, independent of the micro-batch split
(the accumulated gradient equals the full-minibatch gradient) and of the response length mix;
with ``denom=None`` the mean is over this call's mask. Under this normalisation lambda = 0.001
makes the distillation term a small share of the update on SmolLM2 (DESIGN.md section 6): the
trainer logs both terms' gradient norms and the share, and ``loss.lambda_sdl`` is a measured
choice, not a constant.

The full Skill-SD objective is ``total_loss(grpo_loss(...), skill_sd_loss(...), lam)`` =
``L_GRPO + lambda * L_SDL``; on-policy distillation is :func:`opd_loss` alone.
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def masked_mean(x: Tensor, mask: Tensor, denom: float | Tensor | None = None) -> Tensor:
    """``sum(x * mask) / denom`` with ``denom = sum(mask)`` (at least 1) by default."""
    mask = mask.to(x.dtype)
    if denom is None:
        denom = mask.sum().clamp(min=1.0)
    return (x * mask).sum() / denom


def group_advantages(returns: Tensor, group_ids: Tensor, eps: float = 1e-6) -> Tensor:
    """GRPO advantage of each episode: ``A_i = (R_i - mean_g(R)) / (std_g(R) + eps)``.

    ``g`` is the group of episode ``i`` (the G rollouts of one task); ``std`` is the unbiased
    standard deviation as in GRPO (a group of one, or with equal returns, gets advantage 0).
    """
    returns = returns.to(torch.float64)
    adv = torch.zeros_like(returns)
    for g in torch.unique(group_ids):
        sel = group_ids == g
        r = returns[sel]
        std = r.std() if r.numel() > 1 else r.new_tensor(0.0)
        adv[sel] = (r - r.mean()) / (std + eps)
    return adv.to(torch.float32)


def grpo_loss(logp: Tensor, logp_old: Tensor, advantages: Tensor, mask: Tensor, clip_eps: float = 0.2,
              denom: float | Tensor | None = None) -> Tensor:
    """Clipped policy-gradient loss, token-mean (PPO/GRPO surrogate without a value function).

        r_t    = exp(logp_t - logp_old_t)
        L_GRPO = token_mean_t  max(-A * r_t, -A * clip(r_t, 1 - eps, 1 + eps))

    ``advantages`` is per sample ``[B]`` (every token of a turn carries its episode's
    group-normalised return) or per token ``[B, T]``; ``logp_old`` is the sampling log-prob.
    """
    if advantages.dim() == 1:
        advantages = advantages[:, None]
    ratio = torch.exp(logp - logp_old.detach())
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps)
    return masked_mean(torch.maximum(unclipped, clipped), mask, denom)


def skill_sd_loss(logp_student: Tensor, logp_teacher: Tensor, logp_old: Tensor, mask: Tensor,
                  rho_max: float = 2.0, denom: float | Tensor | None = None) -> Tensor:
    """Importance-weighted reverse KL from the skill-conditioned teacher (the k3 estimator).

        l_t    = logp_student_t - sg(logp_teacher_t)
        rho_t  = min(exp(logp_student_t - sg(logp_old_t)), rho_max)      = p_student / sg(p_old), clipped
        L_SDL  = token_mean_t  rho_t * (exp(-l_t) - 1 + l_t)

    ``exp(-l) - 1 + l >= 0`` with equality iff student == teacher on that token; its expectation
    under the student is KL(student || teacher). As in the paper, rho is ``p_student / sg(p_old)``:
    the gradient flows through ``p_student`` in rho as well as in l (rho = 1 on-policy, and
    ``grad(rho * k3) = k3 * grad(logp) + (1 - p_teacher/p_student) * grad(logp)`` is the
    score-function + pathwise gradient of the reverse KL). Where rho is clipped it is a constant
    (no gradient through rho), which bounds the update from stale samples.

    Outside ``mask`` (rows without a teacher, prompt tokens, padding) the teacher value is replaced
    by the student's own detached log-prob before ``exp``, so ``l_t = 0`` there: the term and its
    gradient are exactly 0 whatever the student's log-prob (a placeholder teacher value of 0 with a
    student log-prob below about -88.7 would overflow ``exp`` and turn ``inf * 0`` into NaN).
    """
    logp_teacher = torch.where(mask.bool(), logp_teacher.detach(), logp_student.detach())
    lt = logp_student - logp_teacher
    k3 = torch.exp(-lt) - 1.0 + lt
    rho = torch.clamp(torch.exp(logp_student - logp_old.detach()), max=rho_max)
    return masked_mean(rho * k3, mask, denom)


def opd_loss(logp_student: Tensor, logp_teacher: Tensor, logp_old: Tensor, mask: Tensor,
             rho_max: float = 2.0, denom: float | Tensor | None = None) -> Tensor:
    """On-policy distillation: the Skill-SD reverse-KL term alone (no reward), ``L = L_SDL``."""
    return skill_sd_loss(logp_student, logp_teacher, logp_old, mask, rho_max, denom)


def sft_loss(logp: Tensor, mask: Tensor, denom: float | Tensor | None = None) -> Tensor:
    """Supervised fine-tuning (negative log-likelihood of the target tokens), token-mean.

        L_SFT = -token_mean_t logp_t
    """
    return -masked_mean(logp, mask, denom)


def total_loss(loss_grpo: Tensor, loss_sdl: Tensor, lam: float = 0.001) -> Tensor:
    """The Skill-SD objective ``L = L_GRPO + lambda * L_SDL``."""
    return loss_grpo + lam * loss_sdl


@torch.no_grad()
def diagnostics(logp: Tensor, logp_old: Tensor, mask: Tensor, advantages: Tensor | None = None,
                logp_teacher: Tensor | None = None, clip_eps: float = 0.2, rho_max: float = 2.0) -> dict[str, float]:
    """Health signals of one update (token-means over ``mask``), logged next to the losses.

    - ``clip_frac``: share of tokens whose GRPO ratio was clipped (the clipped branch was active);
    - ``approx_kl_old``: KL(old || current) by k3, ``mean((r - 1) - log r)`` with r = p/p_old;
    - ``entropy``: ``-mean(logp)`` of the sampled tokens (a Monte-Carlo estimate of the entropy);
    - ``rho_mean``/``rho_max``/``rho_clip_frac``: the Skill-SD importance weights;
    - ``kl_student_teacher``: KL(student || teacher) by k3 (``kl_student_teacher_k1``: mean l_t).
    """
    m = mask.bool()
    log_ratio = (logp - logp_old)[m]
    ratio = log_ratio.exp()
    out = {
        "approx_kl_old": float(((ratio - 1) - log_ratio).mean()) if m.any() else 0.0,
        "entropy": float(-logp[m].mean()) if m.any() else 0.0,
        "rho_mean": float(ratio.clamp(max=rho_max).mean()) if m.any() else 1.0,
        "rho_max": float(ratio.max()) if m.any() else 1.0,
        "rho_clip_frac": float((ratio > rho_max).float().mean()) if m.any() else 0.0,
    }
    if advantages is not None:
        adv = advantages[:, None].expand_as(logp) if advantages.dim() == 1 else advantages
        a = adv[m]
        clipped = ((a > 0) & (ratio > 1 + clip_eps)) | ((a < 0) & (ratio < 1 - clip_eps))
        out["clip_frac"] = float(clipped.float().mean()) if m.any() else 0.0
    if logp_teacher is not None:
        lt = (logp - logp_teacher)[m]
        out["kl_student_teacher"] = float((torch.exp(-lt) - 1 + lt).mean()) if m.any() else 0.0
        out["kl_student_teacher_k1"] = float(lt.mean()) if m.any() else 0.0
    return out
