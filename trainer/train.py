"""The training loop: rollouts -> skills -> teacher scoring -> update, one iteration at a time.

Read top to bottom: :func:`train` sets everything up, then every iteration

1. picks ``tasks_per_iteration`` training tasks and plays ``group_size`` episodes per task with
   the *plain* prompt (all live episodes generated together each turn); every turn's advantage is
   its episode's group-normalised return;
2. credits each task's previous teacher skill with the change of the task's outcome since the
   update that used it (:class:`trainer.skills.SkillCredit`): what a skill can change;
3. picks one skill per task by UCB over the task's bank (summaries of the agent's own earlier
   episodes; the previous iteration's summaries are joined in here) and lets the teacher (the
   student's weights as of its last sync, skill in the prompt) score the student's response tokens;
4. updates the policy with ``L = L_GRPO + lambda * L_SDL`` (or the method's variant, see
   :mod:`trainer.config`) in :func:`policy_update`, where the losses are written out;
5. opens the credit of the skills the update used, summarises this iteration's episodes into the
   banks in a background thread, logs metrics, evaluates and checkpoints.

Run: ``skillkit train --config configs/sokoban_skillsd.yaml`` or ``python -m trainer.train --config ...``;
multi-GPU: ``accelerate launch -m trainer.train --config ...`` (DDP; see docs/scaling.md).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import os
import random
import re
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import environments
from environments.episodes import LocalEnvPool
from skillkit.core.config import apply_overrides, create_run_dir, validate_config
from skillkit.core.llm.base import SamplingParams
from skillkit.core.llm.hf import HFBackend
from skillkit.core.models import load_causal_lm, resolve_device
from skillkit.core.schemas import Trajectory, write_jsonl
from trainer.checkpoint import (
    checkpoint_config,
    checkpoint_dir,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)
from trainer.config import MethodSpec, TrainConfig, load_train_config
from trainer.evaluation import DenseProbe, visited_teacher_advantage
from trainer.evaluation import evaluate as run_evaluation
from trainer.generations import GenerationProbe, generation_record, plot_generations
from trainer.guidance import OracleTargets, estimate_alpha, target_rows
from trainer.logprobs import TokenLogprobs, unwrap_causal_lm
from trainer.losses import (
    diagnostics,
    grpo_loss,
    guided_distillation,
    oracle_nll,
    paced_weight,
    sdar_gate,
    sft_loss,
    skill_sd_loss,
    srpo_masks,
    total_loss,
    uncertainty_weight,
)
from trainer.metrics import MetricsLogger, plot_metrics
from trainer.ray_rollout import RayEnvPool
from trainer.rollout import (
    RolloutBatch,
    TurnSample,
    assign_group_advantages,
    collate,
    collect_rollouts,
    expert_trajectories,
    supervised_samples,
)
from trainer.skills import SkillCredit, make_skill_source
from trainer.teacher import Teacher
from trainer.watch import HackingWatch, oracle_agreement

Log = Callable[[str], None]


# ---------------------------------------------------------------------------------------------
# Set-up helpers
# ---------------------------------------------------------------------------------------------

def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class Dist:
    """Single process, or data-parallel under ``accelerate launch`` (then rollouts are split by rank)."""

    def __init__(self, cfg: TrainConfig, device: str) -> None:
        self.accelerator = None
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            from accelerate import Accelerator

            self.accelerator = Accelerator(mixed_precision="bf16" if use_bf16(cfg, device) else "no",
                                           cpu=device == "cpu")
            if self.accelerator.num_processes == 1:
                raise RuntimeError("WORLD_SIZE > 1 but accelerate sees one process; launch with "
                                   "`accelerate launch` or `torchrun`")
        self.rank = self.accelerator.process_index if self.accelerator else 0
        self.world = self.accelerator.num_processes if self.accelerator else 1
        self.is_main = self.rank == 0
        self.device = str(self.accelerator.device) if self.accelerator else device

    def prepare(self, policy: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[Any, Any]:
        if self.accelerator is None:
            return policy, optimizer
        return self.accelerator.prepare(policy, optimizer)

    def backward(self, loss: torch.Tensor) -> None:
        if self.accelerator is None:
            loss.backward()
        else:
            self.accelerator.backward(loss)

    def no_sync(self, policy: torch.nn.Module, sync: bool) -> Any:
        """Skip the gradient all-reduce on accumulation micro-batches (one sync per optimiser step)."""
        if self.accelerator is None or sync:
            return contextlib.nullcontext()
        return self.accelerator.no_sync(policy)

    def clip_grad_norm(self, params: list[torch.nn.Parameter], max_norm: float) -> float:
        if self.accelerator is None:
            return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
        return float(self.accelerator.clip_grad_norm_(params, max_norm))

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's value of a picklable object, on every rank."""
        if self.accelerator is None:
            return obj
        box = [obj]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def shard(self, items: Sequence[Any]) -> list[Any]:
        """This rank's share of a list (every rank sees the same list)."""
        return list(items[self.rank::self.world])

    def mean(self, value: float | None) -> float | None:
        """Mean of a scalar over ranks (None stays None)."""
        if self.accelerator is None or value is None:
            return value
        t = torch.tensor([float(value)], device=self.accelerator.device)
        return float(self.accelerator.reduce(t, reduction="mean"))

    def full_params(self, policy: torch.nn.Module) -> Any:
        """Under FSDP, gather the full weights for generation and teacher scoring."""
        try:
            from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
        except ImportError:  # pragma: no cover
            return contextlib.nullcontext()
        if isinstance(policy, FSDP):
            return FSDP.summon_full_params(policy, writeback=False)
        return contextlib.nullcontext()


