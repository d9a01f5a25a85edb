"""UCB selection math and persistence; SKILL.md export/import round trip."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from skillkit.core.schemas import AtomicSkill, FunctionalSkill, PlanningSkill, TrajectorySkill
from skillkit.skills.library import SkillLibrary
from skillkit.skills.selection import UCBSelector, ucb_score
from skillkit.skills.skillmd import (
    export_skills,
    find_skill_files,
    from_skill_md,
    import_collection,
    split_front_matter,
    to_skill_md,
)

EMB = "hashing-64"


def _bank() -> list:
    return [AtomicSkill(name=f"s{i}", description=f"skill {i}", source_tasks=["t"]) for i in range(3)]


def test_ucb_score_formula() -> None:
    assert ucb_score(0.5, 0, 10, 1.0) == math.inf
    assert ucb_score(0.5, 4, 10, 2.0) == pytest.approx(0.5 + 2.0 * math.sqrt(math.log(10) / 4))
    assert ucb_score(0.2, 1, 1, 1.0) == pytest.approx(0.2)  # ln 1 = 0


def test_unvisited_first_then_ucb_in_memory() -> None:
    skills = _bank()
    sel = UCBSelector(c=1.0)
    order = []
    for reward in (1.0, 0.0, 0.5):
        chosen = sel.select("t", skills)
        order.append(chosen.name)
        sel.update("t", chosen, reward)
    assert order == ["s0", "s1", "s2"]  # every skill once, in bank order
    # all tried once: N=3, bonus equal, so the best mean wins
    assert sel.select("t", skills).name == "s0"
    scores = sel.scores("t", skills)
    bonus = math.sqrt(math.log(3) / 1)
    assert scores == pytest.approx([1.0 + bonus, 0.0 + bonus, 0.5 + bonus])
    # another task has its own counters
    assert sel.select("other", skills).name == "s0" and sel.scores("other", skills) == [math.inf] * 3
    assert skills[0].n_selected == 1 and skills[0].reward_sum == 1.0


def test_exploration_beats_a_slightly_better_mean() -> None:
    skills = _bank()[:2]
    sel = UCBSelector(c=2.0)
    for _ in range(20):
        sel.update("t", skills[0], 0.6)
    sel.update("t", skills[1], 0.5)
    # s1: 0.5 + 2*sqrt(ln 21 / 1) >> s0: 0.6 + 2*sqrt(ln 21 / 20)
    assert sel.select("t", skills).name == "s1"
    assert UCBSelector(c=0.0).select("t", skills).name == "s0"  # c = 0 is greedy
    with pytest.raises(ValueError):
        UCBSelector(c=-1)
    with pytest.raises(ValueError, match="no candidate"):
        sel.select("t", [])


def test_counters_persist_in_the_library(tmp_path: Path) -> None:
    lib = SkillLibrary.create(tmp_path / "lib", embedder=EMB)
    for s in _bank():
        lib.add(s)
    lib.add(TrajectorySkill(name="t-summary", description="summary of t", source_tasks=["t"], task_id="t"))
    lib.save()
    sel = UCBSelector(lib, c=0.5)
    bank = [s for s in lib.list() if "t" in s.source_tasks][:3]  # callers pass their own candidates
    for _ in range(5):
        chosen = sel.select("t", [s.name for s in bank])
        sel.update("t", chosen.name, 1.0 if chosen.name == "s0" else 0.0)
    again = SkillLibrary.load(tmp_path / "lib")
    sel2 = UCBSelector(again, c=0.5)
    assert sel2.scores("t", [s.name for s in bank]) == pytest.approx(sel.scores("t", [s.name for s in bank]))
    assert sum(again.get(s.name).task_usage["t"].n for s in bank) == 5
    with pytest.raises(ValueError):
        UCBSelector().select("t", ["s0"])


def _examples() -> list:
    return [
        TrajectorySkill(name="lvl-1-summary", description="Lessons: level 1", task_id="lvl-1", env="sokoban",
                        success_analysis="Pushed right twice.\nThen up.", mistake_analysis="Walked into walls.",
                        golden_workflow=["push box; Right x2", "finish\nwith care; Up"],
                        source_trajectory_ids=["e1", "e2"], reward_stats={"n": 2.0, "success_rate": 0.5},
                        tags=["sokoban", "trajectory"], source_tasks=["lvl-1"], n_selected=3, reward_sum=1.25,
                        extraction_round=2, version=4, metadata={"summarizer": "heuristic", "k": [1, 2]}),
        TrajectorySkill(name="text-flow", description="workflow as text", golden_workflow="do a, then b"),
        PlanningSkill(name="plan-lvl-1", description="Plan: level 1", task="Push both boxes",
                      plan=["box A onto target; Right, Right", "box B; Up"], embedding_model="minilm"),
        FunctionalSkill(name="login-search", description="Log in then search: a routine.",
                        body="## Steps\n1. login\n2. search\n\nUse page_limit 20.",
                        tools=["phone.login", "phone.search_contacts"], env="apps"),
        AtomicSkill(name="phone-login", description="phone.login: usage and pitfalls", action="phone.login",
                    usage="Call with username and password.", constraints=["username is the phone number"],
                    pitfalls=["401 when the password is wrong", "token\nexpires"], examples=["apis.phone.login(u, p)"]),
        AtomicSkill(name="bare", description="Only a description: no body at all."),
    ]


def test_skill_md_round_trip_is_lossless(tmp_path: Path) -> None:
    skills = _examples()
    for skill in skills:
        text = to_skill_md(skill)
        front, body = split_front_matter(text)
        assert front["name"] == skill.name and front["description"] == skill.description
        assert all(isinstance(v, str) for v in front["metadata"].values())  # Agent Skills: string map
        back = from_skill_md(text)
        assert back.model_dump() == skill.model_dump(), skill.name
    files = export_skills(skills, tmp_path / "out")
    assert [f.parent.name for f in files] == [s.name for s in skills]
    assert len(find_skill_files(tmp_path / "out")) == len(skills)
    found = import_collection(tmp_path / "out", strict=True)
    imported = {s.skill.name: s.skill for s in found.skills}
    for skill in skills:
        assert imported[skill.name].model_dump() == skill.model_dump()
    assert import_collection(tmp_path / "out" / "phone-login").skills[0].skill.action == "phone.login"


def test_library_export_import_round_trip(tmp_path: Path) -> None:
    lib = SkillLibrary.create(tmp_path / "lib", embedder=EMB)
    for s in _examples():
        lib.add(s)
    lib.save()
    export_skills(lib, tmp_path / "md")
    new = SkillLibrary.create(tmp_path / "lib2", embedder=EMB)
    for found in import_collection(tmp_path / "md", strict=True).skills:
        new.add(found.skill)
    new.save()
    assert {s.name: s.model_dump() for s in SkillLibrary.load(tmp_path / "lib2")} == {
        s.name: s.model_dump() for s in lib}


def test_foreign_skill_md(tmp_path: Path) -> None:
    text = ("---\nname: pdf-processing\ndescription: Extract text from PDFs.\nlicense: Apache-2.0\n"
            "allowed-tools: Bash Read\nmetadata:\n  author: someone\n---\n# PDF\n\nUse pdftotext.\n")
    skill = from_skill_md(text)
    assert skill.tier == "functional" and skill.tools == ["Bash", "Read"]
    assert skill.body.startswith("# PDF") and skill.metadata["skill_md"]["license"] == "Apache-2.0"
    again = to_skill_md(skill)
    front, _ = split_front_matter(again)
    assert front["license"] == "Apache-2.0" and front["metadata"]["author"] == "someone"
    with pytest.warns(UserWarning, match="imported as 'my-skill'"):
        assert from_skill_md("---\nname: My Skill\ndescription: d\n---\nbody").name == "my-skill"
    with pytest.raises(ValueError, match="front matter"):
        from_skill_md("no front matter")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "SKILL.md").write_text("---\nname: x\ndescription: ''\nmetadata:\n  skillkit-tier: atomic\n---\n")
    with pytest.raises(ValueError, match="(?s)bad/SKILL.md.*description"):
        import_collection(tmp_path, strict=True)
