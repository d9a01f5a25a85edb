"""Sokoban's ground truth: the minimum-move solver, per level and per visited state."""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from environments.base import Oracle
from environments.sokoban.level import ACTION_NAMES, Level, grid_from_observation
from environments.sokoban.solver import SolverLimitError, solve

#: States expanded at most per solver call: a 6x6 level with 2 boxes needs far fewer.
MAX_STATES = 200_000


DEAD = -1


@lru_cache(maxsize=65536)
def _shortest(grid: str) -> int | None:
    """Length of a shortest solution; ``DEAD`` when there is none, None past the solver's limit."""
    try:
        plan = solve(grid, max_states=MAX_STATES)
    except SolverLimitError:
        return None
    return DEAD if plan is None else len(plan)


class SokobanOracle(Oracle):
    """Solver answers for the levels of one environment (``level_grid`` maps a level id to its grid)."""

    def __init__(self, level_grid: Callable[[str], str]) -> None:
        self._level_grid = level_grid

    def expert_actions(self, task_id: str) -> list[str] | None:
        """A minimum-move solution of the level (one action per step)."""
        return solve(self._level_grid(task_id))

    def optimal_next_actions(self, observation: str) -> list[str] | None:
        """Every move that starts a minimum-move solution from the grid in ``observation`` (a move
        into a wall or an immovable box changes nothing and never counts); [] when the state is
        solved or dead, None when the solver hits its limit."""
        level = Level.from_text(grid_from_observation(observation))
        best = _shortest(level.to_text())
        if best is None:
            return None
        if best in (0, DEAD):
            return []
        optimal = []
        for action in ACTION_NAMES:
            after = level.move(action)[0]
            if after == level:
                continue
            rest = _shortest(after.to_text())
            if rest is not None and rest != DEAD and rest + 1 == best:
                optimal.append(action)
        return optimal
