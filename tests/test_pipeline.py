"""`skillkit run` end to end on the tiny model: every stage runs and the report is written."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from skillkit.cli.main import app

TINY = [
    "model=tiny-random", "adapter=null", "apps.enabled=true", "sokoban.expert_tasks=3", "sokoban.agent_tasks=2", "sokoban.eval_tasks=2",
    "sokoban.options.max_steps=3", "apps.expert_tasks=3", "apps.agent_tasks=1", "apps.eval_tasks=2",
    "apps.options.max_steps=1", "apps.max_new_tokens=16", "library.llm_groups=1", "library.max_new_tokens=16",
    "train.overrides=[iterations=1,env.options.max_steps=3,env.max_eval_tasks=2,rollout.tasks_per_iteration=2,"
    "rollout.group_size=2,rollout.max_turns=2,rollout.max_new_tokens=4,eval.every=0,checkpoint_every=0]",
]


def test_run_writes_report_and_plots(tmp_path, monkeypatch, tiny_adapter):
    monkeypatch.setenv("SKILLKIT_CACHE", str(tmp_path / "cache"))
    result = CliRunner().invoke(app, ["run", "--config", "configs/demo.yaml", *TINY, f"output_root={tmp_path}",
                                      f"adapter={tiny_adapter}", "notes=[left out nothing]"])
    assert result.exit_code == 0, result.output
    (run,) = [p for p in tmp_path.iterdir() if p.name.startswith("demo-")]
    assert len(list((tmp_path / "cache" / "merged").iterdir())) == 1       # the warm start, merged once
    assert "## About this run\n\n- left out nothing" in (run / "report.md").read_text()
    summary = json.loads((run / "summary.json").read_text())
    labels = {(r["label"], r["env"]) for r in summary["results"]}
    assert labels == {("no skills", "sokoban"), ("with skills", "sokoban"), ("no skills", "apps"),
                      ("with skills", "apps"), ("Skill-SD student", "sokoban")}
    assert sum(summary["library"]["tiers"].values()) > 0
    # by default the library is built from the model's own episodes only, and the report says so
    assert summary["library"]["source"] == "own" and set(summary["library"]["episodes"]) == {"model"}
    experience = [json.loads(line) for line in (run / "experience.jsonl").read_text().splitlines()]
    assert experience and all(t["metadata"]["source"] == "model" for t in experience)
    report = (run / "report.md").read_text()
    assert "built from the model's own episodes only (library.source: own" in report
    assert {c["metric"] for c in summary["comparisons"]} >= {"success"}
    for heading in ("Comparisons", "Evaluation", "Skill library", "Skill impact", "Skill-SD training", "Timings"):
        assert f"## {heading}" in report
    for name in ("success.png", "skills_per_tier.png", "experience.jsonl", "eval_trajectories.jsonl",
                 "config.yaml", "run.json"):
        assert (run / name).exists(), name
    assert (run / "train" / "metrics.jsonl").exists() and (run / "train" / "final").is_dir()
    shown = [json.loads(line) for line in (run / "eval_trajectories.jsonl").read_text().splitlines()]
    assert any(t["turns"][0]["skills_shown"] for t in shown)


def test_expert_episodes_only_for_the_named_ground_truth_baseline():
    from skillkit.pipeline import Hooks, collect_experience, load_pipeline_config

    overrides = ["apps.enabled=false", "sokoban.agent_tasks=0", "sokoban.expert_tasks=2"]
    own = load_pipeline_config("configs/demo.yaml", overrides)
    assert own.library.source == "own" and collect_experience(None, own, Hooks()) == []
    oracle = load_pipeline_config("configs/demo.yaml", [*overrides, "library.source=oracle"])
    experts = collect_experience(None, oracle, Hooks())
    assert len(experts) == 2 and all(t.metadata["source"] == "expert" and t.success for t in experts)


def test_run_rejects_unknown_keys(tmp_path):
    result = CliRunner().invoke(app, ["run", "--config", "configs/demo.yaml", "sokoban.bogus=1"])
    assert result.exit_code == 2 and "sokoban.bogus" in result.output


def test_evaluate_side_by_side_and_impact(tmp_path):
    import environments
    from environments.base import run_expert_episode
    from skillkit.skills.library import SkillLibrary
    from skillkit.skills.summarize import Summarizer

    env = environments.make("sokoban", variant="1box")
    episodes = [run_expert_episode(env, t) for t in env.task_ids("train")[:3]]
    library = SkillLibrary.create(tmp_path / "lib", embedder="hashing")
    for skill in Summarizer(None).summarize_many([[e] for e in episodes]):
        library.add(skill)
    library.save()
    out = tmp_path / "eval.jsonl"
    runner = CliRunner()
    result = runner.invoke(app, ["evaluate", "--env", "sokoban", "--split", "test", "-n", "2", "--option",
                                 "variant=1box", "--option", "max_steps=2", "--model", "tiny-random",
                                 "--library", str(tmp_path / "lib"), "--max-new-tokens", "4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "no skills" in result.output and "with skills" in result.output
    assert len(out.read_text().splitlines()) == 4
    impact = runner.invoke(app, ["library", "impact", str(tmp_path / "lib"), "--runs", str(out), "--json"])
    assert impact.exit_code == 0, impact.output
    data = json.loads(impact.output)
    assert data["impact"] and all(row["episodes"] == 2 for row in data["impact"])
    assert len(data["never_shown"]) == len(library) - len(data["impact"])


def test_collect_samples_several_episodes_per_task(tiny_backend):
    from skillkit.pipeline import Hooks, collect_experience, load_pipeline_config

    cfg = load_pipeline_config("configs/demo.yaml", [
        "apps.enabled=false", "sokoban.agent_tasks=2", "sokoban.collect_episodes=3", "sokoban.collect_temperature=1.0",
        "sokoban.options.max_steps=3", "sokoban.max_new_tokens=6"])
    episodes = collect_experience(tiny_backend, cfg, Hooks())
    by_task: dict[str, list] = {}
    for t in episodes:
        by_task.setdefault(t.task_id, []).append([turn.action for turn in t.turns])
    assert sorted(len(v) for v in by_task.values()) == [3, 3] and len({t.id for t in episodes}) == 6
    assert any(len({str(a) for a in runs}) > 1 for runs in by_task.values())   # sampled: the episodes differ