def use_bf16(cfg: TrainConfig, device: str) -> bool:
    return cfg.model.precision == "bf16" or (cfg.model.precision == "auto" and device.startswith("cuda"))


def autocast_for(cfg: TrainConfig, device: str) -> Callable[[], Any]:
    """bf16 autocast on GPU (fp32 master weights), nothing on CPU unless precision=bf16."""
    if not use_bf16(cfg, device):
        return contextlib.nullcontext
    return functools.partial(torch.autocast, device_type=device.split(":")[0], dtype=torch.bfloat16)


def enable_activation_checkpointing(model: torch.nn.Module) -> None:
    """Recompute each decoder layer in the backward (transformers renamed the method in v5)."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:  # pragma: no cover - older transformers
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def load_policy(cfg: TrainConfig, device: str, seed: int) -> tuple[torch.nn.Module, Any]:
    """The student (fp32 master weights), optionally with LoRA adapters and gradient checkpointing."""
    model, tokenizer = load_causal_lm(cfg.model.name, dtype="float32", device=device, seed=seed)
    if cfg.model.lora is not None:
        from peft import LoraConfig, get_peft_model

        lora = cfg.model.lora
        model = get_peft_model(model, LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                                                 target_modules=list(lora.target_modules), task_type="CAUSAL_LM"))
    if cfg.model.gradient_checkpointing:
        enable_activation_checkpointing(unwrap_causal_lm(model))
    model.eval()
    return model, tokenizer


def make_env_factory(cfg: TrainConfig) -> Callable[[], Any]:
    return functools.partial(environments.make, cfg.env.name, **cfg.env.options)


def task_splits(cfg: TrainConfig, make_env: Callable[[], Any]) -> tuple[list[str], list[str]]:
    """The configured training and evaluation task ids (each split cut to its ``env.max_*_tasks``)."""
    probe = make_env()
    try:
        return (probe.task_ids(cfg.env.train_split)[:cfg.env.max_train_tasks],
                probe.task_ids(cfg.env.eval_split)[:cfg.env.max_eval_tasks])
    finally:
        probe.close()


def make_pool(cfg: TrainConfig, make_env: Callable[[], Any]) -> Any:
    if cfg.rollout.ray_workers > 0:
        return RayEnvPool(cfg.env.name, cfg.env.options, num_workers=cfg.rollout.ray_workers)
    return LocalEnvPool(make_env)


# ---------------------------------------------------------------------------------------------
# The update: losses written out
# ---------------------------------------------------------------------------------------------

def micro_batches(samples: Sequence[TurnSample], max_rows: int, max_tokens: int | None = None) -> list[list[TurnSample]]:
    """Split a minibatch into forward passes of at most ``max_rows`` samples and ``max_tokens`` padded
    tokens (rows x longest row); longest first, so rows of similar length share a pass. A sample
    longer than ``max_tokens`` gets a pass of its own. Losses use the whole minibatch's token count,
    so the split changes memory and speed, never the gradient."""
    out: list[list[TurnSample]] = []
    current: list[TurnSample] = []
    for sample in sorted(samples, key=lambda s: len(s.prompt_ids) + len(s.response_ids), reverse=True):
        width = len(current[0].prompt_ids) + len(current[0].response_ids) if current else 0
        width = max(width, len(sample.prompt_ids) + len(sample.response_ids))
        if current and (len(current) + 1 > max_rows or (max_tokens is not None and (len(current) + 1) * width > max_tokens)):
            out.append(current)
            current = []
        current.append(sample)
    if current:
        out.append(current)
    return out


class TermGradProbe:
    """Gradient norms of the two terms of ``L_GRPO + lambda * L_SDL``, measured on a probe.

    The probe is the trainable parameters of the last decoder block (LoRA: its adapters; a model
    without numbered blocks: every trainable parameter). Per micro-batch, ``autograd.grad`` of each
    term with respect to the probe (graph retained for the real backward) costs two partial
    backward passes through the output head and one block, not two full backward passes; the
    per-term gradients are summed over the micro-batches of an optimiser step, so the norms are
    those of the step's gradient. Logged per step (mean over steps):

    * ``grad_norm_grpo`` = ||d L_GRPO / d probe||, ``grad_norm_sdl`` = ||d (lambda L_SDL) / d probe||
      (the distillation term as it enters the update);
    * ``sdl_share`` = grad_norm_sdl / (grad_norm_grpo + grad_norm_sdl), in [0, 1].
    """

    def __init__(self, model: torch.nn.Module) -> None:
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        blocks = {int(m.group(1)) for n, _ in named if (m := re.search(r"layers\.(\d+)\.", n))}
        last = f"layers.{max(blocks)}." if blocks else ""
        self.params = [p for n, p in named if last in n]
        self.names = [n for n, _ in named if last in n]
        self.sums: list[list[torch.Tensor] | None] = [None, None]
        self.steps: dict[str, list[float]] = defaultdict(list)

    def add(self, loss_grpo: torch.Tensor, weighted_sdl: torch.Tensor) -> None:
        """Accumulate both terms' gradients on the probe for one micro-batch."""
        for k, term in enumerate((loss_grpo, weighted_sdl)):
            grads = torch.autograd.grad(term, self.params, retain_graph=True, allow_unused=True)
            grads = [torch.zeros_like(p) if g is None else g.detach() for g, p in zip(grads, self.params)]
            self.sums[k] = grads if self.sums[k] is None else [a + b for a, b in zip(self.sums[k], grads)]

    def step(self) -> None:
        """Close an optimiser step: record its norms and start the next sums."""
        if self.sums[0] is None:
            return
        grpo, sdl = (float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in gs])))
                     for gs in self.sums)
        self.steps["grad_norm_grpo"].append(grpo)
        self.steps["grad_norm_sdl"].append(sdl)
        self.steps["sdl_share"].append(sdl / (grpo + sdl) if grpo + sdl > 0 else 0.0)
        self.sums = [None, None]

    def summary(self) -> dict[str, float]:
        """Means over the optimiser steps of the norms and the share."""
        return {k: float(np.mean(v)) for k, v in self.steps.items()}


