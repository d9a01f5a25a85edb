"""Skill sources: the library with UCB banks (seeded from experts, new summaries, exact state)."""

from __future__ import annotations

from skillkit.core.schemas import Trajectory, Turn
from trainer.library_source import LibrarySkillSource
from trainer.skills import StaticSkillSource, expert_skill_source


def episode(task: str, actions: list[str], success: bool, ep: str) -> Trajectory:
    turns = [Turn(action=a, observation=f"after {a}", reward=1.0 if success and i == len(actions) - 1 else 0.0,
                  done=i == len(actions) - 1) for i, a in enumerate(actions)]
    return Trajectory(id=ep, env="letters", task_id=task, instruction=f"say {task}", initial_observation="?",
                      turns=turns, success=success, total_reward=1.0 if success else 0.0)


def test_static_and_expert_sources():
    src = StaticSkillSource({"a": "say a"})
    assert src.skill_for("a") == ("skill-a", "say a") and src.skill_for("b") is None
    src.feedback("a", "skill-a", 1.0)
    clone = StaticSkillSource({})
    clone.load_state_dict(src.state_dict())
    assert clone.state_dict() == src.state_dict()
    expert = expert_skill_source([episode("a", ["x", "a"], True, "e1"), episode("b", ["x"], False, "e2")])
    assert expert.skill_for("b") is None and "2. a" in expert.skill_for("a")[1]


def test_library_source_banks_ucb_summaries_and_state(tmp_path):
    src = LibrarySkillSource.build(tmp_path / "lib", [episode("a", ["x", "a"], True, "e1"),
                                                       episode("b", ["b"], False, "e2")], c=1.0, embedder="hashing",
                                   bank_size=2)
    assert len(src.library) == 1 and src.skill_for("b") is None
    name, text = src.skill_for("a")
    assert text and src.bank("a")[0].name == name

    # a successful group of task a adds a second skill (the bank has room for 2), failures add nothing
    added = src.add_trajectories([episode("a", ["a"], True, "r1"), episode("a", ["q"], False, "r2"),
                                  episode("b", ["q"], False, "r3")], iteration=1)
    assert added == 1 and len(src.bank("a")) == 2 and not src.bank("b")
    assert src.add_trajectories([episode("a", ["a"], True, "r4")], iteration=2) == 0  # bank full

    # UCB: each untried skill first, then the better one keeps being chosen
    first = src.skill_for("a")[0]
    src.feedback("a", first, 0.0)
    second = src.skill_for("a")[0]
    assert second != first
    src.feedback("a", second, 1.0)
    assert src.skill_for("a")[0] == second
    usage = src.library.get(second).task_usage["a"]
    assert usage.n == 1 and usage.reward_sum == 1.0

    # a checkpointed state restores the library exactly, into another folder
    state = src.state_dict()
    other = LibrarySkillSource.build(tmp_path / "lib2", [episode("c", ["c"], True, "e3")], embedder="hashing")
    other.load_state_dict(state)
    assert other.state_dict() == state
    assert other.skill_for("a")[0] == second and other.skill_for("c") is None
