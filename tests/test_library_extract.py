"""Planning/functional/atomic extraction, ADD/MODIFY/KEEP against a library, duplicate merging."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from skillkit.core.llm.base import Completion, LLMBackend, SamplingParams, normalize_request, request_schema
from skillkit.core.schemas import (
    AtomicSkill,
    FunctionalSkill,
    PlanningSkill,
    Trajectory,
    TrajectorySkill,
    validate_skill_name,
)
from skillkit.skills.extract import (
    Extractor,
    LLMMerger,
    apply_candidates,
    atomic_from_batch,
    find_duplicate_clusters,
    functional_from_batch,
    merge_duplicates,
    merge_skills,
    planning_from_group,
    tier_schema,
)
from skillkit.skills.library import SkillLibrary


@pytest.fixture(scope="module")
def real_trajectories() -> list[Trajectory]:
    """Expert and random Sokoban episodes, expert and failing app episodes, from the real environments."""
    from environments.apps.env import AppsEnv
    from environments.apps.tasks import task_ids
    from environments.base import run_episode
    from environments.sokoban import SokobanEnv

    out = []
    env = SokobanEnv(max_steps=15)
    rng = random.Random(0)
    for tid in env.task_ids("train")[:5]:
        plan = iter(env.oracle().expert_actions(tid))
        out.append(run_episode(env, lambda o, p=plan: next(p, "Up"), tid, episode_id=f"{tid}-expert"))
        out.append(run_episode(env, lambda o: rng.choice(["Up", "Down", "Left", "Right", "hop"]), tid,
                               episode_id=f"{tid}-random"))
    apps = AppsEnv()
    done = "```python\napis.supervisor.complete_task()\n```"
    try:
        for tid in task_ids("train")[:3]:
            acts = iter(apps.oracle().expert_actions(tid))
            out.append(run_episode(apps, lambda o, a=acts: next(a, done), tid, episode_id=f"{tid}-expert"))
            bad = iter(["```python\napis.phone.search_contacts(query='x')\n```", done])
            out.append(run_episode(apps, lambda o, b=bad: next(b), tid, episode_id=f"{tid}-bad"))
    finally:
        apps.close()
    return out


def test_heuristic_extraction_on_real_episodes(real_trajectories: list[Trajectory]) -> None:
    skills = Extractor().extract(real_trajectories)
    by_tier: dict[str, list] = {}
    for s in skills:
        validate_skill_name(s.name)
        assert s.description and s.body_text()
        by_tier.setdefault(s.tier, []).append(s)
    assert set(by_tier) == {"planning", "functional", "atomic"}
    for tier, items in by_tier.items():
        assert len({s.name for s in items}) == len(items), tier
    solved = {t.task_id for t in real_trajectories if t.success}
    assert {s.source_tasks[0] for s in by_tier["planning"]} == solved
    sok_plan = next(s for s in by_tier["planning"] if s.env == "sokoban")
    assert all(";" in step for step in sok_plan.plan) and "solved" in sok_plan.plan[-1]
    app_plan = next(s for s in by_tier["planning"] if s.env == "apps")
    assert any("phone.send_text_message" in step for step in app_plan.plan)
    assert all(s.metadata["support"] >= 2 and len(s.tools) >= 1 for s in by_tier["functional"])
    search = next(s for s in by_tier["atomic"] if s.action == "phone.search_contacts")
    assert any("access_token" in p for p in search.pitfalls)  # the failing episode called it without a token
    send = next(s for s in by_tier["atomic"] if s.action == "phone.send_text_message")
    assert any("access_token" in c for c in send.constraints) and send.examples
    move = next(s for s in by_tier["atomic"] if s.env == "sokoban")
    assert move.name.startswith("move-") and move.usage


def test_deterministic_pieces_by_hand() -> None:
    def ep(task: str, moves: list[str], success: bool = True) -> Trajectory:
        from skillkit.core.schemas import Turn

        turns = [Turn(action=m, observation="", reward=-0.1, info={"actions": [m]}) for m in moves]
        if success:
            turns[-1].reward, turns[-1].info["solved"] = 10.9, True
        return Trajectory(id=f"{task}-{len(moves)}", env="sokoban", task_id=task, turns=turns, success=success)

    trajs = [ep("a", ["Up", "Up", "Left", "Down"]), ep("b", ["Right", "Up", "Up", "Left"]), ep("c", ["Down"], False)]
    assert planning_from_group([trajs[2]]) is None
    plan = planning_from_group([trajs[0]])
    assert plan.plan == ["the last box reaches its target: solved; Up x2, Left, Down"]
    funcs = functional_from_batch(trajs, min_support=2)
    assert [f.tools for f in funcs] == [["Up", "Left"]]  # "Up Up Left" is in both; longest kept
    assert funcs[0].name == "moves-up-up-left" and funcs[0].source_tasks == ["a", "b"]
    atoms = {a.action: a for a in atomic_from_batch(trajs)}
    assert set(atoms) == {"Up", "Left", "Down", "Right"} and atoms["Up"].metadata["uses"] == 4


class Scripted(LLMBackend):
    """Answers each chat (as message dicts) with ``fn``; records the JSON schema each was held to."""

    name = "scripted"

    def __init__(self, fn) -> None:
        self.fn = fn
        self.calls = 0
        self.schemas: list = []

    def generate(self, requests, sampling=None):
        self.calls += 1
        self.schemas += [request_schema(r, sampling or SamplingParams()) for r in requests]
        return [Completion(text=self.fn([m.model_dump() for m in normalize_request(r)])) for r in requests]


def test_llm_extraction_parses_repairs_and_falls_back(real_trajectories: list[Trajectory]) -> None:
    sokoban = [t for t in real_trajectories if t.env == "sokoban"]

    def answer(messages) -> str:
        system = messages[0]["content"]
        if "plan" in system and "routines" not in system and "For each action" not in system:
            return "```json\n{'description': 'Solve it', 'steps': ['push box right; Right', 'finish; Up',],}\n```"
        if "routines" in system:
            return '{"skills": [{"name": "Box Shuffle", "description": "push then step back", "steps": "1. Right\\n2. Left"}]}'
        return "I do not know."

    backend = Scripted(answer)
    ex = Extractor(backend, max_retries=1)
    skills = ex.extract(sokoban)
    plans = [s for s in skills if s.tier == "planning"]
    assert plans and all(p.plan == ["push box right; Right", "finish; Up"] for p in plans)
    assert all(p.metadata["extractor"] == "llm" for p in plans)
    funcs = [s for s in skills if s.tier == "functional"]
    assert funcs and funcs[0].name == "box-shuffle" and "1. Right" in funcs[0].body
    atoms = [s for s in skills if s.tier == "atomic"]
    assert atoms and all(a.metadata["extractor"] == "heuristic" for a in atoms)  # fallback
    groups = len({t.task_id for t in sokoban})
    assert ex.stats.fallback == groups and ex.stats.retried == groups and ex.stats.repaired >= 1
    with pytest.raises(ValueError, match="unknown extraction tier"):
        ex.extract(sokoban, tiers=["galaxy"])
    # every answer was held to its tier's schema; constrained=False sends none
    assert {tuple(s["required"]) for s in backend.schemas} == {("description", "plan"), ("skills",)}
    assert all(s == tier_schema("planning", ex.max_new_tokens) for s in backend.schemas if "plan" in s["required"])
    free = Scripted(answer)
    Extractor(free, max_retries=0, constrained=False).extract(sokoban, tiers=["planning"])
    assert free.schemas and set(map(type, free.schemas)) == {type(None)}


def test_tier_schemas_ask_for_what_the_validator_reads() -> None:
    routines = tier_schema("functional", 256)
    item = routines["$defs"]["RoutineAnswer"]
    assert routines["required"] == ["skills"] and item["required"] == ["name", "description", "steps", "tools"]
    assert item["properties"]["tools"]["minItems"] == 1 and routines["properties"]["skills"]["maxItems"] == 2
    atomic = tier_schema("atomic", 256)["$defs"]["ActionAnswer"]
    assert atomic["required"] == ["action", "description", "usage", "constraints", "pitfalls"]
    assert all(p.get("maxLength", 0) >= 16 for p in atomic["properties"].values() if p["type"] == "string")


PHONE_LOGIN = AtomicSkill(
    name="phone-login", description="How to log in to the phone app", action="phone.login",
    usage="Call apis.phone.login(username=..., password=...) to get an access token.",
    pitfalls=["wrong password raises 401"], source_tasks=["t1"], n_selected=2, reward_sum=1.0)
NEAR_DUP = AtomicSkill(
    name="phone-login-api", description="How to log into the phone app", action="phone.login",
    usage="Call apis.phone.login(username=..., password=...) to obtain an access token.",
    pitfalls=["a wrong password raises 401", "username must be the phone number"], source_tasks=["t2"])
WALLET = AtomicSkill(
    name="wallet-send-money", description="How to send money with the wallet app", action="wallet.send_money",
    usage="Call apis.wallet.send_money(access_token=..., receiver=..., amount=...).", source_tasks=["t3"])
ROUTINE = FunctionalSkill(name="login-search", description="Log in then search contacts",
                          body="1. login\n2. search", tools=["phone.login", "phone.search_contacts"])


def test_add_modify_keep_with_minilm(tmp_path: Path) -> None:
    lib = SkillLibrary.create(tmp_path / "lib", embedder="minilm")
    lib.add(PHONE_LOGIN.model_copy(deep=True))
    lib.save()
    same = PHONE_LOGIN.model_copy(update={"id": "other", "source_tasks": ["t9"], "n_selected": 0})
    decisions = apply_candidates(lib, [same, NEAR_DUP, WALLET, ROUTINE], threshold=0.85)
    ops = [(d.op, d.skill.name) for d in decisions]
    assert ops == [("KEEP", "phone-login"), ("MODIFY", "phone-login"), ("ADD", "wallet-send-money"),
                   ("ADD", "login-search")]
    assert decisions[1].similarity is not None and decisions[1].similarity >= 0.85
    login = lib.get("phone-login")
    assert login.version == 2 and len(lib) == 3
    assert "username must be the phone number" in login.pitfalls
    assert set(login.source_tasks) == {"t1", "t9", "t2"}
    assert login.n_selected == 2  # usage counters survive a modification
    lib.save()
    lib = SkillLibrary.load(tmp_path / "lib")
    assert [r["skill"]["version"] for r in lib.history("phone-login")] == [1]
    assert lib.rollback("phone-login").pitfalls == ["wrong password raises 401"]
    # applying the same candidates again changes nothing
    again = apply_candidates(lib, [NEAR_DUP], threshold=0.85)
    assert again[0].op == "MODIFY"  # after the rollback the pitfall is new again
    again = apply_candidates(lib, [NEAR_DUP], threshold=0.85)
    assert again[0].op == "KEEP"
    dry = apply_candidates(lib, [WALLET.model_copy(update={"name": "brand-new", "description": "Unrelated music"})],
                           dry_run=True)
    assert dry[0].op in ("ADD", "MODIFY") and "brand-new" not in lib


def test_task_tiers_match_by_task_only(tmp_path: Path) -> None:
    lib = SkillLibrary.create(tmp_path / "lib", embedder="hashing-128")
    p1 = PlanningSkill(name="plan-a", description="Plan for level a", task="a", plan=["x; Up", "y; Left", "z; Up"],
                       source_tasks=["a"])
    lib.add(p1)
    shorter = p1.model_copy(update={"id": "n1", "plan": ["x; Up", "z; Left"]})
    other_task = p1.model_copy(update={"id": "n2", "source_tasks": ["b"], "task": "b"})
    d = apply_candidates(lib, [shorter, other_task])
    assert [x.op for x in d] == ["MODIFY", "ADD"]
    assert lib.get("plan-a").plan == ["x; Up", "z; Left"] and d[1].skill.name == "plan-a-2"
    longer = p1.model_copy(update={"id": "n3", "plan": ["a", "b", "c", "d"]})
    assert apply_candidates(lib, [longer])[0].op == "KEEP"  # the shorter plan stays
    t1 = TrajectorySkill(name="a-summary", description="Lessons for a", task_id="a", success_analysis="old",
                         golden_workflow=["Up"], source_trajectory_ids=["e1"], source_tasks=["a"])
    lib.add(t1)
    newer = t1.model_copy(update={"id": "n4", "success_analysis": "new insight", "source_trajectory_ids": ["e2"]})
    d = apply_candidates(lib, [newer])
    assert d[0].op == "MODIFY"
    got = lib.get("a-summary")
    assert got.success_analysis == "new insight" and got.source_trajectory_ids == ["e1", "e2"]
    d = apply_candidates(lib, [newer.model_copy(update={"id": "n5", "source_trajectory_ids": ["e3"]})])
    assert d[0].op == "KEEP" and lib.get("a-summary").source_trajectory_ids == ["e1", "e2", "e3"]
    assert lib.get("a-summary").version == 2


def test_merge_duplicates_with_minilm(tmp_path: Path) -> None:
    lib = SkillLibrary.create(tmp_path / "lib", embedder="minilm")
    for s in (PHONE_LOGIN, NEAR_DUP, WALLET, ROUTINE):
        lib.add(s.model_copy(deep=True))
    lib.record_usage("phone-login-api", 1.0, task_id="t2", save=False)
    clusters = find_duplicate_clusters(lib, threshold=0.9)
    assert [sorted(s.name for s in c) for c in clusters] == [["phone-login", "phone-login-api"]]
    assert merge_duplicates(lib, threshold=0.9, dry_run=True)[0].removed == ["phone-login-api"]
    assert len(lib) == 4
    results = merge_duplicates(lib, threshold=0.9)
    assert [r.as_dict()["removed"] for r in results] == [["phone-login-api"]]
    kept = lib.get("phone-login")
    assert kept.version == 2 and kept.n_selected == 3 and kept.reward_sum == pytest.approx(2.0)
    assert kept.task_usage["t2"].n == 1 and "username must be the phone number" in kept.pitfalls
    assert kept.metadata["merged_from"] == ["phone-login-api"]
    lib.save()
    lib = SkillLibrary.load(tmp_path / "lib")
    assert len(lib) == 3 and find_duplicate_clusters(lib, threshold=0.9) == []
    assert lib.rollback("phone-login").version == 1
    assert lib.rollback("phone-login-api").name == "phone-login-api"  # removed skills come back too
    assert len(lib) == 4


def test_merge_skills_rules_and_llm_merger() -> None:
    with pytest.raises(ValueError, match="same tier"):
        merge_skills(PHONE_LOGIN, [ROUTINE])
    merged = merge_skills(ROUTINE, [ROUTINE.model_copy(update={"tools": ["phone.login", "phone.logout"]})])
    assert merged.tools == ["phone.login", "phone.search_contacts", "phone.logout"]

    good = Scripted(lambda r: json.dumps({"description": "Log in to the phone app (merged)",
                                          "usage": "login(username, password)", "pitfalls": ["401"]}))
    merger = LLMMerger(good)
    out = merger(PHONE_LOGIN, [NEAR_DUP])
    assert out.description.endswith("(merged)") and out.pitfalls == ["401"] and out.metadata["merger"] == "llm"
    bad = LLMMerger(Scripted(lambda r: "nope"))
    out = bad(PHONE_LOGIN, [NEAR_DUP])
    assert bad.stats["fallback"] == 1 and "username must be the phone number" in out.pitfalls
