"""The distillation methods' moving parts: oracle targets of visited states, the teacher-hacking
watch, and anchored generations end to end (tiny-random, R = 3)."""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest

from environments.sokoban.env import SokobanEnv
from skillkit.core.schemas import Trajectory, Turn
from trainer.config import load_train_config
from trainer.generations import generation_series, plot_generations
from trainer.guidance import OracleTargets, target_rows
from trainer.metrics import read_metrics
from trainer.rollout import TurnSample
from trainer.train import train
from trainer.watch import HackingWatch, oracle_agreement, visited_moves

ROOT = Path(__file__).resolve().parent.parent


def corridor() -> SokobanEnv:
    return SokobanEnv.from_text("######\n#PX_O#\n######")


def test_oracle_targets_are_the_optimal_moves_as_action_tokens(tiny_lm):
    _, tok = tiny_lm
    env = corridor()
    obs = env.reset()
    env.step("Right")
    done = env.step("Right").observation                 # the box is on the target: nothing left to do
    sample = TurnSample([1, 2], [3], [0.0], [{"role": "user", "content": obs}], "t", 0, 0, turn=3)
    solved = TurnSample([1, 2], [3], [0.0], [{"role": "user", "content": done}], "t", 0, 0, turn=3)
    targets = OracleTargets(env, tok)
    assert targets.actions_for(sample) == ["Right"]                 # push the box right, onto the target
    assert targets.attach([sample, solved]) == 1
    assert sample.oracle_targets == [tok("Right", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]]
    assert solved.oracle_targets is None
    rows, index = target_rows([solved, sample])
    assert index == [1] and rows[0].prompt_ids == [1, 2] and rows[0].response_ids == sample.oracle_targets[0]


def test_oracle_agreement_counts_optimal_moves_on_visited_states():
    env = corridor()
    start = env.reset()
    after_left = env.step("Left").observation           # a wall: nothing moves, the state stays
    traj = Trajectory(id="e", env="sokoban", task_id="t", initial_observation=start, turns=[
        Turn(action="Left", observation=after_left, info={"actions": ["Left"]}),
        Turn(action="I go Right", observation="done", info={"actions": ["Right"]}),
    ])
    assert visited_moves([traj]) == [(start, "Left"), (after_left, "Right")]
    assert oracle_agreement(env, [traj], 10, np.random.default_rng(0)) == 0.5
    assert oracle_agreement(env, [traj], 0, np.random.default_rng(0)) is None


def test_watch_flags_a_falling_kl_only_while_the_task_measures_fall():
    steady = HackingWatch(window=3)
    assert all(steady.check(kl, 0.5) is None for kl in (0.3, 0.2, 0.1, 0.05))   # agreement flat: fine
    hacked = HackingWatch(window=3)
    assert hacked.check(0.3, 0.6) is None and hacked.check(0.2, 0.5) is None
    warning = hacked.check(0.1, 0.4)
    assert warning is not None and "oracle agreement" in warning
    by_success = HackingWatch(window=3)
    by_success.add_eval(0.5)
    by_success.add_eval(0.25)
    outs = [by_success.check(kl, None) for kl in (0.3, 0.2, 0.1)]
    assert outs[:2] == [None, None] and "held-out success" in outs[2]
    rising = HackingWatch(window=3)
    rising.add_eval(0.5)
    rising.add_eval(0.25)
    assert all(rising.check(kl, 0.1) is None for kl in (0.1, 0.2, 0.3))        # KL rising: no flag


TINY = ["model.name=tiny-random", "iterations=1", "rollout.tasks_per_iteration=2", "rollout.group_size=2",
        "rollout.max_new_tokens=4", "rollout.max_turns=2", "env.max_train_tasks=2", "env.max_eval_tasks=1",
        "eval.dense_states=4", "optim.micro_batch_size=8", "optim.lr=1e-2", "checkpoint_every=0",
        "teacher.library_embedder=hashing", "rollout.save_trajectories=false", "generations=3"]


@pytest.mark.parametrize("beta", [0.5, 1.0])
def test_three_anchored_generations_log_teacher_distances(tmp_path, beta):
    from tests.test_trainer_train import fixture_library

    cfg = load_train_config(ROOT / "configs" / "sokoban_skillsd.yaml", TINY)
    library = fixture_library(tmp_path / "library", cfg.env)
    cfg = load_train_config(ROOT / "configs" / "sokoban_skillsd.yaml",
                            [*TINY, f"teacher.anchor_beta={beta}", f"teacher.library_path={library}"])
    run = train(cfg, run_dir=tmp_path / "run", log=lambda m: None)
    rows = read_metrics(run)
    assert [r["iteration"] for r in rows if "loss" in r] == [1, 2, 3]
    assert [r["generation"] for r in rows if "eval_success_rate" in r] == [0, 1, 2]
    boundaries = [r for r in rows if "gen_kl_successive" in r]
    assert [r["generation"] for r in boundaries] == [1, 2]
    assert boundaries[0]["gen_kl_successive"] > 0          # generation 1's teacher differs from generation 0's
    if beta == 1.0:   # the teacher is the anchor itself: the fixed point from generation 1 on
        assert all(r["gen_kl_anchor"] == pytest.approx(0.0, abs=1e-6) for r in boundaries)
        assert boundaries[1]["gen_kl_successive"] == pytest.approx(0.0, abs=1e-6)
    else:
        assert all(r["gen_kl_anchor"] > 0 for r in boundaries) and boundaries[1]["gen_kl_successive"] > 0
    assert (run / "generations.png").stat().st_size > 0
    # the study's comparison (benchmarks/anchored_generations.py): the run's series, ratios, two runs in one plot
    series = generation_series(run)
    assert [g for g, _ in series["kl_successive"]] == [1, 2] and [g for g, _ in series["eval_success"]] == [0, 1, 2]
    bench = runpy.run_path(str(ROOT / "benchmarks" / "anchored_generations.py"))
    rows = bench["arm_rows"](run)
    assert rows[2]["ratio"] == pytest.approx(boundaries[1]["gen_kl_successive"] / boundaries[0]["gen_kl_successive"])
    assert plot_generations({"a": run, "b": run}, tmp_path / "both.png").stat().st_size > 0
