"""Environment workers on Ray: the episode loop's :class:`~environments.episodes.EnvPool`, environments in actors.

Generation stays where the policy is (one batched ``backend.generate`` per turn in the learner);
the environments, which can be slow (the app suite runs code in a sandbox process), live in
``num_workers`` Ray actors. Slot ``i`` belongs to actor ``i % num_workers``; a turn sends every
actor its slots' actions at once and waits for all of them, so workers step in parallel.

Enable it with ``rollout.ray_workers=N`` (``ray`` is the optional ``distributed`` extra). It
connects to a running cluster when ``RAY_ADDRESS`` is set, else starts a local one. Tests use
a small local Ray cluster (Ray 2.60 removed ``local_mode``).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from typing import Any

import environments
from environments.episodes import EpisodeStart, LocalEnvPool  # torch-free: actor processes import this module


def _make_env(env_name: str, options: dict[str, Any]) -> Any:
    return environments.make(env_name, **options)


class _EnvWorker(LocalEnvPool):
    """The environments of some slots, in one Ray actor (created lazily by ``environments.make``)."""

    def __init__(self, env_name: str, options: dict[str, Any]) -> None:
        super().__init__(functools.partial(_make_env, env_name, dict(options)))


class RayEnvPool:
    """An :class:`environments.episodes.EnvPool` whose environments live in ``num_workers`` Ray actors."""

    def __init__(self, env_name: str, options: dict[str, Any], num_workers: int = 2) -> None:
        import ray

        if not ray.is_initialized():
            ray.init(ignore_reinit_error=True, include_dashboard=False, log_to_driver=False)
        self.ray = ray
        actor = ray.remote(num_cpus=0)(_EnvWorker)
        self.workers = [actor.remote(env_name, options) for _ in range(num_workers)]

    def _by_worker(self, slots: list[int], values: list[Any]) -> dict[int, tuple[list[int], list[Any]]]:
        groups: dict[int, tuple[list[int], list[Any]]] = defaultdict(lambda: ([], []))
        for slot, value in zip(slots, values):
            groups[slot % len(self.workers)][0].append(slot)
            groups[slot % len(self.workers)][1].append(value)
        return groups

    def _call(self, method: str, slots: list[int], values: list[Any] | None = None) -> list[Any]:
        groups = self._by_worker(slots, values if values is not None else slots)
        futures = {w: getattr(self.workers[w], method).remote(s, v) if values is not None
                   else getattr(self.workers[w], method).remote(s) for w, (s, v) in groups.items()}
        results = {w: self.ray.get(f) for w, f in futures.items()}
        by_slot = {}
        for w, (s, _) in groups.items():
            by_slot.update(zip(s, results[w]))
        return [by_slot[slot] for slot in slots]

    def reset(self, task_ids: list[str]) -> list[Any]:
        starts: list[EpisodeStart] = self._call("reset_slots", list(range(len(task_ids))), list(task_ids))
        return starts

    def step(self, slots: list[int], actions: list[str]) -> list[Any]:
        return self._call("step", list(slots), list(actions))

    def episode_metadata(self, slots: list[int]) -> list[dict[str, Any]]:
        return self._call("episode_metadata", list(slots))

    def close(self) -> None:
        self.ray.get([w.close.remote() for w in self.workers])
        for w in self.workers:
            self.ray.kill(w)
        self.workers = []
