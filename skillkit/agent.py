"""A langgraph agent that plugs routed skills into its prompt and acts in any environment.

The graph runs a batch of episodes together (one episode is a batch of one), so every LLM call
generates the actions of all live episodes at once::

    retrieve ──> act ──> step ──> (reflect) ──> done? ── yes ──> END
       ^                                 │
       └──────── no (re-route) ──────────┘   (or straight back to act when routing once)

``retrieve`` asks the router for skills (query = task instruction + current observation), keeps
those above a score threshold, and packs them under a budget (max skills, max tokens); the
names shown are recorded on every turn of the trajectory. ``make_skill_node`` exposes the
retrieve+act step as a node for a user's own langgraph graph.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

from pydantic import Field

from skillkit.core.config import StrictModel
from skillkit.core.llm.base import LLMBackend, SamplingParams
from skillkit.core.prompts import SkillPosition, build_messages, format_skills, insert_skill
from skillkit.core.schemas import Trajectory, Turn

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
    """Graph state for a batch of episodes (lists are indexed by episode)."""

    observations: list[str]
    histories: list[list[tuple[str, str]]]
    skill_names: list[list[str]]
    skill_blocks: list[str]
    notes: list[str]
    actions: list[str]
    done: list[bool]
    turns: list[list[dict[str, Any]]]
    step: int


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

    # ----- one step, usable on its own ---------------------------------------------------------
    def act(self, instructions: str, tasks: Sequence[str], observations: Sequence[str],
            histories: Sequence[Sequence[tuple[str, str]]], skill_blocks: Sequence[str],
            notes: Sequence[str] | None = None) -> list[str]:
        """Generate one action per episode, all in one batch.

        ``histories`` hold (observation, action) pairs of earlier turns; the prompt is the one the
        trainer's student sees (``skillkit.core.prompts``), with the skills inserted.
        """
        cfg = self.config
        requests = []
        for i, observation in enumerate(observations):
            skills = skill_blocks[i]
            if notes and notes[i]:
                skills = (skills + "\n\nLessons so far: " + notes[i]).strip()
            messages = build_messages(instructions, tasks[i], histories[i], observation, cfg.history_window)
            requests.append(insert_skill(messages, skills, cfg.skill_position,
                                         header="Skills that may help:" if skills else ""))
        sampling = SamplingParams(temperature=cfg.temperature, max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
        return [c.text.strip() for c in self.backend.generate(requests, sampling)]

    # ----- the graph ---------------------------------------------------------------------------
    def build_graph(self, envs: Sequence[Environment]) -> Any:
        """Compile the langgraph graph over a fixed batch of (already reset) environments."""
        from langgraph.graph import END, START, StateGraph

        instructions = envs[0].instructions
        queries = [env.task_instruction() for env in envs]

        def retrieve(state: AgentState) -> dict[str, Any]:
            names, blocks = list(state["skill_names"]), list(state["skill_blocks"])
            for i, observation in enumerate(state["observations"]):
                if state["done"][i] or (names[i] and not self.config.route_every_turn):
                    continue
                names[i], blocks[i] = self.select_skills(f"{queries[i]}\n{observation}")
            return {"skill_names": names, "skill_blocks": blocks}

        def act(state: AgentState) -> dict[str, Any]:
            live = [i for i, d in enumerate(state["done"]) if not d]
            generated = self.act(instructions, [queries[i] for i in live], [state["observations"][i] for i in live],
                                 [state["histories"][i] for i in live], [state["skill_blocks"][i] for i in live],
                                 [state["notes"][i] for i in live])
            actions = list(state["actions"])
            for i, action in zip(live, generated):
                actions[i] = action
            return {"actions": actions}

        def step(state: AgentState) -> dict[str, Any]:
            observations, histories = list(state["observations"]), [list(h) for h in state["histories"]]
            done, turns = list(state["done"]), [list(t) for t in state["turns"]]
            for i, env in enumerate(envs):
                if done[i]:
                    continue
                result = env.step(state["actions"][i])
                turns[i].append(Turn(action=state["actions"][i], observation=result.observation,
                                     reward=result.reward, done=result.done, info=result.info,
                                     skills_shown=state["skill_names"][i]).model_dump())
                histories[i].append((state["observations"][i], state["actions"][i]))
                observations[i], done[i] = result.observation, result.done
            return {"observations": observations, "histories": histories, "done": done, "turns": turns,
                    "step": state["step"] + 1}

        def reflect(state: AgentState) -> dict[str, Any]:
            notes = list(state["notes"])
            failing = [i for i, t in enumerate(state["turns"]) if not state["done"][i] and t and t[-1]["reward"] < 0
                       and t[-1]["info"].get("invalid")]
            if failing:
                requests = [[{"role": "user", "content": f"{instructions}\n\nYou tried: {state['actions'][i]}\n"
                              f"Result: {state['observations'][i]}\nIn one short sentence, what should you do "
                              "differently next time?"}] for i in failing]
                lessons = self.backend.generate(requests, SamplingParams(temperature=0, max_new_tokens=32))
                for i, lesson in zip(failing, lessons):
                    notes[i] = lesson.text.strip().split("\n")[0]
            return {"notes": notes}

        def after_step(state: AgentState) -> str:
            if all(state["done"]):
                return "end"
            if self.config.reflect:
                return "reflect"
            return "retrieve" if self.config.route_every_turn else "act"

        graph = StateGraph(AgentState)
        graph.add_node("retrieve", retrieve)
        graph.add_node("act", act)
        graph.add_node("step", step)
        graph.add_edge(START, "retrieve")
        graph.add_edge("retrieve", "act")
        graph.add_edge("act", "step")
        targets = {"end": END, "act": "act", "retrieve": "retrieve"}
        if self.config.reflect:
            graph.add_node("reflect", reflect)
            graph.add_edge("reflect", "retrieve" if self.config.route_every_turn else "act")
            targets["reflect"] = "reflect"
        graph.add_conditional_edges("step", after_step, targets)
        return graph.compile()

    def run(self, envs: Sequence[Environment], task_ids: Sequence[str]) -> list[Trajectory]:
        """Play one episode per (environment, task id) pair, batched, and return the trajectories."""
        if len(envs) != len(task_ids):
            raise ValueError(f"run got {len(envs)} environments for {len(task_ids)} task ids")
        observations = [env.reset(task_id=t) for env, t in zip(envs, task_ids)]
        n = len(envs)
        state: AgentState = {
            "observations": observations, "histories": [[] for _ in range(n)], "skill_names": [[] for _ in range(n)],
            "skill_blocks": [""] * n, "notes": [""] * n, "actions": [""] * n, "done": [False] * n,
            "turns": [[] for _ in range(n)], "step": 0,
        }
        max_steps = max(env.max_steps for env in envs)
        final = self.build_graph(envs).invoke(state, {"recursion_limit": 4 * max_steps + 10})
        trajectories = []
        for i, env in enumerate(envs):
            turns = [Turn(**t) for t in final["turns"][i]]
            last_info = turns[-1].info if turns else {}
            trajectories.append(Trajectory(
                id=uuid.uuid4().hex, env=env.name, task_id=str(task_ids[i]), instruction=env.task_instruction(),
                initial_observation=observations[i], turns=turns, success=bool(last_info.get("success", False)),
                total_reward=sum(t.reward for t in turns),
                metadata={"agent": "skill-agent", "skills_used": final["skill_names"][i],
                          "max_steps": env.max_steps, **env.episode_metadata()},
            ))
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
    (observation, action) pairs), writes ``action`` and ``skills_shown``."""

    def node(state: dict[str, Any]) -> dict[str, Any]:
        names, block = agent.select_skills(f"{state.get('task', '')}\n{state['observation']}")
        action = agent.act(instructions, [state.get("task", "")], [state["observation"]], [state.get("history", [])],
                           [block])[0]
        return {"action": action, "skills_shown": names}

    return node
