"""Oracle-skill check on the app suite: a ground-truth baseline for "skills transfer between tasks".

The langgraph agent (:class:`skillkit.agent.SkillAgent`) plays test tasks twice with the same
weights, the same prompts and the same sampling: once without skills, once shown, as skills, the
reference solutions of the train scenarios that share the task's pattern
(:func:`environments.apps.patterns.pattern_matches`: same pattern tag, an app in common, ranked by
the APIs the two reference solutions share). Reference solutions are the suite's ground truth, so
this is an **oracle** condition, an upper reference for what a learned skill library could give
this agent; it is not a method. Tasks whose scenario has no match are left out.

The skills reach the agent through its ordinary router interface (:class:`OracleRouter`: ``route``
and ``get``), so they are packed, shown and recorded (``skills_shown`` on every turn) exactly as
routed skills are. Both conditions run through :func:`skillkit.evaluate.evaluate_side_by_side`.
Success (TGC) and SGC get 95% intervals bootstrapped over scenarios (variants of a scenario are not
independent) and the paired difference oracle minus none (:mod:`skillkit.core.stats`).

Run: ``python benchmarks/apps_oracle_skill.py`` (embedded SmolLM2 on the CPU; ``--variants``,
``--tasks``, ``--max-steps``, ``--max-new-tokens`` size it) or, with an OpenAI-compatible server,
``--backend openai --model NAME --base-url URL`` (key in ``--api-key`` or ``OPENAI_API_KEY``).
Writes ``benchmarks/results/apps_oracle_skill.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from environments.apps import TASKS, AppsEnv, canonical_split, extract_code, get_task  # noqa: E402
from environments.apps.analysis import api_calls  # noqa: E402
from environments.apps.patterns import get_scenario, pattern_matches, reference_apis  # noqa: E402
from retriever.docs import RouterDoc  # noqa: E402
from retriever.router import RoutedSkill  # noqa: E402
from skillkit.agent import AgentConfig  # noqa: E402
from skillkit.core.fileio import atomic_write_text  # noqa: E402
from skillkit.core.llm.base import LLMBackend  # noqa: E402
from skillkit.core.llm.factory import make_backend  # noqa: E402
from skillkit.core.schemas import FunctionalSkill, Trajectory, slugify  # noqa: E402
from skillkit.core.stats import bootstrap_mean, grouped_means, paired_comparison  # noqa: E402
from skillkit.evaluate import evaluate_side_by_side  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "apps_oracle_skill.json"
CONDITIONS = ("no skill", "oracle skill")  # the arms of evaluate_side_by_side, in its order
_ARM_LABELS = {"no skills": "no skill", "with skills": "oracle skill"}
ACTION_CHARS = 200  # of each action kept in the report, to read what the agent tried


def oracle_skill(train_scenario_id: str) -> FunctionalSkill:
    """The skill of a train scenario: the reference solution of its first variant, with that task's text."""
    scenario = get_scenario(train_scenario_id)
    if scenario.split != "train":
        raise ValueError(f"oracle skills come from train scenarios; {train_scenario_id!r} is {scenario.split}")
    task = next(t for t in TASKS.values() if t.scenario_id == train_scenario_id)
    name = slugify(f"oracle-{train_scenario_id}")
    return FunctionalSkill(id=name, name=name, env="apps", tags=["oracle", scenario.pattern],
                           source_tasks=[task.task_id],
                           description=f"Reference solution (ground truth) of the task: {task.instruction}",
                           body=f"```python\n{task.reference.strip()}\n```")


class OracleRouter:
    """A router over train reference-solution skills that knows the answer: for a task's first-turn
    query (the task instruction, then the observation) it returns the skills of the ``per_task`` best
    train scenarios sharing the task's pattern, score 1.0 each. Other queries get no skill.

    Duck-types the two methods :class:`~skillkit.agent.SkillAgent` calls on a router (``route``, ``get``).
    """

    def __init__(self, task_ids: Sequence[str], per_task: int = 1):
        if per_task < 1:
            raise ValueError(f"per_task must be at least 1, got {per_task}")
        self._names: dict[str, list[str]] = {}  # task instruction -> skill names, best first
        self.docs: dict[str, RouterDoc] = {}
        for task_id in task_ids:
            task = get_task(task_id)
            skills = [oracle_skill(s.id) for s in pattern_matches(task.scenario_id)[:per_task]]
            if not skills:
                raise ValueError(f"task {task_id!r} (scenario {task.scenario_id}) has no train scenario "
                                 "sharing its pattern; choose tasks with oracle_tasks()")
            names = [s.name for s in skills]
            if self._names.setdefault(task.instruction, names) != names:
                raise ValueError(f"two tasks share the instruction {task.instruction!r} but not their oracle skills")
            for skill in skills:
                self.docs[skill.name] = RouterDoc.from_skill(skill)

    def skills_for(self, instruction: str) -> list[str]:
        """The skill names shown for a task instruction (empty when the router does not know it)."""
        return list(self._names.get(instruction.strip(), []))

    def get(self, name_or_id: str) -> RouterDoc:
        """A skill by name (ids are the names here)."""
        if name_or_id not in self.docs:
            raise KeyError(f"no oracle skill {name_or_id!r}")
        return self.docs[name_or_id]

    def route(self, query: str, k: int = 5, tier: str | None = None, method: str = "auto") -> list[RoutedSkill]:
        """The oracle skills of the task whose instruction opens ``query`` (tier and method are ignored)."""
        names = self.skills_for(query.split("\n", 1)[0])[:k]
        return [RoutedSkill(id=name, name=name, score=1.0, rank=rank, tier="functional", doc=self.docs[name])
                for rank, name in enumerate(names, 1)]