def carries_gradient(sample: TurnSample, spec: MethodSpec, srpo: bool = False) -> bool:
    """Whether ``sample`` can contribute a nonzero gradient to any loss term of the method ``spec``:
    SFT rows always; else a nonzero GRPO advantage (on an RL method, and for SRPO only on a
    successful episode), a teacher log-prob (distilling methods) or an oracle target."""
    if spec.sft:
        return True
    grpo = spec.rl and sample.advantage != 0.0 and (sample.success or not srpo)
    sdl = spec.distill and sample.teacher_logprobs is not None
    return grpo or sdl or bool(spec.oracle_targets and sample.oracle_targets)


def policy_update(policy: torch.nn.Module, optimizer: torch.optim.Optimizer, samples: list[TurnSample],
                  cfg: TrainConfig, rng: np.random.Generator, dist: Dist, autocast: Callable[[], Any],
                  pad_id: int, gt_alpha: float = 0.0) -> dict[str, float]:
    """``epochs`` passes over the samples in ``num_minibatches`` optimiser steps each.

    Every optimiser step accumulates gradients over micro-batches (at most ``micro_batch_size``
    samples and ``max_tokens_per_micro_batch`` padded tokens each); losses are token-means over
    the whole minibatch (the denominators below, see :mod:`trainer.losses`), so accumulation
    equals one big batch. ``gt_alpha`` is this iteration's ground-truth weight (method ``skillsd_gt``).
    """
    spec, opts = cfg.spec, cfg.loss
    params = [p for p in policy.parameters() if p.requires_grad]
    probe = (TermGradProbe(policy) if spec.rl and spec.distill and cfg.optim.term_grad_norms
             and cfg.loss.lambda_sdl > 0 else None)
    loss_sums: dict[str, float] = dict.fromkeys(("loss", "loss_grpo", "loss_sdl"), 0.0)  # summed over micro-batches
    stat_sums: dict[str, float] = defaultdict(float)   # token-weighted sums of the diagnostics
    stat_tokens: dict[str, float] = defaultdict(float)
    rho_max, grad_norms = 0.0, []
    for _ in range(cfg.optim.epochs):
        order = rng.permutation(len(samples))
        for minibatch in np.array_split(order, cfg.optim.num_minibatches):
            if len(minibatch) == 0:
                continue
            mb = [samples[i] for i in minibatch]
            # SRPO routes samples by masking, not by rescaling: both denominators are those of the
            # un-routed terms, so a routed sample keeps the per-token weight it has in GRPO / Skill-SD
            n_tokens = sum(len(s.response_ids) for s in mb)                                  # L_GRPO, L_SFT
            n_teacher_tokens = sum(len(s.response_ids) for s in mb if s.teacher_logprobs is not None)  # L_SDL
            n_guided = sum(1 for s in mb if s.oracle_targets) if spec.oracle_targets else 0  # L_GT (states)
            distill = spec.distill and (n_teacher_tokens > 0 or n_guided > 0)
            optimizer.zero_grad(set_to_none=True)
            # rows whose every term is exactly zero (GRPO advantage 0, no teacher, no oracle target) add no
            # gradient: they keep their place in the denominators above but are not forwarded
            live = [s for s in mb if carries_gradient(s, spec, opts.srpo.enabled)]
            parts = micro_batches(live, cfg.optim.micro_batch_size, cfg.optim.max_tokens_per_micro_batch)
            for k, part in enumerate(parts):
                sync = k == len(parts) - 1
                b = collate(part, pad_id, device=dist.device)
                with dist.no_sync(policy, sync=sync), autocast():
                    logp = policy(b["input_ids"], b["attention_mask"], b["mask"])           # [B, T] fp32
                zero = logp.sum() * 0.0
                grpo_mask, sdl_mask = b["mask"], b["sdl_mask"]
                if opts.srpo.enabled:
                    grpo_mask, sdl_mask = srpo_masks(grpo_mask, sdl_mask, b["success"])
                weight = b["sdl_weight"][:, None] * torch.ones_like(logp)                   # PACED (1 without)
                if opts.srpo.uncertainty_weight > 0:
                    weight = weight * uncertainty_weight(b["teacher_entropy"], opts.srpo.uncertainty_weight)
                if opts.sdar is not None:
                    weight = weight * sdar_gate(logp, b["teacher_logprobs"], opts.sdar.tau, opts.sdar.max_weight)
                loss_sdl = (skill_sd_loss(logp, b["teacher_logprobs"], b["old_logprobs"], sdl_mask,
                                          rho_max=opts.rho_max, denom=max(n_teacher_tokens, 1), weight=weight)
                            if distill else zero)                                             # L_SDL
                if spec.oracle_targets and n_guided > 0:                                     # ground-truth guidance
                    rows, state = target_rows(part)
                    loss_gt = zero
                    if rows:
                        r = collate(rows, pad_id, device=dist.device)
                        with autocast():
                            target_logp = policy(r["input_ids"], r["attention_mask"], r["mask"]).sum(-1)
                        loss_gt = oracle_nll(target_logp, torch.tensor(state, device=logp.device), len(part),
                                             denom=n_guided)                                  # L_GT
                    loss_sdl = guided_distillation(loss_sdl, loss_gt, gt_alpha)              # (1-a) L_SDL + a L_GT
                if spec.sft:
                    loss_grpo, loss_sdl = zero, zero
                    loss = sft_loss(logp, b["mask"], denom=n_tokens)                         # L_SFT
                elif spec.rl:
                    loss_grpo = grpo_loss(logp, b["old_logprobs"], b["advantages"], grpo_mask,
                                          clip_eps=opts.clip_eps, denom=max(n_tokens, 1))
                    loss = total_loss(loss_grpo, loss_sdl, opts.lambda_sdl)                  # L_GRPO + lambda L_SDL
                    if probe is not None and distill:
                        probe.add(loss_grpo, opts.lambda_sdl * loss_sdl)
                else:
                    loss_grpo = zero
                    loss = loss_sdl                                                            # OPD: L_SDL alone
                with dist.no_sync(policy, sync=sync):
                    dist.backward(loss)

                for key, value in (("loss", loss), ("loss_grpo", loss_grpo), ("loss_sdl", loss_sdl)):
                    loss_sums[key] += float(value.detach())
                weighted = [(b["mask"], diagnostics(logp.detach(), b["old_logprobs"], b["mask"], b["advantages"],
                                                    clip_eps=cfg.loss.clip_eps, rho_max=cfg.loss.rho_max))]
                if spec.distill and float(b["sdl_mask"].sum()) > 0:
                    kl = diagnostics(logp.detach(), b["old_logprobs"], b["sdl_mask"],
                                     logp_teacher=b["teacher_logprobs"])
                    weighted.append((b["sdl_mask"], {k: v for k, v in kl.items() if k.startswith("kl_")}))
                for mask, stats in weighted:
                    rho_max = max(rho_max, stats.pop("rho_max", 0.0))
                    for key, value in stats.items():
                        stat_sums[key] += value * float(mask.sum())
                        stat_tokens[key] += float(mask.sum())
            if probe is not None:
                probe.step()
            for p in params:               # a step with no live rows is still an optimiser step (Adam moments)
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
            grad_norms.append(dist.clip_grad_norm(params, cfg.optim.max_grad_norm))
            optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    out = {k: v / max(len(grad_norms), 1) for k, v in loss_sums.items()}  # mean over optimiser steps
    out.update({k: stat_sums[k] / stat_tokens[k] for k in stat_sums if stat_tokens[k] > 0})
    out["rho_max"] = rho_max
    out["grad_norm"] = float(np.mean(grad_norms)) if grad_norms else 0.0
    out["grad_norm_max"] = float(np.max(grad_norms)) if grad_norms else 0.0
    out["optimizer_steps"] = len(grad_norms)
    if probe is not None:
        out.update({k: dist.mean(v) for k, v in probe.summary().items()})
    return out


