"""Text Sokoban: levels, a minimum-move solver, a reverse-play generator, splits and the environment."""

from __future__ import annotations

from environments.sokoban.actions import ParsedActions, parse_actions
from environments.sokoban.env import SokobanEnv
from environments.sokoban.generator import GeneratedLevel, generate_level, generate_levels
from environments.sokoban.level import ACTION_NAMES, LEGEND, Level, grid_from_observation
from environments.sokoban.oracle import SokobanOracle
from environments.sokoban.solver import SolverLimitError, solve
from environments.sokoban.splits import VARIANTS, build_split_files, load_split

__all__ = [
    "ACTION_NAMES", "LEGEND", "VARIANTS", "GeneratedLevel", "Level", "ParsedActions", "SokobanEnv",
    "SokobanOracle", "SolverLimitError", "build_split_files", "generate_level", "generate_levels", "load_split",
    "grid_from_observation", "parse_actions", "solve",
]
