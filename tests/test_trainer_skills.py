"""Skill sources: library banks of the agent's own episodes (background summaries, UCB, replacement of
the weakest), the delayed credit, the ground-truth source of OPSD, and exact state."""

from __future__ import annotations

import threading

from skillkit.core.schemas import Trajectory, Turn
from trainer.library_source import LibrarySkillSource
from trainer.skills import SkillCredit, StaticSkillSource, expert_skill_source


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


def test_summaries_of_successes_and_failures_join_the_banks_at_the_next_call(tmp_path):
    src = LibrarySkillSource.open(tmp_path / "lib", embedder="hashing", bank_size=2)
    assert src.skill_for("a") is None
    gate = threading.Event()
    summarize_many = src.summarizer.summarize_many

    def slow(groups, extraction_round=0):
        gate.wait(10)
        return summarize_many(groups, extraction_round=extraction_round)

    src.summarizer.summarize_many = slow
    src.add_trajectories([episode("a", ["a"], True, "r1"), episode("a", ["q"], False, "r2"),
                          episode("b", ["q"], False, "r3")], iteration=1)
    assert src._pending is not None and not src._pending.done()  # the trainer goes on meanwhile
    assert len(src.library) == 0
    gate.set()
    name, text = src.skill_for("a")                                # the join point
    assert len(src.library) == 2 and src._pending is None
    assert "Mistakes to avoid" in src.skill_for("b")[1]           # a failure-only group is a skill too
    assert src.bank("a")[0].name == name and text


def test_ucb_on_credit_and_full_bank_replaces_the_weakest(tmp_path):
    src = LibrarySkillSource.open(tmp_path / "lib", embedder="hashing", bank_size=2, background=False)
    src.add_trajectories([episode("a", ["a"], True, "r1")], iteration=1)
    src.add_trajectories([episode("a", ["b", "a"], True, "r2")], iteration=2)
    first = src.skill_for("a")[0]                          # untried skills first, newest first
    src.feedback("a", first, -0.5)
    second = src.skill_for("a")[0]
    assert second != first
    src.feedback("a", second, 0.5)
    assert src.skill_for("a")[0] == second
    usage = src.library.get(second).task_usage["a"]
    assert usage.n == 1 and usage.reward_sum == 0.5

    # the bank is full: a new summary replaces the weakest credited skill, the better one stays
    src.add_trajectories([episode("a", ["c", "a"], False, "r3")], iteration=3)
    names = [s.name for s in src.bank("a")]
    assert first not in names and second in names and len(names) == 2
    src.feedback("a", first, 1.0)                          # a credit settled after its skill left: ignored
    assert src.library.find(first) is None
    newest = src.bank("a")[0].name
    assert src.skill_for("a")[0] == newest                 # the newcomer gets its try

    # a bank whose skills are all untried keeps them
    fresh = LibrarySkillSource.open(tmp_path / "fresh", embedder="hashing", bank_size=1, background=False)
    fresh.add_trajectories([episode("a", ["a"], True, "r4")], iteration=1)
    kept = fresh.bank("a")[0].name
    fresh.add_trajectories([episode("a", ["a"], True, "r5")], iteration=2)
    assert [s.name for s in fresh.bank("a")] == [kept]

    # a checkpointed state restores the library exactly, into another folder
    state = src.state_dict()
    other = LibrarySkillSource.open(tmp_path / "lib2", embedder="hashing")
    other.add_trajectories([episode("c", ["c"], True, "e3")], iteration=1)
    other.load_state_dict(state)
    assert other.state_dict() == state
    assert other.skill_for("a")[0] == newest and other.skill_for("c") is None


def test_delayed_credit_is_the_change_of_the_next_visit():
    src = StaticSkillSource({"a": "hint"})
    credit = SkillCredit(src, delayed=True)
    assert credit.settle("a", 0.25) is None               # nothing used yet
    credit.used("a", "skill-a", 0.25)
    assert src.counts == {}                                # not credited with its own visit
    assert credit.settle("a", 0.75) == 0.5 and src.counts["skill-a"] == [1, 0.5]
    assert credit.settle("a", 1.0) is None                 # settled once
    credit.used("a", "skill-a", 1.0)
    clone = SkillCredit(src)
    clone.load_state_dict(credit.state_dict())
    assert clone.open == credit.open

    now = SkillCredit(src, delayed=False)                  # a skill in the student's prompt: its own rollouts
    now.used("a", "skill-a", 1.0)
    assert src.counts["skill-a"] == [2, 1.5]


def test_summaries_carry_the_routing_text_of_their_episodes(tmp_path):
    src = LibrarySkillSource.open(tmp_path / "lib", embedder="hashing", background=False)
    routed = episode("a", ["a"], True, "r1")
    routed.metadata["routing_query"] = "wall r0c0 target r2c3 box r3c2"
    src.add_trajectories([routed, episode("b", ["q"], False, "r2")], iteration=1)
    by_task = {s.source_tasks[0]: s for s in src.library}
    assert by_task["a"].routing_text == "wall r0c0 target r2c3 box r3c2"
    assert by_task["b"].routing_text == ""                 # no routing query recorded: left empty