# ---------------------------------------------------------------------------------------------
# Evaluation
# ---------------------------------------------------------------------------------------------

def evaluate(backend: HFBackend, pool: Any, task_ids: Sequence[str], cfg: TrainConfig, dist: Dist,
             student_skills: dict[str, str] | None = None,
             teacher_skill: Callable[[str], str | None] | None = None) -> dict[str, Any]:
    """The held-out evaluation (:func:`trainer.evaluation.evaluate`): one episode per task (greedy by
    default, each rank plays its share), metrics named as everywhere else with an ``eval_`` prefix,
    plus the dense metric on ``eval.dense_states`` held-out states (``teacher_skill`` gives the
    skill for ``dense_teacher_advantage``)."""
    sampling = SamplingParams(temperature=cfg.eval.temperature, top_p=cfg.rollout.top_p,
                              max_new_tokens=cfg.rollout.max_new_tokens, stop=cfg.rollout.stop)

    def play(ids: list[str]) -> list[Trajectory]:
        batch = collect_rollouts(backend, pool, dist.shard(ids), 1, sampling, window=cfg.rollout.history_window,
                                 seed=cfg.seed + 7919, student_skills=student_skills,
                                 skill_position=cfg.teacher.skill_position, max_turns=cfg.rollout.max_turns,
                                 id_prefix="eval", env_name=cfg.env.name)
        return _gather_trajectories(batch.trajectories, dist)

    env = make_env_factory(cfg)()
    try:
        probe = DenseProbe.build(env, task_ids, cfg.eval.dense_states, seed=cfg.eval.dense_seed)
    finally:
        env.close()
    result, _ = run_evaluation(play, list(task_ids), label=cfg.method, env=cfg.env.name, split=cfg.env.eval_split,
                               probe=probe, model=backend.model, tokenizer=backend.tokenizer,
                               skill_text=teacher_skill, skill_position=cfg.teacher.skill_position)
    return result.metrics(prefix="eval_")


