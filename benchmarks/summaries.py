"""Summaries from the embedded SmolLM2: free JSON vs JSON-schema constrained decoding, same run.

Episodes come from a seeded random player (never the solver or the reference code: skills come
from the agent's own experience): random moves on Sokoban train levels, random API calls on app
suite train tasks. Episodes are grouped by task and every group is summarized once per condition
with the same prompts, sampling and retries (:data:`CONDITIONS`): ``free`` (the model writes what
it likes; json-repair and retries fix what they can), ``schema`` (every answer held to the summary's
JSON schema) and ``schema+actions`` (the default: also every workflow step starts with an action
that occurred in the group). A summary counts as useful when it came from the model and passed the
summarizer's checks (valid JSON of the right shape, no copy of the instructions, two different
analyses, the analyses a group needs, a workflow naming actions that occurred, as the
environment's analyzer reads the episodes); otherwise the group gets the deterministic fallback.

    python benchmarks/summaries.py                       # 32 groups, about 12 minutes on 2 busy CPU cores
    python benchmarks/summaries.py --sokoban 4 --apps 2  # a quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path
from typing import Any

# the repository root on sys.path, so the script also runs from a checkout that is not installed
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

import environments  # noqa: E402
from environments.base import Environment, run_episode  # noqa: E402
from environments.players import random_player  # noqa: E402
from skillkit.core.llm.hf import HFBackend  # noqa: E402
from skillkit.core.schemas import Trajectory  # noqa: E402
from skillkit.core.stats import bootstrap_mean  # noqa: E402
from skillkit.skills.summarize import Summarizer, group_by_task  # noqa: E402


def play(env: Environment, tasks: list[str], episodes: int, seed: int) -> list[Trajectory]:
    """``episodes`` seeded random-player episodes of every task."""
    out = []
    for t, task in enumerate(tasks):
        for k in range(episodes):
            rng = random.Random(seed * 1_000_003 + t * 101 + k)
            traj = run_episode(env, random_player(env.name, rng), task, episode_id=f"random-{task}-{k}")
            traj.metadata["source"] = "random-player"
            out.append(traj)
    return out


def collect(n_sokoban: int, n_apps: int, episodes: int, seed: int) -> list[Trajectory]:
    """Random-player episodes on the first Sokoban train levels and spread-out app train tasks."""
    trajs: list[Trajectory] = []
    with environments.make("sokoban", variant="1box", max_steps=20) as env:
        trajs += play(env, env.task_ids("train")[:n_sokoban], episodes, seed)
    with environments.make("apps", max_steps=3) as env:
        ids = env.task_ids("train")
        step = max(1, len(ids) // max(1, n_apps))
        trajs += play(env, ids[::step][:n_apps], episodes, seed)
    return trajs


#: name -> Summarizer settings: free JSON (before), the summary's schema alone, and the default
#: (the schema with every workflow step starting with an action that occurred in the group).
CONDITIONS = {"free": {"constrained": False}, "schema": {"constrained": True, "ground_workflow": False},
              "schema+actions": {"constrained": True, "ground_workflow": True}}


def measure(backend: HFBackend, groups: list[list[Trajectory]], settings: dict[str, bool], max_new_tokens: int,
            max_retries: int, batch_size: int) -> dict[str, Any]:
    """Summarize every group once; counters, the useful share with its 95% interval, seconds."""
    summarizer = Summarizer(backend, max_new_tokens=max_new_tokens, max_retries=max_retries, batch_size=batch_size,
                            max_prompt_chars=1200, **settings)
    start = time.perf_counter()
    skills = summarizer.summarize_many(groups)
    seconds = time.perf_counter() - start
    useful = [float(s.metadata.get("summarizer") != "heuristic") for s in skills]
    first_try = [float(s.metadata.get("attempts") == 1) for s in skills]
    estimate, first = bootstrap_mean(useful), bootstrap_mean(first_try)
    reasons: dict[str, int] = {}
    for s in skills:
        if "fallback_reason" in s.metadata:
            why = str(s.metadata["fallback_reason"]).split(":")[0][:60]
            reasons[why] = reasons.get(why, 0) + 1
    example = next((s for s in skills if s.metadata.get("summarizer") != "heuristic"), None)
    return {
        "groups": len(groups), **{k: v for k, v in summarizer.stats.as_dict().items()},
        "useful": round(estimate.mean, 4), "useful_ci95": [round(estimate.low, 4), round(estimate.high, 4)],
        "useful_first_try": round(first.mean, 4), "useful_first_try_ci95": [round(first.low, 4), round(first.high, 4)],
        "seconds": round(seconds, 1), "fallback_reasons": dict(sorted(reasons.items(), key=lambda kv: -kv[1])),
        "example": None if example is None else {
            "task": example.task_id, "description": example.description, "success_analysis": example.success_analysis,
            "mistake_analysis": example.mistake_analysis, "golden_workflow": example.golden_workflow},
    }


def main() -> None:
    """Collect episodes, summarize them under every condition, print a table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sokoban", type=int, default=20, help="Sokoban train levels (one group each)")
    parser.add_argument("--apps", type=int, default=12, help="app suite train tasks (one group each)")
    parser.add_argument("--episodes", type=int, default=3, help="random episodes per task")
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--max-retries", type=int, default=1)
    parser.add_argument("--batch", type=int, default=12, help="conversations per generate call")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (on a shared machine more threads can be several times slower)")
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "summaries.json"))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    trajs = collect(args.sokoban, args.apps, args.episodes, args.seed)
    groups = list(group_by_task(trajs).values())
    backend = HFBackend.from_pretrained("smollm2-135m", device=args.device, batch_size=args.batch)
    results = {name: measure(backend, groups, settings, args.max_new_tokens, args.max_retries, args.batch)
               for name, settings in CONDITIONS.items()}
    wins = sum(t.success for t in trajs)
    report = {
        "model": "smollm2-135m", "device": args.device, "threads": args.threads, "max_new_tokens": args.max_new_tokens,
        "max_retries": args.max_retries, "batch": args.batch, "seed": args.seed,
        "episodes": {"total": len(trajs), "successes": wins, "player": "seeded random",
                     "sokoban_levels": args.sokoban, "apps_tasks": args.apps, "per_task": args.episodes},
        "conditions": results, "total_seconds": round(time.perf_counter() - start, 1),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None},
    }
    print(f"{len(groups)} groups of {args.episodes} random episodes ({wins} of {len(trajs)} succeeded), "
          f"max_new_tokens {args.max_new_tokens}, {args.max_retries} retry")
    print(f"{'condition':<15} {'groups':>6} {'llm_ok':>6} {'repaired':>8} {'retried':>7} {'fallback':>8} "
          f"{'useful (95% CI)':>22} {'first try':>9} {'seconds':>8}")
    for name, r in results.items():
        ci = f"{r['useful']:.2f} [{r['useful_ci95'][0]:.2f}, {r['useful_ci95'][1]:.2f}]"
        print(f"{name:<15} {r['groups']:>6} {r['llm_ok']:>6} {r['repaired']:>8} {r['retried']:>7} {r['fallback']:>8} "
              f"{ci:>22} {r['useful_first_try']:>9.2f} {r['seconds']:>8.1f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
