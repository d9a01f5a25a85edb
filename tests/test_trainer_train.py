"""End-to-end: every config trains for 2 iterations from the CLI (the teacher really scores, the
oracle is consulted only by the ground-truth methods and the metrics); resuming reproduces a run
exactly; UCB credits a teacher skill with the gains that follow it; anchored generations."""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

import environments
from environments.apps.env import AppsEnv
from environments.base import Environment, StepResult
from environments.sokoban.env import SokobanEnv
from skillkit.cli.main import app
from skillkit.core.schemas import TrajectorySkill
from skillkit.skills.library import SkillLibrary
from trainer.config import load_train_config
from trainer.metrics import is_timing_key, read_metrics
from trainer.teacher import Teacher

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted(p.name for p in (ROOT / "configs").glob("*.yaml") if p.name.startswith(("sokoban_", "apps_")))
METHODS = ["grpo", "skillsd", "skillsd_frozen", "opsd", "skillsd_gt", "opd", "skill_in_prompt_grpo", "sft"]
GROUND_TRUTH = ("opsd", "skillsd_gt", "sft")   # the only methods allowed to ask the oracle for training
METRIC_FRAMES = {"evaluate", "oracle_agreement", "visited_teacher_advantage"}  # metrics may ask the oracle: they never enter the loss
REQUIRED = ["iteration", "loss", "loss_grpo", "loss_sdl", "kl_student_teacher", "reward_mean", "success_rate"]

#: Keep smoke runs tiny: 1 task x G=2 episodes of 1 turn of 4 tokens, 1 eval task.
TINY = ["rollout.tasks_per_iteration=1", "rollout.group_size=2", "rollout.max_new_tokens=4", "rollout.max_turns=1",
        "env.max_train_tasks=4", "env.max_eval_tasks=1", "sft.tasks_per_iteration=1", "optim.micro_batch_size=4",
        "teacher.library_embedder=hashing"]


def run_cli(*args: str) -> None:
    result = CliRunner().invoke(app, ["train", *args])
    assert result.exit_code == 0, result.output + repr(result.exception)


def fixture_library(path: Path, env_cfg, skills_per_task: dict[str, dict[str, str]] | None = None) -> Path:
    """A library with hand-written trajectory skills (default: one per train task of the config's env)."""
    if skills_per_task is None:
        tasks = environments.task_ids(env_cfg.name, env_cfg.train_split, env_cfg.max_train_tasks, **env_cfg.options)
        skills_per_task = {t: {f"hint-{i}": "Read the board first; then make one move toward the goal."}
                           for i, t in enumerate(tasks)}
    lib = SkillLibrary.create(path, embedder="hashing")
    for task, skills in skills_per_task.items():
        for k, (name, text) in enumerate(skills.items()):   # later skills are newer
            lib.add(TrajectorySkill(name=name, description=f"a lesson for task {task}", task_id=task,
                                    success_analysis=text, source_tasks=[task], extraction_round=k))
    lib.save()
    return path


@pytest.fixture
def oracle_calls(monkeypatch):
    """Every call of an environment's oracle, with the names of the functions on the stack."""
    calls: list[list[str]] = []
    for cls in (SokobanEnv, AppsEnv):
        original = cls.oracle

        def spy(self, _original=original):
            calls.append([frame.function for frame in inspect.stack()[1:]])
            return _original(self)

        monkeypatch.setattr(cls, "oracle", spy)
    return calls


def test_every_method_has_both_configs():
    for env in ("sokoban", "apps"):
        for method in METHODS:
            assert f"{env}_{method}.yaml" in CONFIGS


