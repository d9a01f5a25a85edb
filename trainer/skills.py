"""Where the teacher's skills come from: a small interface, a static source and the skill library.

:class:`SkillSource` is all the trainer needs:

* ``skill_for(task_id) -> (name, text) | None``: the skill for a task this iteration (the library
  source picks one from the task's bank by UCB, ``mean_reward + c * sqrt(ln N_task / n_s)``);
* ``feedback(task_id, name, reward)``: the reward the skill got (updates the UCB counters);
* ``add_trajectories(trajectories, iteration) -> int``: summarise new episodes into skills, which
  condition the teacher from the next iteration on;
* ``state_dict()`` / ``load_state_dict()``: everything needed to resume exactly (checkpoints).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from skillkit.core.schemas import Trajectory

if TYPE_CHECKING:
    from trainer.config import TrainConfig


class SkillSource(Protocol):
    """Skills for the teacher (or for the student's prompt in the skill-in-prompt baseline)."""

    def skill_for(self, task_id: str) -> tuple[str, str] | None: ...

    def feedback(self, task_id: str, name: str, reward: float) -> None: ...

    def add_trajectories(self, trajectories: Sequence[Trajectory], iteration: int) -> int: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class StaticSkillSource:
    """A fixed ``task_id -> skill text`` mapping (tests, hand-written hints); counts the feedback."""

    def __init__(self, skills: dict[str, str]) -> None:
        self.skills = dict(skills)
        self.counts: dict[str, list[float]] = {}

    def skill_for(self, task_id: str) -> tuple[str, str] | None:
        text = self.skills.get(task_id)
        return (f"skill-{task_id}", text) if text else None

    def feedback(self, task_id: str, name: str, reward: float) -> None:
        n, total = self.counts.get(name, [0, 0.0])
        self.counts[name] = [n + 1, total + float(reward)]

    def add_trajectories(self, trajectories: Sequence[Trajectory], iteration: int) -> int:
        return 0

    def state_dict(self) -> dict[str, Any]:
        return {"skills": dict(self.skills), "counts": {k: list(v) for k, v in self.counts.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.skills = dict(state["skills"])
        self.counts = {k: list(v) for k, v in state["counts"].items()}


def workflow_text(trajectory: Trajectory) -> str:
    """A plain trajectory skill when no summarizer is available: the successful episode's actions."""
    steps = "\n".join(f"{i}. {turn.action}" for i, turn in enumerate(trajectory.turns, 1))
    return ("## Golden workflow\nA successful solution of this exact task, one action per step:\n" + steps)


def expert_skill_source(trajectories: Sequence[Trajectory]) -> StaticSkillSource:
    """One skill per task: the golden workflow of its expert (solver) episode."""
    return StaticSkillSource({t.task_id: workflow_text(t) for t in trajectories if t.success})


def make_skill_source(cfg: TrainConfig, run_dir: str | Path, make_env: Callable[[], Any],
                      train_tasks: Sequence[str]) -> SkillSource:
    """The skill source a config asks for (``teacher.skills``); no skills for methods without any."""
    from trainer.rollout import expert_trajectories

    if not cfg.uses_skills or cfg.teacher.skills == "none":
        return StaticSkillSource({})
    experts = expert_trajectories(make_env, train_tasks) if cfg.teacher.seed_from_expert else []
    if cfg.teacher.skills == "expert":
        return expert_skill_source(experts)
    from trainer.library_source import LibrarySkillSource

    path = Path(cfg.teacher.library_path) if cfg.teacher.library_path else Path(run_dir) / "library"
    return LibrarySkillSource.build(path, experts, c=cfg.teacher.ucb_c, summarize=cfg.teacher.summarize,
                                    embedder=cfg.teacher.library_embedder, bank_size=cfg.teacher.bank_size)
