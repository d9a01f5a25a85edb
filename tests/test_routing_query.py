"""Routing by what differs: environments' routing queries, their record in episodes, skills' routing text."""

from __future__ import annotations

from environments.base import run_episode
from environments.episodes import episode_start, new_episode
from environments.sokoban.env import SokobanEnv
from environments.sokoban.level import Level
from environments.sokoban.routing import layout_distance, layout_tokens
from retriever.docs import RouterDoc
from retriever.router import Router
from skillkit.agent import SkillAgent
from skillkit.core.schemas import TrajectorySkill
from skillkit.skills.routing_text import attach_routing_text

GRID = "######\n#O_XO#\n#____#\n#X####\n#P####\n######"


def test_sokoban_layout_tokens_and_distance():
    level = Level.from_text(GRID)
    assert layout_tokens(level) == ("sokoban layout: wallr3c2 wallr3c3 wallr3c4 wallr4c2 wallr4c3 wallr4c4 "
                                    "targetr1c1 targetr1c4 boxr1c3 boxr3c1 playerr4c1")
    moved = level.with_state(level.player - 6, level.boxes)  # the player one row up
    assert layout_distance(level, level) == 0 and layout_distance(level, moved) == 2


def test_sokoban_routing_query_differs_per_level_and_is_recorded():
    env = SokobanEnv()
    a, b = env.task_ids("train")[:2]
    qa, qb = (env.routing_query(env.reset(t)) for t in (a, b))
    assert qa.startswith("sokoban layout:") and qa != qb
    assert env.task_instruction() not in qa
    start = episode_start(env, env.reset(a))
    assert start.routing_query == qa and start.query == qa
    traj = run_episode(env, lambda _obs: "Up", a)
    assert traj.metadata["routing_query"] == qa


def test_default_routing_query_is_instruction_and_observation():
    class Plain(SokobanEnv):
        routing_query = SokobanEnv.__mro__[1].routing_query  # the protocol's default

    env = Plain()
    obs = env.reset(env.task_ids("train")[0])
    start = episode_start(env, obs)
    assert start.routing_query == "" and start.query == f"{env.task_instruction()}\n{obs}"
    assert "routing_query" not in run_episode(env, lambda _obs: "Up", env.task_ids("train")[0]).metadata


def test_skills_get_the_routing_text_of_their_episodes_and_the_router_matches_it():
    env = SokobanEnv()
    ids = env.task_ids("train")[:3]
    trajs = [run_episode(env, lambda _obs: "Left", t, episode_id=f"e{i}") for i, t in enumerate(ids)]
    skills = [TrajectorySkill(name=f"level-{i}-summary", description="Lessons from sokoban episodes.",
                              task_id=t, source_trajectory_ids=[f"e{i}"], source_tasks=[t])
              for i, t in enumerate(ids)]
    assert attach_routing_text(skills, trajs) == 3
    assert all(s.routing_text == tr.metadata["routing_query"] for s, tr in zip(skills, trajs))
    assert skills[0].to_text().endswith(skills[0].routing_text)
    assert RouterDoc.from_skill(skills[0]).to_text() == skills[0].to_text()
    router = Router.from_docs(skills, encoder="hashing-64")
    for skill, traj in zip(skills, trajs):
        assert router.route(traj.metadata["routing_query"], k=1, method="bm25")[0].id == skill.id
    # the agent asks with the same query on the first turn
    episode = new_episode(0, ids[1], episode_start(env, env.reset(ids[1])), "x")
    assert SkillAgent.routing_query(episode) == trajs[1].metadata["routing_query"]
    assert SkillAgent.routing_query(episode, env) == trajs[1].metadata["routing_query"]
