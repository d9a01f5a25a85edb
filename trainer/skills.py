"""Where the teacher's skills come from, and how a skill earns credit.

:class:`SkillSource` is all the trainer needs:

* ``skill_for(task_id) -> (name, text) | None``: the skill for a task this iteration (the library
  source picks one from the task's bank by UCB, ``mean_credit + c * sqrt(ln N_task / n_s)``);
* ``feedback(task_id, name, credit)``: the credit the skill earned (updates the UCB counters);
* ``add_trajectories(trajectories, iteration)``: summarise new episodes into skills; the library
  source does it in a background thread, so rollouts go on meanwhile;
* ``wait() -> int``: the join point: the pending summaries are in the banks when it returns (every
  other method joins first, so the summaries of iteration k are there before the teacher of
  iteration k + 1 picks a skill, and a run is reproducible whatever the thread's timing);
* ``state_dict()`` / ``load_state_dict()``: everything needed to resume exactly (checkpoints).

Skills are the agent's own experience. The only ground-truth source here is
:func:`expert_skill_source`, used by the named baseline ``method: opsd`` alone.

:class:`SkillCredit` decides *when* a skill is credited. A teacher skill conditions only the
teacher, so the rollouts of the iteration that used it cannot reflect it; it is credited with the
change of the task's outcome from that visit to the task's next visit, after the update that used
it (docs/design.md section 6). A skill in the student's prompt shapes its own rollouts and is credited
with them at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from skillkit.core.schemas import Trajectory
from trainer.library_source import LibrarySkillSource
from trainer.rollout import expert_trajectories

if TYPE_CHECKING:
    from trainer.config import TrainConfig


class SkillSource(Protocol):
    """Skills for the teacher (or for the student's prompt in the skill-in-prompt baseline)."""

    def skill_for(self, task_id: str) -> tuple[str, str] | None: ...

    def feedback(self, task_id: str, name: str, reward: float) -> None: ...

    def add_trajectories(self, trajectories: Sequence[Trajectory], iteration: int) -> None: ...

    def wait(self) -> int: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class StaticSkillSource:
    """A fixed ``task_id -> skill text`` mapping (ground truth for OPSD, hand-written hints); counts the feedback."""

    def __init__(self, skills: dict[str, str]) -> None:
        self.skills = dict(skills)
        self.counts: dict[str, list[float]] = {}

    def skill_for(self, task_id: str) -> tuple[str, str] | None:
        """The task's fixed skill, if any."""
        text = self.skills.get(task_id)
        return (f"skill-{task_id}", text) if text else None

    def feedback(self, task_id: str, name: str, reward: float) -> None:
        """Count the credit (nothing to choose between: one skill per task)."""
        n, total = self.counts.get(name, [0, 0.0])
        self.counts[name] = [n + 1, total + float(reward)]

    def add_trajectories(self, trajectories: Sequence[Trajectory], iteration: int) -> None:
        """Nothing: the mapping is fixed."""

    def wait(self) -> int:
        """Nothing is ever pending."""
        return 0

    def state_dict(self) -> dict[str, Any]:
        """The mapping and the counters."""
        return {"skills": dict(self.skills), "counts": {k: list(v) for k, v in self.counts.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.skills = dict(state["skills"])
        self.counts = {k: list(v) for k, v in state["counts"].items()}


class SkillCredit:
    """Credits skills with something they can change (see the module docstring).

    ``delayed`` (teacher skills): :meth:`used` opens a credit with the outcome of the visit whose
    update used the skill, and :meth:`settle` at the task's next visit feeds ``outcome_next -
    outcome_then`` back to the source. Not delayed (skills in the student's prompt): :meth:`used`
    feeds that visit's outcome back at once.
    """

    def __init__(self, source: SkillSource, delayed: bool = True) -> None:
        self.source = source
        self.delayed = delayed
        self.open: dict[str, tuple[str, float]] = {}

    def settle(self, task_id: str, outcome: float) -> float | None:
        """Credit the skill whose update preceded this visit of ``task_id``; returns the credit given."""
        if task_id not in self.open:
            return None
        name, before = self.open.pop(task_id)
        credit = float(outcome) - before
        self.source.feedback(task_id, name, credit)
        return credit

    def used(self, task_id: str, name: str, outcome: float) -> None:
        """Record that skill ``name`` was used on ``task_id`` at a visit with this ``outcome``."""
        if self.delayed:
            self.open[task_id] = (name, float(outcome))
        else:
            self.source.feedback(task_id, name, float(outcome))

    def state_dict(self) -> dict[str, Any]:
        """The open credits."""
        return {"open": {t: [n, o] for t, (n, o) in self.open.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        self.open = {t: (str(n), float(o)) for t, (n, o) in state["open"].items()}


def workflow_text(trajectory: Trajectory) -> str:
    """The golden workflow of a successful episode as a skill text: its actions, one per step."""
    steps = "\n".join(f"{i}. {turn.action}" for i, turn in enumerate(trajectory.turns, 1))
    return ("## Golden workflow\nA successful solution of this exact task, one action per step:\n" + steps)


def expert_skill_source(trajectories: Sequence[Trajectory]) -> StaticSkillSource:
    """Ground truth (``method: opsd`` only): one skill per task, the golden workflow of its expert episode."""
    return StaticSkillSource({t.task_id: workflow_text(t) for t in trajectories if t.success})


def make_skill_source(cfg: TrainConfig, run_dir: str | Path, make_env: Callable[[], Any],
                      train_tasks: Sequence[str]) -> SkillSource:
    """The skill source a config asks for; the environment's oracle is consulted only by ``opsd``."""
    if not cfg.uses_skills or cfg.teacher.skills == "none":
        return StaticSkillSource({})
    if cfg.spec.ground_truth:
        return expert_skill_source(expert_trajectories(make_env, train_tasks))
    path = Path(cfg.teacher.library_path) if cfg.teacher.library_path else Path(run_dir) / "library"
    return LibrarySkillSource.open(path, c=cfg.teacher.ucb_c, summarize=cfg.teacher.summarize,
                                   embedder=cfg.teacher.library_embedder, bank_size=cfg.teacher.bank_size)