def _gather_trajectories(trajectories: list[Trajectory], dist: Dist) -> list[Trajectory]:
    """Every rank's trajectories on every rank (in rank order)."""
    if dist.world == 1:
        return trajectories
    shards: list[Any] = [None] * dist.world
    torch.distributed.all_gather_object(shards, [t.model_dump(mode="json") for t in trajectories])
    return [Trajectory.model_validate(t) for shard in shards for t in shard]


def group_outcome(batch: RolloutBatch, group: int, kind: str) -> float:
    """A task group's outcome: its success rate (``success``) or mean return (``return``)."""
    trajs = [batch.trajectories[i] for i in batch.groups[group]]
    values = [t.success for t in trajs] if kind == "success" else [t.total_reward for t in trajs]
    return float(np.mean(values))


def rollout_stats(batch: RolloutBatch, dist: Dist) -> dict[str, float]:
    trajs = batch.trajectories
    return {
        "reward_mean": dist.mean(float(np.mean(batch.returns))),
        "reward_std": dist.mean(float(np.std(batch.returns))),
        "success_rate": dist.mean(float(np.mean(batch.successes))),
        "episode_turns_mean": dist.mean(float(np.mean([t.num_steps for t in trajs]))),
        "truncated_frac": dist.mean(float(np.mean([t.metadata.get("truncated", False) for t in trajs]))),
        "response_tokens_mean": dist.mean(float(np.mean([len(s.response_ids) for s in batch.samples]))),
        "n_samples": len(batch.samples),
        "n_episodes": len(trajs),
    }


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------

