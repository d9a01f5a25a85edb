"""End-to-end: every config trains for 2 iterations from the CLI; resuming reproduces a run exactly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skillkit.cli.main import app
from trainer.metrics import is_timing_key, read_metrics

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted(p.name for p in (ROOT / "configs").glob("*.yaml") if p.name.startswith(("sokoban_", "apps_")))
METHODS = ["grpo", "skillsd", "skillsd_frozen", "opd", "skill_in_prompt_grpo", "sft"]
REQUIRED = ["iteration", "loss", "loss_grpo", "loss_sdl", "kl_student_teacher", "reward_mean", "success_rate"]

#: Keep smoke runs tiny: 1 task x G=2 episodes of 1 turn of 4 tokens, 1 eval task.
TINY = ["rollout.tasks_per_iteration=1", "rollout.group_size=2", "rollout.max_new_tokens=4", "rollout.max_turns=1",
        "env.max_train_tasks=4", "env.max_eval_tasks=1", "sft.tasks_per_iteration=1", "optim.micro_batch_size=4",
        "teacher.library_embedder=hashing"]


def run_cli(*args: str) -> None:
    result = CliRunner().invoke(app, ["train", *args])
    assert result.exit_code == 0, result.output + repr(result.exception)


def test_every_method_has_both_configs():
    for env in ("sokoban", "apps"):
        for method in METHODS:
            assert f"{env}_{method}.yaml" in CONFIGS


@pytest.mark.parametrize("config", CONFIGS)
def test_config_trains_two_iterations(config, tmp_path):
    run_dir = tmp_path / "run"
    run_cli("--config", str(ROOT / "configs" / config), "--model", "tiny-random", "--max-iterations", "2",
            "--run-dir", str(run_dir), *TINY)
    rows = read_metrics(run_dir)
    train_rows = [r for r in rows if "loss" in r]
    eval_rows = [r for r in rows if "eval_success_rate" in r]
    assert [r["iteration"] for r in train_rows] == [1, 2]
    for row in train_rows:
        assert all(key in row for key in REQUIRED), sorted(row)
        assert row["loss"] is not None and row["grad_norm"] >= 0
    assert eval_rows and 0.0 <= eval_rows[-1]["eval_success_rate"] <= 1.0
    final = eval_rows[-1]
    assert len(final["eval_outcomes"]) == final["eval_episodes"] == 1
    low, high = final["eval_success_rate_ci"]
    assert low <= final["eval_success_rate"] <= high
    if config.startswith("sokoban"):  # held-out states on and off the solver path of the eval level
        assert final["eval_dense_states"] > 0 and 0.0 <= final["eval_dense_greedy_optimal"] <= 1.0
        assert final["eval_dense_logprob_optimal"] < 0
    else:  # the app suite has no dense probe states
        assert final["eval_dense_states"] == 0 and final["eval_dense_greedy_optimal"] is None
    assert (run_dir / "config.yaml").exists() and (run_dir / "run.json").exists()
    assert (run_dir / "checkpoints" / "iter-000002" / "state.pt").exists()
    assert (run_dir / "curves.png").exists() and (run_dir / "final" / "config.json").exists()
    assert any((run_dir / "tensorboard").iterdir())
    method = config.split("_", 1)[1].removesuffix(".yaml")
    if method in ("skillsd", "skillsd_frozen", "opd"):
        assert all(r["kl_student_teacher"] is not None for r in train_rows if r.get("teacher_scored_frac"))
    if method != "sft":
        assert (run_dir / "trajectories" / "iter-000001.jsonl").exists()


def test_resume_reproduces_iteration_two_exactly(tmp_path):
    config = str(ROOT / "configs" / "sokoban_skillsd.yaml")
    args = ["--model", "tiny-random", "--max-iterations", "2", *TINY, "checkpoint_every=1",
            "rollout.tasks_per_iteration=2", "optim.num_minibatches=2", "optim.lr=1e-3", "rollout.max_turns=2"]
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    run_cli("--config", config, "--run-dir", str(full), *args)
    run_cli("--config", config, "--run-dir", str(resumed), "--resume", str(full / "checkpoints" / "iter-000001"), *args)

    def without_timing(rows):
        return [{k: v for k, v in r.items() if not is_timing_key(k)} for r in rows if r["iteration"] == 2]

    a, b = without_timing(read_metrics(full)), without_timing(read_metrics(resumed))
    assert len(a) == 2 and a == b  # the training line and the eval line of iteration 2
    assert a[0]["grad_norm"] > 0
    traj_a = (full / "trajectories" / "iter-000002.jsonl").read_text().splitlines()
    traj_b = (resumed / "trajectories" / "iter-000002.jsonl").read_text().splitlines()
    assert [json.loads(x)["turns"] for x in traj_a] == [json.loads(x)["turns"] for x in traj_b]


def test_data_parallel_launch_on_two_cpu_processes(tmp_path):
    """The multi-GPU path (accelerate DDP) on CPU: two processes, rollouts split by rank, one run folder."""
    import shutil
    import subprocess
    import sys

    if shutil.which("torchrun") is None and not (Path(sys.executable).parent / "torchrun").exists():
        pytest.skip("torchrun not installed")
    torchrun = shutil.which("torchrun") or str(Path(sys.executable).parent / "torchrun")
    cmd = [torchrun, "--nproc_per_node", "2", "-m", "trainer.train", "--config",
           str(ROOT / "configs" / "sokoban_skillsd.yaml"), "--model", "tiny-random", "--max-iterations", "2",
           *TINY, "rollout.tasks_per_iteration=2", f"output_root={tmp_path}"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    rows = read_metrics(run_dir)
    assert [r["iteration"] for r in rows if "loss" in r] == [1, 2]
    assert (run_dir / "rank1" / "library").exists()  # rank 1 keeps its own skill library
    assert out.stdout.count("iter 1:") == 1          # only rank 0 logs


def test_lora_with_gradient_checkpointing_trains_and_merges(tmp_path):
    run_dir = tmp_path / "lora"
    run_cli("--config", str(ROOT / "configs" / "sokoban_skillsd_frozen.yaml"), "--model", "tiny-random",
            "--max-iterations", "1", "--run-dir", str(run_dir), *TINY, "model.lora.r=4",
            "model.gradient_checkpointing=true", "optim.lr=1e-2")
    rows = [r for r in read_metrics(run_dir) if "loss" in r]
    assert len(rows) == 1 and rows[0]["kl_student_teacher"] is not None
    config = json.loads((run_dir / "final" / "config.json").read_text())
    assert config["model_type"] == "llama" and not (run_dir / "final" / "adapter_config.json").exists()
