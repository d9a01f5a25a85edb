"""Skill impact numbers and the report's plots/tables."""

from __future__ import annotations

import pytest

from skillkit.core.schemas import Trajectory, Turn, write_jsonl
from skillkit.report import eval_table, impact_table, plot_success, plot_tiers, write_report
from skillkit.skills.impact import load_run_trajectories, skill_impact
from trainer.evaluation import EvalResult


def _traj(task, ok, reward, shown):
    return Trajectory(id=f"{task}-{ok}-{shown}", env="sokoban", task_id=task, success=ok, total_reward=reward,
                      turns=[Turn(action="Up", observation="o", reward=reward, skills_shown=shown)])


def test_impact_compares_the_same_tasks(tmp_path):
    trajectories = [
        _traj("t1", True, 9.0, ["good"]), _traj("t1", False, -1.0, []),
        _traj("t2", True, 9.0, ["good", "bad"]), _traj("t2", True, 9.0, []),
        _traj("t3", False, -2.0, ["bad"]), _traj("t3", True, 8.0, []),
        _traj("t4", False, -1.0, ["lonely"]),
    ]
    write_jsonl(tmp_path / "eval.jsonl", trajectories)
    (tmp_path / "metrics.jsonl").write_text('{"iteration": 1}\n')
    impacts = {i.name: i for i in skill_impact(load_run_trajectories([tmp_path]))}
    assert impacts["good"].episodes == 2 and impacts["good"].success_with == 1.0
    assert impacts["good"].success_without == 0.5 and impacts["good"].success_delta == 0.5
    assert impacts["bad"].success_with == 0.5 and impacts["bad"].success_without == 1.0
    assert impacts["lonely"].success_without is None
    assert [i.name for i in skill_impact(trajectories)][0] == "good"


def test_report_files(tmp_path):
    results = [EvalResult(label="no skills", env="sokoban", split="test", episodes=4, success_rate=0.25,
                          mean_steps=7, mean_return=-1.0, intervals={"success_rate": (0.0, 0.5)},
                          dense_states=8, dense_greedy_optimal=0.375, dense_logprob_optimal=-1.25),
               EvalResult(label="with skills", env="sokoban", split="test", episodes=4, success_rate=0.5,
                          mean_steps=5, mean_return=2.0)]
    assert plot_success(results, tmp_path / "s.png").stat().st_size > 1000
    assert plot_tiers({"trajectory": 3, "planning": 2}, tmp_path / "t.png").stat().st_size > 1000
    table = eval_table(results)
    assert "| with skills | sokoban | test | 4 | 50.0% |" in table
    assert "| no skills | sokoban | test | 4 | 25.0% [0.0, 50.0] |" in table and "| 37.5% | -1.250 | - |" in table
    impacts = skill_impact([_traj("t1", True, 1.0, ["a"]), _traj("t1", False, 0.0, [])])
    report = write_report(tmp_path / "report.md", "Run", [("Evaluation", table), ("Impact", impact_table(impacts))])
    text = report.read_text()
    assert text.startswith("# Run") and "## Impact" in text and "| a | 1 | 1 | 100.0% | 0.0% |" in text


def test_comparisons_pair_the_same_tasks_and_say_when_not_significant():
    from skillkit.report import comparisons, comparisons_text

    def result(label, outcomes, dense):
        return EvalResult(label=label, env="sokoban", split="test", episodes=len(outcomes),
                          success_rate=sum(outcomes.values()) / len(outcomes), mean_steps=1.0, mean_return=0.0,
                          outcomes=outcomes, dense_outcomes=dense)

    tasks = [f"t{i}" for i in range(12)]
    plain = result("no skills", {t: 0 for t in tasks},
                   {t: {"dense_logprob_optimal": -1.4, "dense_teacher_advantage": -0.2 - 0.01 * i} for i, t in enumerate(tasks)})
    skilled = result("with skills", {t: int(i == 0) for i, t in enumerate(tasks)}, {})
    student = result("Skill-SD student", {t: 0 for t in tasks},
                     {t: {"dense_logprob_optimal": -1.2 + 0.01 * i} for i, t in enumerate(tasks)})
    found = {(c.name.split(": ")[1], c.metric): c for c in comparisons([plain, skilled, student])}
    success = found[("with skills vs no skills, same weights", "success")]
    assert success.units == 12 and success.diff == pytest.approx(1 / 12) and not success.significant
    assert "not significant at this scale" in success.text()
    advantage = found[("routed skill in the prompt vs not, same weights", "log-prob of the optimal moves")]
    assert advantage.high < 0 and advantage.significant and "significant: the interval excludes 0" in advantage.text()
    trained = found[("Skill-SD student vs its starting model", "log-prob of the optimal moves")]
    assert trained.diff == pytest.approx(0.2 + 0.055) and trained.low > 0
    assert comparisons_text([]) == "(no paired comparisons in this run)"