def train(cfg: TrainConfig, resume: str | Path | None = None, run_dir: str | Path | None = None,
          log: Log = print) -> Path:
    """Train a policy as configured; returns the run folder (metrics, checkpoints, final model)."""
    spec = cfg.spec
    seed_everything(cfg.seed)
    dist = Dist(cfg, resolve_device(cfg.model.device))
    log = log if dist.is_main else (lambda message: None)
    device = dist.device
    autocast = autocast_for(cfg, device)
    if dist.is_main:
        run_dir = create_run_dir(cfg.name, cfg, seed=cfg.seed, root=cfg.output_root, run_dir=run_dir)
    run_dir = Path(dist.broadcast(str(run_dir)))

    # -- model, optimiser, rollout backend, environments, skills, teacher -------------------------
    model, tokenizer = load_policy(cfg, device, seed=cfg.seed)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay,
                                  betas=tuple(cfg.optim.betas))
    policy, optimizer = dist.prepare(TokenLogprobs(model, cfg.model.logprob_chunk_size), optimizer)
    backend = HFBackend(unwrap_causal_lm(model), tokenizer, batch_size=cfg.rollout.generation_batch_size)
    pad_id = tokenizer.pad_token_id

    make_env = make_env_factory(cfg)
    train_tasks, eval_tasks = task_splits(cfg, make_env)
    pool = make_pool(cfg, make_env)
    skills = make_skill_source(cfg, run_dir if dist.is_main else run_dir / f"rank{dist.rank}", make_env, train_tasks)
    credit = SkillCredit(skills, delayed=not spec.skill_in_student)
    teacher = (Teacher(model, tokenizer, cfg.teacher_sync_every, cfg.teacher.skill_position,
                       cfg.model.logprob_chunk_size, cfg.teacher.batch_size,
                       entropy=cfg.loss.srpo.uncertainty_weight > 0) if spec.distill else None)
    # ground truth, asked only for ground-truth guidance's targets and the watch's metric (never a skill)
    oracle_env = make_env() if spec.distill else None
    targets = OracleTargets(oracle_env, tokenizer, cfg.sft.response_template) if spec.oracle_targets else None
    watch = HackingWatch(cfg.watch.window)
    pass_counts: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])   # PACED: task -> [successes, episodes]
    generation_zero = {k: v.detach().clone() for k, v in model.state_dict().items()} if cfg.generations > 1 else None
    generation_probe: GenerationProbe | None = None
    sft_data: dict[str, list[TurnSample]] = defaultdict(list)
    if spec.sft:
        experts = expert_trajectories(make_env, train_tasks, cfg.sft.response_template)
        for s in supervised_samples(experts, tokenizer, cfg.rollout.history_window):
            sft_data[s.task_id].append(s)
        train_tasks = [t for t in train_tasks if t in sft_data]

    start = 0
    if resume is not None:
        state = load_checkpoint(resume)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        skills.load_state_dict(state["skills"]["source"])
        credit.load_state_dict(state["skills"]["credit"])
        pass_counts.update(state["skills"].get("pass_counts", {}))
        if teacher is not None:
            teacher.load_state_dict(state["teacher"])
        watch.load_state_dict(state.get("watch") or watch.state_dict())
        if cfg.generations > 1:   # generation 0's weights, the fixed probe, a later generation's teacher
            generation_zero = state["generations"]["zero"]
            if state["generations"]["probe"] is not None:
                generation_probe = GenerationProbe.from_state_dict(state["generations"]["probe"])
            teacher.load_generation_state(state["generations"]["teacher"])
        restore_rng(state["rng"])
        start = int(state["iteration"])
        log(f"resumed from {resume} at iteration {start}")

    metrics = MetricsLogger(run_dir) if dist.is_main else None
    trajectory_dir = run_dir / "trajectories"
    sampling = SamplingParams(temperature=cfg.rollout.temperature, top_p=cfg.rollout.top_p,
                              max_new_tokens=cfg.rollout.max_new_tokens, stop=cfg.rollout.stop)
    log(f"run folder: {run_dir} | method {cfg.method} | {len(train_tasks)} train / {len(eval_tasks)} eval tasks")

    t_start = time.perf_counter()
    total_iterations = cfg.generations * cfg.iterations
    for iteration in range(start + 1, total_iterations + 1):
        t_iter = time.perf_counter()
        rng = np.random.default_rng([cfg.seed, iteration])
        generation = (iteration - 1) // cfg.iterations
        if generation > 0 and (iteration - 1) % cfg.iterations == 0:
            # 0. anchored generations: the finished student becomes the (frozen, anchored) teacher and a
            #    new student starts from the generation-0 weights with a fresh optimiser
            before = generation_probe.teacher_logprobs(teacher)
            teacher.next_generation(generation_zero, cfg.teacher.anchor_beta)
            model.load_state_dict(generation_zero)
            optimizer = torch.optim.AdamW(trainable, lr=cfg.optim.lr, weight_decay=cfg.optim.weight_decay,
                                          betas=tuple(cfg.optim.betas))
            boundary = generation_record(generation_probe, teacher, before, generation,
                                         watch.success[-1] if watch.success else None)
            if metrics is not None:
                metrics.log({"iteration": iteration, **boundary})
            log(f"generation {generation}: KL to the previous teacher {boundary['gen_kl_successive']:.4f}, "
                f"to the anchor {boundary['gen_kl_anchor']:.4f}")
        n_tasks = cfg.sft.tasks_per_iteration if spec.sft else cfg.rollout.tasks_per_iteration
        tasks = [str(t) for t in rng.choice(train_tasks, size=min(n_tasks, len(train_tasks)), replace=False)]
        tasks = dist.shard(tasks)
        record: dict[str, Any] = {"iteration": iteration}

        # 1. rollouts with the plain prompt (skill-in-prompt baseline: the UCB skill is in the student's prompt)
        in_prompt = ({t: sk for t in tasks if (sk := skills.skill_for(t)) is not None}
                     if spec.skill_in_student else {})
        t0 = time.perf_counter()
        with dist.full_params(policy), autocast():
            if spec.sft:
                batch = RolloutBatch([], [s for t in tasks for s in sft_data[t]])
            else:
                batch = collect_rollouts(backend, pool, tasks, cfg.rollout.group_size, sampling,
                                         window=cfg.rollout.history_window, seed=cfg.seed * 100003 + iteration,
                                         student_skills={t: text for t, (_, text) in in_prompt.items()} or None,
                                         skill_position=cfg.teacher.skill_position,
                                         max_turns=cfg.rollout.max_turns, id_prefix=f"it{iteration}-r{dist.rank}",
                                         env_name=cfg.env.name)
                assign_group_advantages(batch, cfg.loss.adv_eps)
            record["time_rollout"] = time.perf_counter() - t0
            outcomes = {t: group_outcome(batch, g, cfg.teacher.credit) for g, t in enumerate(tasks)} if batch.groups else {}

            # 2. credit: a task's previous teacher skill gets the change of the task's outcome since its update
            credits = [c for t, o in outcomes.items() if (c := credit.settle(t, o)) is not None]
            record["skill_credit_mean"] = float(np.mean(credits)) if credits else None

            # 3. one skill per task by UCB (the summaries of the previous iteration joined the banks) and
            #    the teacher (the student's weights as of its last sync, plus the skill) re-scores the student's tokens
            t0 = time.perf_counter()
            chosen = ({t: sk for t in tasks if (sk := skills.skill_for(t)) is not None}
                      if spec.distill else in_prompt)
            if teacher is not None:
                teacher.sync(iteration)
                if chosen:
                    scored = teacher.score(batch.samples, chosen)
                    record["teacher_scored_frac"] = scored / max(len(batch.samples), 1)
                    # does the skill make the teacher prefer the oracle's moves on these states? (at the
                    # teacher's weights; if not, distillation has nothing to transfer)
                    taught = [s for s in batch.samples if s.teacher_logprobs is not None]
                    if oracle_env is not None and taught and cfg.watch.teacher_states > 0:
                        picked = np.random.default_rng([cfg.seed, iteration, 1]).choice(
                            len(taught), size=min(cfg.watch.teacher_states, len(taught)), replace=False)
                        record.update(visited_teacher_advantage(
                            teacher.model, tokenizer, oracle_env,
                            [(taught[k].messages, chosen[taught[k].task_id][1], taught[k].task_id) for k in sorted(picked)],
                            cfg.teacher.skill_position) or {})
            if cfg.generations > 1 and generation_probe is None:
                generation_probe = GenerationProbe(batch.samples, chosen)
            # ground-truth guidance: the oracle's optimal moves on every visited state; alpha fixed or estimated
            gt_alpha = 0.0
            if targets is not None:
                record["gt_states_frac"] = targets.attach(batch.samples) / max(len(batch.samples), 1)
                if cfg.loss.gt_alpha == "auto":
                    gt_alpha, record["gt_alpha_states"] = estimate_alpha(
                        model, teacher, batch.samples, chosen, pad_id, cfg.model.logprob_chunk_size,
                        cfg.teacher.batch_size)
                else:
                    gt_alpha = cfg.loss.gt_alpha
                record["gt_alpha"] = gt_alpha
            # PACED: each task's distillation weighted by its running pass rate
            if cfg.loss.paced is not None:
                for g, task in enumerate(tasks):
                    counts = pass_counts[task]
                    counts[0] += sum(batch.trajectories[i].success for i in batch.groups[g])
                    counts[1] += len(batch.groups[g])
                rates = {t: pass_counts[t][0] / pass_counts[t][1] for t in tasks}
                weights = paced_weight(torch.tensor([rates[t] for t in tasks]), cfg.loss.paced.a, cfg.loss.paced.b)
                by_task = dict(zip(tasks, weights.tolist()))
                for s in batch.samples:
                    s.distill_weight = by_task[s.task_id]
                record["paced_weight_mean"] = float(weights.mean())
            record["time_teacher"] = time.perf_counter() - t0

        # 4. policy update
        t0 = time.perf_counter()
        model.train()
        update = policy_update(policy, optimizer, batch.samples, cfg, rng, dist, autocast, pad_id, gt_alpha)
        model.eval()
        record["time_update"] = time.perf_counter() - t0

        # 5. open the credit of the skills this update used; summarise this iteration's episodes into the
        #    banks in the background (joined before the next iteration picks skills)
        for task_id, (name, _) in chosen.items():
            if task_id in outcomes:
                credit.used(task_id, name, outcomes[task_id])
        if cfg.uses_skills:
            skills.add_trajectories(batch.trajectories, iteration)

        # 6. metrics, trajectories, evaluation, checkpoint
        record.update({"loss": update.get("loss"), "loss_grpo": update.get("loss_grpo"),
                       "loss_sdl": update.get("loss_sdl"),
                       "kl_student_teacher": update.get("kl_student_teacher")})
        if batch.trajectories:
            record.update(rollout_stats(batch, dist))
        else:
            record.update({"reward_mean": None, "success_rate": None, "n_samples": len(batch.samples)})
        record.update({k: v for k, v in update.items() if k not in record})
        record["skill_coverage"] = len(chosen) / max(len(tasks), 1) if cfg.uses_skills else None
        record["generation"] = generation
        # teacher-hacking watch: the student's agreement with the oracle next to the student-teacher KL
        if oracle_env is not None and batch.trajectories:
            record["oracle_agreement"] = oracle_agreement(oracle_env, batch.trajectories, cfg.watch.oracle_states,
                                                          rng)
            warning = watch.check(record["kl_student_teacher"], record["oracle_agreement"])
            record["teacher_hacking"] = int(warning is not None)
            if warning:
                log(f"  WARNING {warning}")
        record["lr"] = cfg.optim.lr
        elapsed = time.perf_counter() - t_iter
        tokens = sum(len(s.response_ids) for s in batch.samples)
        record["time_iteration"] = elapsed
        record["tokens_per_s"] = tokens / max(record["time_rollout"], 1e-9) if batch.trajectories else None
        record["episodes_per_s"] = len(batch.trajectories) / max(elapsed, 1e-9)
        if metrics is not None:
            metrics.log(record)
            if cfg.rollout.save_trajectories and batch.trajectories:
                trajectory_dir.mkdir(exist_ok=True)
                write_jsonl(trajectory_dir / f"iter-{iteration:06d}.jsonl", batch.trajectories)
        log(_summary(record))

        out_of_time = bool(dist.mean(float(cfg.time_limit_s is not None
                                           and time.perf_counter() - t_start > cfg.time_limit_s)))  # any rank
        last = iteration == total_iterations or out_of_time
        end_of_generation = iteration % cfg.iterations == 0
        if ((last and cfg.eval.at_end) or (end_of_generation and not last)
                or (cfg.eval.every and iteration % cfg.eval.every == 0)):
            eval_skills = ({t: s[1] for t in eval_tasks if (s := skills.skill_for(t)) is not None}
                           if cfg.uses_skills else {})
            with dist.full_params(policy), autocast():
                result = evaluate(backend, pool, eval_tasks, cfg, dist,
                                  eval_skills if spec.skill_in_student else None, eval_skills.get)
            watch.add_eval(result["eval_success_rate"])
            if metrics is not None:
                metrics.log({"iteration": iteration, "generation": generation, **result})
            log(f"  eval @ {iteration}: success {result['eval_success_rate']:.3f} "
                f"return {result['eval_mean_return']:.2f} steps {result['eval_mean_steps']:.1f} "
                f"dense greedy-optimal {_fmt(result['eval_dense_greedy_optimal'])} "
                f"log-prob optimal {_fmt(result['eval_dense_logprob_optimal'])}")
        if dist.is_main and (last or (cfg.checkpoint_every and iteration % cfg.checkpoint_every == 0)):
            save_checkpoint(checkpoint_dir(run_dir, iteration), model=model, optimizer=optimizer,
                            iteration=iteration, config=cfg.model_dump(mode="json"),
                            skills={"source": skills.state_dict(), "credit": credit.state_dict(),
                                    "pass_counts": dict(pass_counts)},
                            teacher=teacher.state_dict() if teacher is not None else None,
                            extra={"watch": watch.state_dict(), "generations": None if cfg.generations == 1 else {
                                "zero": generation_zero, "teacher": teacher.generation_state(),
                                "probe": generation_probe.state_dict() if generation_probe is not None else None}})
        if last:
            break

    # -- the end: final model folder (loadable by model.name), curves ------------------------------
    if dist.is_main:
        final = run_dir / "final"
        to_save = unwrap_causal_lm(model)
        if cfg.model.lora is not None:
            # the LoRA adapter alone (a few MB: a warm start others can load with --adapter / warm_start),
            # naming the base model as configured rather than the local folder it was loaded from
            for peft_cfg in model.peft_config.values():
                peft_cfg.base_model_name_or_path = cfg.model.name
            model.save_pretrained(str(run_dir / "adapter"))
            to_save = model.merge_and_unload()
        to_save.save_pretrained(str(final), safe_serialization=True)
        tokenizer.save_pretrained(str(final))
        plot_metrics(run_dir)
        if cfg.generations > 1:
            plot_generations(run_dir)
        metrics.close()
    skills.wait()
    pool.close()
    if oracle_env is not None:
        oracle_env.close()
    return run_dir


