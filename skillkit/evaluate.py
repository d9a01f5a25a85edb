"""Evaluate an agent on an environment split, with and without skills, side by side."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from pydantic import BaseModel

from skillkit.core.schemas import Trajectory

if TYPE_CHECKING:
    from skillkit.agent import SkillAgent


class EvalResult(BaseModel):
    """Aggregate numbers of one evaluation: success (TGC), scenario success (SGC), steps, return."""

    label: str
    env: str
    split: str
    episodes: int
    success_rate: float
    scenario_success_rate: float | None = None
    mean_steps: float
    mean_return: float


def summarize_trajectories(trajectories: Sequence[Trajectory], label: str, env: str, split: str) -> EvalResult:
    """Success rate (= task goal completion), scenario goal completion when tasks carry a
    ``scenario_id`` (a scenario counts only when all its evaluated variants succeed), mean steps and return."""
    n = len(trajectories)
    if n == 0:
        raise ValueError(f"no episodes to summarize for {label!r}")
    by_scenario: dict[str, list[bool]] = defaultdict(list)
    for t in trajectories:
        scenario = t.metadata.get("scenario_id")
        if scenario is not None:
            by_scenario[str(scenario)].append(t.success)
    sgc = sum(all(v) for v in by_scenario.values()) / len(by_scenario) if by_scenario else None
    return EvalResult(
        label=label, env=env, split=split, episodes=n, success_rate=sum(t.success for t in trajectories) / n,
        scenario_success_rate=sgc, mean_steps=sum(t.num_steps for t in trajectories) / n,
        mean_return=sum(t.total_reward for t in trajectories) / n,
    )


def evaluate_agent(agent: SkillAgent, make_env: Callable[[], object], task_ids: Sequence[str], label: str,
                   split: str, batch_size: int = 16,
                   on_batch: Callable[[int], None] | None = None) -> tuple[EvalResult, list[Trajectory]]:
    """Run ``agent`` on every task id (``batch_size`` episodes at a time) and summarize."""
    trajectories: list[Trajectory] = []
    env_name = ""
    for start in range(0, len(task_ids), batch_size):
        batch = list(task_ids[start:start + batch_size])
        envs = [make_env() for _ in batch]
        try:
            env_name = envs[0].name  # type: ignore[attr-defined]
            trajectories.extend(agent.run(envs, batch))  # type: ignore[arg-type]
        finally:
            for env in envs:
                env.close()  # type: ignore[attr-defined]
        if on_batch is not None:
            on_batch(len(batch))
    for t in trajectories:
        t.metadata["eval_label"] = label
    return summarize_trajectories(trajectories, label, env_name, split), trajectories
