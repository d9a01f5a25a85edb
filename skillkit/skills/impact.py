"""Skill impact: does showing a skill help, on the same tasks, compared with showing nothing?

Input: evaluation trajectories of the same tasks with skills (turns record ``skills_shown``) and
without skills. For each skill: how many episodes showed it, and success/return on those tasks
with it vs the same tasks' episodes without skills. Skills with a negative delta are candidates
for pruning. Under progressive disclosure a turn's info also records the skill bodies and files
the agent read (``skill_reads``), so a shown skill that is never read can be told apart.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from skillkit.core.schemas import Trajectory, read_trajectories

#: Turn info key under which the agent records the read actions it answered before the turn's step:
#: a list of ``{"skill", "path" (None: the body), "found", "tokens", "truncated"}``.
SKILL_READS = "skill_reads"


class SkillImpact(BaseModel):
    """One skill's effect, measured on the tasks where it was shown."""

    name: str
    episodes: int
    tasks: int
    success_with: float
    success_without: float | None
    return_with: float
    return_without: float | None
    episodes_read: int = Field(0, description="episodes in which the agent read its body or a bundled file")

    @property
    def success_delta(self) -> float | None:
        """Success with the skill minus success without skills on the same tasks."""
        return None if self.success_without is None else self.success_with - self.success_without


def _shown(trajectory: Trajectory) -> set[str]:
    return {name for turn in trajectory.turns for name in turn.skills_shown}


def skills_read(trajectory: Trajectory) -> set[str]:
    """Names of the skills whose body or a bundled file the agent read in the episode."""
    return {read["skill"] for turn in trajectory.turns for read in turn.info.get(SKILL_READS, [])
            if read.get("found")}


def skill_impact(trajectories: Iterable[Trajectory]) -> list[SkillImpact]:
    """Compute the impact of every skill shown in ``trajectories``, best first.

    Episodes that showed no skill at all form the baseline; a skill's "without" numbers use only
    baseline episodes of the tasks where the skill was shown (None when there are none).
    """
    with_skill: dict[str, list[Trajectory]] = defaultdict(list)
    baseline: dict[str, list[Trajectory]] = defaultdict(list)
    for t in trajectories:
        shown = _shown(t)
        if not shown:
            baseline[t.task_id].append(t)
        for name in shown:
            with_skill[name].append(t)
    impacts = []
    for name, episodes in with_skill.items():
        tasks = {t.task_id for t in episodes}
        base = [b for task in tasks for b in baseline.get(task, [])]
        impacts.append(SkillImpact(
            name=name, episodes=len(episodes), tasks=len(tasks),
            success_with=sum(t.success for t in episodes) / len(episodes),
            success_without=sum(b.success for b in base) / len(base) if base else None,
            return_with=sum(t.total_reward for t in episodes) / len(episodes),
            return_without=sum(b.total_reward for b in base) / len(base) if base else None,
            episodes_read=sum(name in skills_read(t) for t in episodes),
        ))
    return sorted(impacts, key=lambda i: (i.success_delta if i.success_delta is not None else -9, i.return_with),
                  reverse=True)


def trajectory_files(runs: Sequence[str | Path]) -> list[Path]:
    """All ``*.jsonl`` trajectory files under the given run folders (or the files themselves)."""
    files: list[Path] = []
    for run in runs:
        path = Path(run)
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(sorted(p for p in path.rglob("*.jsonl") if p.name != "metrics.jsonl"))
        else:
            raise FileNotFoundError(f"no run folder or trajectory file at {path}")
    return files


def load_run_trajectories(runs: Sequence[str | Path]) -> list[Trajectory]:
    """Read every trajectory JSONL in the runs, skipping JSONL files that hold something else."""
    out: list[Trajectory] = []
    for path in trajectory_files(runs):
        try:
            out.extend(read_trajectories(path))
        except ValueError as exc:
            warnings.warn(f"skipping {path}: {exc}", stacklevel=2)
    return out
