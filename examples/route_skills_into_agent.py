"""Plug routed skills into an agent: a langgraph agent that retrieves skills, acts and steps the env.

    python examples/route_skills_into_agent.py --library /tmp/my-library [--model smollm2-135m]

Also shows the skill node inside your own langgraph graph.
"""

from __future__ import annotations

import argparse
from typing import TypedDict

from langgraph.graph import END, START, StateGraph

import environments
from retriever.router import Router
from skillkit.agent import AgentConfig, SkillAgent, make_skill_node
from skillkit.core.llm.hf import HFBackend
from skillkit.skills.library import SkillLibrary


class MyState(TypedDict, total=False):
    task: str
    observation: str
    action: str
    skills_shown: list[str]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--library", required=True, help="a library built by examples/build_library.py")
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--episodes", type=int, default=2)
    args = parser.parse_args()

    llm = HFBackend.from_pretrained(args.model)
    # dense retrieval over name | description | body, reusing the vectors stored in the library
    router = Router.from_library(SkillLibrary.load(args.library), reranker=None)
    print([hit.name for hit in router.route("push the box onto the target", k=3)])

    # 1. The ready-made agent: retrieve -> act -> step until done, batched over episodes.
    agent = SkillAgent(llm, router, AgentConfig(max_skills=2, max_skill_tokens=200, max_new_tokens=12))
    envs = [environments.make("sokoban", variant="1box", max_steps=6) for _ in range(args.episodes)]
    for trajectory in agent.run(envs, envs[0].task_ids("test")[: args.episodes]):
        print(trajectory.task_id, "success" if trajectory.success else "failure",
              "skills shown:", trajectory.turns[0].skills_shown)

    # 2. The skill step as one node of your own graph.
    graph = StateGraph(MyState)
    graph.add_node("choose_action", make_skill_node(agent, envs[0].instructions))
    graph.add_edge(START, "choose_action")
    graph.add_edge("choose_action", END)
    state = graph.compile().invoke({"task": envs[0].task_instruction(), "observation": envs[0].reset(
        envs[0].task_ids("test")[0])})
    print("action:", state["action"], "| skills:", state["skills_shown"])


if __name__ == "__main__":
    main()
