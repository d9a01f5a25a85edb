"""``skillkit train``: train a student (GRPO, Skill-SD, OPD, SFT, ...) from a YAML config."""

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
    from trainer.train import resolve_config
    from trainer.train import train as run_training

    cfg = resolve_config(config, overrides or [], model, max_iterations, resume)
    out = run_training(cfg, resume=resume, run_dir=run_dir, log=lambda m: console.print(m, highlight=False))
    console.print(f"[bold green]done[/]: {out}  (metrics.jsonl, curves.png, checkpoints/, final/)")


def register(app: typer.Typer) -> None:
    """Add ``skillkit train``."""
    app.command("train")(train)