@pytest.mark.parametrize("config", CONFIGS)
def test_config_trains_two_iterations(config, tmp_path, oracle_calls):
    run_dir = tmp_path / "run"
    method = config.split("_", 1)[1].removesuffix(".yaml")     # the config's name: skillsd, paced, sdar, ...
    cfg = load_train_config(ROOT / "configs" / config, TINY)
    extra = []
    if cfg.uses_skills and not cfg.spec.ground_truth:
        extra = [f"teacher.library_path={fixture_library(tmp_path / 'library', cfg.env)}"]
    run_cli("--config", str(ROOT / "configs" / config), "--model", "tiny-random", "--max-iterations", "2",
            "--run-dir", str(run_dir), *TINY, *extra)
    rows = read_metrics(run_dir)
    train_rows = [r for r in rows if "loss" in r]
    eval_rows = [r for r in rows if "eval_success_rate" in r]
    assert [r["iteration"] for r in train_rows] == list(range(1, 2 * cfg.generations + 1))
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
    assert (run_dir / "checkpoints" / f"iter-{2 * cfg.generations:06d}" / "state.pt").exists()
    assert (run_dir / "curves.png").exists() and (run_dir / "final" / "config.json").exists()
    assert any((run_dir / "tensorboard").iterdir())
    if method in ("skillsd", "skillsd_frozen", "opsd", "opd"):
        for row in train_rows:
            assert row["teacher_scored_frac"] > 0 and row["loss_sdl"] > 0 and row["kl_student_teacher"] is not None
            if config.startswith("sokoban"):   # the skill's effect on the oracle's moves, on visited states
                assert row["teacher_advantage_states"] > 0
                assert row["teacher_advantage_low"] <= row["teacher_advantage"] <= row["teacher_advantage_high"]
    if method in ("skillsd", "skillsd_frozen", "opsd"):
        assert all(row["grad_norm_sdl"] > 0 and 0 < row["sdl_share"] <= 1 for row in train_rows)
    if method in ("skillsd_gt", "srpo", "sdar"):
        assert all(row["teacher_scored_frac"] > 0 and row["loss_sdl"] > 0 for row in train_rows)
    if method == "skillsd_gt":
        assert all(0.0 <= row["gt_alpha"] <= 1.0 and row["gt_states_frac"] > 0 for row in train_rows)
    if method == "paced":   # the tiny model never succeeds: pass rate 0, weight 0 (the point of PACED)
        assert all(row["paced_weight_mean"] == 0.0 and row["loss_sdl"] == 0.0 for row in train_rows)
    if method == "anchored":
        assert [r["generation"] for r in rows if "gen_kl_successive" in r] == list(range(1, cfg.generations))
        assert (run_dir / "generations.png").exists()
    if cfg.spec.distill and config.startswith("sokoban"):
        assert all("oracle_agreement" in row and row["teacher_hacking"] in (0, 1) for row in train_rows)
    if method == "skill_in_prompt_grpo":
        assert all(row["skill_coverage"] > 0 for row in train_rows)
    if method != "sft":
        assert (run_dir / "trajectories" / "iter-000001.jsonl").exists()
    # skills are the agent's own experience: only ground-truth methods consult the oracle (evaluation may)
    outside_eval = [c for c in oracle_calls if not METRIC_FRAMES & set(c)]
    assert bool(outside_eval) == (cfg.method in GROUND_TRUTH), (method, outside_eval[:1])


@pytest.mark.parametrize("config,extra,last", [
    ("sokoban_skillsd.yaml", ["--max-iterations", "2"], 2),
    # anchored generations of one iteration each, resumed inside generation 2 (its teacher is anchored)
    ("sokoban_anchored.yaml", ["iterations=1", "generations=3"], 3),
])
def test_resume_reproduces_the_last_iteration_exactly(tmp_path, config, extra, last):
    config = str(ROOT / "configs" / config)
    args = ["--model", "tiny-random", *TINY, "checkpoint_every=1", *extra,
            "rollout.tasks_per_iteration=2", "optim.num_minibatches=2", "optim.lr=1e-3", "rollout.max_turns=2"]
    env = load_train_config(config, TINY).env
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    run_cli("--config", config, "--run-dir", str(full), *args,
            f"teacher.library_path={fixture_library(tmp_path / 'lib-full', env)}")
    run_cli("--config", config, "--run-dir", str(resumed), "--resume",
            str(full / "checkpoints" / f"iter-{last - 1:06d}"), *args,
            f"teacher.library_path={fixture_library(tmp_path / 'lib-resumed', env)}")

    def without_timing(rows):
        return [{k: v for k, v in r.items() if not is_timing_key(k)} for r in rows if r["iteration"] == last]

    a, b = without_timing(read_metrics(full)), without_timing(read_metrics(resumed))
    # the training line and the eval line of the last iteration (and, for generations, its boundary line)
    assert len(a) == (2 if last == 2 else 3) and a == b
    train_row = next(r for r in a if "grad_norm" in r)
    assert train_row["grad_norm"] > 0 and train_row["teacher_scored_frac"] > 0
    traj_a = (full / "trajectories" / f"iter-{last:06d}.jsonl").read_text().splitlines()
    traj_b = (resumed / "trajectories" / f"iter-{last:06d}.jsonl").read_text().splitlines()
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
    config = ROOT / "configs" / "sokoban_skillsd_frozen.yaml"
    library = fixture_library(tmp_path / "library", load_train_config(config, TINY).env)
    run_cli("--config", str(config), "--model", "tiny-random", "--max-iterations", "1", "--run-dir", str(run_dir),
            *TINY, "model.lora.r=4", "model.gradient_checkpointing=true", "optim.lr=1e-2",
            f"teacher.library_path={library}", "eval.at_end=false")
    rows = [r for r in read_metrics(run_dir) if "loss" in r]
    assert len(rows) == 1 and rows[0]["kl_student_teacher"] is not None
    assert not [r for r in read_metrics(run_dir) if "eval_success_rate" in r]  # eval.at_end=false: no final eval
    config = json.loads((run_dir / "final" / "config.json").read_text())
    assert config["model_type"] == "llama" and not (run_dir / "final" / "adapter_config.json").exists()
    # the adapter alone, naming the configured base model: merged again it gives the final weights
    import torch

    from skillkit.core.models import adapter_base, load_causal_lm

    assert adapter_base(run_dir / "adapter") == "tiny-random"
    merged, _ = load_causal_lm("tiny-random", device="cpu", adapter=run_dir / "adapter")
    final, _ = load_causal_lm(str(run_dir / "final"), device="cpu")
    for (name, a), b in zip(merged.state_dict().items(), final.state_dict().values()):
        torch.testing.assert_close(a, b, msg=name)


