"""The one episode loop: many episodes played together, one batched policy call per turn.

Every place that plays episodes uses it: the trainer's rollouts (:mod:`trainer.rollout`), the
langgraph agent (:mod:`skillkit.agent`), the evaluation and :func:`environments.base.run_episode`.
A turn is::

    skills hook (optional: skill names + text per live episode)  ->  policy (all live episodes at once)
        ->  environments stepped (a pool: local objects or Ray actors)  ->  turns recorded

The pieces are also public (:func:`start_episodes`, :func:`live_episodes`, :func:`apply_actions`,
:func:`finish_episodes`) so that a graph can run them as separate nodes; :func:`play_episodes` is
the loop over them. :class:`ChatPolicy` is the language-model policy with the shared prompt layout
(:mod:`skillkit.core.prompts`); its ``on_generate`` hook sees the chats and completions of every
turn (the trainer records token ids and sampling log-probs from it).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from skillkit.core.llm.base import Completion, LLMBackend, SamplingParams
from skillkit.core.prompts import SKILL_HEADER, SkillPosition, build_messages, insert_skill
from skillkit.core.schemas import Trajectory, Turn

# ---------------------------------------------------------------------------------------------
# Environment slots
# ---------------------------------------------------------------------------------------------


@dataclass
class EpisodeStart:
    """What resetting one environment slot gives: the first observation and the prompt texts."""

    observation: str
    instructions: str
    task_instruction: str
    max_steps: int
    routing_query: str = ""

    @property
    def query(self) -> str:
        """What a skill router matches for the first state: the environment's routing query, else the task
        instruction and the observation."""
        return self.routing_query or f"{self.task_instruction}\n{self.observation}"


def episode_start(env: Any, observation: str) -> EpisodeStart:
    """The :class:`EpisodeStart` of an environment just reset to ``observation`` (``routing_query`` is
    kept only when the environment's differs from the default instruction + observation)."""
    instruction = env.task_instruction()
    routing_query = env.routing_query(observation) if callable(getattr(env, "routing_query", None)) else ""
    if routing_query == f"{instruction}\n{observation}":
        routing_query = ""
    return EpisodeStart(observation, env.instructions, instruction, env.max_steps, routing_query)


class EnvPool(Protocol):
    """Holds ``n`` environment slots; resets them to tasks and steps a subset of them."""

    def reset(self, task_ids: list[str]) -> list[EpisodeStart]: ...

    def step(self, slots: list[int], actions: list[str]) -> list[Any]: ...

    def episode_metadata(self, slots: list[int]) -> list[dict[str, Any]]: ...

    def close(self) -> None: ...


class LocalEnvPool:
    """Environment objects in this process, one per slot, created by ``make_env`` when first used.

    Torch-free, so that Ray actor processes (``trainer.ray_rollout``) can hold one.
    """

    def __init__(self, make_env: Callable[[], Any], envs: Sequence[Any] = ()) -> None:
        """``envs`` (optional) fill slots ``0..len(envs)-1`` up front."""
        self.make_env = make_env
        self.envs: dict[int, Any] = dict(enumerate(envs))

    def reset(self, task_ids: list[str]) -> list[EpisodeStart]:
        """Reset slots ``0..n-1`` to the given tasks."""
        return self.reset_slots(list(range(len(task_ids))), task_ids)

    def reset_slots(self, slots: Sequence[int], task_ids: Sequence[str]) -> list[EpisodeStart]:
        """Reset the given slots (creating their environments if needed) to the given tasks."""
        starts = []
        for slot, task_id in zip(slots, task_ids):
            if slot not in self.envs:
                self.envs[slot] = self.make_env()
            starts.append(episode_start(self.envs[slot], self.envs[slot].reset(task_id=task_id)))
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


# ---------------------------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------------------------


@dataclass
class Episode:
    """One episode in play: its slot, prompt texts, current observation, history and trajectory.

    ``skill_names`` / ``skill_text`` are what the skills hook chose for the coming turn (the names
    are recorded on every turn as ``skills_shown``).
    """

    slot: int
    task_id: str
    start: EpisodeStart
    observation: str
    trajectory: Trajectory
    history: list[tuple[str, str]] = field(default_factory=list)
    skill_names: list[str] = field(default_factory=list)
    skill_text: str = ""
    done: bool = False

    @property
    def turn(self) -> int:
        """Turns played so far."""
        return len(self.trajectory.turns)


#: A policy maps the live episodes of a turn to one action text each (all generated together).
Policy = Callable[[list[Episode]], list[str]]
#: A skills hook gives (skill names, skill text) for one live episode before a turn.
SkillsHook = Callable[[Episode], tuple[list[str], str]]


def start_episodes(pool: EnvPool, task_ids: Sequence[str], id_prefix: str = "ep", env_name: str = "",
                   episode_ids: Sequence[str] | None = None) -> list[Episode]:
    """Reset one pool slot per task id; trajectory ids are ``{id_prefix}-{slot}`` unless given."""
    starts = pool.reset([str(t) for t in task_ids])
    return [new_episode(slot, str(task_id), start, episode_ids[slot] if episode_ids else f"{id_prefix}-{slot}",
                        env_name) for slot, (task_id, start) in enumerate(zip(task_ids, starts))]


def new_episode(slot: int, task_id: str, start: EpisodeStart, episode_id: str, env_name: str = "") -> Episode:
    """An episode in slot ``slot`` that has just been reset (``start``), with an empty trajectory."""
    traj = Trajectory(id=episode_id, env=env_name, task_id=task_id, instruction=start.task_instruction,
                      initial_observation=start.observation,
                      metadata={"routing_query": start.routing_query} if start.routing_query else {})
    return Episode(slot, task_id, start, start.observation, traj)


def live_episodes(episodes: Sequence[Episode], max_turns: int | None = None) -> list[Episode]:
    """Episodes still running: not done and under ``max_turns`` (default: the environment's ``max_steps``)."""
    return [ep for ep in episodes if not ep.done and ep.turn < (max_turns or ep.start.max_steps or 10**9)]


def apply_actions(pool: EnvPool, episodes: Sequence[Episode], actions: Sequence[str]) -> None:
    """Step the episodes' slots with their actions and record the turns."""
    if len(actions) != len(episodes):
        raise ValueError(f"got {len(actions)} actions for {len(episodes)} episodes")
    results = pool.step([ep.slot for ep in episodes], list(actions))
    for ep, action, res in zip(episodes, actions, results):
        ep.trajectory.turns.append(Turn(action=action, observation=res.observation, reward=res.reward,
                                        done=res.done, info=res.info, skills_shown=list(ep.skill_names)))
        ep.trajectory.total_reward += res.reward
        ep.history.append((ep.observation, action))
        ep.observation = res.observation
        if res.done:
            ep.done = True
            ep.trajectory.success = bool(res.info.get("success", False))


def finish_episodes(pool: EnvPool, episodes: Sequence[Episode]) -> list[Trajectory]:
    """The trajectories, with ``max_steps``, ``truncated`` (stopped by a turn cap) and the environment's metadata."""
    metas = pool.episode_metadata([ep.slot for ep in episodes])
    for ep, meta in zip(episodes, metas):
        ep.trajectory.total_reward = round(ep.trajectory.total_reward, 10)
        ep.trajectory.metadata = {**ep.trajectory.metadata, "max_steps": ep.start.max_steps, "truncated": not ep.done,
                                  **meta}
    return [ep.trajectory for ep in episodes]


def play_episodes(pool: EnvPool, task_ids: Sequence[str], policy: Policy, skills: SkillsHook | None = None,
                  max_turns: int | None = None, id_prefix: str = "ep", env_name: str = "",
                  episodes: list[Episode] | None = None) -> list[Episode]:
    """Play one episode per task id (pool slot ``i`` for task ``i``) until every one ends.

    Each turn the ``skills`` hook (when given) sets every live episode's skill names and text, then
    ``policy`` acts for all live episodes at once. Pass already started ``episodes`` to skip the
    reset. Returns the episodes; :func:`finish_episodes` turns them into trajectories.
    """
    episodes = episodes if episodes is not None else start_episodes(pool, task_ids, id_prefix, env_name)
    while live := live_episodes(episodes, max_turns):
        if skills is not None:
            for ep in live:
                ep.skill_names, ep.skill_text = skills(ep)
        apply_actions(pool, live, policy(live))
    return episodes


# ---------------------------------------------------------------------------------------------
# The language-model policy
# ---------------------------------------------------------------------------------------------

#: Called after every generation with the live episodes, their chats and completions.
GenerateHook = Callable[[list[Episode], list[list[dict[str, str]]], list[Completion]], None]


@dataclass(eq=False)
class ChatPolicy:
    """Acts with an :class:`LLMBackend` through the shared prompt layout, all live episodes in one call.

    The chat is :func:`skillkit.core.prompts.build_messages` over the last ``window`` turns, with the
    episode's ``skill_text`` inserted at ``skill_position`` under ``skill_header``. Turn ``k`` samples
    with seed ``seed * 1000 + k`` (``n=1``) so that a batch is reproducible.
    """

    backend: LLMBackend
    sampling: SamplingParams
    window: int = 2
    seed: int = 0
    skill_position: SkillPosition = "user"
    skill_header: str = SKILL_HEADER
    on_generate: GenerateHook | None = None

    def chat(self, ep: Episode) -> list[dict[str, str]]:
        """The chat the policy sees for the episode's next turn."""
        messages = build_messages(ep.start.instructions, ep.start.task_instruction, ep.history, ep.observation,
                                  self.window)
        return insert_skill(messages, ep.skill_text, self.skill_position, self.skill_header)

    def __call__(self, episodes: list[Episode]) -> list[str]:
        """One action text per episode, generated together."""
        if not episodes:
            return []
        chats = [self.chat(ep) for ep in episodes]
        turn = min(ep.turn for ep in episodes)
        completions = self.backend.generate(chats, self.sampling.model_copy(
            update={"seed": self.seed * 1000 + turn, "n": 1}))
        if self.on_generate is not None:
            self.on_generate(episodes, chats, completions)
        return [c.text for c in completions]
