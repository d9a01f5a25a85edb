"""The training loop: rollouts -> skills -> teacher scoring -> update, one iteration at a time.

Read top to bottom: :func:`train` sets everything up, then every iteration

1. picks ``tasks_per_iteration`` training tasks and, for methods with skills, one skill per task
   (UCB over the task's bank in the skill library);
2. plays ``group_size`` episodes per task with the *plain* prompt (all live episodes generated
   together each turn) and sets every turn's advantage to its episode's group-normalised return;
3. lets the teacher (same weights, skill in the prompt) score the student's response tokens;
4. updates the policy with ``L = L_GRPO + lambda * L_SDL`` (or the method's variant, see
   :mod:`trainer.config`) in :func:`policy_update`, where the losses are written out;
5. feeds the rewards back to the skill counters, summarises the new episodes into skills (used
   from the next iteration on), logs metrics, evaluates and checkpoints.

Run: ``skillkit train --config configs/sokoban_skillsd.yaml`` or ``python -m trainer.train --config ...``;
multi-GPU: ``accelerate launch -m trainer.train --config ...`` (DDP; see docs/readme/trainer.md).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import math
import os
import random
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from environments.episodes import LocalEnvPool
from skillkit.core.config import create_run_dir
from skillkit.core.llm.base import SamplingParams
from skillkit.core.llm.hf import HFBackend
from skillkit.core.schemas import Trajectory, write_jsonl
from trainer.checkpoint import checkpoint_dir, load_checkpoint, restore_rng, save_checkpoint
from trainer.config import TrainConfig, load_train_config
from trainer.evaluation import DenseProbe
from trainer.evaluation import evaluate as run_evaluation
from trainer.logprobs import TokenLogprobs, unwrap_causal_lm
from trainer.losses import diagnostics, grpo_loss, sft_loss, skill_sd_loss
from trainer.metrics import MetricsLogger, plot_metrics
from trainer.rollout import (
    RolloutBatch,
    TurnSample,
    assign_group_advantages,
    collate,
    collect_rollouts,
    expert_trajectories,
    supervised_samples,
)
from trainer.skills import make_skill_source
from trainer.teacher import Teacher

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
    from skillkit.core.models import load_causal_lm

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
    import environments

    return functools.partial(environments.make, cfg.env.name, **cfg.env.options)


def make_pool(cfg: TrainConfig, make_env: Callable[[], Any]) -> Any:
    if cfg.rollout.ray_workers > 0:
        from trainer.ray_rollout import RayEnvPool

        return RayEnvPool(cfg.env.name, cfg.env.options, num_workers=cfg.rollout.ray_workers)
    return LocalEnvPool(make_env)


# ---------------------------------------------------------------------------------------------
# The update: losses written out
# ---------------------------------------------------------------------------------------------

def policy_update(policy: torch.nn.Module, optimizer: torch.optim.Optimizer, samples: list[TurnSample],
                  cfg: TrainConfig, rng: np.random.Generator, dist: Dist, autocast: Callable[[], Any],
                  pad_id: int) -> dict[str, float]:
    """``epochs`` passes over the samples in ``num_minibatches`` optimiser steps each.

    Every optimiser step accumulates gradients over micro-batches; losses are token-means over
    the whole minibatch (the denominators below), so accumulation equals one big batch.
    """
    spec = cfg.spec
    params = [p for p in policy.parameters() if p.requires_grad]
    loss_sums: dict[str, float] = defaultdict(float)   # micro-batch losses add up to the step's loss
    stat_sums: dict[str, float] = defaultdict(float)   # token-weighted sums of the diagnostics
    stat_tokens: dict[str, float] = defaultdict(float)
    rho_max, grad_norms = 0.0, []
    for _ in range(cfg.optim.epochs):
        order = rng.permutation(len(samples))
        for minibatch in np.array_split(order, cfg.optim.num_minibatches):
            if len(minibatch) == 0:
                continue
            mb = [samples[i] for i in minibatch]
            n_tokens = sum(len(s.response_ids) for s in mb)                                  # L_GRPO, L_SFT
            n_teacher_tokens = sum(len(s.response_ids) for s in mb if s.teacher_logprobs is not None)  # L_SDL
            optimizer.zero_grad(set_to_none=True)
            starts = range(0, len(mb), cfg.optim.micro_batch_size)
            for start in starts:
                b = collate(mb[start:start + cfg.optim.micro_batch_size], pad_id, device=dist.device)
                with dist.no_sync(policy, sync=start == starts[-1]), autocast():
                    logp = policy(b["input_ids"], b["attention_mask"], b["mask"])           # [B, T] fp32
                zero = logp.sum() * 0.0
                if spec.sft:
                    loss_grpo, loss_sdl = zero, zero
                    loss = sft_loss(logp, b["mask"], denom=n_tokens)
                else:
                    loss_grpo = (grpo_loss(logp, b["old_logprobs"], b["advantages"], b["mask"],
                                           clip_eps=cfg.loss.clip_eps, denom=n_tokens) if spec.rl else zero)
                    loss_sdl = (skill_sd_loss(logp, b["teacher_logprobs"], b["old_logprobs"], b["sdl_mask"],
                                              rho_max=cfg.loss.rho_max, denom=n_teacher_tokens)
                                if spec.distill and n_teacher_tokens else zero)
                    lam = cfg.loss.lambda_sdl if spec.rl else 1.0                             # OPD: L_SDL alone
                    loss = loss_grpo + lam * loss_sdl                                          # L_GRPO + lambda L_SDL
                with dist.no_sync(policy, sync=start == starts[-1]):
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
            grad_norms.append(dist.clip_grad_norm(params, cfg.optim.max_grad_norm))
            optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    out = {k: v / max(len(grad_norms), 1) for k, v in loss_sums.items()}  # mean over optimiser steps
    out.update({k: stat_sums[k] / stat_tokens[k] for k in stat_sums if stat_tokens[k] > 0})
    out["rho_max"] = rho_max
    out["grad_norm"] = float(np.mean(grad_norms)) if grad_norms else 0.0
    out["grad_norm_max"] = float(np.max(grad_norms)) if grad_norms else 0.0
    out["optimizer_steps"] = len(grad_norms)
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
    from skillkit.core.models import resolve_device

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
    probe = make_env()
    train_tasks = probe.task_ids(cfg.env.train_split)[:cfg.env.max_train_tasks]
    eval_tasks = probe.task_ids(cfg.env.eval_split)[:cfg.env.max_eval_tasks]
    probe.close()
    pool = make_pool(cfg, make_env)
    skills = make_skill_source(cfg, run_dir if dist.is_main else run_dir / f"rank{dist.rank}", make_env, train_tasks)
    teacher = (Teacher(model, tokenizer, cfg.teacher_mode, cfg.teacher.skill_position,
                       cfg.model.logprob_chunk_size, cfg.teacher.batch_size) if cfg.teacher_mode else None)
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
        skills.load_state_dict(state["skills"])
        if teacher is not None:
            teacher.load_state_dict(state["teacher"])
        restore_rng(state["rng"])
        start = int(state["iteration"])
        log(f"resumed from {resume} at iteration {start}")

    metrics = MetricsLogger(run_dir) if dist.is_main else None
    trajectory_dir = run_dir / "trajectories"
    sampling = SamplingParams(temperature=cfg.rollout.temperature, top_p=cfg.rollout.top_p,
                              max_new_tokens=cfg.rollout.max_new_tokens, stop=cfg.rollout.stop)
    log(f"run folder: {run_dir} | method {cfg.method} | {len(train_tasks)} train / {len(eval_tasks)} eval tasks")

    t_start = time.perf_counter()
    for iteration in range(start + 1, cfg.iterations + 1):
        t_iter = time.perf_counter()
        rng = np.random.default_rng([cfg.seed, iteration])
        n_tasks = cfg.sft.tasks_per_iteration if spec.sft else cfg.rollout.tasks_per_iteration
        tasks = [str(t) for t in rng.choice(train_tasks, size=min(n_tasks, len(train_tasks)), replace=False)]
        tasks = dist.shard(tasks)
        record: dict[str, Any] = {"iteration": iteration}

        # 1. skills for this iteration's tasks (UCB over each task's bank)
        chosen = {t: s for t in tasks if (s := skills.skill_for(t)) is not None} if cfg.uses_skills else {}

        # 2. rollouts with the plain prompt (skill-in-prompt baseline: the skill is in the student's prompt)
        t0 = time.perf_counter()
        with dist.full_params(policy), autocast():
            if spec.sft:
                batch = RolloutBatch([], [s for t in tasks for s in sft_data[t]])
            else:
                student_skills = {t: text for t, (_, text) in chosen.items()} if spec.skill_in_student else None
                batch = collect_rollouts(backend, pool, tasks, cfg.rollout.group_size, sampling,
                                         window=cfg.rollout.history_window, seed=cfg.seed * 100003 + iteration,
                                         student_skills=student_skills, skill_position=cfg.teacher.skill_position,
                                         max_turns=cfg.rollout.max_turns, id_prefix=f"it{iteration}-r{dist.rank}",
                                         env_name=cfg.env.name)
                assign_group_advantages(batch, cfg.loss.adv_eps)
            record["time_rollout"] = time.perf_counter() - t0

            # 3. the teacher (same weights + skill) re-scores the student's tokens
            t0 = time.perf_counter()
            if teacher is not None and chosen:
                record["teacher_scored_frac"] = teacher.score(batch.samples, chosen) / max(len(batch.samples), 1)
            record["time_teacher"] = time.perf_counter() - t0

        # 4. policy update
        t0 = time.perf_counter()
        model.train()
        update = policy_update(policy, optimizer, batch.samples, cfg, rng, dist, autocast, pad_id)
        model.eval()
        record["time_update"] = time.perf_counter() - t0

        # 5. skill counters, new skills from this iteration's episodes (used from the next iteration)
        for g, task_id in enumerate(tasks):
            if task_id in chosen and batch.groups:
                success = float(np.mean([batch.trajectories[i].success for i in batch.groups[g]]))
                skills.feedback(task_id, chosen[task_id][0], success)
        if cfg.uses_skills and batch.trajectories:
            record["skills_added"] = skills.add_trajectories(batch.trajectories, iteration)

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
        last = iteration == cfg.iterations or out_of_time
        if last or (cfg.eval.every and iteration % cfg.eval.every == 0):
            eval_skills = ({t: s[1] for t in eval_tasks if (s := skills.skill_for(t)) is not None}
                           if cfg.uses_skills else {})
            with dist.full_params(policy), autocast():
                result = evaluate(backend, pool, eval_tasks, cfg, dist,
                                  eval_skills if spec.skill_in_student else None, eval_skills.get)
            if metrics is not None:
                metrics.log({"iteration": iteration, **result})
            log(f"  eval @ {iteration}: success {result['eval_success_rate']:.3f} "
                f"return {result['eval_mean_return']:.2f} steps {result['eval_mean_steps']:.1f} "
                f"dense greedy-optimal {_fmt(result['eval_dense_greedy_optimal'])} "
                f"log-prob optimal {_fmt(result['eval_dense_logprob_optimal'])}")
        if dist.is_main and (last or (cfg.checkpoint_every and iteration % cfg.checkpoint_every == 0)):
            save_checkpoint(checkpoint_dir(run_dir, iteration), model=model, optimizer=optimizer,
                            iteration=iteration, config=cfg.model_dump(mode="json"), skills=skills.state_dict(),
                            teacher=teacher.state_dict() if teacher is not None else None)
        if last:
            break

    # -- the end: final model folder (loadable by model.name), curves ------------------------------
    if dist.is_main:
        final = run_dir / "final"
        to_save = unwrap_causal_lm(model)
        if cfg.model.lora is not None:
            to_save = model.merge_and_unload()
        to_save.save_pretrained(str(final), safe_serialization=True)
        tokenizer.save_pretrained(str(final))
        plot_metrics(run_dir)
        metrics.close()
    pool.close()
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
        from skillkit.core.config import apply_overrides, validate_config
        from trainer.checkpoint import checkpoint_config

        cfg = validate_config(TrainConfig, apply_overrides(checkpoint_config(resume), overrides), str(resume))
    else:
        cfg = load_train_config(config, overrides)
    if max_iterations is not None:
        cfg.iterations = min(cfg.iterations, max_iterations)
    return cfg


if __name__ == "__main__":
    main()
