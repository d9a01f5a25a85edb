"""``skillkit run``: the three jobs end to end on one config.

1. collect experience on Sokoban and the app suite: the model's own episodes (plus the oracle's
   expert episodes only when ``library.source: oracle`` names that ground-truth baseline);
2. build a skill library from it (summarize, extract tiers, merge) and a router over it;
3. evaluate the agent with and without routed skills on held-out tasks;
4. train a student with Skill-SD (teacher = same weights + library skills) and evaluate it;
5. write ``report.md``, PNG plots and the trajectories into the run folder.

Training lives in the ``trainer`` package; the pipeline uses only its evaluation
(:mod:`trainer.evaluation`, the one set of metric names) and the caller passes the training
function, ``train_fn(config: dict, run_dir: Path, log: Callable[[str], None], config_dir: Path) -> Path``
returning the training run folder (the CLI passes ``skillkit.cli.pipeline_cmd.train_from_dict``)::

    from skillkit.pipeline import PipelineConfig, run_pipeline
    from skillkit.cli.pipeline_cmd import train_from_dict
    run_pipeline(PipelineConfig(), train_fn=train_from_dict)
"""

from __future__ import annotations

import functools
import json
import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

import environments
from environments.base import run_expert_episode
from retriever.router import Router
from skillkit.agent import AgentConfig, SkillAgent
from skillkit.core.config import (
    InputFile,
    StrictModel,
    apply_overrides,
    create_run_dir,
    load_config,
    read_yaml,
)
from skillkit.core.models import merged_model_dir
from skillkit.core.schemas import Trajectory, write_jsonl
from skillkit.evaluate import evaluate_agent, evaluate_side_by_side, routed_skill_text
from skillkit.report import (
    comparisons,
    comparisons_text,
    eval_table,
    impact_table,
    plot_success,
    plot_tiers,
    write_report,
)
from skillkit.skills.extract import Extractor
from skillkit.skills.impact import skill_impact
from skillkit.skills.library import SkillLibrary
from skillkit.skills.routing_text import attach_routing_text
from skillkit.skills.summarize import Summarizer, group_by_task
from trainer.evaluation import DenseProbe, EvalResult


class EnvRunConfig(StrictModel):
    """One environment of the pipeline: how many tasks to collect on and evaluate."""

    enabled: bool = True
    options: dict[str, Any] = Field(default_factory=dict)
    expert_tasks: int = Field(16, ge=0, description="train tasks played by the oracle's expert "
                                                     "(only with library.source: oracle)")
    agent_tasks: int = Field(8, ge=0, description="train tasks played by the model itself")
    collect_episodes: int = Field(1, ge=1, description="episodes the model plays on each of those tasks")
    collect_temperature: float | None = Field(None, ge=0.0, description="sampling temperature of those episodes "
                                              "(default: agent.temperature); above 0 the episodes of one task "
                                              "differ, so summaries can contrast what worked with what failed")
    eval_tasks: int = Field(16, ge=1, description="held-out tasks for evaluation")
    eval_split: str = "test"
    dense_states: int = Field(32, ge=0, description="held-out states for the dense metric (the study uses >= 256)")
    max_new_tokens: int = Field(32, ge=1)
    route_method: Literal["auto", "rerank", "dense", "bm25", "hybrid"] | None = Field(None, description="the router's method on this environment's tasks "
                                     "(default: agent.route_method); Sokoban routes by layout tokens, where bm25 "
                                     "beats dense (benchmarks/README.md, routing by layout)")


class LibraryStageConfig(StrictModel):
    """How experience becomes a library."""

    source: str = Field("own", pattern="^(own|oracle)$",
                        description="own: the model's own episodes only; oracle: also the environments' expert "
                                    "episodes (a ground-truth baseline, not learning from experience)")
    summarizer: str = Field("llm", pattern="^(llm|heuristic)$")
    llm_groups: int = Field(4, ge=0, description="task groups summarized by the model (the rest: heuristic)")
    max_new_tokens: int = Field(192, ge=16)
    constrained: bool = Field(True, description="hold the model's summaries to their JSON schema (constrained "
                                                "decoding); false lets it write freely (repair and retries only)")
    extract_tiers: bool = True
    merge_threshold: float = Field(0.9, gt=0.0, le=1.0)


#: The repository's configs/ folder (the defaults when no config file names others).
REPO_CONFIGS = Path(__file__).resolve().parents[1] / "configs"


class TrainStageConfig(StrictModel):
    """The Skill-SD stage: a trainer config file (relative to the pipeline config's folder) plus
    overrides (``key=value``)."""

    enabled: bool = True
    config: InputFile = str(REPO_CONFIGS / "sokoban_skillsd.yaml")
    overrides: list[str] = Field(default_factory=list)


