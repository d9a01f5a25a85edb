"""`skillkit env` commands: list, sokoban generate/solve/play, apps tasks/run-task, appworld setup."""

from __future__ import annotations

import json
import sys

from typer.testing import CliRunner

from skillkit.cli.main import app

runner = CliRunner()


def test_env_list():
    result = runner.invoke(app, ["env", "list"])
    assert result.exit_code == 0 and "sokoban" in result.output and "apps" in result.output


def test_sokoban_generate_and_solve(tmp_path):
    out = tmp_path / "levels.jsonl"
    result = runner.invoke(app, ["env", "sokoban", "generate", "--n", "5", "--seed", "1", "--size", "6",
                                 "--boxes", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 5 and set(lines[0]) == {"id", "grid", "size", "boxes", "optimal_moves"}
    solved = runner.invoke(app, ["env", "sokoban", "solve", str(out)])
    assert solved.exit_code == 0 and "NO" not in solved.output
    lines[0]["optimal_moves"] += 1
    out.write_text("\n".join(json.dumps(r) for r in lines))
    assert runner.invoke(app, ["env", "sokoban", "solve", str(out)]).exit_code == 1
    missing = runner.invoke(app, ["env", "sokoban", "solve", str(tmp_path / "nope.jsonl")])
    assert missing.exit_code == 2 and "no such file" in missing.output


def test_sokoban_play_reaches_the_goal():
    from environments.sokoban import SokobanEnv

    env = SokobanEnv(variant="1box")
    tid = env.task_ids("train")[0]
    moves = "\n".join(env.oracle().expert_actions(tid)) + "\n"
    result = runner.invoke(app, ["env", "sokoban", "play", "--variant", "1box", "--level", tid], input=moves)
    assert result.exit_code == 0 and "solved!" in result.output
    quit_early = runner.invoke(app, ["env", "sokoban", "play", "--variant", "1box"], input="hint\nw\nquit\n")
    assert quit_early.exit_code == 0 and "hint:" in quit_early.output


def test_apps_tasks_and_run_task(tmp_path):
    from environments.apps import task_ids

    listed = runner.invoke(app, ["env", "apps", "tasks", "--split", "test"])
    assert listed.exit_code == 0 and f"app tasks ({len(task_ids('test'))})" in listed.output
    assert "wallet_total" in listed.output
    stats = runner.invoke(app, ["env", "apps", "stats", "--no-reference"])
    assert stats.exit_code == 0 and "test_challenge" in stats.output and "shopping" in stats.output
    assert "find-person" in stats.output  # the scenarios per pattern
    ok = runner.invoke(app, ["env", "apps", "run-task", "music_top_liked_2", "--reference"])
    assert ok.exit_code == 0 and "success" in ok.output
    wrong = tmp_path / "wrong.py"
    wrong.write_text("apis.supervisor.complete_task(answer='nothing')\n")
    bad = runner.invoke(app, ["env", "apps", "run-task", "music_top_liked_2", "--code", str(wrong)])
    assert bad.exit_code == 1 and "failure" in bad.output
    unknown = runner.invoke(app, ["env", "apps", "run-task", "nope", "--reference"])
    assert unknown.exit_code == 2 and "unknown apps task" in unknown.output


def test_appworld_setup_reports_missing_package(tmp_path, monkeypatch):
    monkeypatch.setenv("SKILLKIT_HOME", str(tmp_path))
    result = runner.invoke(app, ["env", "appworld", "setup", "--python", sys.executable])
    assert result.exit_code == 2 and "appworld package is not" in result.output
    assert not (tmp_path / "appworld.json").exists()
