"""Environment slots for the rollout engine: reset slots to tasks, step some of them.

Kept free of torch so that Ray actor processes (:mod:`trainer.ray_rollout`) can hold a
:class:`LocalEnvPool` without importing the training stack.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass
class EpisodeStart:
    """What resetting one environment slot gives: the first observation and the prompt texts."""

    observation: str
    instructions: str
    task_instruction: str
    max_steps: int


class EnvPool(Protocol):
    """Holds ``n`` environment slots; resets them to tasks and steps a subset of them."""

    def reset(self, task_ids: list[str]) -> list[EpisodeStart]: ...

    def step(self, slots: list[int], actions: list[str]) -> list[Any]: ...

    def episode_metadata(self, slots: list[int]) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


class LocalEnvPool:
    """Environment objects in this process, one per slot, created by ``make_env`` when first used."""

    def __init__(self, make_env: Callable[[], Any]) -> None:
        self.make_env = make_env
        self.envs: dict[int, Any] = {}

    def reset(self, task_ids: list[str]) -> list[EpisodeStart]:
        """Reset slots ``0..n-1`` to the given tasks."""
        return self.reset_slots(list(range(len(task_ids))), task_ids)

    def reset_slots(self, slots: Sequence[int], task_ids: Sequence[str]) -> list[EpisodeStart]:
        """Reset the given slots (creating their environments if needed) to the given tasks."""
        starts = []
        for slot, task_id in zip(slots, task_ids):
            if slot not in self.envs:
                self.envs[slot] = self.make_env()
            env = self.envs[slot]
            obs = env.reset(task_id=task_id)
            starts.append(EpisodeStart(obs, env.instructions, env.task_instruction(), env.max_steps))
        return starts

    def step(self, slots: list[int], actions: list[str]) -> list[Any]:
        """Step each slot with its action."""
        return [self.envs[i].step(a) for i, a in zip(slots, actions)]

    def episode_metadata(self, slots: list[int]) -> list[dict[str, Any]]:
        """Each slot's ``episode_metadata()``."""
        return [self.envs[i].episode_metadata() for i in slots]

    def close(self) -> None:
        """Close every environment."""
        for env in self.envs.values():
            env.close()
        self.envs = {}
