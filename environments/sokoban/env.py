"""The text Sokoban environment (rewards: -0.1 per step, +1 box onto target, -1 box off target, +10 solved)."""

from __future__ import annotations

import random
from typing import Any

from environments.base import Environment, ProbeState, StepResult
from environments.sokoban.actions import parse_actions
from environments.sokoban.analysis import SokobanAnalyzer
from environments.sokoban.generator import generate_level
from environments.sokoban.level import ACTION_NAMES, LEGEND, Level, grid_from_observation
from environments.sokoban.levels_file import load_levels_file
from environments.sokoban.oracle import SokobanOracle
from environments.sokoban.probes import probe_states
from environments.sokoban.routing import layout_tokens
from environments.sokoban.solver import solve
from environments.sokoban.splits import VARIANTS, load_split

STEP_PENALTY = -0.1
BOX_ON_TARGET_REWARD = 1.0
BOX_OFF_TARGET_PENALTY = -1.0
SOLVED_REWARD = 10.0

VALID_ACTIONS_TEXT = ", ".join(ACTION_NAMES)


class SokobanEnv(Environment):
    """Text Sokoban over committed level splits (or a levels file of your own), generated levels or a given grid.

    Each move counts as a step (a turn with ``a || b`` makes two steps); a turn whose text holds no
    valid action costs one step and the step penalty, and leaves the grid unchanged.

    ``moves_to_go=k`` starts every level id ``k`` optimal moves before it is solved (the solver's
    plan is played up to there; levels already that short are unchanged): a reverse curriculum
    (Florensa et al. 2017, "Reverse Curriculum Generation for Reinforcement Learning"), so a
    small model that never solves a whole level still sees episodes that succeed and fail. The
    shortened grid is the level for everything (episodes, oracle, probe states, routing).
    """

    name = "sokoban"

    def __init__(self, variant: str = "2box", max_steps: int = 40, max_actions_per_turn: int = 3,
                 grid: str | None = None, levels_file: str | None = None, moves_to_go: int | None = None):
        if variant not in VARIANTS:
            raise ValueError(f"unknown Sokoban variant {variant!r}; choose one of {sorted(VARIANTS)}")
        if max_steps < 1:
            raise ValueError(f"max_steps must be positive, got {max_steps}")
        if max_actions_per_turn < 1:
            raise ValueError(f"max_actions_per_turn must be positive, got {max_actions_per_turn}")
        if moves_to_go is not None and moves_to_go < 1:
            raise ValueError(f"moves_to_go must be a positive number of moves (or unset), got {moves_to_go}")
        self.moves_to_go = moves_to_go
        self.variant = variant
        self.max_steps = max_steps
        self.max_actions_per_turn = max_actions_per_turn
        self._fixed = Level.from_text(grid) if grid is not None else None
        self._levels: dict[str, dict[str, Any]] = {}
        self._own_levels = load_levels_file(levels_file) if levels_file is not None else None
        self._level: Level | None = None
        self._task_id = ""
        self._steps = 0
        self._done = False

    @classmethod
    def from_text(cls, grid: str, max_steps: int = 40, max_actions_per_turn: int = 3) -> SokobanEnv:
        """An environment that plays one given grid (``reset()`` returns to it)."""
        return cls(max_steps=max_steps, max_actions_per_turn=max_actions_per_turn, grid=grid)

    @property
    def instructions(self) -> str:  # type: ignore[override]
        """System-prompt text: the rules, symbols, rewards and action format."""
        return (
            "You are solving a Sokoban puzzle. Push every box onto a target.\n"
            f"Symbols: {LEGEND}.\n"
            "You can push a box one cell by walking into it if the cell behind it is free; you cannot pull "
            "boxes, push two boxes at once or walk through walls. Moving into a wall or an unpushable box "
            "does nothing.\n"
            "Rewards: -0.1 per step, +1 for a box onto a target, -1 for a box off a target, +10 when solved.\n"
            f"Answer with one action: {VALID_ACTIONS_TEXT} (for example <answer>Left</answer>). You may give up "
            f"to {self.max_actions_per_turn} actions separated by || (for example Up || Left). "
            f"You have {self.max_steps} steps."
        )

    # -- tasks -------------------------------------------------------------------------------------
    def _split_levels(self, split: str) -> list[dict[str, Any]]:
        records = self._own_levels if self._own_levels is not None else load_split(self.variant, split)
        for rec in records:
            if rec["id"] not in self._levels:   # shortening solves the level: once per id
                self._levels[rec["id"]] = self._shortened(rec)
        return records

    def _shortened(self, rec: dict[str, Any]) -> dict[str, Any]:
        """The record started ``moves_to_go`` optimal moves before solved (unchanged when unset or short)."""
        k = self.moves_to_go
        if k is None or rec.get("optimal_moves", k + 1) <= k:
            return rec
        plan = solve(rec["grid"])
        if plan is None or len(plan) <= k:
            return rec
        level = Level.from_text(rec["grid"])
        for name in plan[:len(plan) - k]:
            level = level.move(name)[0]
        return {**rec, "grid": level.to_text(), "optimal_moves": k}

    def task_ids(self, split: str) -> list[str]:
        """Level ids of a split ("train" is in curriculum order, shortest optimal solution first); with
        ``levels_file`` every split is the file's levels."""
        return [rec["id"] for rec in self._split_levels(split)]

    def _lookup(self, task_id: str) -> dict[str, Any]:
        if task_id not in self._levels:
            for split in ("train", "test"):
                self._split_levels(split)
        if task_id not in self._levels:
            raise KeyError(f"unknown Sokoban level id {task_id!r} for variant {self.variant!r}")
        return self._levels[task_id]

    def level_grid(self, task_id: str) -> str:
        """The grid text of a level id."""
        return self._lookup(task_id)["grid"]

    def oracle(self) -> SokobanOracle:
        """The minimum-move solver over this environment's levels."""
        return SokobanOracle(self.level_grid)

    def analyzer(self) -> SokobanAnalyzer:
        """Sokoban's reading of episodes: moves, pushes, wasted moves (no solver involved)."""
        return SokobanAnalyzer()

    # -- episode -----------------------------------------------------------------------------------
    def reset(self, task_id: str | None = None, seed: int | None = None) -> str:
        """Start a level: by id, by ``seed`` (a freshly generated level), or the fixed grid."""
        if task_id is not None:
            self._level = Level.from_text(self.level_grid(task_id))
            self._task_id = task_id
        elif seed is not None or self._fixed is None:
            seed = seed if seed is not None else random.randrange(2**31)
            spec = VARIANTS[self.variant]
            generated = generate_level(random.Random(seed), size=spec.size, boxes=spec.boxes,
                                       min_moves=spec.min_moves, max_moves=spec.max_moves)
            self._level = Level.from_text(generated.grid)
            self._task_id = f"generated-{self.variant}-{seed}"
        else:
            self._level = self._fixed
            self._task_id = "custom"
        self._steps = 0
        self._done = False
        return self._observation("Start.")

    def task_instruction(self) -> str:
        """A short goal text."""
        return "Push every box (X) onto a target (O) in as few moves as possible."

    def routing_query(self, observation: str) -> str:
        """The layout of the grid in ``observation`` as cell tokens (:func:`layout_tokens`): every level shares
        one instruction, so the router matches the level's walls, targets, boxes and player instead."""
        return layout_tokens(Level.from_text(grid_from_observation(observation)))

    def render(self) -> str:
        """The current grid text."""
        if self._level is None:
            raise RuntimeError("call reset() before render()")
        return self._level.to_text()

    def _observation(self, feedback: str) -> str:
        assert self._level is not None
        return self.observation_text(self._level, self._steps, feedback)

    def observation_text(self, level: Level, steps: int, feedback: str) -> str:
        """The observation of ``level`` after ``steps`` steps, with a feedback line."""
        return (f"{level.to_text()}\n{feedback}\nLegend: {LEGEND}.\n"
                f"Steps left: {self.max_steps - steps}. Valid actions: {VALID_ACTIONS_TEXT}.")

    def probe_states(self, task_ids: list[str], n: int, seed: int = 0) -> list[ProbeState]:
        """Held-out states on and off the levels' solver paths (:mod:`environments.sokoban.probes`)."""
        return probe_states(self, task_ids, n, seed)

    def step(self, action: str) -> StepResult:
        """Apply the action(s) in ``action``; see the class docstring for step accounting."""
        if self._level is None:
            raise RuntimeError("call reset() before step()")
        if self._done:
            raise RuntimeError("the episode is over; call reset() to start another")
        parsed = parse_actions(action, self.max_actions_per_turn)
        info: dict[str, Any] = {"task_id": self._task_id, "actions": list(parsed.actions), "invalid": not parsed.valid}
        if not parsed.valid:
            self._steps += 1
            reward = STEP_PENALTY
            feedback = (f"Invalid action ({parsed.error}). Valid actions are: {VALID_ACTIONS_TEXT} "
                        f"(up to {self.max_actions_per_turn} separated by ||).")
        else:
            reward, moved = 0.0, []
            for name in parsed.actions:
                reward += self._move(name)
                moved.append(name)
                if self._steps >= self.max_steps or self._level.solved:
                    break
            info["actions"] = moved
            feedback = f"You moved {' || '.join(moved)}."
        solved = self._level.solved
        self._done = solved or self._steps >= self.max_steps
        if solved:
            feedback += " All boxes are on targets: solved!"
        elif self._done:
            feedback += " Out of steps."
        info.update(steps=self._steps, boxes_on_target=self._level.boxes_on_target, solved=solved)
        if self._done:
            info["success"] = solved
        return StepResult(self._observation(feedback), round(reward, 10), self._done, info)

    def _move(self, name: str) -> float:
        assert self._level is not None
        self._steps += 1
        level, src, dst = self._level.move(name)
        reward = STEP_PENALTY
        if src is not None:
            was_on, now_on = src in level.targets, dst in level.targets
            if now_on and not was_on:
                reward += BOX_ON_TARGET_REWARD
            elif was_on and not now_on:
                reward += BOX_OFF_TARGET_PENALTY
        self._level = level
        if level.solved:
            reward += SOLVED_REWARD
        return reward

    def episode_metadata(self) -> dict[str, Any]:
        """The level id, variant and grid of the episode."""
        meta: dict[str, Any] = {"variant": self.variant}
        if "optimal_moves" in self._levels.get(self._task_id, {}):
            meta["optimal_moves"] = self._levels[self._task_id]["optimal_moves"]
        return meta