class CreditProbe(Environment):
    """One task, one step: it succeeds exactly when the teacher's last update used the skill ``good``.

    Which skill that was is written by the spy on :meth:`Teacher.score` below, so a skill is
    "followed by gains" by construction and the test is about the trainer's credit assignment.
    """

    name = "credit-probe"
    max_steps = 1
    instructions = "Reply with one word."
    last_skill: dict[str, str] = {}

    def reset(self, task_id: str | None = None, seed: int | None = None) -> str:
        self.task = task_id or "t0"
        return "Say a word."

    def step(self, action: str) -> StepResult:
        ok = CreditProbe.last_skill.get(self.task) == "good"
        return StepResult("done", 1.0 if ok else 0.0, True, {"success": ok})

    def task_ids(self, split: str) -> list[str]:
        return ["t0"]

    def task_instruction(self) -> str:
        return "Say a word."


def test_ucb_credits_the_skill_that_is_followed_by_gains(tmp_path, monkeypatch):
    environments.register("credit-probe", CreditProbe, "test environment of the UCB credit")
    monkeypatch.setattr(CreditProbe, "last_skill", {})
    chosen: list[str] = []
    score = Teacher.score

    def spy(self, samples, skills):
        for task, (name, _) in skills.items():
            CreditProbe.last_skill[task] = name
            chosen.append(name)
        return score(self, samples, skills)

    monkeypatch.setattr(Teacher, "score", spy)
    # "bad" is the newer skill, so UCB tries it first
    library = fixture_library(tmp_path / "library", None, {"t0": {"good": "a lesson", "bad": "another lesson"}})
    run_cli("--config", str(ROOT / "configs" / "sokoban_skillsd.yaml"), "--model", "tiny-random",
            "--max-iterations", "8", "--run-dir", str(tmp_path / "run"), "env.name=credit-probe", "env.options={}",
            "env.max_eval_tasks=1", "rollout.tasks_per_iteration=1", "rollout.group_size=2",
            "rollout.max_new_tokens=2", "rollout.max_turns=1", "eval.every=0", "checkpoint_every=0",
            "teacher.summarize=false", "teacher.library_embedder=hashing", f"teacher.library_path={library}")
    assert len(chosen) == 8 and chosen[0] == "bad"
    assert chosen.count("good") > chosen.count("bad") and chosen[-1] == "good", chosen
    usage = {s.name: s.task_usage["t0"] for s in SkillLibrary.open(library)}
    assert usage["good"].mean_reward > usage["bad"].mean_reward
    successes = [r["success_rate"] for r in read_metrics(tmp_path / "run") if "loss" in r]
    assert successes[0] == 0.0 and max(successes) == 1.0