class PipelineConfig(StrictModel):
    """Everything ``skillkit run`` does; ``configs/demo.yaml`` is the 10-minute CPU default."""

    name: str = "demo"
    seed: int = 0
    model: str = "smollm2-135m"
    adapter: InputFile | None = Field(None, description="a peft LoRA adapter folder merged into the model "
                                      "for every stage (a warm start; relative to the config file)")
    output_root: str = "runs"
    notes: list[str] = Field(default_factory=list, description="lines the report shows first (what this run "
                             "leaves out and why, where its model comes from)")
    sokoban: EnvRunConfig = Field(default_factory=lambda: EnvRunConfig(options={"variant": "1box", "max_steps": 10}))
    apps: EnvRunConfig = Field(default_factory=lambda: EnvRunConfig(
        options={"max_steps": 3}, expert_tasks=12, agent_tasks=4, eval_tasks=6, max_new_tokens=96))
    library: LibraryStageConfig = Field(default_factory=LibraryStageConfig)
    agent: AgentConfig = Field(default_factory=AgentConfig)
    train: TrainStageConfig = Field(default_factory=TrainStageConfig)


class Hooks:
    """Progress callbacks (the CLI draws rich progress bars; Python callers may ignore them)."""

    def stage(self, name: str, total: int | None = None) -> None:
        """A new stage starts, with ``total`` units of work when known."""

    def advance(self, n: int = 1) -> None:
        """``n`` units of the current stage are done."""

    def log(self, message: str) -> None:
        """A line worth showing."""


def load_pipeline_config(path: str | Path | None, overrides: list[str] | None = None) -> PipelineConfig:
    """Read a pipeline YAML (or defaults) with ``key=value`` overrides; paths in it resolve
    relative to its folder, and the files it names must exist."""
    return load_config(PipelineConfig, path, overrides)


def _agent_config(cfg: PipelineConfig, env_cfg: EnvRunConfig) -> AgentConfig:
    """The agent's settings on one environment (its generation length and router method)."""
    update: dict[str, Any] = {"max_new_tokens": env_cfg.max_new_tokens}
    if env_cfg.route_method is not None:
        update["route_method"] = env_cfg.route_method
    return cfg.agent.model_copy(update=update)


def _envs(cfg: PipelineConfig) -> dict[str, EnvRunConfig]:
    return {name: c for name, c in (("sokoban", cfg.sokoban), ("apps", cfg.apps)) if c.enabled}


def collect_experience(backend: Any, cfg: PipelineConfig, hooks: Hooks) -> list[Trajectory]:
    """The model's own episodes on the train split of every enabled environment, plus the oracle's
    expert episodes when ``library.source`` is ``oracle``."""
    trajectories: list[Trajectory] = []
    for env_name, env_cfg in _envs(cfg).items():
        with environments.make(env_name, **env_cfg.options) as env:
            train_ids = env.task_ids("train")
            if cfg.library.source == "oracle":
                expert_ids = train_ids[:env_cfg.expert_tasks]
                hooks.stage(f"{env_name}: expert episodes (ground-truth baseline)", len(expert_ids))
                for task_id in expert_ids:
                    trajectory = run_expert_episode(env, task_id)
                    if trajectory is not None:
                        trajectories.append(trajectory)
                    hooks.advance()
        agent_ids = [t for t in train_ids[:env_cfg.agent_tasks] for _ in range(env_cfg.collect_episodes)]
        if agent_ids:
            hooks.stage(f"{env_name}: model episodes (no skills)", len(agent_ids))
            collect_cfg = _agent_config(cfg, env_cfg)
            if env_cfg.collect_temperature is not None:
                collect_cfg = collect_cfg.model_copy(update={"temperature": env_cfg.collect_temperature})
            agent = SkillAgent(backend, None, collect_cfg)
            _, model_trajs = evaluate_agent(agent, lambda n=env_name, o=env_cfg.options: environments.make(n, **o),
                                            agent_ids, label="collect", split="train", on_batch=hooks.advance)
            for t in model_trajs:
                t.metadata["source"] = "model"
            trajectories.extend(model_trajs)
    return trajectories


