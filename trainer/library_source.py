"""The skill library as the teacher's skill source: per-task banks, UCB selection, new summaries.

* The bank of a task is the library's trajectory skills made from that task (``source_tasks``),
  newest first, at most ``bank_size``; skills of *other* tasks are never used as privileged
  information (another level's solution would mislead the teacher).
* ``skill_for`` picks from the bank with :class:`skillkit.skills.selection.UCBSelector`
  (untried skills first, then ``mean_reward + c * sqrt(ln N_task / n_s)``); ``feedback`` records
  the reward (the group's success rate) in the skill's per-task counters.
* ``add_trajectories`` summarises each task group that has a success
  (:class:`skillkit.skills.summarize.Summarizer`, deterministic heuristic unless a backend is given) and
  adds it while the task's bank has room; the trainer calls it after the update, so a skill
  summarised at iteration k conditions the teacher from iteration k+1 on.
* ``state_dict`` holds every skill with its counters, so a checkpoint restores the library exactly
  as it was at that iteration (into the resumed run's library folder).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from skillkit.skills.library import SkillLibrary
from skillkit.core.schemas import SkillBase, Trajectory, parse_skill, skill_to_dict
from skillkit.skills.selection import UCBSelector
from skillkit.skills.summarize import Summarizer, group_by_task


class LibrarySkillSource:
    """Skills from a :class:`SkillLibrary`, one per task chosen by UCB (see module docstring)."""

    def __init__(self, library: SkillLibrary, c: float = 1.0, summarizer: Summarizer | None = None,
                 summarize: bool = True, bank_size: int = 4) -> None:
        self.library = library
        self.selector = UCBSelector(library, c=c, autosave=False)
        self.summarizer = summarizer or Summarizer(None)
        self.summarize = summarize
        self.bank_size = bank_size

    @classmethod
    def build(cls, path: str | Path, experts: Sequence[Trajectory], c: float = 1.0, summarize: bool = True,
              embedder: str = "minilm", bank_size: int = 4) -> LibrarySkillSource:
        """Open (or create) the library at ``path`` and seed it with summaries of expert episodes."""
        source = cls(SkillLibrary.open(path, embedder=embedder), c=c, summarize=summarize, bank_size=bank_size)
        source.add_groups([[t] for t in experts if t.success and not source.bank(t.task_id)], iteration=0)
        return source

    def bank(self, task_id: str) -> list[SkillBase]:
        """The task's own trajectory skills, newest first."""
        own = [s for s in self.library.list(tier="trajectory") if task_id in s.source_tasks]
        own.sort(key=lambda s: (s.extraction_round, s.created_at), reverse=True)
        return own[:self.bank_size]

    def skill_for(self, task_id: str) -> tuple[str, str] | None:
        bank = self.bank(task_id)
        if not bank:
            return None
        skill = self.selector.select(task_id, bank)
        return skill.name, skill.body_text()

    def feedback(self, task_id: str, name: str, reward: float) -> None:
        self.selector.update(task_id, name, reward)

    def add_groups(self, groups: Sequence[Sequence[Trajectory]], iteration: int) -> int:
        """Summarise groups of episodes (one task each) into new skills; returns how many were added."""
        groups = [g for g in groups if len(self.bank(g[0].task_id)) < self.bank_size]
        added = 0
        for skill in self.summarizer.summarize_many(groups, extraction_round=iteration) if groups else []:
            skill.name = self.library.unique_name(skill.name)
            self.library.add(skill)
            added += 1
        self.library.save()
        return added

    def add_trajectories(self, trajectories: Sequence[Trajectory], iteration: int) -> int:
        if not self.summarize:
            self.library.save()
            return 0
        groups = [g for g in group_by_task(trajectories).values() if any(t.success for t in g)]
        return self.add_groups(groups, iteration)

    def state_dict(self) -> dict[str, Any]:
        return {"skills": [skill_to_dict(s) for s in self.library]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for skill in list(self.library):
            self.library.remove(skill)
        for data in state["skills"]:
            self.library.add(parse_skill(data))
        self.library.save()
