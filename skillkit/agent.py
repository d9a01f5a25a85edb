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

How much of a skill the prompt shows is ``AgentConfig.disclosure``: ``body`` (the default) packs
each routed skill's name, description and body; ``progressive`` (as the Agent Skills format
intends) shows only names and descriptions, and the model asks for more with an action:
``read_skill("name")`` for a body, ``read_skill_file("name", "path")`` for a file the skill
bundles. ``act`` answers such an action itself, before anything reaches the environment (no step
is spent): the text joins the episode's skill block, within ``max_skill_tokens`` (the oldest read
text makes room first, then the new one is cut), and the model acts again, at most
``max_reads_per_turn`` times a turn and ``max_reads_per_episode`` in all; past either bound the
action goes to the environment as it is. Each turn's reads are recorded in its info
(``skill_reads``) and the names read in the trajectory's ``skills_read``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypedDict

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
from skillkit.skills.impact import SKILL_READS

if TYPE_CHECKING:
    from environments.base import Environment
    from retriever.router import Router


Disclosure = Literal["body", "progressive"]
BODY_HEADER = "Skills that may help:"
#: The skill header under progressive disclosure: the read actions' syntax, shown with the listing.
PROGRESSIVE_HEADER = ('Skills that may help (name: description). To read one in full, answer only '
                      'read_skill("name"); to read a file it names, read_skill_file("name", "path"). Then act.')
_READ_SKILL = re.compile(r"""read_skill\(\s*(["']?)(?P<name>[^"',()]+?)\1\s*\)""")
_READ_FILE = re.compile(r"""read_skill_file\(\s*(["']?)(?P<name>[^"',()]+?)\1\s*,"""
                        r"""\s*(["']?)(?P<path>[^"',()]+?)\3\s*\)""")


class AgentConfig(StrictModel):
    """How the agent routes skills, shows them and samples actions."""

    max_skills: int = Field(3, ge=0, description="most skills shown at once")
    max_skill_tokens: int = Field(400, ge=0, description="token budget for all shown skills together (under "
                                  "progressive disclosure: the listing and the texts read)")
    disclosure: Disclosure = Field("body", description="body: name, description and body of every shown skill; "
                                   "progressive: names and descriptions, bodies and files on request")
    max_reads_per_turn: int = Field(2, ge=0, description="read actions answered before one environment step")
    max_reads_per_episode: int = Field(6, ge=0, description="read actions answered in one episode")
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


class SkillFileReader(Protocol):
    """Reads a skill's bundled files (``skillkit.skills.bundle.SkillFiles`` is one)."""

    def list(self, skill: Any) -> Sequence[Any]: ...

    def read(self, skill: Any, path: str) -> bytes: ...


@dataclass
class SkillRead:
    """One read action the agent answered: the skill, the file (None: the body), the turn, and the
    text it put in the prompt (within the budget; ``shown`` turns False when a later read displaced it)."""

    skill: str
    path: str | None
    turn: int
    text: str
    found: bool
    truncated: bool = False
    tokens: int = 0
    shown: bool = True

    def record(self) -> dict[str, Any]:
        """What the trajectory keeps of it (an entry of the turn info's ``skill_reads``)."""
        return {"skill": self.skill, "path": self.path, "found": self.found, "tokens": self.tokens,
                "truncated": self.truncated}


@dataclass
class SkillView:
    """What one episode's prompt shows of its skills: the routed block, the texts read, the lesson."""

    block: str = ""
    note: str = ""
    reads: list[SkillRead] = field(default_factory=list)

    def text(self) -> str:
        """The skill text of the prompt: block, the read texts still shown, then the lesson."""
        return compose_skill_text(self.block, self.reads, self.note)


def compose_skill_text(block: str, reads: Sequence[SkillRead] = (), note: str = "") -> str:
    """The routed block, the shown read texts and the reflection's lesson, as one prompt text."""
    text = "\n\n".join(part for part in [block, *(r.text for r in reads if r.shown)] if part)
    return (text + "\n\nLessons so far: " + note).strip() if note else text


def parse_read_action(action: str) -> tuple[str, str | None] | None:
    """``(skill name, file path or None)`` when ``action`` starts with ``read_skill("name")`` or
    ``read_skill_file("name", "path")`` (quotes optional), else None."""
    text = action.strip()
    if match := _READ_FILE.match(text):
        return match["name"], match["path"]
    if match := _READ_SKILL.match(text):
        return match["name"], None
    return None


class AgentState(TypedDict):
    """Graph state for a batch of episodes (lists are indexed by pool slot)."""

    episodes: list[Episode]
    views: list[SkillView]     # what each episode's prompt shows of its skills
    actions: list[str]         # the actions of the live episodes, in ``live_episodes`` order


