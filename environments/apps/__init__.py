"""Offline AppWorld-style app suite: stateful apps, tasks with state-based checks, a code sandbox."""

from __future__ import annotations

from environments.apps.env import AppsEnv, AppsOracle, extract_code
from environments.apps.framework import ApiError
from environments.apps.sandbox import ExecResult, Sandbox, SandboxLimits
from environments.apps.tasks import (
    SCENARIOS,
    TASKS,
    Check,
    Task,
    get_task,
    scenario_goal_completion,
    task_goal_completion,
    task_ids,
)
from environments.apps.world import AppSuite, diff_state, make_world

__all__ = [
    "SCENARIOS", "TASKS", "ApiError", "AppSuite", "AppsEnv", "AppsOracle", "Check", "ExecResult", "Sandbox", "SandboxLimits",
    "Task", "diff_state", "extract_code", "get_task", "make_world", "scenario_goal_completion",
    "task_goal_completion", "task_ids",
]
