"""``skillkit library`` commands end to end: build, show, stats, search, export, import, merge, rollback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skillkit.cli.main import app
from skillkit.core.schemas import write_jsonl
from skillkit.skills.library import SkillLibrary

runner = CliRunner()


@pytest.fixture(scope="module")
def traj_file(tmp_path_factory) -> Path:
    from environments.apps.env import AppsEnv
    from environments.apps.tasks import task_ids
    from environments.base import run_episode
    from environments.sokoban import SokobanEnv

    out = []
    env = SokobanEnv(max_steps=12)
    for tid in env.task_ids("train")[:3]:
        plan = iter(env.oracle().expert_actions(tid))
        out.append(run_episode(env, lambda o, p=plan: next(p, "Up"), tid, episode_id=f"{tid}-expert"))
        out.append(run_episode(env, lambda o: "Left", tid, episode_id=f"{tid}-left"))
    apps = AppsEnv()
    done = "```python\napis.supervisor.complete_task()\n```"
    try:
        for tid in task_ids("train")[:2]:
            acts = iter(apps.oracle().expert_actions(tid))
            out.append(run_episode(apps, lambda o, a=acts: next(a, done), tid, episode_id=f"{tid}-expert"))
    finally:
        apps.close()
    path = tmp_path_factory.mktemp("trajs") / "trajs.jsonl"
    write_jsonl(path, out)
    return path


def _ok(args: list[str]):
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    return result


def test_build_inspect_export_import(traj_file: Path, tmp_path: Path) -> None:
    lib = tmp_path / "lib"
    res = _ok(["library", "build", "--trajectories", str(traj_file), "--out", str(lib), "--summarizer", "heuristic",
               "--embedder", "hashing", "--json"])
    report = json.loads(res.output)
    assert report["episodes"] == 8 and report["tasks"] == 5 and report["summarizer_stats"]["fallback"] == 5
    assert report["counts"]["trajectory"]["ADD"] == 5 and report["counts"]["planning"]["ADD"] == 5
    loaded = SkillLibrary.load(lib)
    assert {s.tier for s in loaded} == {"trajectory", "planning", "functional", "atomic"}

    # a second round over the same episodes changes nothing
    res = _ok(["library", "build", "-t", str(traj_file), "-o", str(lib), "--json"])
    again = json.loads(res.output)
    assert again["round"] == 2 and again["size"] == report["size"]
    assert all(row["ADD"] == 0 and row["MODIFY"] == 0 for row in again["counts"].values())

    assert "trajectory" in _ok(["library", "show", str(lib)]).output
    shown = json.loads(_ok(["library", "show", str(lib), "--tier", "atomic", "--json"]).output)
    assert shown and all(s["tier"] == "atomic" for s in shown)
    name = shown[0]["name"]
    assert name in _ok(["library", "show", str(lib), "--name", name]).output
    assert "phone" in _ok(["library", "search", str(lib), "send a text message with the phone app", "-k", "3"]).output
    stats = json.loads(_ok(["library", "stats", str(lib), "--json"]).output)
    assert stats["count"] == report["size"] and stats["embedding_model"] == "hashing"
    assert "skills" in _ok(["library", "stats", str(lib)]).output
    assert "embedded 0 skill(s)" in _ok(["library", "reindex", str(lib)]).output
    assert f"embedded {report['size']} skill(s)" in _ok(["library", "reindex", str(lib), "--full"]).output

    md = tmp_path / "md"
    _ok(["library", "export", str(lib), "--out", str(md)])
    assert len(list(md.glob("*/SKILL.md"))) == report["size"]
    lib2 = tmp_path / "lib2"
    _ok(["library", "import", str(md), "--out", str(lib2), "--embedder", "hashing"])
    a = {s.name: s.model_dump() for s in SkillLibrary.load(lib)}
    b = {s.name: s.model_dump() for s in SkillLibrary.load(lib2)}
    assert a == b
    res = _ok(["library", "import", str(md), "--out", str(lib2), "--on-conflict", "rename"])
    assert len(SkillLibrary.load(lib2)) == 2 * len(a)

    res = _ok(["library", "merge", str(lib2), "--threshold", "0.8"])
    assert "merged" in res.output
    assert len(SkillLibrary.load(lib2)) == len(a)  # every renamed copy folded back into its original
    merged = next(s for s in SkillLibrary.load(lib2) if s.version == 2)
    assert "history" in _ok(["library", "history", str(lib2), "--name", merged.name]).output
    _ok(["library", "rollback", str(lib2), "--name", merged.name])
    assert SkillLibrary.load(lib2).get(merged.name).version == 1


def _flat(text: str) -> str:
    return " ".join(text.split())


def test_errors_are_one_clear_line(tmp_path: Path, traj_file: Path) -> None:
    res = runner.invoke(app, ["library", "show", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "not a skill library" in _flat(res.output)
    res = runner.invoke(app, ["library", "build", "-t", str(traj_file), "-o", str(tmp_path / "x"), "--summarizer", "gpt"])
    assert res.exit_code == 2 and "--summarizer must be" in _flat(res.output)
    res = runner.invoke(app, ["library", "build", "-t", str(traj_file), "-o", str(tmp_path / "x"), "--tiers", "bogus"])
    assert res.exit_code == 2 and "unknown tier" in _flat(res.output)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1}\n')
    res = runner.invoke(app, ["library", "build", "-t", str(bad), "-o", str(tmp_path / "x")])
    assert res.exit_code == 2 and "bad.jsonl:1" in _flat(res.output).replace(" ", "")


def test_build_with_an_llm_summarizer_falls_back_cleanly(traj_file: Path, tmp_path: Path) -> None:
    res = _ok(["library", "build", "-t", str(traj_file), "-o", str(tmp_path / "lib"), "--summarizer", "llm",
               "--model", "tiny-random", "--device", "cpu", "--max-new-tokens", "8", "--max-retries", "0",
               "--embedder", "hashing", "--tiers", "trajectory,planning", "--json"])
    report = json.loads(res.output)
    stats = report["summarizer_stats"]
    assert stats["llm_ok"] + stats["fallback"] == 5  # a random model's output never crashes the build
    assert report["extractor"]["llm_ok"] + report["extractor"]["fallback"] >= 1