def evaluate_start(cfg: TrainConfig, run_dir: str | Path | None = None, log: Log = print) -> Path:
    """Evaluate the configured starting model without training it: the held-out evaluation of
    :func:`train`'s end, logged as iteration 0 in a run folder of its own. The reference a study's
    ``untrained`` arm gives (what training added to the warm start); returns the run folder."""
    seed_everything(cfg.seed)
    dist = Dist(cfg, resolve_device(cfg.model.device))
    if dist.world > 1:
        raise ValueError("evaluate_start runs in one process; launch it without accelerate")
    run_dir = create_run_dir(cfg.name, cfg, seed=cfg.seed, root=cfg.output_root, run_dir=run_dir)
    model, tokenizer = load_policy(cfg, dist.device, seed=cfg.seed)
    backend = HFBackend(unwrap_causal_lm(model), tokenizer, batch_size=cfg.rollout.generation_batch_size)
    make_env = make_env_factory(cfg)
    _, eval_tasks = task_splits(cfg, make_env)
    pool = make_pool(cfg, make_env)
    log(f"run folder: {run_dir} | evaluating {cfg.model.name} untrained on {len(eval_tasks)} tasks")
    try:
        with torch.no_grad(), autocast_for(cfg, dist.device)():
            result = evaluate(backend, pool, eval_tasks, cfg, dist)
    finally:
        pool.close()
    metrics = MetricsLogger(run_dir)
    metrics.log({"iteration": 0, "generation": 0, **result})
    metrics.close()
    log(f"  eval @ 0: success {result['eval_success_rate']:.3f} return {result['eval_mean_return']:.2f}")
    return run_dir


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _summary(r: dict[str, Any]) -> str:
    def f(key: str, fmt: str = ".3f") -> str:
        v = r.get(key)
        return "-" if v is None else format(v, fmt)

    return (f"iter {r['iteration']}: loss {f('loss', '.4f')} grpo {f('loss_grpo', '.4f')} sdl {f('loss_sdl', '.4f')} "
            f"kl_st {f('kl_student_teacher')} reward {f('reward_mean', '.2f')} success {f('success_rate', '.2f')} "
            f"ent {f('entropy')} |g| {f('grad_norm', '.2f')} ({r.get('time_iteration', math.nan):.1f}s)")


def main(argv: list[str] | None = None) -> Path:
    """``python -m trainer.train --config C [key=value ...]`` (also the ``accelerate launch`` entry)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--model", default=None)
    parser.add_argument("--max-iterations", type=int, default=None)
    parser.add_argument("--resume", default=None)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args(argv)
    cfg = resolve_config(args.config, args.overrides, args.model, args.max_iterations, args.resume)
    return train(cfg, resume=args.resume)


def resolve_config(config: str | Path | None, overrides: Sequence[str] = (), model: str | None = None,
                   max_iterations: int | None = None, resume: str | Path | None = None) -> TrainConfig:
    """The config of a run: the YAML (or, when resuming without one, the checkpoint's), overrides, flags."""
    overrides = list(overrides)
    if model is not None:
        overrides.append(f"model.name={model}")
    if config is None and resume is not None:
        cfg = validate_config(TrainConfig, apply_overrides(checkpoint_config(resume), overrides), str(resume))
    else:
        cfg = load_train_config(config, overrides)
    if max_iterations is not None:
        cfg.iterations = min(cfg.iterations, max_iterations)
    return cfg


if __name__ == "__main__":
    main()
