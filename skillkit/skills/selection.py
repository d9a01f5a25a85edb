"""UCB selection of a skill per task (Skill-SD's teacher picks its privileged skill this way).

For a task with a bank of candidate skills, every skill not yet tried on that task is chosen first
(in bank order); after that the skill maximising

    mean_reward(s, task) + c * sqrt(ln N_task / n(s, task))

is chosen, where ``n(s, task)`` counts the selections of ``s`` for the task, ``mean_reward`` their
average reward and ``N_task`` the selections of the whole bank for the task. The counters live in
the skills (``task_usage``, plus the global ``n_selected``/``reward_sum``) and are saved with the
library by :meth:`UCBSelector.update`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

from skillkit.core.schemas import SkillBase, TaskUsage

if TYPE_CHECKING:
    from skillkit.skills.library import SkillLibrary


def ucb_score(mean_reward: float, n_skill: int, n_task: int, c: float) -> float:
    """``mean + c * sqrt(ln N / n)``; ``inf`` for a skill never tried (n = 0)."""
    if n_skill <= 0:
        return math.inf
    return mean_reward + c * math.sqrt(math.log(max(n_task, 1)) / n_skill)


class UCBSelector:
    """Pick skills per task by UCB1; with a ``library`` the counters are persisted there.

    ``candidates`` are skills or names/ids of skills in the library. ``autosave`` saves the library
    after every :meth:`update` (set it False and call ``library.save()`` yourself for speed).
    """

    def __init__(self, library: SkillLibrary | None = None, c: float = 1.0, autosave: bool = True) -> None:
        if c < 0:
            raise ValueError(f"the exploration constant c must be >= 0, got {c}")
        self.library = library
        self.c = c
        self.autosave = autosave

    def _resolve(self, candidates: Sequence[SkillBase | str]) -> list[SkillBase]:
        out: list[SkillBase] = []
        for cand in candidates:
            if isinstance(cand, SkillBase):
                if self.library is not None and cand.id in self.library:
                    cand = self.library.get(cand.id)
                out.append(cand)
            elif self.library is None:
                raise ValueError("candidates given by name need a library")
            else:
                out.append(self.library.get(cand))
        return out

    @staticmethod
    def usage(task_id: str, skill: SkillBase) -> TaskUsage:
        """The counters of ``skill`` for ``task_id`` (zero when never selected there)."""
        return skill.task_usage.get(task_id) or TaskUsage()

    def scores(self, task_id: str, candidates: Sequence[SkillBase | str]) -> list[float]:
        """The UCB score of every candidate (``inf`` for untried ones)."""
        skills = self._resolve(candidates)
        usages = [self.usage(task_id, s) for s in skills]
        n_task = sum(u.n for u in usages)
        return [ucb_score(u.mean_reward, u.n, n_task, self.c) for u in usages]

    def select(self, task_id: str, candidates: Sequence[SkillBase | str]) -> SkillBase:
        """The candidate to use next for ``task_id`` (untried first, then the highest UCB score)."""
        skills = self._resolve(candidates)
        if not skills:
            raise ValueError(f"no candidate skills for task {task_id!r}")
        scores = self.scores(task_id, skills)
        best = max(range(len(skills)), key=lambda i: (scores[i], -i))
        return skills[best]

    def update(self, task_id: str, skill: SkillBase | str, reward: float) -> SkillBase:
        """Record the reward obtained with ``skill`` on ``task_id`` (saved when the selector autosaves)."""
        if self.library is not None:
            return self.library.record_usage(skill, reward, task_id=task_id, save=self.autosave)
        if not isinstance(skill, SkillBase):
            raise ValueError("a skill given by name needs a library")
        usage = skill.task_usage.get(task_id) or TaskUsage()
        usage.n += 1
        usage.reward_sum += float(reward)
        skill.task_usage[task_id] = usage
        skill.n_selected += 1
        skill.reward_sum += float(reward)
        return skill
