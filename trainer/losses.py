"""The training objectives, each a small pure function of per-token tensors (docs/design.md section 6).

Shapes: per-token tensors are ``[B, T]`` (one row per training sample = one turn); ``mask`` is 1
on model-generated response tokens and 0 on prompt/observation tokens and padding, so masked
tokens contribute nothing to any loss and get zero gradient.

Normalisation (token mean): every loss is ``sum_t mask_t * x_t / denom``. The trainer
(:func:`trainer.train.policy_update`) passes as ``denom`` the number of tokens the term is defined
on in the *whole minibatch of one optimiser step*:

* ``L_GRPO`` and ``L_SFT``: all response tokens of the minibatch (every turn of every episode);
* ``L_SDL``: the response tokens of the minibatch's samples that have teacher scores (a task
  without a skill this iteration contributes nothing, and does not dilute the term);
* the same denominators under SRPO's routing (:func:`srpo_masks` only masks).

Each term is therefore a mean per token of its own support, independent of the micro-batch split
(the accumulated gradient equals the full-minibatch gradient) and of the response length mix;
with ``denom=None`` the mean is over this call's mask. Under this normalisation lambda = 0.001
makes the distillation term a small share of the update on SmolLM2 (docs/design.md section 6): the
trainer logs both terms' gradient norms and the share, and ``loss.lambda_sdl`` is a measured
choice, not a constant.

The full Skill-SD objective is ``total_loss(grpo_loss(...), skill_sd_loss(...), lam)`` =
``L_GRPO + lambda * L_SDL``; on-policy distillation is :func:`opd_loss` alone.

The distillation methods of the papers skillkit follows change only what enters these terms
(docs/design.md section 9; ``docs/training.md`` has the table):

* ground-truth guidance: ``(1 - alpha) * L_SDL + alpha * L_GT`` (:func:`oracle_nll`,
  :func:`guided_distillation`, :func:`auto_gt_alpha`);
* anchored generations: the teacher's log-probs are :func:`anchored_logprobs`;
* PACED, SRPO, SDAR: per-token weights of ``L_SDL`` (:func:`paced_weight`,
  :func:`srpo_masks` + :func:`uncertainty_weight`, :func:`sdar_gate`), passed as ``weight``.
"""

from __future__ import annotations

import math

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
                  rho_max: float = 2.0, denom: float | Tensor | None = None,
                  weight: Tensor | None = None) -> Tensor:
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

    ``weight`` (``[B]`` per sample or ``[B, T]`` per token, no gradient) multiplies each token's
    term: ``L = token_mean_t w_t * rho_t * k3_t`` (PACED, SRPO, SDAR); the denominator is unchanged.
    """
    logp_teacher = torch.where(mask.bool(), logp_teacher.detach(), logp_student.detach())
    lt = logp_student - logp_teacher
    k3 = torch.exp(-lt) - 1.0 + lt
    rho = torch.clamp(torch.exp(logp_student - logp_old.detach()), max=rho_max)
    term = rho * k3
    if weight is not None:
        term = term * (weight[:, None] if weight.dim() == 1 else weight).detach()
    return masked_mean(term, mask, denom)


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


# ---------------------------------------------------------------------------------------------
# Ground-truth guidance ("Even your Teacher Needs Guidance", Borup & Andersen 2021)
# ---------------------------------------------------------------------------------------------

def oracle_nll(target_logprobs: Tensor, target_state: Tensor, n_states: int,
               denom: float | Tensor | None = None) -> Tensor:
    """Negative log-likelihood of the oracle's target on each guided state, state-mean.

        L_GT = mean_s  -log sum_{m in O(s)} p_student(m | s)

    ``target_logprobs`` ``[M]`` holds the summed token log-probs of every oracle target text
    (an optimal move's action text + end of turn), ``target_state`` ``[M]`` the index (``< n_states``)
    of the state it belongs to. The log-sum-exp over a state's targets is the log of the probability
    that the student's next action is an optimal one (several moves may be optimal); one target is
    its plain log-prob. The unit is the state, not the token: the oracle judges a whole move.
    ``denom`` defaults to the number of states that have a target.
    """
    per_state = torch.full((n_states,), float("-inf"), dtype=target_logprobs.dtype, device=target_logprobs.device)
    per_state = per_state.scatter_reduce(0, target_state, target_logprobs, reduce="amax")
    has = torch.isfinite(per_state)
    top = torch.where(has, per_state, torch.zeros_like(per_state)).detach()
    sums = torch.zeros_like(per_state).index_add(0, target_state, torch.exp(target_logprobs - top[target_state]))
    lse = torch.where(has, top + torch.log(torch.where(has, sums, torch.ones_like(sums))), torch.zeros_like(sums))
    if denom is None:
        denom = has.sum().clamp(min=1).to(lse.dtype)
    return -lse.sum() / denom


def guided_distillation(loss_sdl: Tensor, loss_gt: Tensor, alpha: float) -> Tensor:
    """Ground-truth guidance as a mixture of losses, not of target distributions:

        L_guided = (1 - alpha) * L_SDL + alpha * L_GT

    Why the losses are mixed: (1) the paper's target ``alpha * y + (1 - alpha) * f_teacher`` enters a
    loss that is linear in its target (squared error there, cross-entropy for a distribution), so
    mixing the targets and mixing the losses give the same gradient; (2) the oracle's move reaches
    the student on every guided state, also when the student did not sample it. A mixture on the
    *sampled* tokens, ``log((1 - alpha) p_T(y_t) + alpha * 1[y_t = oracle token])``, is just
    ``log(1 - alpha) + log p_T`` wherever the student's token differs from the oracle's: a constant
    shift that carries no ground truth exactly where the student is wrong.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"gt alpha must be in [0, 1], got {alpha}")
    return (1.0 - alpha) * loss_sdl + alpha * loss_gt


