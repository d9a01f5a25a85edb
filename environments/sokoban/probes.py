"""Held-out Sokoban states for the dense metric: along the solver path and a few random moves off it.

Deterministic for a seed: every level's states are collected (each state on its minimum-move
solution, plus ``walks`` random walks of 1..``max_walk`` moves that change the grid from each),
solved, dead and repeated grids and states at or past the step limit are dropped, each level's list
is shuffled, and the levels are taken round-robin until ``n`` states are chosen, so a small
``n`` still spreads over many levels.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TYPE_CHECKING

from environments.base import ProbeState
from environments.sokoban.level import ACTION_NAMES, Level
from environments.sokoban.solver import solve

if TYPE_CHECKING:
    from environments.sokoban.env import SokobanEnv


def _positions(level: Level, plan: Sequence[str], rng: random.Random, walks: int,
               max_walk: int) -> list[tuple[Level, int, str | None]]:
    """(level, moves made, last move) on the solution path and at the ends of random walks from it."""
    out, current, last = [], level, None
    path = [(level, 0, None)]
    for depth, action in enumerate(plan, 1):
        current = current.move(action)[0]
        path.append((current, depth, action))
    for state, depth, last in path:
        out.append((state, depth, last))
        for _ in range(walks):
            walk, steps, move = state, depth, last
            for _ in range(rng.randint(1, max_walk)):
                moves = [a for a in ACTION_NAMES if walk.move(a)[0] != walk]
                if not moves or walk.solved:
                    break
                move = rng.choice(moves)
                walk, steps = walk.move(move)[0], steps + 1
            out.append((walk, steps, move))
    return out


def probe_states(env: SokobanEnv, task_ids: Sequence[str], n: int, seed: int = 0, walks: int = 2,
                 max_walk: int = 3) -> list[ProbeState]:
    """Up to ``n`` held-out states of the given levels (see the module docstring)."""
    if n < 0:
        raise ValueError(f"the number of probe states must be >= 0, got {n}")
    rng = random.Random(seed)
    oracle = env.oracle()
    per_level: list[list[ProbeState]] = []
    for task_id in task_ids:
        level = Level.from_text(env.level_grid(task_id))
        plan = solve(level.to_text()) or []
        states, seen = [], set()
        for state, steps, last in _positions(level, plan, rng, walks, max_walk):
            grid = state.to_text()
            if grid in seen or state.solved or steps >= env.max_steps:
                continue
            seen.add(grid)
            feedback = f"You moved {last}." if last else "Start."
            observation = env.observation_text(state, steps, feedback)
            if oracle.optimal_next_actions(observation):    # [] dead or solved, None unknown
                states.append(ProbeState(str(task_id), observation, list(ACTION_NAMES)))
        rng.shuffle(states)
        per_level.append(states)
    chosen: list[ProbeState] = []
    for k in range(max((len(s) for s in per_level), default=0)):
        for states in per_level:
            if k < len(states) and len(chosen) < n:
                chosen.append(states[k])
    return chosen