def build_library(trajectories: list[Trajectory], backend: Any, cfg: PipelineConfig, path: Path,
                  hooks: Hooks) -> tuple[Any, dict[str, Any]]:
    """Summarize trajectories (grouped by task) into a library, extract tiers, merge duplicates."""
    library = SkillLibrary.create(path)
    groups = list(group_by_task(trajectories).values())
    stats: dict[str, Any] = {"source": cfg.library.source,
                             "episodes": dict(Counter(t.metadata.get("source", "model") for t in trajectories))}
    n_llm = min(cfg.library.llm_groups, len(groups)) if cfg.library.summarizer == "llm" else 0
    hooks.stage("summarizing trajectories into skills", len(groups))
    skills = []
    if n_llm:
        llm = Summarizer(backend, max_new_tokens=cfg.library.max_new_tokens, constrained=cfg.library.constrained)
        skills += llm.summarize_many(groups[:n_llm])
        hooks.advance(n_llm)
        stats["llm_summarizer"] = llm.stats.as_dict()
    skills += Summarizer(None).summarize_many(groups[n_llm:])
    hooks.advance(len(groups) - n_llm)
    stats["skills_with_routing_text"] = attach_routing_text(skills, trajectories)
    stats["heuristic_summaries"] = len(groups) - n_llm
    if cfg.library.extract_tiers:
        hooks.stage("extracting planning / functional / atomic skills, ADD/MODIFY/KEEP, merging")
        report = Extractor(None, merge_threshold=cfg.library.merge_threshold).update(library, trajectories,
                                                                                     extra=skills)
        stats["extraction"] = report.counts()
    else:
        for skill in skills:
            library.add(skill)
    library.save()
    stats["tiers"] = library.stats()["tiers"]
    return library, stats


def run_pipeline(cfg: PipelineConfig, train_fn: Callable[..., Path] | None = None, hooks: Hooks | None = None,
                 run_dir: str | Path | None = None) -> Path:
    """Run every stage; returns the run folder holding ``report.md``, plots, library and trajectories."""
    # torch and transformers load only when the pipeline runs
    from skillkit.core.llm.hf import HFBackend

    hooks = hooks or Hooks()
    started = time.perf_counter()
    run = create_run_dir(cfg.name, cfg, seed=cfg.seed, root=cfg.output_root, run_dir=run_dir)
    timings: dict[str, float] = {}

    def timed(stage: str, t0: float) -> None:
        timings[stage] = round(time.perf_counter() - t0, 1)

    t0 = time.perf_counter()
    hooks.stage(f"loading {cfg.model}" + (f" + adapter {cfg.adapter}" if cfg.adapter else ""))
    model = merged_model_dir(cfg.model, cfg.adapter) if cfg.adapter else cfg.model
    backend = HFBackend.from_pretrained(model)
    timed("load model", t0)

    t0 = time.perf_counter()
    experience = collect_experience(backend, cfg, hooks)
    write_jsonl(run / "experience.jsonl", experience)
    timed("collect", t0)

    t0 = time.perf_counter()
    library, library_stats = build_library(experience, backend, cfg, run / "library", hooks)
    timed("library", t0)

    t0 = time.perf_counter()
    hooks.stage("building the router")
    router = Router.from_library(library, reranker=None)
    timed("router", t0)

    results: list[EvalResult] = []
    eval_trajs: list[Trajectory] = []

    def eval_tasks(env_name: str, env_cfg: EnvRunConfig) -> list[str]:
        return environments.task_ids(env_name, env_cfg.eval_split, env_cfg.eval_tasks, **env_cfg.options)

    def stage(env_name: str, n: int) -> Callable[[str], Callable[[int], None]]:
        def start(label: str) -> Callable[[int], None]:
            hooks.stage(f"evaluating {label} on {env_name}", n)
            return hooks.advance
        return start

    def record(new: list[EvalResult], trajs: list[Trajectory]) -> None:
        results.extend(new)
        eval_trajs.extend(trajs)
        for r in new:
            hooks.log(f"{r.label} / {r.env}: success {100 * r.success_rate:.1f}%")

    t0 = time.perf_counter()
    for env_name, env_cfg in _envs(cfg).items():
        agent_cfg = _agent_config(cfg, env_cfg)
        task_ids = eval_tasks(env_name, env_cfg)
        record(*evaluate_side_by_side(backend, router, agent_cfg, lambda n=env_name, o=env_cfg.options:
                                      environments.make(n, **o), task_ids, env_cfg.eval_split,
                                      dense_states=env_cfg.dense_states, seed=cfg.seed,
                                      progress=stage(env_name, len(task_ids))))
    timed("evaluate", t0)

    train_dir = None
    if cfg.train.enabled and train_fn is not None:
        t0 = time.perf_counter()
        train_dir = _train_student(cfg, run, train_fn, hooks, model)
        timed("train", t0)
        t0 = time.perf_counter()
        student = HFBackend.from_pretrained(str(train_dir / "final"))
        train_env = _train_env(train_dir)
        env_cfg = _envs(cfg).get(train_env)
        if env_cfg is not None:
            agent_cfg = _agent_config(cfg, env_cfg)
            task_ids = eval_tasks(train_env, env_cfg)
            make_env = functools.partial(environments.make, train_env, **env_cfg.options)
            with make_env() as env:
                probe = DenseProbe.build(env, task_ids, env_cfg.dense_states, cfg.seed)
            teacher = SkillAgent(student, router, agent_cfg)
            result, trajs = evaluate_agent(SkillAgent(student, None, agent_cfg), make_env, task_ids,
                                           "Skill-SD student", env_cfg.eval_split,
                                           on_batch=stage(train_env, len(task_ids))("Skill-SD student"),
                                           probe=probe, skill_text=routed_skill_text(teacher, make_env))
            record([result], trajs)
        timed("evaluate student", t0)

    write_jsonl(run / "eval_trajectories.jsonl", eval_trajs)
    impacts = skill_impact([t for t in eval_trajs if t.metadata.get("eval_label") in ("no skills", "with skills")])
    plots = {"success": plot_success(results, run / "success.png"),
             "tiers": plot_tiers(library_stats["tiers"], run / "skills_per_tier.png")}
    timings["total"] = round(time.perf_counter() - started, 1)
    sections = [("About this run", "\n".join(f"- {n}" for n in cfg.notes))] if cfg.notes else []
    compared = comparisons(results)
    sections += [
        ("Comparisons (paired on the same held-out tasks, 95% intervals)", comparisons_text(compared)),
        ("Evaluation (held-out tasks)", eval_table(results) + "\n\n![success](success.png)"),
        ("Skill library", _library_section(library_stats) + "\n\n![tiers](skills_per_tier.png)"),
        ("Skill impact (with vs without skills, same tasks)", impact_table(impacts)),
    ]
    if train_dir is not None:
        curves = "curves.png"
        sections.append(("Skill-SD training", f"Run folder: `{train_dir}`\n\n{_final_metrics(train_dir)}\n\n"
                         + (f"![curves]({os.path.relpath(train_dir / curves, run)})" if (train_dir / curves).exists() else "")))
    sections.append(("Timings (s)", "\n".join(f"- {k}: {v}" for k, v in timings.items())))
    write_report(run / "report.md", f"skillkit run: {cfg.name}", sections)
    (run / "summary.json").write_text(json.dumps({
        "results": [r.model_dump() for r in results], "library": library_stats, "timings": timings,
        "train_dir": str(train_dir) if train_dir else None, "plots": {k: str(v) for k, v in plots.items()},
        "impact": [i.model_dump() for i in impacts],
        "comparisons": [{**c.model_dump(), "significant": c.significant, "text": c.text()} for c in compared],
    }, indent=2, default=str))
    return run