def auto_gt_alpha(q_teacher: Tensor, q_student: Tensor) -> float:
    """The ground-truth weight of one iteration from the teacher's and student's probability that the
    next move is optimal, on the visited states that have both an oracle target and a teacher.

        b_s = 1 - q_T(s)                 how far the teacher's target is from the ground truth
        g_s = q_T(s) - q_S(s)            what the teacher would teach the student beyond itself
        alpha = sum_s b_s^2 / sum_s (b_s^2 + g_s^2)        (1 when there is no such state)

    The adaptation, written down. In the paper (kernel regression) the optimal alpha of a step is a
    one-dimensional least-squares solution, and its inexpensive estimate for deep networks uses
    that the fit is linear in the target. Token-level training has one scalar per state that both
    targets speak about: the probability ``q`` that the next move is optimal (ground truth: 1).
    For the mixed target ``t_alpha = (1 - alpha) q_T + alpha * 1`` we minimise, summed over states,
    ``(1 - alpha)^2 b_s^2`` (the squared distance of the mixed target to the ground truth) plus
    ``alpha^2 g_s^2`` (the squared teacher signal the mixture throws away); the minimiser is the
    closed form above. Limits: a teacher that is right (q_T = 1) gets alpha = 0; a teacher that
    only repeats the student (q_T = q_S: pure self-distillation, whose only effect in the paper is
    amplified regularisation) gets alpha = 1. Recomputed every iteration from that iteration's
    states, before the update.
    """
    b2 = (1.0 - q_teacher).pow(2).sum()
    g2 = (q_teacher - q_student).pow(2).sum()
    total = float(b2 + g2)
    return float(b2) / total if total > 0 else 1.0


# ---------------------------------------------------------------------------------------------
# Anchored generations ("Recursive Meta-Distillation")
# ---------------------------------------------------------------------------------------------

def anchored_logprobs(logp_current: Tensor, logp_anchor: Tensor, beta: float) -> Tensor:
    """The anchored teacher's log-prob of each sampled token, in log space:

        log p_T = log((1 - beta) * p_k + beta * p_0)
                = logsumexp(log(1 - beta) + log p_k, log(beta) + log p_0)

    ``p_k`` is generation k's teacher, ``p_0`` the anchor (generation 0); beta = 0 is ``p_k``,
    beta = 1 is ``p_0``.
    """
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"anchor beta must be in [0, 1], got {beta}")
    if beta == 0.0:
        return logp_current.clone()
    if beta == 1.0:
        return logp_anchor.clone()
    stacked = torch.stack([logp_current + math.log(1.0 - beta), logp_anchor + math.log(beta)])
    return torch.logsumexp(stacked, dim=0)


# ---------------------------------------------------------------------------------------------
# Weights of the distillation term: PACED, SRPO, SDAR
# ---------------------------------------------------------------------------------------------

def paced_weight(pass_rate: Tensor, a: float, b: float) -> Tensor:
    """PACED: weight a task's distillation by its running pass rate p,

        w(p) = p^a (1 - p)^b / max_p p^a (1 - p)^b,      the maximum at p* = a / (a + b)

    so tasks the student always (p = 1) or never (p = 0) solves stop dominating; the normalisation
    keeps the most informative tasks at weight 1 (a = b = 0: weight 1 everywhere).
    """
    if a < 0 or b < 0:
        raise ValueError(f"PACED exponents must be >= 0, got a={a}, b={b}")
    p = pass_rate.clamp(0.0, 1.0)
    w = p.pow(a) * (1.0 - p).pow(b)
    if a + b == 0:
        return w
    star = a / (a + b)
    return w / (star ** a * (1.0 - star) ** b)


def srpo_masks(mask: Tensor, sdl_mask: Tensor, success: Tensor) -> tuple[Tensor, Tensor]:
    """SRPO's routing: successful rollouts go to the GRPO term, failed ones to the distillation term.

        mask_GRPO = mask * 1[success],     mask_SDL = sdl_mask * 1[not success]

    ``success`` is ``[B]`` (the sample's episode succeeded). Routing masks, it does not rescale: the
    trainer keeps each term's un-routed denominator, so a success has the per-token weight it has in
    GRPO and a failure the one it has in Skill-SD (dividing by the routed tokens alone would multiply
    the GRPO step by 1 / success rate).
    """
    ok = success.to(mask.dtype)[:, None]
    return mask * ok, sdl_mask * (1.0 - ok)


def uncertainty_weight(teacher_entropy: Tensor, strength: float) -> Tensor:
    """SRPO's optional down-weighting of tokens where the teacher is uncertain:

        w_t = exp(-c * H_T(t))

    ``H_T(t)`` is the entropy (nats) of the teacher's next-token distribution at position t and
    ``c`` the ``strength`` (0: weight 1).
    """
    return torch.exp(-strength * teacher_entropy)


def sdar_gate(logp_student: Tensor, logp_teacher: Tensor, tau: float = 1.0, max_weight: float = 2.0) -> Tensor:
    """SDAR: a sigmoid gate on the detached token-level teacher-student gap,

        delta_t = sg(logp_teacher_t - logp_student_t),     w_t = max_weight * sigmoid(delta_t / tau)

    Teacher-endorsed tokens (delta > 0) get w > max_weight / 2 (strengthened), teacher rejections
    (delta < 0) get w < max_weight / 2 (softened); with the default max_weight = 2 a token on which
    they agree keeps weight 1.
    """
    if tau <= 0:
        raise ValueError(f"SDAR tau must be > 0, got {tau}")
    delta = (logp_teacher - logp_student).detach()
    return max_weight * torch.sigmoid(delta / tau)


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