def oracle_tasks(split: str = "test_normal", variants: int = 1, limit: int | None = None) -> list[str]:
    """Task ids of ``split`` whose scenario has a train scenario sharing its pattern: the first
    ``variants`` variants of each such scenario, variant-major, at most ``limit``."""
    if variants < 1:
        raise ValueError(f"variants must be at least 1, got {variants}")
    name = canonical_split(split)
    if name == "train":
        raise ValueError("the oracle check runs on held-out scenarios (dev, test_normal, test_challenge), not train")
    chosen = [t for t in TASKS.values() if t.split == name and int(t.task_id.rsplit("_", 1)[1]) <= variants
              and pattern_matches(t.scenario_id)]
    ids = [t.task_id for t in chosen]
    return ids[:limit] if limit is not None else ids


def _per_scenario(trajectories: Sequence[Trajectory]) -> tuple[list[str], list[float], list[float]]:
    """Scenario ids, per-scenario TGC (mean over variants) and SGC (every variant solved)."""
    success = [float(t.success) for t in trajectories]
    scenarios, tgc = grouped_means(success, [get_task(t.task_id).scenario_id for t in trajectories])
    return scenarios, tgc, [float(m == 1.0) for m in tgc]


def _episode(t: Trajectory) -> dict[str, Any]:
    """One episode's outcome; ``reference_api``: its code called an API of the task's own reference
    solution beyond the prelude (a sign of being on the right track when nothing succeeds)."""
    checks = t.metadata.get("checks") or []
    called = {c for turn in t.turns for c in api_calls(extract_code(turn.action))}
    return {"success": bool(t.success), "steps": t.num_steps,
            "reference_api": bool(called & reference_apis(get_task(t.task_id).scenario_id)),
            "checks_passed": sum(bool(c.get("passed")) for c in checks), "checks_total": len(checks),
            "completed": bool(t.turns and t.turns[-1].info.get("completed")),
            "skills_shown": list(t.turns[0].skills_shown) if t.turns else [],
            "actions": [turn.action[:ACTION_CHARS] for turn in t.turns]}


def run_check(backend: LLMBackend, task_ids: Sequence[str], per_task: int = 1, max_steps: int = 2,
              config: AgentConfig | None = None, split: str = "test_normal") -> tuple[dict[str, Any], dict[str, list[Trajectory]]]:
    """Play ``task_ids`` without skills and with their oracle skills; returns the report (JSON-ready)
    and the trajectories per condition. Raises when an oracle episode was not shown its skills."""
    config = (config or AgentConfig()).model_copy(update={"max_skills": per_task})
    router = OracleRouter(task_ids, per_task)
    start = time.perf_counter()
    results, trajectories = evaluate_side_by_side(backend, router, config,  # type: ignore[arg-type]
                                                  lambda: AppsEnv(max_steps=max_steps), list(task_ids), split)
    wall = time.perf_counter() - start
    by_condition: dict[str, list[Trajectory]] = {c: [] for c in CONDITIONS}
    for t in trajectories:
        by_condition[_ARM_LABELS[t.metadata["eval_label"]]].append(t)
    for condition, trajs in by_condition.items():
        trajs.sort(key=lambda t: list(task_ids).index(t.task_id))
        if [t.task_id for t in trajs] != list(task_ids):
            raise RuntimeError(f"{condition}: expected one episode per task")
    for t in by_condition["oracle skill"]:
        wanted = router.skills_for(get_task(t.task_id).instruction)
        if any(turn.skills_shown != wanted for turn in t.turns):
            raise RuntimeError(f"{t.task_id}: the agent showed {[x.skills_shown for x in t.turns]}, not {wanted}")
    episodes = {c: [_episode(t) for t in trajs] for c, trajs in by_condition.items()}
    conditions: dict[str, Any] = {}
    units: dict[str, dict[str, list[float]]] = {}
    for condition, trajs in by_condition.items():
        eps = episodes[condition]
        _, tgc, sgc = _per_scenario(trajs)
        _, api = grouped_means([float(e["reference_api"]) for e in eps], [get_task(t.task_id).scenario_id for t in trajs])
        units[condition] = {"tgc": tgc, "sgc": sgc, "reference_api": api}
        conditions[condition] = {
            **{metric: bootstrap_mean(values).as_dict() for metric, values in units[condition].items()},
            "mean_steps": sum(e["steps"] for e in eps) / len(eps),
            "completed": sum(e["completed"] for e in eps) / len(eps),
            "checks_passed": sum(e["checks_passed"] for e in eps) / max(1, sum(e["checks_total"] for e in eps)),
        }
    paired = {metric: paired_comparison(units["no skill"][metric], units["oracle skill"][metric]).as_dict()
              for metric in units["no skill"]}
    tasks = []
    for k, task_id in enumerate(task_ids):
        task = get_task(task_id)
        tasks.append({"task_id": task_id, "scenario_id": task.scenario_id, "pattern": get_scenario(task.scenario_id).pattern,
                      "difficulty": task.difficulty, "apps": list(task.apps),
                      "matches": [s.id for s in pattern_matches(task.scenario_id)],
                      "oracle_skills": router.skills_for(task.instruction),
                      **{c: episodes[c][k] for c in CONDITIONS}})
    report = {
        "what": "Oracle-skill check (ground-truth baseline): the same agent and weights on the same tasks, without "
                "skills and shown the reference solutions of the train scenarios that share each task's pattern.",
        "split": canonical_split(split), "n_tasks": len(task_ids), "n_scenarios": len(_per_scenario(by_condition["no skill"])[0]),
        "max_steps": max_steps, "skills_per_task": per_task, "agent": config.model_dump(), "wall_s": round(wall, 1),
        "conditions": conditions, "paired_difference": paired,
        "skills": [{"name": d.name, "source_task": d.skill.source_tasks[0], "pattern": d.skill.tags[1],
                    "chars": len(d.body)} for d in router.docs.values()],
        "tasks": tasks,
    }
    return report, by_condition


