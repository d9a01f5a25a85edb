"""The skill library as the teacher's skill source: per-task banks, UCB selection, new summaries.

* The bank of a task is the library's trajectory skills made from that task (``source_tasks``),
  newest first, at most ``bank_size``; skills of *other* tasks are never used as privileged
  information (another level's solution would mislead the teacher).
* ``skill_for`` picks from the bank with :class:`skillkit.skills.selection.UCBSelector`
  (untried skills first, then ``mean_credit + c * sqrt(ln N_task / n_s)``); ``feedback`` records
  the credit (:class:`trainer.skills.SkillCredit` decides what and when) in the skill's per-task
  counters.
* ``add_trajectories`` summarises each task's group of episodes, successes and failures alike
  (:class:`skillkit.skills.summarize.Summarizer`: what worked, the mistakes, the workflow), in a
  background thread; the summaries join the banks at the next call of any other method
  (:meth:`LibrarySkillSource.wait`), so those of iteration k condition the teacher from
  iteration k + 1 on. A full bank keeps improving: a new summary replaces the bank's weakest
  credited skill (lowest mean credit, the oldest on ties); a bank whose skills are all still
  untried keeps them and drops the new summary.
* Nothing here asks the environment for ground truth: skills are the agent's own experience.
* ``state_dict`` holds every skill with its counters, so a checkpoint restores the library exactly
  as it was at that iteration (into the resumed run's library folder).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from skillkit.core.schemas import SkillBase, Trajectory, parse_skill, skill_to_dict
from skillkit.skills.library import SkillLibrary
from skillkit.skills.routing_text import attach_routing_text
from skillkit.skills.selection import UCBSelector
from skillkit.skills.summarize import Summarizer, group_by_task


class LibrarySkillSource:
    """Skills from a :class:`SkillLibrary`, one per task chosen by UCB (see module docstring)."""

    def __init__(self, library: SkillLibrary, c: float = 1.0, summarizer: Summarizer | None = None,
                 summarize: bool = True, bank_size: int = 4, background: bool = True) -> None:
        self.library = library
        self.selector = UCBSelector(library, c=c, autosave=False)
        self.summarizer = summarizer or Summarizer(None)
        self.summarize = summarize
        self.bank_size = bank_size
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="summaries") if background else None
        self._pending: Future[int] | None = None

    @classmethod
    def open(cls, path: str | Path, c: float = 1.0, summarize: bool = True, embedder: str = "minilm",
             bank_size: int = 4, background: bool = True) -> LibrarySkillSource:
        """Open (or create) the library at ``path``."""
        return cls(SkillLibrary.open(path, embedder=embedder), c=c, summarize=summarize, bank_size=bank_size,
                   background=background)

    def wait(self) -> int:
        """Join the pending summaries (re-raising their error, if any); returns how many skills they added."""
        if self._pending is None:
            return 0
        pending, self._pending = self._pending, None
        return pending.result()

    def bank(self, task_id: str) -> list[SkillBase]:
        """The task's own trajectory skills, newest first."""
        self.wait()
        return self._bank_now(task_id)

    def weakest(self, task_id: str, bank: Sequence[SkillBase]) -> SkillBase | None:
        """The credited skill of the bank with the lowest mean credit (oldest first on ties); None if none is credited."""
        credited = [(i, s) for i, s in enumerate(bank) if UCBSelector.usage(task_id, s).n > 0]
        if not credited:
            return None
        return min(credited, key=lambda item: (UCBSelector.usage(task_id, item[1]).mean_reward, -item[0]))[1]

    def skill_for(self, task_id: str) -> tuple[str, str] | None:
        """The skill of the task's bank that UCB picks, or None for an empty bank."""
        bank = self.bank(task_id)
        if not bank:
            return None
        skill = self.selector.select(task_id, bank)
        return skill.name, skill.body_text()

    def feedback(self, task_id: str, name: str, reward: float) -> None:
        """Record a skill's credit on a task (nothing when the skill has left its bank meanwhile)."""
        self.wait()
        if self.library.find(name) is not None:
            self.selector.update(task_id, name, reward)

    def add_groups(self, groups: Sequence[Sequence[Trajectory]], iteration: int) -> int:
        """Summarise groups of episodes (one task each) into the banks now; returns how many skills were added."""
        added = 0
        summaries = self.summarizer.summarize_many(groups, extraction_round=iteration) if groups else []
        # the situation each summary was learnt in, so a router over this library (skillkit route, the
        # agent) can reach per-task skills when tasks share one instruction
        attach_routing_text(summaries, (t for g in groups for t in g))
        for skill in summaries:
            task_id = skill.task_id or skill.source_tasks[0]
            bank = self._bank_now(task_id)
            if len(bank) >= self.bank_size:
                weakest = self.weakest(task_id, bank)
                if weakest is None:
                    continue
                self.library.remove(weakest)
            skill.name = self.library.unique_name(f"{skill.name}-r{iteration}")  # never the name of a replaced one
            self.library.add(skill)
            added += 1
        self.library.save()
        return added

    def add_trajectories(self, trajectories: Sequence[Trajectory], iteration: int) -> None:
        """Summarise every task group of these episodes, in the background (joined by :meth:`wait`);
        the library (with the credit counters) is saved either way."""
        self.wait()
        if not self.summarize or not trajectories:
            self.library.save()
            return
        groups = [list(g) for g in group_by_task(trajectories).values()]
        if self._executor is None:
            self.add_groups(groups, iteration)
            return
        self._pending = self._executor.submit(self.add_groups, groups, iteration)

    def _bank_now(self, task_id: str) -> list[SkillBase]:
        """The bank without joining (the summarising thread itself calls this)."""
        own = [s for s in self.library.list(tier="trajectory") if task_id in s.source_tasks]
        own.sort(key=lambda s: (s.extraction_round, s.created_at), reverse=True)
        return own[:self.bank_size]

    def state_dict(self) -> dict[str, Any]:
        """Every skill of the library with its counters."""
        self.wait()
        return {"skills": [skill_to_dict(s) for s in self.library]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replace the library's skills with a :meth:`state_dict`."""
        self.wait()
        for skill in list(self.library):
            self.library.remove(skill)
        for data in state["skills"]:
            self.library.add(parse_skill(data))
        self.library.save()
