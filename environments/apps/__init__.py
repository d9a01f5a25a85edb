"""Offline AppWorld-style app suite: stateful apps, tasks with state-based checks, a code sandbox."""

from __future__ import annotations

from environments.apps.env import AppsEnv, AppsOracle, extract_code
from environments.apps.framework import ApiError
from environments.apps.reference import ReferenceRun, run_reference
from environments.apps.sandbox import ExecResult, Sandbox, SandboxLimits
from environments.apps.tasks import (
    SCENARIOS,
    SPLITS,
    TASKS,
    VARIANTS_PER_SCENARIO,
    Check,
    Task,
    canonical_split,
    get_task,
    scenario_goal_completion,
    task_goal_completion,
    task_ids,
)
from environments.apps.world import ALL_APPS, ORIGINAL_APPS, AppSuite, diff_state, make_world

__all__ = [
    "ALL_APPS", "ORIGINAL_APPS", "SCENARIOS", "SPLITS", "TASKS", "VARIANTS_PER_SCENARIO", "ApiError", "AppSuite",
    "AppsEnv", "AppsOracle", "Check", "ExecResult", "ReferenceRun", "Sandbox", "SandboxLimits", "Task", "canonical_split",
    "diff_state", "extract_code", "get_task", "make_world", "run_reference", "scenario_goal_completion",
    "task_goal_completion", "task_ids",
]
