"""The environment protocol shared by every world, a batched ``VectorEnv`` and one-episode recorders.

An environment is text in, text out: ``reset`` returns the first observation, ``step`` takes the
agent's action text and returns a :class:`StepResult`. ``info["success"]`` is set when ``done``.
Episodes serialise as :class:`skillkit.core.schemas.Trajectory` (one JSONL line per episode);
``Environment.analyzer()`` says how to read them (:class:`EpisodeAnalyzer`, for summaries and skills).
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from environments.analysis import EpisodeAnalyzer
from environments.episodes import LocalEnvPool, episode_start, finish_episodes, new_episode, play_episodes
from skillkit.core.schemas import Trajectory


@dataclass
class StepResult:
    """What one ``step`` returns; ``info["success"]`` (bool) is present when ``done`` is true."""

    observation: str
    reward: float
    done: bool
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProbeState:
    """A held-out state for the dense metric: its task, the observation an agent sees there, and the
    moves the environment accepts there (the candidates of the agent's greedy choice)."""

    task_id: str
    observation: str
    moves: list[str]


class Oracle(ABC):
    """Ground truth about an environment's tasks: a solver, reference solutions.

    Kept apart from :class:`Environment` on purpose: only evaluation metrics, expert data for a
    supervised warm start and methods named as ground-truth methods (OPSD, ground-truth guidance)
    may call it. Skills are made from the agent's own experience and never from an oracle.
    """

    @abstractmethod
    def expert_actions(self, task_id: str) -> list[str] | None:
        """A reference solution for ``task_id`` from its start (one action string per step), if known."""

    def optimal_next_actions(self, observation: str) -> list[str] | None:
        """The actions that start a shortest solution from the state shown in ``observation``
        (empty when the state is solved or cannot be solved); None when the oracle cannot say."""
        return None


class Environment(ABC):
    """A text environment: ``reset`` to a task, then ``step`` with action text until ``done``.

    Subclasses set ``name``, ``max_steps`` and ``instructions`` (the system-prompt text for agents:
    rules and action format).
    """

    name: str = ""
    max_steps: int = 0
    instructions: str = ""

    @abstractmethod
    def reset(self, task_id: str | None = None, seed: int | None = None) -> str:
        """Start an episode on ``task_id`` (or one drawn with ``seed``); return the first observation."""

    @abstractmethod
    def step(self, action: str) -> StepResult:
        """Apply one action (free text from the agent) and return the outcome."""

    @abstractmethod
    def task_ids(self, split: str) -> list[str]:
        """The task ids of a split ("train", "test"; some environments also have "dev")."""

    @abstractmethod
    def task_instruction(self) -> str:
        """The instruction text of the current task."""

    def routing_query(self, observation: str) -> str:
        """The text a skill router matches for the state shown in ``observation``: by default the task
        instruction and the observation. Environments whose tasks share one instruction override it with
        the features that tell their tasks apart (Sokoban: the layout)."""
        return f"{self.task_instruction()}\n{observation}"

    def oracle(self) -> Oracle | None:
        """The environment's ground truth (see :class:`Oracle`), or None when it has none."""
        return None

    def analyzer(self) -> EpisodeAnalyzer:
        """How this environment's episodes read (actions, segments, errors) for summaries and skills;
        the generic reading unless the environment knows better. Never backed by the oracle."""
        return EpisodeAnalyzer()

    def episode_metadata(self) -> dict[str, Any]:
        """Extra facts about the current episode recorded in the trajectory's ``metadata``."""
        return {}

    def probe_states(self, task_ids: list[str], n: int, seed: int = 0) -> list[ProbeState]:
        """Up to ``n`` states of these tasks for the dense metric, deterministic for ``seed``; the
        oracle's ``optimal_next_actions`` answers for each. Empty when the environment has none."""
        return []

    def close(self) -> None:  # noqa: B027 - optional hook, most environments hold nothing
        """Release any resources (worker processes, subprocesses)."""

    def __enter__(self) -> Environment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VectorEnv:
    """Steps many episodes at once (one environment object per slot).

    Finished slots are not stepped again: ``step`` returns, for such a slot, its last observation
    and info with ``reward=0.0`` and ``done=True`` so that reward sums stay correct.
    """

    def __init__(self, envs: list[Environment]):
        if not envs:
            raise ValueError("VectorEnv needs at least one environment")
        self.envs = list(envs)
        self._last: list[StepResult | None] = [None] * len(self.envs)

    def __len__(self) -> int:
        return len(self.envs)

    @property
    def dones(self) -> list[bool]:
        """Whether each slot's episode has ended."""
        return [last is not None and last.done for last in self._last]

    def reset(self, task_ids: list[str | None], seeds: list[int | None] | None = None) -> list[str]:
        """Reset every slot to its task (one task id, or None with a seed, per slot)."""
        if len(task_ids) != len(self.envs):
            raise ValueError(f"reset got {len(task_ids)} task ids for {len(self.envs)} environments")
        seeds = seeds if seeds is not None else [None] * len(self.envs)
        if len(seeds) != len(self.envs):
            raise ValueError(f"reset got {len(seeds)} seeds for {len(self.envs)} environments")
        observations = [env.reset(task_id=t, seed=s) for env, t, s in zip(self.envs, task_ids, seeds)]
        self._last = [None] * len(self.envs)
        return observations

    def step(self, actions: list[str]) -> list[StepResult]:
        """Step every unfinished slot with its action; finished slots return a zero-reward copy."""
        if len(actions) != len(self.envs):
            raise ValueError(f"step got {len(actions)} actions for {len(self.envs)} environments")
        results = []
        for i, (env, action) in enumerate(zip(self.envs, actions)):
            last = self._last[i]
            if last is not None and last.done:
                results.append(StepResult(last.observation, 0.0, True, dict(last.info)))
                continue
            result = env.step(action)
            self._last[i] = result
            results.append(result)
        return results

    def close(self) -> None:
        """Close every environment."""
        for env in self.envs:
            env.close()


def run_episode(env: Environment, policy: Callable[[str], str], task_id: str | None,
                seed: int | None = None, episode_id: str | None = None) -> Trajectory:
    """Play one episode with ``policy`` (observation text -> action text) and record it.

    A batch of one through the shared loop (:func:`environments.episodes.play_episodes`).
    """
    start = episode_start(env, env.reset(task_id=task_id, seed=seed))
    episode = new_episode(0, str(task_id if task_id is not None else seed), start, episode_id or uuid.uuid4().hex,
                          env.name)
    pool = LocalEnvPool(lambda: env, [env])
    play_episodes(pool, [episode.task_id], lambda live: [policy(ep.observation) for ep in live], episodes=[episode])
    return finish_episodes(pool, [episode])[0]


def run_expert_episode(env: Environment, task_id: str, response_template: str = "{action}") -> Trajectory | None:
    """Replay the task's reference solution (the oracle's ``expert_actions``: the Sokoban solver's
    moves, the app suite's reference code) as a recorded episode; None when the task has none.

    Each action is sent as ``response_template.format(action=...)``.
    """
    oracle = env.oracle()
    actions = oracle.expert_actions(task_id) if oracle is not None else None
    if not actions:
        return None
    remaining = iter([response_template.format(action=a) for a in actions])
    trajectory = run_episode(env, lambda _obs: next(remaining, ""), task_id, episode_id=f"expert-{task_id}")
    trajectory.metadata.update(source="expert", instructions=env.instructions)
    return trajectory
