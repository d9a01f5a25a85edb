"""The agent, with and without routed skills, through the one evaluation (:mod:`trainer.evaluation`).

Metric names, intervals, per-task outcomes and the dense metric are defined there; this module
only plays the langgraph agent on fresh environments and, for the dense metric's teacher
advantage, gives each task the skills the agent's router would show at its start.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from environments.base import Environment
from skillkit.agent import AgentConfig, SkillAgent, SkillFileReader
from skillkit.core.llm.base import LLMBackend
from skillkit.core.schemas import Trajectory
from trainer.evaluation import DenseProbe, EvalResult, evaluate

if TYPE_CHECKING:
    from retriever.router import Router


def routed_skill_text(agent: SkillAgent, make_env: Callable[[], Environment]) -> Callable[[str], str | None]:
    """``task_id -> skill text``: what the agent's router shows at the task's first turn (the environment's
    routing query, as in the agent; cached)."""
    cache: dict[str, str | None] = {}

    def skill_text(task_id: str) -> str | None:
        if task_id not in cache:
            with make_env() as env:
                observation = env.reset(task_id=task_id)
                cache[task_id] = agent.select_skills(env.routing_query(observation))[1] or None
        return cache[task_id]

    return skill_text


def evaluate_agent(agent: SkillAgent, make_env: Callable[[], Environment], task_ids: Sequence[str], label: str,
                   split: str, batch_size: int = 16, on_batch: Callable[[int], None] | None = None,
                   probe: DenseProbe | None = None,
                   skill_text: Callable[[str], str | None] | None = None) -> tuple[EvalResult, list[Trajectory]]:
    """Run ``agent`` on every task id (``batch_size`` episodes at a time) and evaluate; with a
    ``probe``, add the dense metrics of the agent's model (``skill_text``: the teacher's skill per task)."""
    env_name = ""

    def play(ids: list[str]) -> list[Trajectory]:
        nonlocal env_name
        envs = [make_env() for _ in ids]
        try:
            env_name = envs[0].name
            return agent.run(envs, ids)
        finally:
            for env in envs:
                env.close()

    model: Any = getattr(agent.backend, "model", None)
    result, trajectories = evaluate(play, task_ids, label=label, env="", split=split, batch_size=batch_size,
                                    on_batch=on_batch, probe=probe, model=model,
                                    tokenizer=getattr(agent.backend, "tokenizer", None), skill_text=skill_text,
                                    skill_position=agent.config.skill_position)
    return result.model_copy(update={"env": env_name}), trajectories


def evaluate_side_by_side(backend: LLMBackend, router: Router | None, config: AgentConfig,
                          make_env: Callable[[], Environment], task_ids: Sequence[str], split: str,
                          dense_states: int = 0, seed: int = 0,
                          progress: Callable[[str], Callable[[int], None] | None] | None = None,
                          files: SkillFileReader | None = None) -> tuple[list[EvalResult], list[Trajectory]]:
    """The agent without skills and, given a ``router``, with routed skills, on the same tasks.

    The dense metrics (``dense_states`` held-out states; 0: none) describe the model under the plain
    prompt, so they are computed once and shown on both rows; the teacher advantage uses the
    router's skills. ``progress(label)`` may return a callback that gets the episodes done per batch;
    ``files`` reads the skills' bundled files for progressive disclosure.
    """
    arms: list[tuple[str, Router | None]] = [("no skills", None)] + ([("with skills", router)] if router else [])
    with make_env() as env:
        probe = DenseProbe.build(env, task_ids, dense_states, seed) if dense_states else None
    skill_text = routed_skill_text(SkillAgent(backend, router, config), make_env) if router and probe else None
    results: list[EvalResult] = []
    trajectories: list[Trajectory] = []
    for label, arm_router in arms:
        agent = SkillAgent(backend, arm_router, config, files=files)
        result, trajs = evaluate_agent(agent, make_env, task_ids, label, split,
                                       on_batch=progress(label) if progress else None,
                                       probe=probe if not results else None, skill_text=skill_text)
        if results:
            result = result.model_copy(update={**_dense_fields(results[0]), "intervals": {
                **result.intervals, **{k: v for k, v in results[0].intervals.items() if k.startswith("dense_")}}})
        results.append(result)
        trajectories.extend(trajs)
    return results, trajectories


def _dense_fields(result: EvalResult) -> dict[str, Any]:
    return {k: v for k, v in result.model_dump().items() if k.startswith("dense_")}
