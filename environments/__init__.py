"""Environments: the text protocol, a registry, Sokoban, the offline app suite and the AppWorld bridge."""

from __future__ import annotations

from environments.base import Environment, StepResult, VectorEnv, run_episode
from environments.registry import describe_envs, list_envs, make, register, task_ids

__all__ = ["Environment", "StepResult", "VectorEnv", "describe_envs", "list_envs", "make", "register", "run_episode",
           "task_ids"]
