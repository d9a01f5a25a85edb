"""End-to-end subcommands: ``skillkit run`` (the whole pipeline) and ``skillkit evaluate``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from skillkit.cli.common import console, friendly_errors, progress, quiet_libraries


class _RichHooks:
    """Pipeline progress drawn as rich progress bars, one per stage."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar
        self.task: Any = None

    def stage(self, name: str, total: int | None = None) -> None:
        if self.task is not None:  # close the previous stage's bar
            total = self.bar.tasks[self.task].total or 1
            self.bar.update(self.task, total=total, completed=total)
        self.task = self.bar.add_task(name, total=total)

    def advance(self, n: int = 1) -> None:
        if self.task is not None:
            self.bar.advance(self.task, n)

    def log(self, message: str) -> None:
        self.bar.console.print(f"  [dim]{message}[/]", highlight=False)


def train_from_dict(data: dict[str, Any], run_dir: Path, log: Any) -> Path:
    """The pipeline's training stage: validate a trainer config dict and train (the CLI may import trainer)."""
    from skillkit.core.config import validate_config
    from trainer.config import TrainConfig
    from trainer.train import train

    return train(validate_config(TrainConfig, data, "train stage of the pipeline config"), run_dir=run_dir, log=log)


def _results_table(results: list[Any], title: str) -> Table:
    table = Table(title=title)
    for col in ("agent", "env", "episodes", "success (TGC)", "SGC", "mean steps", "mean return"):
        table.add_column(col, justify="right" if col not in ("agent", "env") else "left")
    for r in results:
        sgc = "-" if r.scenario_success_rate is None else f"{100 * r.scenario_success_rate:.1f}%"
        table.add_row(r.label, r.env, str(r.episodes), f"{100 * r.success_rate:.1f}%", sgc, f"{r.mean_steps:.1f}",
                      f"{r.mean_return:.2f}")
    return table


@friendly_errors
def run(
    config: Path = typer.Option(Path("configs/demo.yaml"), "--config", "-c", help="Pipeline YAML."),
    overrides: list[str] = typer.Argument(None, help="key=value overrides, e.g. sokoban.eval_tasks=8"),
    model: str | None = typer.Option(None, "--model", "-m", help="Override the model (name, path or HF id)."),
    no_train: bool = typer.Option(False, "--no-train", help="Skip the Skill-SD training stage."),
) -> None:
    """Run the whole pipeline: experience -> skill library -> router -> agent with/without skills -> Skill-SD student -> report.md.

    Every stage shows a progress bar. The run folder (runs/<name>-<time>/) gets the resolved config, seed, versions, trajectories, the library, the training run, plots and report.md.
    """  # noqa: E501 - typer keeps line breaks
    import json

    from skillkit.evaluate import EvalResult
    from skillkit.pipeline import load_pipeline_config, run_pipeline

    quiet_libraries()
    overrides = list(overrides or [])
    if model:
        overrides.append(f"model={model}")
    if no_train:
        overrides.append("train.enabled=false")
    cfg = load_pipeline_config(config, overrides)
    with progress() as bar:
        run_dir = run_pipeline(cfg, train_fn=train_from_dict, hooks=_RichHooks(bar))
    summary = json.loads((run_dir / "summary.json").read_text())
    console.print(_results_table([EvalResult(**r) for r in summary["results"]], "Held-out evaluation"))
    console.print(f"library: {summary['library'].get('tiers')}  |  timings (s): {summary['timings']}")
    console.print(f"[bold green]report:[/] {run_dir / 'report.md'}")


@friendly_errors
def evaluate(
    env: str = typer.Option(..., "--env", "-e", help="Environment name (see `skillkit env list`)."),
    split: str = typer.Option("test", help="Task split."),
    library: Path | None = typer.Option(None, "--library", "-l", help="Skill library: also evaluate with skills."),
    model: str = typer.Option("smollm2-135m", "--model", "-m", help="Model name, local path or HF id."),
    n_tasks: int | None = typer.Option(None, "--n-tasks", "-n", help="First N tasks of the split (default all)."),
    option: list[str] = typer.Option(None, "--option", "-o", help="Environment option key=value (repeatable)."),
    method: str = typer.Option("dense", help="Routing method: dense, bm25, hybrid, rerank."),
    max_skills: int = typer.Option(3, help="Most skills shown per prompt."),
    max_new_tokens: int = typer.Option(48, help="Tokens per action."),
    out: Path | None = typer.Option(None, "--out", help="Write the trajectories here (JSONL)."),
) -> None:
    """Success rate (and TGC/SGC for the app suite), mean steps and return, with and without skills."""
    import environments
    from skillkit.agent import AgentConfig, SkillAgent
    from skillkit.core.config import parse_override
    from skillkit.evaluate import evaluate_agent
    from skillkit.core.llm.hf import HFBackend
    from skillkit.core.schemas import write_jsonl

    quiet_libraries()
    options = {}
    for item in option or []:
        keys, value = parse_override(item)
        options[".".join(keys)] = value
    task_ids = environments.task_ids(env, split, n_tasks, **options)
    if not task_ids:
        raise ValueError(f"split {split!r} of {env!r} has no tasks")
    with console.status(f"loading {model}"):
        backend = HFBackend.from_pretrained(model)
    agents = [("no skills", None)]
    if library is not None:
        from retriever.router import Router
        from skillkit.skills.library import open_skill_source

        with console.status("building the router"):
            agents.append(("with skills", Router.from_library(open_skill_source(library), encoder="minilm",
                                                              reranker=None)))
    config = AgentConfig(max_skills=max_skills, max_new_tokens=max_new_tokens, route_method=method)
    results, trajectories = [], []
    with progress() as bar:
        for label, router in agents:
            task = bar.add_task(f"{label} on {env}/{split}", total=len(task_ids))
            result, trajs = evaluate_agent(SkillAgent(backend, router, config), lambda: environments.make(env, **options),
                                           task_ids, label=label, split=split,
                                           on_batch=lambda n, t=task: bar.advance(t, n))
            results.append(result)
            trajectories.extend(trajs)
    console.print(_results_table(results, f"{env} / {split}"))
    if out is not None:
        write_jsonl(out, trajectories)
        console.print(f"trajectories: {out}")


def register(app: typer.Typer) -> None:
    """Add ``run`` and ``evaluate``."""
    app.command("run")(run)
    app.command("evaluate")(evaluate)
