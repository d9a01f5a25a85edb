"""Environments: the text protocol, a registry, Sokoban, the offline app suite and the AppWorld bridge."""

from __future__ import annotations

from environments.base import Environment, EpisodeAnalyzer, StepResult, VectorEnv, run_episode
from environments.registry import analyzer, describe_envs, list_envs, make, register, task_ids

__all__ = ["Environment", "EpisodeAnalyzer", "StepResult", "VectorEnv", "analyzer", "describe_envs", "list_envs",
           "make", "register", "run_episode", "task_ids"]
