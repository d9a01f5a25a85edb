"""A langgraph agent that plugs routed skills into its prompt and acts in any environment.

The graph is the shared episode loop (:mod:`environments.episodes`) with one node per part of a
turn, so the agent plays exactly as the trainer's rollouts and the evaluation do: a batch of
episodes together (one episode is a batch of one), every LLM call generating the actions of all
live episodes at once::

    retrieve ──> act ──> step ──> (reflect) ──> done? ── yes ──> END
       ^                                 │
       └──────────────── no ─────────────┘

``retrieve`` asks the router for skills (query = the environment's ``routing_query`` of the current
observation: by default the task instruction + observation, for Sokoban the level's layout; on the
first turn only, unless ``route_every_turn``), keeps those above a score threshold, and packs them
under a budget (max skills, max tokens); the names shown are recorded on every turn of the
trajectory. ``make_skill_node`` exposes the retrieve+act step as a node for a user's own graph.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

from pydantic import Field

from environments.episodes import (
    ChatPolicy,
    EnvPool,
    Episode,
    EpisodeStart,
    LocalEnvPool,
    apply_actions,
    finish_episodes,
    live_episodes,
    new_episode,
    start_episodes,
)
from skillkit.core.config import StrictModel
from skillkit.core.llm.base import LLMBackend, SamplingParams
from skillkit.core.prompts import SkillPosition, format_skills
from skillkit.core.schemas import Trajectory

if TYPE_CHECKING:
    from environments.base import Environment
    from retriever.router import Router


class AgentConfig(StrictModel):
    """How the agent routes skills and samples actions."""

    max_skills: int = Field(3, ge=0, description="most skills shown at once")
    max_skill_tokens: int = Field(400, ge=0, description="token budget for all shown skills together")
    min_score: float | None = Field(None, description="drop routed skills scoring below this (None: keep all)")
    always_show: list[str] = Field(default_factory=list, description="general skills shown in every prompt")
    route_method: str = "dense"
    route_tier: str | None = None
    route_every_turn: bool = False
    skill_position: SkillPosition = "user"
    history_window: int = 2
    reflect: bool = False
    temperature: float = 0.0
    max_new_tokens: int = 48
    seed: int = 0


class AgentState(TypedDict):
    """Graph state for a batch of episodes (lists are indexed by pool slot)."""

    episodes: list[Episode]
    blocks: list[str]          # the routed skill block of each episode
    notes: list[str]           # the reflection's lesson of each episode
    actions: list[str]         # the actions of the live episodes, in ``live_episodes`` order


def _token_counter(backend: LLMBackend) -> Callable[[str], int]:
    tokenizer = getattr(backend, "tokenizer", None)
    if tokenizer is None:
        return lambda text: max(1, len(text) // 4)
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


class SkillAgent:
    """Acts in environments with an LLM backend, showing routed skills in its prompt.

    ``router`` may be None: the agent then runs without skills (the baseline). ``agent.run(env,
    task_ids)`` plays one episode per task id in one batch and returns trajectories.
    """

    def __init__(self, backend: LLMBackend, router: Router | None = None, config: AgentConfig | None = None):
        self.backend = backend
        self.router = router
        self.config = config or AgentConfig()
        self._count_tokens = _token_counter(backend)

    # ----- skills -------------------------------------------------------------------------------
    def select_skills(self, query: str) -> tuple[list[str], str]:
        """Route ``query`` and pack the result under the budget: (skill names, prompt block)."""
        cfg = self.config
        if self.router is None or cfg.max_skills == 0:
            return [], ""
        picked = []
        for name in cfg.always_show:
            picked.append(self.router.get(name))
        routed = self.router.route(query, k=cfg.max_skills + len(picked), tier=cfg.route_tier,
                                   method=cfg.route_method)
        for hit in routed:
            if cfg.min_score is not None and hit.score < cfg.min_score:
                continue
            if all(doc.id != hit.doc.id for doc in picked):
                picked.append(hit.doc)
        names, texts, used = [], [], 0
        for doc in picked[: max(cfg.max_skills, len(cfg.always_show))]:
            text = f"{doc.name}: {doc.description}\n{doc.body}".strip()
            cost = self._count_tokens(text)
            if used + cost > cfg.max_skill_tokens:
                text = _truncate_to_tokens(text, cfg.max_skill_tokens - used, self._count_tokens)
                cost = self._count_tokens(text)
                if not text:
                    break
            names.append(doc.name)
            texts.append(text)
            used += cost
        return names, format_skills(texts)

    # ----- the hooks of the shared episode loop ------------------------------------------------
    @property
    def policy(self) -> ChatPolicy:
        """The language-model policy: the trainer's prompt layout with the skills inserted."""
        cfg = self.config
        sampling = SamplingParams(temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens)
        return ChatPolicy(self.backend, sampling, cfg.history_window, cfg.seed, cfg.skill_position,
                          skill_header="Skills that may help:")

    def act(self, episodes: list[Episode]) -> list[str]:
        """One action per episode (skills as set on each episode), all in one batch."""
        return [text.strip() for text in self.policy(episodes)]

    @staticmethod
    def routing_query(episode: Episode, env: Environment | None = None) -> str:
        """The router's query for the episode's current state: ``env.routing_query(observation)`` when the
        environment is at hand, the one recorded at the episode's start on its first turn, else the task
        instruction + observation."""
        if env is not None:
            return env.routing_query(episode.observation)
        if episode.turn == 0:
            return episode.start.query
        return f"{episode.start.task_instruction}\n{episode.observation}"

    def route(self, episode: Episode, block: str, note: str = "",
              env: Environment | None = None) -> tuple[list[str], str, str]:
        """Skills for the episode's next turn: (names, routed block, prompt text with the lesson).

        Routes on the first turn (query: :meth:`routing_query`), on every turn with
        ``route_every_turn``, and again while nothing was found; otherwise keeps ``block``.
        """
        names = episode.skill_names
        if self.config.route_every_turn or not names:
            names, block = self.select_skills(self.routing_query(episode, env))
        text = (block + "\n\nLessons so far: " + note).strip() if note else block
        return names, block, text

    # ----- the graph ---------------------------------------------------------------------------
    def build_graph(self, pool: EnvPool) -> Any:
        """Compile the langgraph graph over a pool of environments (episodes started by :meth:`run`)."""
        from langgraph.graph import END, START, StateGraph

        local_envs = getattr(pool, "envs", {})  # a local pool's environments give later turns' routing queries

        def retrieve(state: AgentState) -> dict[str, Any]:
            blocks = list(state["blocks"])
            for ep in live_episodes(state["episodes"]):
                ep.skill_names, blocks[ep.slot], ep.skill_text = self.route(ep, blocks[ep.slot],
                                                                            state["notes"][ep.slot],
                                                                            local_envs.get(ep.slot))
            return {"episodes": state["episodes"], "blocks": blocks}

        def act(state: AgentState) -> dict[str, Any]:
            return {"actions": self.act(live_episodes(state["episodes"]))}

        def step(state: AgentState) -> dict[str, Any]:
            apply_actions(pool, live_episodes(state["episodes"]), state["actions"])
            return {"episodes": state["episodes"]}

        def reflect(state: AgentState) -> dict[str, Any]:
            notes = list(state["notes"])
            failing = [ep for ep in live_episodes(state["episodes"])
                       if ep.trajectory.turns[-1].reward < 0 and ep.trajectory.turns[-1].info.get("invalid")]
            if failing:
                requests = [[{"role": "user", "content": f"{ep.start.instructions}\n\nYou tried: {ep.history[-1][1]}\n"
                              f"Result: {ep.observation}\nIn one short sentence, what should you do "
                              "differently next time?"}] for ep in failing]
                lessons = self.backend.generate(requests, SamplingParams(temperature=0, max_new_tokens=32))
                for ep, lesson in zip(failing, lessons):
                    notes[ep.slot] = lesson.text.strip().split("\n")[0]
            return {"notes": notes}

        def after_step(state: AgentState) -> str:
            if not live_episodes(state["episodes"]):
                return "end"
            return "reflect" if self.config.reflect else "retrieve"

        graph = StateGraph(AgentState)
        graph.add_node("retrieve", retrieve)
        graph.add_node("act", act)
        graph.add_node("step", step)
        graph.add_edge(START, "retrieve")
        graph.add_edge("retrieve", "act")
        graph.add_edge("act", "step")
        targets = {"end": END, "retrieve": "retrieve"}
        if self.config.reflect:
            graph.add_node("reflect", reflect)
            graph.add_edge("reflect", "retrieve")
            targets["reflect"] = "reflect"
        graph.add_conditional_edges("step", after_step, targets)
        return graph.compile()

    def run(self, envs: Sequence[Environment], task_ids: Sequence[str]) -> list[Trajectory]:
        """Play one episode per (environment, task id) pair, batched, and return the trajectories."""
        if len(envs) != len(task_ids):
            raise ValueError(f"run got {len(envs)} environments for {len(task_ids)} task ids")
        pool = LocalEnvPool(lambda: None, envs)
        episodes = start_episodes(pool, task_ids, env_name=envs[0].name if envs else "",
                                  episode_ids=[uuid.uuid4().hex for _ in task_ids])
        n = len(episodes)
        state: AgentState = {"episodes": episodes, "blocks": [""] * n, "notes": [""] * n, "actions": []}
        max_steps = max(env.max_steps for env in envs)
        final = self.build_graph(pool).invoke(state, {"recursion_limit": 4 * max_steps + 10})
        trajectories = finish_episodes(pool, final["episodes"])
        for ep, trajectory in zip(final["episodes"], trajectories):
            trajectory.metadata = {"agent": "skill-agent", "skills_used": ep.skill_names, **trajectory.metadata}
        return trajectories


def _truncate_to_tokens(text: str, budget: int, count: Callable[[str], int]) -> str:
    """Cut ``text`` at a word boundary so that it fits ``budget`` tokens (empty when it cannot)."""
    if budget <= 0:
        return ""
    words = text.split(" ")
    lo, hi = 0, len(words)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if count(" ".join(words[:mid]) + " ...") <= budget:
            lo = mid
        else:
            hi = mid - 1
    return (" ".join(words[:lo]) + " ...") if lo else ""


def make_skill_node(agent: SkillAgent, instructions: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A node for your own langgraph graph: reads ``task``, ``observation`` (and optional ``history`` of
    (observation, action) pairs), writes ``action`` and ``skills_shown``.

    The node is one turn of the shared episode loop for a batch of one: route, then act.
    """

    def node(state: dict[str, Any]) -> dict[str, Any]:
        start = EpisodeStart(state["observation"], instructions, state.get("task", ""), max_steps=0)
        episode = new_episode(0, "", start, "node")
        episode.history = list(state.get("history", []))
        episode.skill_names, _, episode.skill_text = agent.route(episode, "")
        return {"action": agent.act([episode])[0], "skills_shown": episode.skill_names}

    return node
