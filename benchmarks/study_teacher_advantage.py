"""Does the teacher's skill carry anything to distil? The teacher advantage of a finished study's runs.

For every distilling run of a ``skillkit study`` folder (Skill-SD: skills summarised from the
agent's own episodes; OPSD: the solver's plan), the states its student visited in the last
iteration are scored at the warm start's weights twice: the log-prob of the oracle's optimal next
moves with the task's skill in the prompt and without (:func:`trainer.evaluation.visited_teacher_advantage`;
the trainer logs the same metric during training since it was added, this script computes it for
runs made before). Skill-SD's skill is the newest of the task's bank in the run's library, OPSD's
the solver's plan (ground truth, as that method's teacher sees it). Per arm: the mean with a 95%
interval over tasks and seeds.

    python benchmarks/study_teacher_advantage.py runs/study-cpu --json benchmarks/results/study_cpu/teacher_advantage.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import environments
from skillkit.core.config import read_yaml
from skillkit.core.fileio import atomic_write_text
from skillkit.core.models import load_causal_lm
from skillkit.core.prompts import build_messages
from skillkit.core.schemas import parse_skill, read_trajectories
from skillkit.core.stats import bootstrap_mean
from trainer.config import TrainConfig
from trainer.evaluation import visited_teacher_advantage
from trainer.rollout import expert_trajectories
from trainer.skills import expert_skill_source


def visited_states(run: Path, instructions: str, window: int) -> list[tuple[str, list[dict[str, str]]]]:
    """(task id, plain chat) of every turn of the run's last iteration, rebuilt as the trainer built them."""
    last = sorted((run / "trajectories").glob("iter-*.jsonl"))[-1]
    out = []
    for traj in read_trajectories(last):
        obs, history = traj.initial_observation, []
        for turn in traj.turns:
            out.append((traj.task_id, build_messages(instructions, traj.instruction, history, obs, window)))
            history.append((obs, turn.action))
            obs = turn.observation
    return out


def run_skills(run: Path, cfg: TrainConfig, tasks: set[str]) -> dict[str, str]:
    """The teacher's skill per task: the solver's plan (OPSD) or the newest skill of the task's bank."""
    if cfg.spec.ground_truth:
        make_env = lambda: environments.make(cfg.env.name, **cfg.env.options)  # noqa: E731
        source = expert_skill_source(expert_trajectories(make_env, sorted(tasks)))
        return {t: found[1] for t in tasks if (found := source.skill_for(t)) is not None}
    newest: dict[str, tuple[int, str]] = {}
    for line in (run / "library" / "skills.jsonl").read_text().splitlines():
        skill = json.loads(line)
        for task in skill.get("source_tasks", []):
            key = (skill.get("extraction_round", 0), skill.get("created_at", ""))
            if task in tasks and (task not in newest or key > newest[task][0]):
                newest[task] = (key, parse_skill(skill).body_text())   # as LibrarySkillSource renders it
    return {t: text for t, (_, text) in newest.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("study", type=Path, help="a skillkit study output folder")
    parser.add_argument("--states", type=int, default=32, help="visited states per run (default 32)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    warm = args.study / "warm_start"
    model, tokenizer = load_causal_lm(str(warm) if warm.exists() else "smollm2-135m", device="cpu")
    per_arm: dict[str, list[float]] = {}
    runs = []
    for result_file in sorted((args.study / "results").glob("*.json")):
        result = json.loads(result_file.read_text())
        run = Path(result["run_dir"])
        cfg = TrainConfig.model_validate(read_yaml(run / "config.yaml"))
        if not cfg.spec.distill:
            continue
        env = environments.make(cfg.env.name, **cfg.env.options)
        states = visited_states(run, env.instructions, cfg.rollout.history_window)[:args.states]
        skills = run_skills(run, cfg, {t for t, _ in states})
        try:
            found = visited_teacher_advantage(model, tokenizer, env, [(chat, skills[t], t) for t, chat in states
                                                                     if t in skills], cfg.teacher.skill_position)
        finally:
            env.close()
        if found is None:
            continue
        runs.append({"arm": result["arm"], "seed": result["seed"], **found})
        per_arm.setdefault(result["arm"], []).append(found["teacher_advantage"])
        print(f"{result['arm']:>10} seed {result['seed']}: {found['teacher_advantage']:+.3f} nats "
              f"[{found['teacher_advantage_low']:+.3f}, {found['teacher_advantage_high']:+.3f}] "
              f"on {int(found['teacher_advantage_states'])} visited states")
    summary = {arm: bootstrap_mean(values).as_dict() for arm, values in per_arm.items()}
    for arm, est in summary.items():
        print(f"{arm:>10}: {est['mean']:+.3f} nats [{est['low']:+.3f}, {est['high']:+.3f}] over {est['n_units']} seeds")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.json, json.dumps({"runs": runs, "arms": summary, "states_per_run": args.states},
                                                indent=1))


if __name__ == "__main__":
    main()
