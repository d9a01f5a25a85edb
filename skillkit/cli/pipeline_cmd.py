"""End-to-end subcommands: ``skillkit run`` (the whole pipeline) and ``skillkit evaluate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.table import Table
from rich.text import Text

import environments
from retriever.router import Router
from skillkit.agent import AgentConfig
from skillkit.cli.common import console, friendly_errors, progress, quiet_libraries
from skillkit.core.config import parse_override, validate_config
from skillkit.core.models import load_causal_lm
from skillkit.core.schemas import write_jsonl
from skillkit.evaluate import evaluate_side_by_side
from skillkit.pipeline import REPO_CONFIGS, load_pipeline_config, run_pipeline, train_stage_config
from skillkit.skills.bundle import SkillFiles
from skillkit.skills.library import open_skill_source
from trainer.config import TrainConfig
from trainer.evaluation import EvalResult


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


def _train_config(data: dict[str, Any], config_dir: Path | None) -> Any:
    return validate_config(TrainConfig, data, "train stage of the pipeline config", config_dir)


def train_from_dict(data: dict[str, Any], run_dir: Path, log: Any, config_dir: Path | None = None) -> Path:
    """The pipeline's training stage: validate a trainer config dict and train (the CLI may import trainer)."""
    from trainer.train import train  # torch and transformers load only when a command trains

    return train(_train_config(data, config_dir), run_dir=run_dir, log=log)


def _results_table(results: list[Any], title: str) -> Table:
    def ci(r: Any, name: str, scale: float = 100.0, digits: int = 1, unit: str = "%") -> str:
        value = getattr(r, name)
        if value is None:
            return "-"
        low, high = r.intervals.get(name, (value, value))
        return f"{scale * value:.{digits}f}{unit} [{scale * low:.{digits}f}, {scale * high:.{digits}f}]"

    table = Table(title=title)
    columns = ("agent", "env", "episodes", "success_rate", "sgc", "mean_steps", "mean_return", "dense_greedy_optimal",
               "dense_logprob_optimal", "dense_teacher_advantage")
    for col in columns:
        table.add_column(col, justify="right" if col not in ("agent", "env") else "left")
    for r in results:
        table.add_row(r.label, r.env, str(r.episodes), ci(r, "success_rate"), ci(r, "sgc"), f"{r.mean_steps:.1f}",
                      ci(r, "mean_return", 1, 2, ""), ci(r, "dense_greedy_optimal"),
                      ci(r, "dense_logprob_optimal", 1, 3, ""), ci(r, "dense_teacher_advantage", 1, 3, ""))
    return table


def load_backend(model: str, adapter: Path | None = None) -> Any:
    """An HF backend over ``model``, with a peft LoRA adapter folder merged into it when given."""
    # torch and transformers load only when a command runs a model
    from skillkit.core.llm.hf import HFBackend

    return HFBackend(*load_causal_lm(model, adapter=adapter))


@friendly_errors
def run(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="Pipeline YAML (default: configs/demo.yaml here, else the repository's)."),
    overrides: list[str] = typer.Argument(None, help="key=value overrides, e.g. sokoban.eval_tasks=8"),
    model: str | None = typer.Option(None, "--model", "-m", help="Override the model (name, path or HF id)."),
    no_train: bool = typer.Option(False, "--no-train", help="Skip the Skill-SD training stage."),
) -> None:
    """Run the whole pipeline: experience -> skill library -> router -> agent with/without skills -> Skill-SD student -> report.md.

    Every stage shows a progress bar. The run folder (runs/<name>-<time>/) gets the resolved config, seed, versions, trajectories, the library, the training run, plots and report.md.
    """  # noqa: E501 - typer keeps line breaks
    quiet_libraries()
    overrides = list(overrides or [])
    if model:
        overrides.append(f"model={model}")
    if no_train:
        overrides.append("train.enabled=false")
    if config is None:
        config = Path("configs/demo.yaml") if Path("configs/demo.yaml").exists() else REPO_CONFIGS / "demo.yaml"
    cfg = load_pipeline_config(config, overrides)
    if cfg.train.enabled:  # check the training stage's config now, not after the first stages' minutes
        _train_config(*train_stage_config(cfg, Path("runs")))
    with progress() as bar:
        run_dir = run_pipeline(cfg, train_fn=train_from_dict, hooks=_RichHooks(bar))
    summary = json.loads((run_dir / "summary.json").read_text())
    console.print(_results_table([EvalResult(**r) for r in summary["results"]], "Held-out evaluation"))
    for item in summary.get("comparisons", []):
        console.print(Text(item["text"], style="bold" if item["significant"] else ""))
    console.print(f"library: {summary['library'].get('tiers')}  |  timings (s): {summary['timings']}")
    console.print(f"[bold green]report:[/] {run_dir / 'report.md'}")