def print_table(report: dict[str, Any]) -> None:
    """The report as a small table: per condition TGC and SGC with 95% intervals, then the paired difference."""

    def pct(e: dict[str, float]) -> str:
        return f"{100 * e['mean']:5.1f}% [{100 * e['low']:5.1f}, {100 * e['high']:5.1f}]"

    print(f"oracle-skill check (ground-truth baseline): {report['n_tasks']} {report['split']} tasks, "
          f"{report['n_scenarios']} scenarios, max_steps {report['max_steps']}, {report.get('model', '')}")
    print(f"{'condition':<14} {'TGC [95% CI]':<24} {'SGC [95% CI]':<24} {'reference API [95% CI]':<24} "
          f"{'steps':>5} {'completed':>9} {'checks':>7}")
    for name, c in report["conditions"].items():
        print(f"{name:<14} {pct(c['tgc']):<24} {pct(c['sgc']):<24} {pct(c['reference_api']):<24} "
              f"{c['mean_steps']:5.2f} {100 * c['completed']:8.1f}% {100 * c['checks_passed']:6.1f}%")
    for metric, comp in report["paired_difference"].items():
        d = comp["diff"]
        print(f"oracle - none, {metric}: {100 * d['mean']:+.1f} points [{100 * d['low']:+.1f}, {100 * d['high']:+.1f}] "
              f"(p={comp['p_value']:.3f}, MDE {100 * comp['mde']:.1f} points)")


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Parse the arguments, run the check, print the table and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m", help="embedded model, local path or HF id (hf), "
                        "or the served model name (openai, vllm)")
    parser.add_argument("--backend", default="hf", choices=("hf", "openai", "vllm"))
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1", help="OpenAI-compatible endpoint (openai)")
    parser.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY"), help="default: $OPENAI_API_KEY")
    parser.add_argument("--split", default="test_normal", help="dev, test_normal (alias test) or test_challenge")
    parser.add_argument("--variants", type=int, default=1, help="variants per scenario (1-5)")
    parser.add_argument("--tasks", type=int, default=None, help="at most this many tasks (default: all that match)")
    parser.add_argument("--skills", type=int, default=1, help="oracle skills shown per task (best matches first)")
    parser.add_argument("--skill-tokens", type=int, default=1024, help="token budget of the shown skills")
    parser.add_argument("--max-steps", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=320, help="enough to write a reference-sized solution")
    parser.add_argument("--batch-size", type=int, default=16, help="rows per forward pass (hf)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (hf; 1 is fastest on a "
                        "machine other jobs keep busy)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    options: dict[str, Any] = {}
    if args.backend == "openai":
        options = {"base_url": args.base_url, "api_key": args.api_key}
    elif args.backend == "hf":
        options = {"batch_size": args.batch_size}
        if args.threads:
            torch.set_num_threads(args.threads)
    task_ids = oracle_tasks(args.split, args.variants, args.tasks)
    backend = make_backend(args.backend, args.model, **options)
    config = AgentConfig(max_skill_tokens=args.skill_tokens, max_new_tokens=args.max_new_tokens)
    report, _ = run_check(backend, task_ids, args.skills, args.max_steps, config, args.split)
    report = {"model": args.model, "backend": args.backend, "command": " ".join(["python", *sys.argv]),
              "variants": args.variants, "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                                                     "load_average": list(os.getloadavg())}, **report}
    print_table(report)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.out, json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return report


if __name__ == "__main__":
    main()
