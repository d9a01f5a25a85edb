"""Progressive disclosure: names and descriptions in the prompt, bodies and bundled files on request.

The model's text is the only scripted part (small models do not choose to read): a real library of
skill folders with bundled files written here, the real router, the real Sokoban environment, the
real tokenizer for the budget, and the real HTTP server on 127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

import environments
from environments.episodes import EpisodeStart, new_episode
from retriever.client import SkillRouterClient, SkillServerError
from retriever.router import Router
from retriever.server import create_app
from skillkit.agent import (
    BODY_HEADER,
    PROGRESSIVE_HEADER,
    AgentConfig,
    SkillAgent,
    SkillView,
    compose_skill_text,
    make_skill_node,
    parse_read_action,
)
from skillkit.core.llm.base import Completion, LLMBackend, SamplingParams
from skillkit.skills.bundle import SkillFiles, attach_folder
from skillkit.skills.impact import SKILL_READS, skill_impact
from skillkit.skills.library import SkillLibrary
from skillkit.skills.skillmd import import_collection

PNG = b"\x89PNG\r\n\x1a\n\x00\xff" + bytes(range(256))
CORNERS_BODY = " ".join(f"Rule {i}: a box pushed into a corner that is not a target is stuck for good." for i in range(30))
FOLDERS = {
    "push-box-up": (
        "---\nname: push-box-up\ndescription: Push a box upward onto a target in Sokoban.\nlicense: MIT\n---\n"
        "# Push a box up\n\nStand directly below the box, then move Up. The move names are in "
        "`references/moves.md`; `scripts/plan.py` plans a push.\n",
        {"references/moves.md": (b"# Moves\n\nUp, Down, Left, Right. MOVES-MARKER\n", 0o644),
         "scripts/plan.py": (b"print('Up')\n", 0o755),
         "assets/box.png": (PNG, 0o644)}),
    "avoid-corners": (
        f"---\nname: avoid-corners\ndescription: Never push a Sokoban box into a corner.\n---\n{CORNERS_BODY}\n", {}),
}
TOKEN = "disclose-token"


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    """A library imported from skill folders written here (one bundles a reference, a script, a PNG)."""
    root = tmp_path_factory.mktemp("collection")
    for name, (skill_md, files) in FOLDERS.items():
        (root / name).mkdir()
        (root / name / "SKILL.md").write_text(skill_md, encoding="utf-8")
        for rel, (data, mode) in files.items():
            path = root / name / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            path.chmod(mode)
    lib = SkillLibrary.create(tmp_path_factory.mktemp("lib") / "lib", embedder="hashing-64")
    for item in import_collection(root).skills:
        lib.add(attach_folder(item.skill, item.folder, lib.file_store()))
    lib.save()
    return lib


@pytest.fixture(scope="module")
def router(library):
    return Router.from_library(library, reranker=None)


class ScriptedModel(LLMBackend):
    """A backend whose text comes from ``answer(chat)``; the tokenizer (for the budget) is the real one.

    It records every chat it was asked to continue and how many batched calls it got.
    """

    name = "scripted"

    def __init__(self, tokenizer, answer: Callable[[list[dict[str, str]]], str]) -> None:
        self.tokenizer = tokenizer
        self.answer = answer
        self.chats: list[list[dict[str, str]]] = []
        self.calls = 0

    def generate(self, requests, sampling: SamplingParams | None = None) -> list[Completion]:
        self.calls += 1
        self.chats.extend(requests)
        return [Completion(text=self.answer(chat)) for chat in requests]


def _prompt(chat: list[dict[str, str]]) -> str:
    return "\n".join(m["content"] for m in chat)


def reads_body_then_file(chat: list[dict[str, str]]) -> str:
    """Asks for the body, then for the file the body names, then acts."""
    text = _prompt(chat)
    if 'read_skill("push-box-up"):' not in text:
        return 'read_skill("push-box-up")'
    if 'read_skill_file("push-box-up", "references/moves.md"):' not in text:
        return 'read_skill_file("push-box-up", "references/moves.md")'
    return "Up"


def _config(**kw) -> AgentConfig:
    return AgentConfig(**{"disclosure": "progressive", "max_skills": 2, "max_new_tokens": 8, **kw})


def _sokoban(n: int, steps: int):
    return [environments.make("sokoban", variant="1box", max_steps=steps) for _ in range(n)]


def test_read_actions_parse():
    assert parse_read_action('read_skill("push-box-up")') == ("push-box-up", None)
    assert parse_read_action("  read_skill('a-b') and more") == ("a-b", None)
    assert parse_read_action('read_skill_file("x", "scripts/run.py")') == ("x", "scripts/run.py")
    assert parse_read_action("read_skill_file(x, references/a.md)") == ("x", "references/a.md")
    for text in ("Up", "read_skill()", "I will read_skill(x)", 'read_skill("x\')'):
        assert parse_read_action(text) is None


def test_episode_reads_body_and_file_without_spending_steps(tiny_lm, library, router):
    model = ScriptedModel(tiny_lm[1], reads_body_then_file)
    agent = SkillAgent(model, router, _config(), files=SkillFiles.of(library))
    envs = _sokoban(2, steps=3)
    trajectories = agent.run(envs, envs[0].task_ids("test")[:2])
    # turn 0: body, file, action (3 batched calls for both episodes); later turns act at once
    assert model.calls == 2 + len(trajectories[0].turns)
    for t in trajectories:
        assert [turn.action for turn in t.turns] == ["Up"] * len(t.turns)
        assert [turn.info["steps"] for turn in t.turns] == list(range(1, len(t.turns) + 1))
        assert len(t.turns) == 3 or t.success
        reads = t.turns[0].info[SKILL_READS]
        assert [(r["skill"], r["path"], r["found"], r["truncated"]) for r in reads] == [
            ("push-box-up", None, True, False), ("push-box-up", "references/moves.md", True, False)]
        assert all(r["tokens"] > 0 for r in reads)
        assert all(SKILL_READS not in turn.info for turn in t.turns[1:])
        assert t.metadata["skills_read"] == ["push-box-up"] and t.metadata["disclosure"] == "progressive"
        assert set(t.turns[0].skills_shown) == {"push-box-up", "avoid-corners"}
    first, after_body, acting = model.chats[0], model.chats[2], model.chats[4]
    assert PROGRESSIVE_HEADER in _prompt(first)
    assert "Push a box upward onto a target" in _prompt(first) and "Stand directly below" not in _prompt(first)
    assert "Stand directly below" in _prompt(after_body) and "MOVES-MARKER" not in _prompt(after_body)
    assert "Bundled files: assets/box.png, references/moves.md, scripts/plan.py" in _prompt(after_body)
    assert "Stand directly below" in _prompt(acting) and "MOVES-MARKER" in _prompt(acting)
    assert "MOVES-MARKER" in _prompt(model.chats[-1])  # what was read stays shown on later turns
    impact = {i.name: i.episodes_read for i in skill_impact(trajectories)}
    assert impact == {"push-box-up": 2, "avoid-corners": 0}


def test_reads_are_bounded_then_reach_the_environment(tiny_lm, library, router):
    model = ScriptedModel(tiny_lm[1], lambda chat: 'read_skill("push-box-up")')
    agent = SkillAgent(model, router, _config(max_reads_per_turn=2, max_reads_per_episode=3))
    envs = _sokoban(1, steps=3)
    (t,) = agent.run(envs, envs[0].task_ids("test")[:1])
    assert [turn.action for turn in t.turns] == ['read_skill("push-box-up")'] * 3
    assert [turn.info["steps"] for turn in t.turns] == [1, 2, 3]
    assert [len(turn.info.get(SKILL_READS, [])) for turn in t.turns] == [2, 1, 0]
    assert t.metadata["skills_read"] == ["push-box-up"]


def _episode(agent: SkillAgent) -> tuple:
    start = EpisodeStart("#P X O#", "You play Sokoban.", "push the box onto the target", max_steps=5)
    episode = new_episode(0, "", start, "test")
    view = SkillView()
    episode.skill_names, view.block, episode.skill_text = agent.route(episode, "")
    return episode, view


def _scripted(tokenizer, answers: list[str]) -> ScriptedModel:
    queue = list(answers)
    return ScriptedModel(tokenizer, lambda chat: queue.pop(0))


def test_budget_cuts_a_body_and_later_reads_displace_earlier_ones(tiny_lm, library, router):
    tokenizer = tiny_lm[1]
    count = lambda text: len(tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    model = _scripted(tokenizer, ['read_skill("avoid-corners")', 'read_skill("avoid-corners")', "Up",
                                  'read_skill_file("push-box-up", "references/moves.md")', "Left"])
    agent = SkillAgent(model, router, _config(max_skill_tokens=90, max_reads_per_turn=3),
                       files=SkillFiles.of(library))
    episode, view = _episode(agent)
    assert agent.act([episode], [view]) == ["Up"]
    body, again = view.reads
    assert body.found and body.truncated and body.tokens > 0 and body.text.endswith(" ...")
    assert body.text.startswith('read_skill("avoid-corners"):') and "Rule 1:" in body.text
    assert "Rule 29:" not in body.text and count(compose_skill_text(view.block, view.reads)) <= 90
    assert body.shown and again.found and "Rule 1:" not in again.text  # a repeated read displaces nothing
    assert episode.skill_text == view.text() and "Rule 1:" in episode.skill_text
    assert agent.act([episode], [view]) == ["Left"]
    body, _, file = view.reads
    assert not body.shown and file.shown and not file.truncated and "MOVES-MARKER" in file.text
    assert "Rule 1:" not in episode.skill_text and "MOVES-MARKER" in episode.skill_text
    assert count(compose_skill_text(view.block, view.reads)) <= 90


def test_unknown_skills_missing_and_binary_files(tiny_lm, library, router):
    model = _scripted(tiny_lm[1], ['read_skill("no-such-skill")', 'read_skill_file("push-box-up", "../skills.json")',
                                   "Up", 'read_skill_file("push-box-up", "assets/box.png")', "Down"])
    agent = SkillAgent(model, router, _config(max_reads_per_turn=3), files=SkillFiles.of(library))
    episode, view = _episode(agent)
    assert agent.act([episode], [view]) == ["Up"]
    unknown, missing = view.reads
    assert not unknown.found and "no skill of that name is listed" in unknown.text
    assert not missing.found and "bundles no file '../skills.json'" in missing.text
    assert agent.act([episode], [view]) == ["Down"]
    assert view.reads[-1].found and f"a binary file of {len(PNG)} bytes" in view.reads[-1].text
    without_files = SkillAgent(_scripted(tiny_lm[1], ['read_skill_file("push-box-up", "scripts/plan.py")', "Up"]),
                               router, _config())
    episode, view = _episode(without_files)
    without_files.act([episode], [view])
    assert not view.reads[0].found


def test_whole_bodies_stay_the_default(tiny_lm, router):
    assert AgentConfig().disclosure == "body"
    model = ScriptedModel(tiny_lm[1], lambda chat: 'read_skill("push-box-up")')
    agent = SkillAgent(model, router, AgentConfig(max_skills=2, max_new_tokens=8))
    envs = _sokoban(1, steps=2)
    (t,) = agent.run(envs, envs[0].task_ids("test")[:1])
    assert [turn.action for turn in t.turns] == ['read_skill("push-box-up")'] * 2  # not intercepted
    assert model.calls == 2 and all(SKILL_READS not in turn.info for turn in t.turns)
    assert "skills_read" not in t.metadata
    prompt = _prompt(model.chats[0])
    assert BODY_HEADER in prompt and "Stand directly below" in prompt and "read_skill(" not in prompt


def test_node_answers_reads(tiny_lm, library, router):
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    class State(TypedDict, total=False):
        task: str
        observation: str
        action: str
        skills_shown: list[str]
        skill_reads: list[dict]

    model = ScriptedModel(tiny_lm[1], reads_body_then_file)
    agent = SkillAgent(model, router, _config(), files=SkillFiles.of(library))
    graph = StateGraph(State)
    graph.add_node("skills", make_skill_node(agent, "You play Sokoban."))
    graph.add_edge(START, "skills")
    graph.add_edge("skills", END)
    out = graph.compile().invoke({"task": "push the box onto the target", "observation": "#P X O#"})
    assert out["action"] == "Up" and [r["path"] for r in out["skill_reads"]] == [None, "references/moves.md"]


def test_server_serves_bodies_and_bundled_files(library, router, serve_app):
    files = SkillFiles.of(Path(library.path))  # what `skillkit serve` builds from the library folder
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with serve_app(create_app(router, token=TOKEN, files=files)) as url:
        assert httpx.get(f"{url}/skills/push-box-up/files/references/moves.md").status_code == 401
        skill = httpx.get(f"{url}/skills/push-box-up", headers=auth).json()
        assert "Stand directly below" in skill["body"]
        assert [(f["path"], f["executable"]) for f in skill["files"]] == [
            ("assets/box.png", False), ("references/moves.md", False), ("scripts/plan.py", True)]
        assert httpx.get(f"{url}/skills/avoid-corners/files", headers=auth).json() == {"name": "avoid-corners",
                                                                                       "files": []}
        moves = httpx.get(f"{url}/skills/push-box-up/files/references/moves.md", headers=auth)
        assert moves.status_code == 200 and moves.content == FOLDERS["push-box-up"][1]["references/moves.md"][0]
        assert moves.headers["content-type"].startswith("text/markdown")
        png = httpx.get(f"{url}/skills/push-box-up/files/assets/box.png", headers=auth)
        assert png.content == PNG and png.headers["content-type"] == "image/png"
        for bad in ("scripts/missing.py", "SKILL.md", "../../skills.json", "%2e%2e/%2e%2e/manifest.json"):
            assert httpx.get(f"{url}/skills/push-box-up/files/{bad}", headers=auth).status_code == 404, bad
        assert httpx.get(f"{url}/skills/nope/files/a.md", headers=auth).status_code == 404
        with SkillRouterClient(url, token=TOKEN) as client:
            assert [f["path"] for f in client.skill_files("push-box-up")][-1] == "scripts/plan.py"
            assert client.skill_file("push-box-up", "scripts/plan.py") == b"print('Up')\n"
            with pytest.raises(SkillServerError) as err:
                client.skill_file("push-box-up", "nope.txt")
            assert err.value.status == 404
    with serve_app(create_app(router, token=TOKEN)) as url:  # no file source: bodies only
        assert httpx.get(f"{url}/skills/push-box-up", headers=auth).json()["files"] == []
        assert httpx.get(f"{url}/skills/push-box-up/files/scripts/plan.py", headers=auth).status_code == 404
