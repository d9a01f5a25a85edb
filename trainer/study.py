"""A study: named methods (arms) x seeds from one warm start at equal budget, analysed per level.

``skillkit study --config configs/study_cpu.yaml`` (docs/design.md section 10):

1. the warm start (a model folder or name, a training run's ``final/``, a checkpoint folder or a
   LoRA adapter folder; default the training config's model) is resolved once into a model folder
   that every run loads, so the arms differ only in their method and seed;
2. every arm x seed trains with the same training config and the study's ``overrides`` (the
   budget: iterations, tasks per iteration, group size, evaluation tasks), then the trainer's own
   evaluation at the last iteration gives the per-task outcomes; each result is one JSON file
   ``results/<arm>__seed<k>.json``, skipped when present, so a later call with more arms or
   seeds merges into the same folder (a result made with another budget is refused);
3. the analysis pairs the arms on the evaluation tasks they share: per metric, every arm's mean
   with a 95% bootstrap interval over tasks and seeds (:func:`skillkit.core.stats.bootstrap_mean`),
   the paired difference to the baseline (``grpo``) with its interval, p-value and minimum
   detectable effect (:func:`skillkit.core.stats.paired_comparison`); ``grpo_control`` is GRPO
   with disjoint seeds analysed like a method, the A/A control: its difference to ``grpo`` is
   what noise alone looks like at this size;
4. written into the study folder: ``summary.json``, ``per_level.csv`` (one row per task and
   metric, one column per arm: the mean over seeds), ``study.png`` (means with 95% error bars).

``--smoke`` swaps in ``tiny-random`` and a tiny budget so the whole pipeline runs in well under a
minute (a test); the numbers it prints mean nothing.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydantic import Field

from skillkit.core.config import InputFile, StrictModel, load_config
from skillkit.core.fileio import atomic_write_text
from skillkit.core.models import adapter_base, save_merged, save_model_folder
from skillkit.core.stats import bootstrap_mean, normal_mde, paired_comparison, seed_unit_matrix
from trainer.checkpoint import STATE_FILE, checkpoint_config, load_checkpoint
from trainer.config import Method, TrainConfig, load_train_config
from trainer.metrics import read_metrics
from trainer.train import evaluate_start, load_policy, train

Log = Callable[[str], None]

#: Scalar evaluation metrics reported per arm (over seeds) when the trainer's evaluation gives them.
SCALAR_METRICS = ("eval_success_rate", "eval_mean_return", "eval_dense_greedy_optimal",
                  "eval_dense_logprob_optimal")

#: A tiny budget on the tiny random model: the study pipeline end to end in seconds.
SMOKE_OVERRIDES = [
    "model.name=tiny-random", "model.lora=null", "iterations=1", "checkpoint_every=0", "eval.every=0",
    "rollout.tasks_per_iteration=1", "rollout.group_size=2", "rollout.max_new_tokens=4", "rollout.max_turns=1",
    "rollout.save_trajectories=false", "env.max_train_tasks=4", "env.max_eval_tasks=6",
    "teacher.library_embedder=hashing", "optim.micro_batch_size=8",
]


class ArmSpec(StrictModel):
    """One arm: a training method, a seed offset (disjoint seeds for a control) and its own overrides."""

    name: str
    method: Method
    seed_offset: int = Field(0, ge=0)
    overrides: list[str] = Field(default_factory=list)
    train: bool = True      # False: evaluate the starting model as it is (the untrained reference)


#: The named arms; a study lists them by name (or gives an :class:`ArmSpec`).
ARMS: dict[str, ArmSpec] = {
    "grpo": ArmSpec(name="grpo", method="grpo"),
    # the warm start itself, evaluated like every arm's final model: what training added
    "untrained": ArmSpec(name="untrained", method="grpo", train=False),
    "grpo_control": ArmSpec(name="grpo_control", method="grpo", seed_offset=1000),
    "skillsd": ArmSpec(name="skillsd", method="skillsd"),
    "opsd": ArmSpec(name="opsd", method="opsd"),
    # the shared training config may name a sync interval; the frozen teacher's is 0 by definition
    "skillsd_frozen": ArmSpec(name="skillsd_frozen", method="skillsd_frozen", overrides=["teacher.sync_every=0"]),
    "opd": ArmSpec(name="opd", method="opd"),
    "skill_in_prompt_grpo": ArmSpec(name="skill_in_prompt_grpo", method="skill_in_prompt_grpo"),
    # the distillation methods of docs/training.md's method table
    "gt_auto": ArmSpec(name="gt_auto", method="skillsd_gt", overrides=["loss.gt_alpha=auto"]),
    **{f"gt_alpha_{a}": ArmSpec(name=f"gt_alpha_{a}", method="skillsd_gt", overrides=[f"loss.gt_alpha={a}"])
       for a in ("0", "0.1", "0.3", "1")},
    "anchored": ArmSpec(name="anchored", method="skillsd", overrides=["generations=4", "teacher.anchor_beta=0.3"]),
    "unanchored": ArmSpec(name="unanchored", method="skillsd", overrides=["generations=4", "teacher.anchor_beta=0"]),
    "paced": ArmSpec(name="paced", method="skillsd", overrides=["loss.paced={a: 1.0, b: 1.0}"]),
    "srpo": ArmSpec(name="srpo", method="skillsd", overrides=["loss.srpo={enabled: true, uncertainty_weight: 0.1}"]),
    "sdar": ArmSpec(name="sdar", method="skillsd", overrides=["loss.sdar={tau: 1.0, max_weight: 2.0}"]),
}


class Selection(StrictModel):
    """Choose the best of ``candidates`` on the dev tasks, compare ``arm`` with that choice on the rest.

    The evaluation tasks every arm shares, sorted, are split: the first ``dev_tasks`` are the dev
    half, where the candidate with the highest mean ``metric`` is chosen (ties: the first listed);
    the others are the test half, where ``arm`` minus the chosen candidate is reported, paired, with
    its 95% interval. E.g. ``gt_alpha=auto`` against the best fixed alpha, without the test half
    choosing the alpha it is compared with.
    """

    arm: str
    candidates: list[str] = Field(min_length=1)
    dev_tasks: int = Field(ge=1)
    metric: str = "success"


class StudyConfig(StrictModel):
    """A study (see the module docstring). ``train_config`` is relative to the study's YAML file;
    ``output_dir`` and a ``warm_start`` folder, like every output, to the working folder."""

    name: str = "study"
    train_config: InputFile                             # the training YAML every arm shares (relative to this file)
    output_dir: str = "runs/study"
    warm_start: str | None = None                       # a model name, or a folder relative to the working folder
    arms: list[str | ArmSpec] = Field(default_factory=lambda: ["grpo", "skillsd", "opsd", "grpo_control"])
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2])
    overrides: list[str] = Field(default_factory=list)  # the equal budget, applied to every arm
    baseline: str = "grpo"
    resamples: int = Field(4000, ge=100)
    selections: list[Selection] = Field(default_factory=list)  # dev/test choices, reported after the arms

    def arm_specs(self) -> list[ArmSpec]:
        """The arms as specs (names looked up in :data:`ARMS`)."""
        specs = []
        for arm in self.arms:
            if isinstance(arm, ArmSpec):
                specs.append(arm)
            elif arm in ARMS:
                specs.append(ARMS[arm])
            else:
                raise ValueError(f"unknown arm {arm!r}; named arms: {', '.join(ARMS)} (or give name/method/overrides)")
        names = [a.name for a in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"arm names must be unique, got {names}")
        return specs


def load_study_config(path: str | Path, overrides: Sequence[str] = ()) -> StudyConfig:
    """Load a study YAML with ``key=value`` overrides."""
    return load_config(StudyConfig, path, list(overrides))


# ---------------------------------------------------------------------------------------------
# The warm start
# ---------------------------------------------------------------------------------------------

def resolve_warm_start(spec: str | None, out_dir: Path, log: Log = print) -> str | None:
    """A model name or folder every arm loads (None: the training config's model).

    A model folder or name is used as it is; a training run folder gives its ``final/``; a
    checkpoint (``state.pt``) or a peft adapter folder (``adapter_config.json``) is merged once into
    ``<study>/warm_start/`` (reused by later calls).
    """
    if spec is None:
        return None
    path = Path(spec)
    if not path.exists():
        return spec                                        # a model name (smollm2-135m, a hub id)
    if (path / "config.json").exists() and not (path / "adapter_config.json").exists():
        return str(path)
    if (path / "final" / "config.json").exists():
        return str(path / "final")
    target = out_dir / "warm_start"
    if (target / "config.json").exists():
        return str(target)
    if (path / "adapter_config.json").exists():
        merged = save_merged(adapter_base(path), path, target)
    elif (path / STATE_FILE).exists() or (path / "checkpoints").exists():
        cfg = TrainConfig.model_validate(checkpoint_config(path))
        model, tokenizer = load_policy(cfg, "cpu", seed=cfg.seed)
        model.load_state_dict(load_checkpoint(path)["model"])
        if hasattr(model, "merge_and_unload"):
            model = model.merge_and_unload()
        merged = save_model_folder(model, tokenizer, target)
    else:
        raise ValueError(f"warm start {spec!r} is neither a model folder, a run folder (final/), a checkpoint "
                         "(state.pt) nor an adapter folder (adapter_config.json)")
    log(f"warm start {spec} -> {merged}")
    return merged


# ---------------------------------------------------------------------------------------------
# Runs
# ---------------------------------------------------------------------------------------------

def budget_of(cfg: TrainConfig) -> dict[str, Any]:
    """What must be equal between arms for a fair comparison (checked when results are merged)."""
    return {
        "model": cfg.model.name, "lora": cfg.model.lora.model_dump() if cfg.model.lora else None,
        "env": cfg.env.model_dump(), "iterations": cfg.iterations,
        "tasks_per_iteration": cfg.rollout.tasks_per_iteration, "group_size": cfg.rollout.group_size,
        "max_turns": cfg.rollout.max_turns, "max_new_tokens": cfg.rollout.max_new_tokens,
        "eval_temperature": cfg.eval.temperature,
    }


def unit_outcomes(result: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per-task outcomes of the trainer's evaluation as ``{metric: {task: value}}``.

    Reads ``eval_outcomes`` (or ``outcomes``) of the evaluation record: ``{task: value}`` (a
    success) or ``{task: {metric: value}}`` or a list of ``{"task_id": ..., metric: value}``, and
    the per-level dense metrics ``eval_dense_outcomes`` (``{task: {metric: value}}``); numeric
    fields only.
    """
    raw = result.get("eval_outcomes") or result.get("outcomes")
    if not raw:
        raise ValueError("the trainer's evaluation gave no per-task `outcomes`; a study needs them to pair arms")
    if isinstance(raw, list):
        raw = {str(row["task_id"]): {k: v for k, v in row.items() if k != "task_id"} for row in raw}
    out: dict[str, dict[str, float]] = {}
    for outcomes in (raw, result.get("eval_dense_outcomes") or {}):
        for task, value in outcomes.items():
            fields = value if isinstance(value, dict) else {"success": value}
            for metric, v in fields.items():
                if isinstance(v, (bool, int, float)) and v is not None and math.isfinite(float(v)):
                    out.setdefault(metric, {})[str(task)] = float(v)
    return out


def arm_config(study: StudyConfig, arm: ArmSpec, seed: int, warm: str | None = None,
               extra: Sequence[str] = ()) -> TrainConfig:
    """The training config of one arm x seed: the study's shared budget, then the arm's own overrides."""
    overrides = [*study.overrides, *extra, *arm.overrides, f"method={arm.method}", f"seed={seed + arm.seed_offset}",
                 f"name={study.name}-{arm.name}-seed{seed}"]
    if warm is not None:
        overrides.append(f"model.name={warm}")
    return load_train_config(study.train_config, overrides)


def run_arm(study: StudyConfig, arm: ArmSpec, seed: int, warm: str | None, out_dir: Path,
            extra: Sequence[str]) -> dict[str, Any]:
    """Train one arm with one seed and return its result (outcomes per task, scalar metrics)."""
    cfg = arm_config(study, arm, seed, warm, extra)
    run_dir = out_dir / "runs" / f"{arm.name}__seed{seed}"
    shutil.rmtree(run_dir, ignore_errors=True)   # a run without a result file was interrupted: start it afresh
    t0 = time.perf_counter()
    (train if arm.train else evaluate_start)(cfg, run_dir=run_dir, log=lambda m: None)
    evals = [r for r in read_metrics(run_dir) if "eval_success_rate" in r]
    if not evals:
        raise RuntimeError(f"{run_dir}: the run logged no evaluation")
    final = evals[-1]
    return {
        "arm": arm.name, "method": arm.method, "seed": seed, "train_seed": cfg.seed,
        "iteration": final["iteration"], "run_dir": str(run_dir), "wall_s": time.perf_counter() - t0,
        "budget": budget_of(cfg), "scalars": {k: final[k] for k in SCALAR_METRICS if isinstance(final.get(k), (int, float))},
        "outcomes": unit_outcomes(final),
    }


def result_path(out_dir: Path, arm: str, seed: int) -> Path:
    """Where the result of one arm x seed lives."""
    return out_dir / "results" / f"{arm}__seed{seed}.json"


def run_study(study: StudyConfig, smoke: bool = False, log: Log = print) -> dict[str, Any]:
    """Run the missing arm x seed results, then analyse every result in the folder; returns the summary."""
    out_dir = Path(study.output_dir)
    (out_dir / "results").mkdir(parents=True, exist_ok=True)
    extra = SMOKE_OVERRIDES if smoke else []
    warm = None if smoke else resolve_warm_start(study.warm_start, out_dir, log)
    budget = budget_of(load_train_config(study.train_config, [*study.overrides, *extra]
                                         + ([f"model.name={warm}"] if warm else [])))
    for path in sorted((out_dir / "results").glob("*.json")):
        if json.loads(path.read_text())["budget"] != budget:
            raise ValueError(f"{path} was trained with another budget than this study's; use another "
                             "output_dir or remove it")
    for arm in study.arm_specs():
        # evaluation is greedy: an untrained arm gives the same outcomes under every seed
        for seed in study.seeds if arm.train else study.seeds[:1]:
            path = result_path(out_dir, arm.name, seed)
            if path.exists():
                log(f"{arm.name} seed {seed}: done before ({path.name})")
                continue
            log(f"{arm.name} seed {seed}: " + (f"training ({arm.method}, seed {seed + arm.seed_offset})"
                                               if arm.train else "evaluating the starting model"))
            result = run_arm(study, arm, seed, warm, out_dir, extra)
            atomic_write_text(path, json.dumps(result, indent=1))
            log(f"{arm.name} seed {seed}: success {result['scalars'].get('eval_success_rate', float('nan')):.3f} "
                f"({result['wall_s']:.0f}s)")
    results = [json.loads(p.read_text()) for p in sorted((out_dir / "results").glob("*.json"))]
    summary = analyse(results, study.baseline, study.resamples)
    summary["selections"] = [select_on_dev(results, sel, study.resamples) for sel in study.selections]
    summary.update(name=study.name, budget=budget, warm_start=warm or study.warm_start, smoke=smoke)
    write_outputs(summary, out_dir)
    log(format_summary(summary))
    return summary


# ---------------------------------------------------------------------------------------------
# Analysis
# ---------------------------------------------------------------------------------------------

def paired_columns(results: Sequence[dict[str, Any]], metric: str) -> tuple[list[str], dict[str, Any]]:
    """The evaluation tasks every arm with ``metric`` shares (sorted) and, per arm, its seeds x tasks matrix."""
    per_arm: dict[str, dict[int, dict[str, float]]] = {}
    for r in results:
        if metric in r["outcomes"]:
            per_arm.setdefault(r["arm"], {})[r["seed"]] = r["outcomes"][metric]
    if not per_arm:
        return [], {}
    matrices = {arm: seed_unit_matrix(seeds) for arm, seeds in per_arm.items()}
    common = sorted(set.intersection(*(set(units) for units, _ in matrices.values())))
    return common, {arm: matrix[:, [units.index(u) for u in common]] for arm, (units, matrix) in matrices.items()}


def analyse(results: Sequence[dict[str, Any]], baseline: str = "grpo", resamples: int = 4000) -> dict[str, Any]:
    """Means with 95% intervals per arm, paired differences to the baseline, per-level outcomes."""
    arms = list(dict.fromkeys(r["arm"] for r in results))
    metrics = sorted({m for r in results for m in r["outcomes"]})
    out: dict[str, Any] = {"arms": arms, "baseline": baseline, "seeds": {}, "metrics": {}, "per_level": {},
                           "scalars": {}}
    for arm in arms:
        out["seeds"][arm] = sorted(r["seed"] for r in results if r["arm"] == arm)
    for metric in metrics:
        common, cols = paired_columns(results, metric)
        if not common:
            continue
        block: dict[str, Any] = {"units": len(common), "arms": {}}
        for arm, m in cols.items():
            entry: dict[str, Any] = {"estimate": bootstrap_mean(m, resamples).as_dict()}
            if arm != baseline and baseline in cols:
                entry["vs_baseline"] = paired_comparison(cols[baseline], m, resamples).as_dict()
            block["arms"][arm] = entry
        if baseline in cols and metric == "success":
            p = float(cols[baseline].mean())
            # a rate of 0 or 1 would plan an MDE of 0: plan at no less than 5% / no more than 95%
            block["planning_mde"] = normal_mde(min(max(p, 0.05), 0.95), len(common))
        out["metrics"][metric] = block
        out["per_level"][metric] = {u: {arm: float(cols[arm][:, i].mean()) for arm in cols} for i, u in enumerate(common)}
    for key in SCALAR_METRICS:
        by_arm = {arm: [r["scalars"][key] for r in results if r["arm"] == arm and key in r["scalars"]] for arm in arms}
        est = {arm: bootstrap_mean([[v] for v in vals], resamples).as_dict() for arm, vals in by_arm.items() if vals}
        if est:
            out["scalars"][key] = est
    return out


def select_on_dev(results: Sequence[dict[str, Any]], selection: Selection, resamples: int = 4000) -> dict[str, Any]:
    """One :class:`Selection`: the candidates' dev means, the choice, and ``arm`` minus it on the test half."""
    units, cols = paired_columns(results, selection.metric)
    out: dict[str, Any] = selection.model_dump()
    missing = [a for a in (selection.arm, *selection.candidates) if a not in cols]
    if missing:
        return {**out, "skipped": f"no {selection.metric} results for {', '.join(missing)} yet"}
    n = selection.dev_tasks
    if n >= len(units):
        raise ValueError(f"selection for {selection.arm}: dev_tasks={n} leaves no test tasks of the {len(units)} shared")
    dev_means = {c: float(cols[c][:, :n].mean()) for c in selection.candidates}
    chosen = max(selection.candidates, key=lambda c: dev_means[c])   # max keeps the first of equals
    test = paired_comparison(cols[chosen][:, n:], cols[selection.arm][:, n:], resamples).as_dict()
    return {**out, "dev_units": units[:n], "test_units": units[n:], "dev_means": dev_means, "chosen": chosen,
            "test_arm_mean": float(cols[selection.arm][:, n:].mean()),
            "test_chosen_mean": float(cols[chosen][:, n:].mean()), "test_vs_chosen": test}


def write_outputs(summary: dict[str, Any], out_dir: Path) -> None:
    """``summary.json``, ``per_level.csv`` and ``study.png`` in the study folder."""
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=1))
    rows = [[metric, unit, *[values.get(arm, "") for arm in summary["arms"]]]
            for metric, levels in summary["per_level"].items() for unit, values in levels.items()]
    tmp = out_dir / ".per_level.csv.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["metric", "task", *summary["arms"]])
        writer.writerows(rows)
    tmp.replace(out_dir / "per_level.csv")
    plot_study(summary, out_dir / "study.png")


