"""GPU experiment: SFT warm start, then GRPO vs Skill-SD vs frozen-teacher Skill-SD at equal budget.

Sokoban 6x6 with one box, the embedded SmolLM2-135M (bf16 autocast on GPU):

1. SFT warm start on the solver's trajectories of the 96 training levels (``method: sft``), then
   held-out success of the warm-started model on the 64 test levels;
2. from the SFT weights, each arm trains for the same number of iterations (same tasks per
   iteration, same G, same seeds): ``grpo``, ``skillsd`` (dynamic teacher) and
   ``skillsd_frozen``. The first arm runs until ``--arm-seconds`` or ``--iterations``; the others
   then get exactly as many iterations as it completed (equal budget in rollouts and updates);
3. held-out success (greedy, one episode per test level) of every arm; everything goes into one
   JSON file (``--out``) with the per-iteration curves and the exact configs.

The teacher's skills come from the skill library, seeded with the deterministic summaries of the
solver episodes (one per training level) and grown with summaries of the arms' own successes;
skills are selected per task by UCB.

    python benchmarks/gpu_skillsd.py --out results/gpu_skillsd.json            # one H100: ~8 minutes
    python benchmarks/gpu_skillsd.py --smoke --out /tmp/smoke.json             # CPU, tiny model, < 1 minute
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

# the repository root on sys.path, so the script also runs from a checkout that is not installed
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

ROOT = Path(__file__).resolve().parent.parent
ARMS = ["grpo", "skillsd", "skillsd_frozen"]


def common_overrides(args: argparse.Namespace) -> list[str]:
    """Settings shared by every phase (rollout shape, eval, library), so the arms differ only by method."""
    if args.smoke:
        return ["model.name=tiny-random", "model.device=cpu", "rollout.tasks_per_iteration=2", "rollout.group_size=2",
                "rollout.max_new_tokens=4", "rollout.max_turns=2", "env.max_train_tasks=4", "env.max_eval_tasks=2",
                "sft.tasks_per_iteration=2", "optim.micro_batch_size=8", "teacher.library_embedder=hashing",
                "rollout.save_trajectories=false", "checkpoint_every=0", f"seed={args.seed}"]
    return [
        "model.device=auto", "model.precision=auto",
        f"rollout.tasks_per_iteration={args.tasks_per_iteration}", f"rollout.group_size={args.group_size}",
        "rollout.max_new_tokens=8", f"rollout.max_turns={args.max_turns}", "rollout.history_window=1",
        "rollout.generation_batch_size=256", "rollout.save_trajectories=false",
        "env.max_eval_tasks=64", "eval.every=0", "checkpoint_every=0",
        "optim.micro_batch_size=32", "optim.num_minibatches=2", f"optim.lr={args.lr}",
        "teacher.library_embedder=hashing", "teacher.batch_size=64", f"loss.lambda_sdl={args.lambda_sdl}",
        f"seed={args.seed}",
    ]


def run_phase(config: str, overrides: list[str], run_dir: Path) -> dict:
    """Train one phase and return its final eval, iterations and curves."""
    from trainer.metrics import read_metrics
    from trainer.train import resolve_config, train

    cfg = resolve_config(ROOT / "configs" / config, overrides)
    start = time.perf_counter()
    train(cfg, run_dir=run_dir, log=lambda m: print(f"[{cfg.method}] {m}", flush=True))
    seconds = time.perf_counter() - start
    rows = read_metrics(run_dir)
    train_rows = [r for r in rows if "loss" in r]
    final_eval = [r for r in rows if "eval_success_rate" in r][-1]
    keep = ("iteration", "loss", "loss_grpo", "loss_sdl", "kl_student_teacher", "reward_mean", "success_rate",
            "entropy", "grad_norm", "clip_frac", "rho_mean", "teacher_scored_frac", "skills_added")
    return {
        "method": cfg.method,
        "iterations": len(train_rows),
        "seconds": round(seconds, 1),
        "eval_success_rate": final_eval["eval_success_rate"],
        "eval_mean_return": final_eval["eval_mean_return"],
        "eval_mean_steps": final_eval["eval_mean_steps"],
        "eval_dense_greedy_optimal": final_eval.get("eval_dense_greedy_optimal"),
        "eval_dense_logprob_optimal": final_eval.get("eval_dense_logprob_optimal"),
        "eval_episodes": final_eval["eval_episodes"],
        "train_success_rate_last": train_rows[-1].get("success_rate") if train_rows else None,
        "curve": [{k: r.get(k) for k in keep} for r in train_rows],
        "config": cfg.model_dump(mode="json"),
        "run_dir": str(run_dir),
    }


def plot(result: dict, path: Path) -> Path:
    """Two panels: training success per iteration of each arm, and held-out success of every model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for method, arm in result["arms"].items():
        xs = [row["iteration"] for row in arm["curve"] if row.get("success_rate") is not None]
        ys = [100 * row["success_rate"] for row in arm["curve"] if row.get("success_rate") is not None]
        left.plot(xs, ys, marker="o", markersize=3, label=method)
    left.set_xlabel("RL iteration (from the SFT weights)")
    left.set_ylabel("training success (%)")
    left.set_title("Rollout success during training")
    left.legend(fontsize=8)
    names = list(result["held_out_success"])
    bars = right.bar(names, [100 * result["held_out_success"][n] for n in names],
                     color=["#999999", "#4c72b0", "#55a868", "#c44e52"][: len(names)])
    right.bar_label(bars, fmt="%.1f", fontsize=8)
    right.set_ylim(0, 100)
    right.set_ylabel("held-out success (%)")
    right.set_title("Held-out success (64 test levels)")
    fig.suptitle(f"{result['model']} on {result['device']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gpu_skillsd.json")
    parser.add_argument("--work-dir", type=Path, default=None, help="run folders (default: runs/gpu_skillsd-<time>)")
    parser.add_argument("--smoke", action="store_true", help="tiny random model on CPU, 1 iteration per phase")
    parser.add_argument("--sft-iterations", type=int, default=12)
    parser.add_argument("--iterations", type=int, default=40, help="upper bound of RL iterations per arm")
    parser.add_argument("--arm-seconds", type=float, default=100.0, help="wall-time budget of the first arm")
    parser.add_argument("--tasks-per-iteration", type=int, default=8)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--max-turns", type=int, default=12)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--lambda-sdl", type=float, default=0.001, help="the paper's best lambda is 0.001")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--replot", action="store_true", help="only redraw the PNG of an existing --out JSON")
    args = parser.parse_args()
    if args.replot:
        print(plot(json.loads(args.out.read_text()), args.out.with_suffix(".png")))
        return
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    import torch

    t0 = time.perf_counter()
    work = args.work_dir or ROOT / "runs" / time.strftime("gpu_skillsd-%Y%m%d-%H%M%S")
    common = common_overrides(args)

    # 1. SFT warm start on the solver trajectories (all training levels each iteration).
    sft_iters = 1 if args.smoke else args.sft_iterations
    sft_extra = [f"iterations={sft_iters}"] + ([] if args.smoke else [
        "sft.tasks_per_iteration=96", "optim.num_minibatches=4", "optim.lr=5e-5"])
    sft = run_phase("sokoban_sft.yaml", common + sft_extra, work / "sft")
    init = Path(sft["run_dir"]) / "final"

    # 2. equal-budget RL arms from the SFT weights.
    arms: dict[str, dict] = {}
    budget: int | None = None
    for method in [a.strip() for a in args.arms.split(",") if a.strip()]:
        extra = [f"model.name={init}"]
        if args.smoke:
            extra.append("iterations=1")
        elif budget is None:
            extra += [f"iterations={args.iterations}", f"time_limit_s={args.arm_seconds}"]
        else:
            extra.append(f"iterations={budget}")
        arms[method] = run_phase(f"sokoban_{method}.yaml", common + extra, work / method)
        if budget is None:
            budget = arms[method]["iterations"]

    # 3. the report.
    base = arms.get("grpo", {}).get("eval_success_rate")
    result = {
        "experiment": "sokoban-1box: SFT warm start, then GRPO vs Skill-SD vs frozen-teacher Skill-SD at equal budget",
        "command": "python benchmarks/gpu_skillsd.py " + " ".join(sys.argv[1:]),
        "smoke": args.smoke,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or "cpu",
        "model": "tiny-random" if args.smoke else "smollm2-135m",
        "rl_iterations_per_arm": budget,
        "episodes_per_iteration": (2 * 2) if args.smoke else args.tasks_per_iteration * args.group_size,
        "lambda_sdl": args.lambda_sdl,
        "sft": sft,
        "arms": arms,
        "held_out_success": {"sft": sft["eval_success_rate"], **{m: a["eval_success_rate"] for m, a in arms.items()}},
        "skillsd_minus_grpo_points": (None if base is None or "skillsd" not in arms
                                      else round(100 * (arms["skillsd"]["eval_success_rate"] - base), 1)),
        "total_seconds": round(time.perf_counter() - t0, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.out.with_suffix(".png"))
    print(json.dumps(result["held_out_success"]), f"skillsd - grpo = {result['skillsd_minus_grpo_points']} points",
          f"total {result['total_seconds']} s", f"-> {args.out}")


if __name__ == "__main__":
    main()