def _token_counter(backend: LLMBackend) -> Callable[[str], int]:
    tokenizer = getattr(backend, "tokenizer", None)
    if tokenizer is None:
        return lambda text: max(1, len(text) // 4)
    return lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])


class SkillAgent:
    """Acts in environments with an LLM backend, showing routed skills in its prompt.

    ``router`` may be None: the agent then runs without skills (the baseline). ``files`` reads the
    files the routed skills bundle (``SkillFiles.of(library)``) for the ``read_skill_file`` action
    of progressive disclosure. ``agent.run(env, task_ids)`` plays one episode per task id in one
    batch and returns trajectories.
    """

    def __init__(self, backend: LLMBackend, router: Router | None = None, config: AgentConfig | None = None,
                 files: SkillFileReader | None = None):
        self.backend = backend
        self.router = router
        self.config = config or AgentConfig()
        self.files = files
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
            body = doc.body if cfg.disclosure == "body" else ""
            text = f"{doc.name}: {doc.description}\n{body}".strip()
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
        header = PROGRESSIVE_HEADER if cfg.disclosure == "progressive" else BODY_HEADER
        return ChatPolicy(self.backend, sampling, cfg.history_window, cfg.seed, cfg.skill_position,
                          skill_header=header)

    def act(self, episodes: list[Episode], views: Sequence[SkillView] | None = None) -> list[str]:
        """One action per episode (skills as set on each episode), all in one batch.

        Under progressive disclosure a read action is answered here (the episode's view gets the
        text, its ``skill_text`` is rebuilt) and only the reading episodes act again, until none
        reads or the read bounds are reached. ``views`` (one per episode) carry the reads from turn
        to turn; without them each episode's current skill text is its block.
        """
        policy = self.policy
        actions = [text.strip() for text in policy(episodes)]
        if self.config.disclosure != "progressive":
            return actions
        views = list(views) if views is not None else [SkillView(block=ep.skill_text) for ep in episodes]
        while True:
            again = []
            for i, (ep, view) in enumerate(zip(episodes, views)):
                request = parse_read_action(actions[i])
                if request is None or not ep.skill_names or not self._may_read(ep, view):
                    continue
                self._answer_read(ep, view, *request)
                ep.skill_text = view.text()
                again.append(i)
            if not again:
                return actions
            for i, text in zip(again, policy([episodes[i] for i in again])):
                actions[i] = text.strip()

    def _may_read(self, episode: Episode, view: SkillView) -> bool:
        cfg = self.config
        this_turn = sum(r.turn == episode.turn for r in view.reads)
        return this_turn < cfg.max_reads_per_turn and len(view.reads) < cfg.max_reads_per_episode

    def _answer_read(self, episode: Episode, view: SkillView, name: str, path: str | None) -> None:
        """Answer one read action into ``view``: the body or file text, or why there is none."""
        call = f'read_skill("{name}")' if path is None else f'read_skill_file("{name}", "{path}")'
        found, content = False, False
        if name not in episode.skill_names or self.router is None:
            text = f"{call}: no skill of that name is listed"
        elif any(r.shown and r.found and (r.skill, r.path) == (name, path) for r in view.reads):
            text, found = f"{call}: already shown above", True
        else:
            doc = self.router.get(name)
            readable = self.files is not None and doc.skill is not None
            listed = [f.path for f in self.files.list(doc.skill)] if readable else []  # type: ignore[union-attr]
            if path is None:
                files_line = f"\nBundled files: {', '.join(listed)}" if listed else ""
                text, found = f"{call}:{files_line}\n{doc.body}", True
                content = True
            elif path not in listed:
                text = f"{call}: {name} bundles no file {path!r}"
                text += f" (files: {', '.join(listed)})" if listed else ""
            else:
                data = self.files.read(doc.skill, path)  # type: ignore[union-attr]
                try:
                    text, found, content = f"{call}:\n{data.decode('utf-8')}", True, True
                except UnicodeDecodeError:
                    text, found = f"{call}: a binary file of {len(data)} bytes, not shown", True
        view.reads.append(self._fit_read(view, SkillRead(name, path, episode.turn, text, found), evict=content))

    def _fit_read(self, view: SkillView, read: SkillRead, evict: bool) -> SkillRead:
        """Fit a new read into the budget: with ``evict`` (a body or file text, not a short notice) earlier
        read texts leave the prompt, oldest first, to make room; then it is cut to what is left."""
        budget = self.config.max_skill_tokens
        shown = [r for r in view.reads if r.shown]
        while evict and shown and self._count_tokens(compose_skill_text(view.block, [*shown, read])) > budget:
            shown.pop(0).shown = False
        before = compose_skill_text(view.block, shown)
        if self._count_tokens(compose_skill_text(view.block, [*shown, read])) > budget:
            prefix = before + "\n\n" if before else ""
            read.text = _truncate_to_tokens(read.text, budget, lambda t: self._count_tokens(prefix + t))
            read.truncated = True
        read.tokens = self._count_tokens(read.text) if read.text else 0
        read.shown = bool(read.text)
        return read

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

    def route(self, episode: Episode, block: str, note: str = "", reads: Sequence[SkillRead] = (),
              env: Environment | None = None) -> tuple[list[str], str, str]:
        """Skills for the episode's next turn: (names, routed block, prompt text with the reads and lesson).

        Routes on the first turn (query: :meth:`routing_query`), on every turn with
        ``route_every_turn``, and again while nothing was found; otherwise keeps ``block``.
        """
        names = episode.skill_names
        if self.config.route_every_turn or not names:
            names, block = self.select_skills(self.routing_query(episode, env))
        return names, block, compose_skill_text(block, reads, note)

    # ----- the graph ---------------------------------------------------------------------------
    def build_graph(self, pool: EnvPool) -> Any:
        """Compile the langgraph graph over a pool of environments (episodes started by :meth:`run`)."""
        from langgraph.graph import END, START, StateGraph

        local_envs = getattr(pool, "envs", {})  # a local pool's environments give later turns' routing queries

        def retrieve(state: AgentState) -> dict[str, Any]:
            views = state["views"]
            for ep in live_episodes(state["episodes"]):
                view = views[ep.slot]
                ep.skill_names, view.block, ep.skill_text = self.route(ep, view.block, view.note, view.reads,
                                                                        local_envs.get(ep.slot))
            return {"episodes": state["episodes"], "views": views}

        def act(state: AgentState) -> dict[str, Any]:
            live = live_episodes(state["episodes"])
            views = state["views"]
            return {"actions": self.act(live, [views[ep.slot] for ep in live]), "views": views}

        def step(state: AgentState) -> dict[str, Any]:
            live = live_episodes(state["episodes"])
            apply_actions(pool, live, state["actions"])
            for ep in live:
                record_reads(ep, state["views"][ep.slot])
            return {"episodes": state["episodes"]}

        def reflect(state: AgentState) -> dict[str, Any]:
            views = state["views"]
            failing = [ep for ep in live_episodes(state["episodes"])
                       if ep.trajectory.turns[-1].reward < 0 and ep.trajectory.turns[-1].info.get("invalid")]
            if failing:
                requests = [[{"role": "user", "content": f"{ep.start.instructions}\n\nYou tried: {ep.history[-1][1]}\n"
                              f"Result: {ep.observation}\nIn one short sentence, what should you do "
                              "differently next time?"}] for ep in failing]
                lessons = self.backend.generate(requests, SamplingParams(temperature=0, max_new_tokens=32))
                for ep, lesson in zip(failing, lessons):
                    views[ep.slot].note = lesson.text.strip().split("\n")[0]
            return {"views": views}

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
        state: AgentState = {"episodes": episodes, "views": [SkillView() for _ in range(n)], "actions": []}
        max_steps = max(env.max_steps for env in envs)
        final = self.build_graph(pool).invoke(state, {"recursion_limit": 4 * max_steps + 10})
        trajectories = finish_episodes(pool, final["episodes"])
        for ep, trajectory, view in zip(final["episodes"], trajectories, final["views"]):
            trajectory.metadata = {"agent": "skill-agent", "skills_used": ep.skill_names,
                                   "disclosure": self.config.disclosure, **trajectory.metadata}
            if self.config.disclosure == "progressive":
                read = [r.skill for r in view.reads if r.found]
                trajectory.metadata["skills_read"] = list(dict.fromkeys(read))
        return trajectories


def record_reads(episode: Episode, view: SkillView) -> None:
    """Put the reads answered before the episode's last step into that turn's info (``skill_reads``)."""
    turn = episode.turn - 1
    reads = [r.record() for r in view.reads if r.turn == turn]
    if reads:
        last = episode.trajectory.turns[-1]
        last.info = {**last.info, SKILL_READS: reads}


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
    (observation, action) pairs), writes ``action`` and ``skills_shown`` (and, under progressive
    disclosure, ``skill_reads``: the reads answered before the action).

    The node is one turn of the shared episode loop for a batch of one: route, then act.
    """

    def node(state: dict[str, Any]) -> dict[str, Any]:
        start = EpisodeStart(state["observation"], instructions, state.get("task", ""), max_steps=0)
        episode = new_episode(0, "", start, "node")
        episode.history = list(state.get("history", []))
        view = SkillView()
        episode.skill_names, view.block, episode.skill_text = agent.route(episode, "")
        out = {"action": agent.act([episode], [view])[0], "skills_shown": episode.skill_names}
        if agent.config.disclosure == "progressive":
            out["skill_reads"] = [r.record() for r in view.reads]
        return out

    return node
