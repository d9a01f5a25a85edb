"""Skill schemas: Agent Skills name/description rules, the tier union, text rendering, trajectories."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from skillkit.core.schemas import (
    AtomicSkill,
    FunctionalSkill,
    PlanningSkill,
    Trajectory,
    TrajectorySkill,
    Turn,
    parse_skill,
    read_trajectories,
    slugify,
    validate_skill_name,
    write_jsonl,
)


@pytest.mark.parametrize("name", ["a", "push-box", "level-3-plan", "x" * 64, "0abc"])
def test_valid_names(name: str) -> None:
    assert AtomicSkill(name=name, description="d").name == name


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "1-64 characters"),
        ("x" * 65, "1-64 characters"),
        ("Push-Box", "not allowed"),
        ("push_box", "not allowed"),
        ("push box", "not allowed"),
        ("-push", "hyphens"),
        ("push-", "hyphens"),
        ("push--box", "hyphens"),
        ("café", "not allowed"),
    ],
)
def test_invalid_names_are_clear_errors(name: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        PlanningSkill(name=name, description="d")
    with pytest.raises(ValueError, match=why):
        validate_skill_name(name)


def test_description_rules() -> None:
    with pytest.raises(ValidationError, match="must not be empty"):
        AtomicSkill(name="a", description="   ")
    with pytest.raises(ValidationError, match="at most 1024"):
        AtomicSkill(name="a", description="x" * 1025)
    assert len(AtomicSkill(name="a", description="x" * 1024).description) == 1024


def test_assignment_is_validated() -> None:
    skill = AtomicSkill(name="a", description="d")
    with pytest.raises(ValidationError):
        skill.name = "Not Valid"


def test_slugify_always_gives_a_valid_name() -> None:
    for text in ["Push the box RIGHT!", "", "---", "é" * 10, "a" * 200, "spotify.login()", "x--y"]:
        validate_skill_name(slugify(text))
    assert slugify("Push the box RIGHT!") == "push-the-box-right"


def test_parse_skill_discriminates_on_tier_and_round_trips_json() -> None:
    skills = [
        TrajectorySkill(name="t", description="d", task_id="task-1", success_analysis="ok",
                        golden_workflow=["a", "b"], reward_stats={"mean": 1.0}),
        PlanningSkill(name="p", description="d", task="do x", plan=["s1; Up", "s2; Left"]),
        FunctionalSkill(name="f", description="d", body="steps", tools=["api.a"]),
        AtomicSkill(name="a", description="d", action="api.a", constraints=["c"], pitfalls=["p"]),
    ]
    for skill in skills:
        data = json.loads(skill.model_dump_json())
        back = parse_skill(data)
        assert type(back) is type(skill)
        assert back == skill
        assert parse_skill(skill.model_dump_json()) == skill
    with pytest.raises(ValueError, match="tier"):
        parse_skill({"name": "x", "description": "d"})
    with pytest.raises(ValidationError):
        parse_skill({"name": "x", "description": "d", "tier": "galaxy"})


def test_body_and_to_text() -> None:
    traj = TrajectorySkill(name="t", description="desc", success_analysis="pushed right",
                           mistake_analysis="hit a wall", golden_workflow=["Right", "Up"])
    body = traj.body_text()
    assert "## What worked\npushed right" in body and "1. Right\n2. Up" in body
    assert traj.to_text() == f"t | desc | {body}"
    assert TrajectorySkill(name="t", description="d", golden_workflow="Right then Up").workflow_steps() == [
        "Right then Up"
    ]
    atomic = AtomicSkill(name="a", description="d", action="spotify.login", pitfalls=["401 on bad password"])
    assert "`spotify.login`" in atomic.body_text() and "- 401 on bad password" in atomic.body_text()
    assert FunctionalSkill(name="f", description="only desc").body_text() == "only desc"
    assert traj.mean_reward == 0.0


def test_trajectory_jsonl_unchanged(tmp_path) -> None:
    traj = Trajectory(id="e1", env="sokoban", task_id="lvl-1", turns=[Turn(action="Up", observation="#", reward=-0.1)])
    path = tmp_path / "t.jsonl"
    assert write_jsonl(path, [traj]) == 1
    assert list(read_trajectories(path)) == [traj]