@friendly_errors
def evaluate(
    env: str = typer.Option("sokoban", "--env", "-e", help="Environment name (see `skillkit env list`)."),
    split: str = typer.Option("test", help="Task split."),
    levels: Path | None = typer.Option(None, "--levels", help='Your own Sokoban levels: JSONL, one {"id", "grid"} '
                                       "per line (replaces the split)."),
    library: Path | None = typer.Option(None, "--library", "-l", help="Skill library: also evaluate with skills."),
    model: str = typer.Option("smollm2-135m", "--model", "-m", help="Model name, local path or HF id."),
    adapter: Path | None = typer.Option(None, "--adapter", help="A peft LoRA adapter folder to apply to the model."),
    n_tasks: int | None = typer.Option(None, "--n-tasks", "-n", help="First N tasks of the split (default all)."),
    option: list[str] = typer.Option(None, "--option", "-o", help="Environment option key=value (repeatable)."),
    method: str = typer.Option("auto", help="Routing method: auto (the reranker trained for the library when there "
                               "is one, else dense), dense, bm25, hybrid, rerank."),
    max_skills: int = typer.Option(3, help="Most skills shown per prompt."),
    disclosure: str = typer.Option("body", "--disclosure", help="body: whole skills in the prompt; progressive: "
                                   "names and descriptions, the model reads bodies and files with read_skill(...)."),
    max_new_tokens: int = typer.Option(48, help="Tokens per action."),
    dense_states: int = typer.Option(256, "--dense-states", help="Held-out states for the dense metric (0: off)."),
    out: Path | None = typer.Option(None, "--out", help="Write the trajectories here (JSONL)."),
    json_out: bool = typer.Option(False, "--json", help="Print the results as JSON instead of a table."),
) -> None:
    """success_rate (and sgc on the app suite), mean_steps, mean_return with 95% intervals and per-task outcomes, the dense metric, with and without skills."""  # noqa: E501 - typer keeps line breaks
    quiet_libraries()
    options: dict[str, Any] = {}
    for item in option or []:
        keys, value = parse_override(item)
        options[".".join(keys)] = value
    if levels is not None:
        if env != "sokoban":
            raise ValueError(f"--levels holds Sokoban levels; it cannot be used with --env {env}")
        options["levels_file"] = str(levels)
    task_ids = environments.task_ids(env, split, n_tasks, **options)
    if not task_ids:
        raise ValueError(f"split {split!r} of {env!r} has no tasks")
    with console.status(f"loading {model}" + (f" + adapter {adapter}" if adapter else "")):
        backend = load_backend(model, adapter)
    router, files = None, None
    if library is not None:
        with console.status("building the router"):
            # the dense-stage encoder and reranker distilled / trained for this library, when they exist
            router = Router.from_library(open_skill_source(library), encoder="auto", reranker="auto")
        files = SkillFiles.of(library) if library.is_dir() else None
    config = AgentConfig(max_skills=max_skills, max_new_tokens=max_new_tokens, route_method=method,
                         disclosure=disclosure)
    with progress() as bar:
        def on_label(label: str) -> Any:
            task = bar.add_task(f"{label} on {env}/{split}", total=len(task_ids))
            return lambda n: bar.advance(task, n)

        results, trajectories = evaluate_side_by_side(backend, router, config, lambda: environments.make(env, **options),
                                                      task_ids, split, dense_states=dense_states, progress=on_label,
                                                      files=files)
    if json_out:
        print(json.dumps([r.model_dump(mode="json") for r in results]))
    else:
        console.print(_results_table(results, f"{env} / {split}"))
    if out is not None:
        write_jsonl(out, trajectories)
        console.print(f"trajectories: {out}")


def register(app: typer.Typer) -> None:
    """Add ``run`` and ``evaluate``."""
    app.command("run")(run)
    app.command("evaluate")(evaluate)