def plot_study(summary: dict[str, Any], path: Path) -> Path:
    """One column per metric: each arm's mean with its 95% interval (top) and each arm's paired
    difference to the baseline with its 95% interval and the zero line (bottom: what decides)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = list(summary["metrics"]) or ["(none)"]
    fig, axes = plt.subplots(2, len(metrics), figsize=(4.5 * len(metrics), 7.0), squeeze=False)
    for col, metric in enumerate(metrics):
        block = summary["metrics"].get(metric, {})
        arms = block.get("arms", {})
        panels = (("estimate", list(arms), f"{metric} (95% CI, n={block.get('units', 0)} tasks)"),
                  ("vs_baseline", [a for a in arms if "vs_baseline" in arms[a]],
                   f"minus {summary.get('baseline', 'baseline')}, paired (95% CI)"))
        for row, (key, names, title) in enumerate(panels):
            ax = axes[row][col]
            values = [arms[a][key] if key == "estimate" else arms[a][key]["diff"] for a in names]
            means = [v["mean"] for v in values]
            # max(0, .): float rounding can put a constant arm's mean a hair outside its interval
            low = [max(0.0, m - v["low"]) for m, v in zip(means, values)]
            high = [max(0.0, v["high"] - m) for m, v in zip(means, values)]
            if row == 0:
                ax.bar(range(len(names)), means, yerr=[low, high], capsize=4, color="#7aa6c2")
            else:
                ax.errorbar(range(len(names)), means, yerr=[low, high], fmt="o", capsize=5, color="#c2567a")
                ax.axhline(0.0, color="black", linewidth=0.8)
                ax.set_xlim(-0.5, max(len(names), 1) - 0.5)
            ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
            ax.set_title(title, fontsize=9)
            ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def format_summary(summary: dict[str, Any]) -> str:
    """A text table: per metric and arm, the mean [95% CI] and the paired difference to the baseline."""
    lines = []
    for metric, block in summary["metrics"].items():
        lines.append(f"{metric} over {block['units']} tasks" +
                     (f" (planning MDE {block['planning_mde']:.3f})" if "planning_mde" in block else ""))
        for arm, entry in block["arms"].items():
            e = entry["estimate"]
            line = f"  {arm:<22} {e['mean']:.3f} [{e['low']:.3f}, {e['high']:.3f}]  seeds {e['n_seeds']}"
            if "vs_baseline" in entry:
                c = entry["vs_baseline"]
                d = c["diff"]
                line += (f"  vs {summary['baseline']}: {d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}] "
                         f"p={c['p_value']:.3f} MDE {c['mde']:.3f}")
            lines.append(line)
    for sel in summary.get("selections", []):
        if "skipped" in sel:
            lines.append(f"selection {sel['arm']} vs best of {', '.join(sel['candidates'])}: {sel['skipped']}")
            continue
        d = sel["test_vs_chosen"]["diff"]
        lines.append(f"selection on {sel['metric']}: {sel['chosen']} is the best of {', '.join(sel['candidates'])} on "
                     f"{len(sel['dev_units'])} dev tasks; on the other {len(sel['test_units'])} tasks {sel['arm']} minus "
                     f"it: {d['mean']:+.3f} [{d['low']:+.3f}, {d['high']:+.3f}] "
                     f"p={sel['test_vs_chosen']['p_value']:.3f} MDE {sel['test_vs_chosen']['mde']:.3f}")
    return "\n".join(lines)

