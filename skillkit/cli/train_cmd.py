"""``skillkit train``: train a student (GRPO, Skill-SD, OPSD, OPD, SFT, ...) from a YAML config;
``skillkit study``: arms x seeds from one warm start at equal budget, with paired statistics."""

from __future__ import annotations

from pathlib import Path

import typer

from skillkit.cli.common import console, friendly_errors, quiet_libraries


@friendly_errors
def train(
    overrides: list[str] | None = typer.Argument(
        None, help="Config overrides key=value (dots for nested keys), e.g. rollout.group_size=4 method=grpo."),
    config: Path | None = typer.Option(None, "--config", "-c", help="Training config YAML (configs/*.yaml)."),
    model: str | None = typer.Option(None, "--model", "-m", help="Policy model: name, local path or HF id."),
    max_iterations: int | None = typer.Option(None, "--max-iterations", help="Stop after at most N iterations."),
    resume: Path | None = typer.Option(None, "--resume", help="Checkpoint folder (or run folder) to resume from."),
    run_dir: Path | None = typer.Option(None, "--run-dir", help="Write the run here instead of runs/<name>-<time>."),
) -> None:
    """Train a policy: rollouts -> teacher scoring -> GRPO / Skill-SD update, with eval and checkpoints."""
    if config is None and resume is None:
        raise ValueError("give --config CONFIG.yaml (or --resume CHECKPOINT)")
    quiet_libraries()
    # torch and transformers load only when a command trains
    from trainer.train import resolve_config
    from trainer.train import train as run_training

    cfg = resolve_config(config, overrides or [], model, max_iterations, resume)
    out = run_training(cfg, resume=resume, run_dir=run_dir, log=lambda m: console.print(m, highlight=False))
    console.print(f"[bold green]done[/]: {out}  (metrics.jsonl, curves.png, checkpoints/, final/)")


@friendly_errors
def study(
    overrides: list[str] | None = typer.Argument(
        None, help="Study overrides key=value, e.g. output_dir=runs/s2 'overrides=[iterations=10]'."),
    config: Path = typer.Option(..., "--config", "-c", help="Study YAML (configs/study_cpu.yaml)."),
    arms: str | None = typer.Option(None, "--arms", help="Comma-separated arm names (replaces the config's)."),
    seeds: str | None = typer.Option(None, "--seeds", help="Comma-separated seeds (replaces the config's)."),
    output_dir: Path | None = typer.Option(None, "--output-dir", "-o", help="Result folder (merged into)."),
    smoke: bool = typer.Option(False, "--smoke", help="tiny-random and a tiny budget: checks the pipeline in seconds."),
) -> None:
    """Run a study: every arm x seed trains from one warm start at equal budget (results already in the
    folder are kept), then per-level paired outcomes, 95% intervals, paired tests against GRPO and a plot."""
    quiet_libraries()
    # torch and transformers load only when a command trains
    from trainer.study import load_study_config, run_study

    extra = list(overrides or [])
    if arms:
        extra.append(f"arms=[{arms}]")
    if seeds:
        extra.append(f"seeds=[{seeds}]")
    if output_dir is not None:
        extra.append(f"output_dir={output_dir}")
    cfg = load_study_config(config, extra)
    run_study(cfg, smoke=smoke, log=lambda m: console.print(m, highlight=False))
    console.print(f"[bold green]done[/]: {cfg.output_dir}  (results/, summary.json, per_level.csv, study.png)")


def register(app: typer.Typer) -> None:
    """Add ``skillkit train`` and ``skillkit study``."""
    app.command("train")(train)
    app.command("study")(study)
