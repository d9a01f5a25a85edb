"""The langgraph skill agent: routing under a budget, traces, batching, use as a node."""

from __future__ import annotations

import pytest

import environments
from retriever.router import Router
from skillkit.agent import AgentConfig, SkillAgent, make_skill_node
from skillkit.core.prompts import build_messages, insert_skill
from trainer.evaluation import summarize_trajectories

DOCS = [
    {"name": "push-box-up", "description": "Push a box upward onto a target in Sokoban",
     "body": "Stand directly below the box, then move Up. " * 20},
    {"name": "send-phone-message", "description": "Send a text message with the phone app",
     "body": "Log in, find the contact, call apis.phone.send_message."},
    {"name": "avoid-corners", "description": "Never push a Sokoban box into a corner",
     "body": "A box in a corner that is not a target can never be moved again."},
]


@pytest.fixture(scope="module")
def router():
    return Router.from_docs(DOCS, reranker=None)


def _envs(n, steps=2):
    return [environments.make("sokoban", variant="1box", max_steps=steps) for _ in range(n)]


def test_agent_records_skills_and_respects_budget(tiny_backend, router):
    agent = SkillAgent(tiny_backend, router, AgentConfig(max_skills=1, max_skill_tokens=30, max_new_tokens=4))
    names, block = agent.select_skills("Sokoban: push the box onto the target")
    assert len(names) == 1 and names[0] in {"push-box-up", "avoid-corners"}
    assert len(tiny_backend.tokenizer(block)["input_ids"]) <= 40  # budget + the header line
    envs = _envs(2)
    ids = envs[0].task_ids("test")[:2]
    trajectories = agent.run(envs, ids)
    assert [t.task_id for t in trajectories] == ids
    for t in trajectories:
        assert 1 <= len(t.turns) <= 2
        assert all(len(turn.skills_shown) == 1 for turn in t.turns)
        assert t.turns[0].skills_shown[0] != "send-phone-message"
        assert t.metadata["skills_used"] == t.turns[-1].skills_shown


def test_agent_without_router_shows_no_skills(tiny_backend):
    agent = SkillAgent(tiny_backend, None, AgentConfig(max_new_tokens=4))
    envs = _envs(1, steps=1)
    (trajectory,) = agent.run(envs, envs[0].task_ids("test")[:1])
    assert trajectory.turns[0].skills_shown == []


def test_always_shown_skill_and_threshold(tiny_backend, router):
    config = AgentConfig(max_skills=2, always_show=["send-phone-message"], min_score=0.99)
    names, _ = SkillAgent(tiny_backend, router, config).select_skills("push the box")
    assert names == ["send-phone-message"]  # the threshold drops every routed skill


def test_skills_reach_the_prompt():
    history = [("s0", "Up"), ("s1", "Left"), ("s2", "Down")]
    messages = insert_skill(build_messages("rules", "push the box", history, "grid", window=2), "[1] push")
    assert messages[0]["content"] == "rules\n\nTask: push the box"
    assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert "Up" not in [m["content"] for m in messages] and messages[2]["content"] == "Left"
    assert messages[-1]["content"].endswith("grid") and "[1] push" in messages[-1]["content"]
    in_system = insert_skill(build_messages("rules", "", [], "grid", 2), "SKILL", position="system")
    assert "SKILL" in in_system[0]["content"] and "SKILL" not in in_system[1]["content"]
    assert insert_skill(in_system, "") == in_system


def test_node_in_a_user_graph(tiny_backend, router):
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    class State(TypedDict, total=False):
        task: str
        observation: str
        action: str
        skills_shown: list[str]

    agent = SkillAgent(tiny_backend, router, AgentConfig(max_skills=1, max_new_tokens=3))
    graph = StateGraph(State)
    graph.add_node("skills", make_skill_node(agent, "You play Sokoban."))
    graph.add_edge(START, "skills")
    graph.add_edge("skills", END)
    out = graph.compile().invoke({"task": "push the box onto the target", "observation": "#P X O#"})
    assert isinstance(out["action"], str) and len(out["skills_shown"]) == 1


def test_summary_counts_scenarios():
    from skillkit.core.schemas import Trajectory

    def traj(task, scenario, ok):
        return Trajectory(id=task, env="apps", task_id=task, success=ok, metadata={"scenario_id": scenario})

    result = summarize_trajectories([traj("a1", "a", True), traj("a2", "a", True), traj("b1", "b", False),
                                     traj("b2", "b", True)], "x", "apps", "test")
    assert result.success_rate == 0.75 and result.sgc == 0.5
    assert result.outcomes == {"a1": 1, "a2": 1, "b1": 0, "b2": 1}
    low, high = result.intervals["sgc"]
    assert 0.0 <= low <= 0.5 <= high <= 1.0