def train_stage_config(cfg: PipelineConfig, run: Path, model: str | None = None) -> tuple[dict[str, Any], Path]:
    """The training stage's trainer config (as a dict, overrides applied) for run folder ``run``
    (starting from ``model``, default the config's), and the folder its relative paths resolve against."""
    data = apply_overrides(read_yaml(cfg.train.config), [
        f"model.name={model or cfg.model}", f"seed={cfg.seed}", f"output_root={run}",
        "teacher.skills=library", f"teacher.library_path={run / 'library'}", *cfg.train.overrides,
    ])
    return data, Path(cfg.train.config).resolve().parent


def _train_student(cfg: PipelineConfig, run: Path, train_fn: Callable[..., Path], hooks: Hooks, model: str) -> Path:
    data, config_dir = train_stage_config(cfg, run, model)
    hooks.stage("training a student with Skill-SD")
    return Path(train_fn(data, run_dir=run / "train", log=hooks.log, config_dir=config_dir))


def _train_env(train_dir: Path) -> str:
    return str(read_yaml(train_dir / "config.yaml").get("env", {}).get("name", "sokoban"))


def _final_metrics(train_dir: Path) -> str:
    path = train_dir / "metrics.jsonl"
    if not path.exists():
        return "(no metrics)"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    keys = ("iteration", "loss", "loss_grpo", "loss_sdl", "kl_student_teacher", "teacher_advantage", "reward_mean",
            "success_rate",
            "eval_success_rate", "eval_dense_greedy_optimal", "eval_dense_logprob_optimal")
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    for row in rows:
        lines.append("| " + " | ".join("-" if row.get(k) is None else
                                       (f"{row[k]:.4g}" if isinstance(row[k], float) else str(row[k]))
                                       for k in keys) + " |")
    return "\n".join(lines)


def _library_section(stats: dict[str, Any]) -> str:
    built_from = ("the model's own episodes only" if stats.get("source") == "own" else
                  "the model's own episodes and the oracle's expert episodes (ground-truth baseline)")
    lines = [f"- built from {built_from} (library.source: {stats.get('source')}; episodes: {stats.get('episodes')})",
             f"- skills per tier: {stats.get('tiers')}"]
    if "llm_summarizer" in stats:
        lines.append(f"- LLM summarizer: {stats['llm_summarizer']}")
    lines.append(f"- heuristic summaries: {stats.get('heuristic_summaries', 0)}")
    if "extraction" in stats:
        lines.append(f"- extraction: {stats['extraction']}")
    return "\n".join(lines)
