"""The study runner: arms x seeds at equal budget, merged result folder, paired analysis, smoke mode."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from skillkit.cli.main import app
from trainer.study import (
    ARMS,
    Selection,
    analyse,
    arm_config,
    load_study_config,
    select_on_dev,
    unit_outcomes,
)

ROOT = Path(__file__).resolve().parent.parent


def test_analysis_pairs_arms_on_levels_and_tests_against_grpo():
    rng = np.random.default_rng(0)
    units = [f"level-{i}" for i in range(40)]
    hard = {u: float(rng.random() < 0.3) for u in units}
    results = []
    for seed in range(3):
        for arm, outcome in (("grpo", hard), ("grpo_control", hard), ("better", {u: 1.0 for u in units})):
            results.append({"arm": arm, "seed": seed, "outcomes": {"success": dict(outcome)},
                            "scalars": {"eval_success_rate": float(np.mean(list(outcome.values())))}})
    summary = analyse(results, "grpo", resamples=500)
    block = summary["metrics"]["success"]
    assert block["units"] == 40 and summary["seeds"]["grpo"] == [0, 1, 2]
    better = block["arms"]["better"]["vs_baseline"]
    assert better["diff"]["mean"] == pytest.approx(1 - np.mean(list(hard.values())))
    assert better["diff"]["low"] > 0 and better["p_value"] < 0.05
    control = block["arms"]["grpo_control"]["vs_baseline"]
    assert control["diff"]["mean"] == 0 and control["diff"]["low"] <= 0 <= control["diff"]["high"]
    assert "vs_baseline" not in block["arms"]["grpo"]
    assert summary["per_level"]["success"]["level-0"] == {"grpo": hard["level-0"], "grpo_control": hard["level-0"],
                                                          "better": 1.0}
    assert summary["scalars"]["eval_success_rate"]["better"]["mean"] == 1.0


def test_selection_chooses_on_dev_and_compares_on_test():
    units = [f"level-{i}" for i in range(8)]
    # "lucky" wins the dev half (levels 0-3) and loses the test half; "steady" is 0.5 everywhere
    arms = {"lucky": [1, 1, 1, 1, 0, 0, 0, 0], "steady": [1, 0, 1, 0, 1, 0, 1, 0], "auto": [0, 0, 0, 0, 1, 1, 0, 1]}
    results = [{"arm": arm, "seed": seed, "outcomes": {"success": dict(zip(units, map(float, values)))}, "scalars": {}}
               for arm, values in arms.items() for seed in range(2)]
    sel = Selection(arm="auto", candidates=["steady", "lucky"], dev_tasks=4)
    out = select_on_dev(results, sel, resamples=500)
    assert out["dev_means"] == {"steady": 0.5, "lucky": 1.0} and out["chosen"] == "lucky"
    assert out["dev_units"] == units[:4] and out["test_units"] == units[4:]
    assert out["test_vs_chosen"]["diff"]["mean"] == pytest.approx(0.75)   # auto 0.75 minus lucky 0.0 on test
    assert out["test_arm_mean"] == 0.75 and out["test_chosen_mean"] == 0.0
    tie = select_on_dev(results, Selection(arm="auto", candidates=["steady", "steady2"], dev_tasks=4), 500)
    assert "skipped" in tie and "steady2" in tie["skipped"]
    with pytest.raises(ValueError, match="no test tasks"):
        select_on_dev(results, Selection(arm="auto", candidates=["steady"], dev_tasks=8), 500)


def test_unit_outcomes_reads_the_evaluation_record():
    assert unit_outcomes({"eval_outcomes": {"a": 1, "b": 0}}) == {"success": {"a": 1.0, "b": 0.0}}
    assert unit_outcomes({"outcomes": [{"task_id": "a", "success": True, "dense_greedy_optimal": 0.5}]}) == {
        "success": {"a": 1.0}, "dense_greedy_optimal": {"a": 0.5}}
    with pytest.raises(ValueError, match="per-task"):
        unit_outcomes({"eval_success_rate": 0.5})


def test_smoke_study_runs_merges_new_seeds_and_refuses_another_budget(tmp_path):
    out = tmp_path / "study"
    config = str(ROOT / "configs" / "study_cpu.yaml")

    def study(*args: str) -> None:
        result = CliRunner().invoke(app, ["study", "--config", config, "--smoke", "-o", str(out), *args])
        assert result.exit_code == 0, result.output + repr(result.exception)

    t0 = time.perf_counter()
    study("--arms", "grpo,skillsd,grpo_control,untrained", "--seeds", "0")
    first = time.perf_counter() - t0
    files = sorted(p.name for p in (out / "results").glob("*.json"))
    assert files == ["grpo__seed0.json", "grpo_control__seed0.json", "skillsd__seed0.json", "untrained__seed0.json"]
    untrained = json.loads((out / "results" / "untrained__seed0.json").read_text())
    assert untrained["iteration"] == 0 and len(untrained["outcomes"]["success"]) == 6   # evaluated, not trained
    assert not (Path(untrained["run_dir"]) / "final").exists()
    control = json.loads((out / "results" / "grpo_control__seed0.json").read_text())
    assert control["method"] == "grpo" and control["train_seed"] == 1000     # disjoint seeds
    stamp = (out / "results" / "skillsd__seed0.json").stat().st_mtime

    study("--arms", "grpo,untrained", "--seeds", "0,1")                        # one new run, merged
    assert (out / "results" / "skillsd__seed0.json").stat().st_mtime == stamp
    assert not (out / "results" / "untrained__seed1.json").exists()          # greedy: one seed is the arm
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == {"grpo": [0, 1], "grpo_control": [0], "skillsd": [0], "untrained": [0]}
    block = summary["metrics"]["success"]
    assert block["units"] == 6 and set(block["arms"]) == {"grpo", "grpo_control", "skillsd", "untrained"}
    for arm in ("skillsd", "grpo_control", "untrained"):
        comparison = block["arms"][arm]["vs_baseline"]
        assert {"diff", "p_value", "mde"} <= set(comparison) and comparison["diff"]["n_units"] == 6
    with open(out / "per_level.csv") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["metric", "task", "grpo", "grpo_control", "skillsd", "untrained"]
    by_metric = {m: sum(r[0] == m for r in rows[1:]) for m in {r[0] for r in rows[1:]}}
    assert by_metric["success"] == 6
    # the dense metrics are paired per level too (the smoke probe's states cover some of the 6 levels)
    assert 0 < by_metric.get("dense_logprob_optimal", 0) <= 6
    assert summary["metrics"]["dense_logprob_optimal"]["arms"]["skillsd"]["vs_baseline"]["mde"] >= 0
    assert (out / "study.png").stat().st_size > 0

    result = CliRunner().invoke(app, ["study", "--config", config, "--smoke", "-o", str(out), "--arms", "grpo",
                                      "--seeds", "0", "overrides=[rollout.group_size=3]"])
    assert result.exit_code != 0 and "another budget" in result.output
    print(f"smoke study, 3 runs: {first:.1f}s")


def test_study_config_names_known_arms():
    cfg = load_study_config(ROOT / "configs" / "study_cpu.yaml")
    assert [a.name for a in cfg.arm_specs()] == ["grpo", "skillsd", "opsd"]
    short = load_study_config(ROOT / "configs" / "study_cpu_short.yaml")
    assert all(a in [s.name for s in short.arm_specs()] for sel in short.selections for a in (sel.arm, *sel.candidates))
    with pytest.raises(ValueError, match="unknown arm"):
        load_study_config(ROOT / "configs" / "study_cpu.yaml", ["arms=[grpo,nope]"]).arm_specs()


@pytest.mark.parametrize("arm", sorted(ARMS))
def test_every_named_arm_is_a_valid_run_of_the_cpu_study(arm):
    # each arm's overrides on top of the study's shared config must validate (the frozen teacher once
    # failed here: the shared config's teacher.sync_every=1 contradicted method skillsd_frozen)
    study = load_study_config(ROOT / "configs" / "study_cpu.yaml")
    cfg = arm_config(study, ARMS[arm], seed=0)
    assert cfg.method == ARMS[arm].method
