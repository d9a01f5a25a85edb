"""``skillkit library``: build a skill library from trajectories, inspect it, export/import SKILL.md,
merge duplicates, roll back a skill."""

from __future__ import annotations

import json
import time
import uuid
import warnings
from pathlib import Path
from typing import Optional

import typer
from rich.markdown import Markdown
from rich.table import Table

from skillkit.cli.common import console, err_console, fail, friendly_errors, quiet_libraries
from skillkit.core.schemas import read_trajectories
from skillkit.skills.bundle import attach_folder, bundled_files
from skillkit.skills.extract import Extractor, LLMMerger, merge_duplicates
from skillkit.skills.impact import load_run_trajectories, skill_impact
from skillkit.skills.library import LibraryRepairWarning, SkillLibrary
from skillkit.skills.skillmd import export_skills, import_collection
from skillkit.skills.summarize import Summarizer, group_by_task

library_app = typer.Typer(help="Skill libraries: build from trajectories, inspect, export/import SKILL.md, merge.",
                          no_args_is_help=True)

TIER_CHOICES = ("trajectory", "planning", "functional", "atomic")


def _open(path: Path, embedder: str | None = None):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LibraryRepairWarning)
        lib = SkillLibrary.load(path, embedder=embedder)
    for w in caught:
        err_console.print(f"[yellow]warning:[/] {w.message}", highlight=False)
    return lib


def _tiers(value: str) -> list[str]:
    tiers = [t.strip() for t in value.split(",") if t.strip()]
    bad = [t for t in tiers if t not in TIER_CHOICES]
    if bad:
        raise ValueError(f"unknown tier(s) {', '.join(bad)}: use {', '.join(TIER_CHOICES)}")
    return tiers


def _check_tier(tier: str | None) -> None:
    if tier is not None and tier not in TIER_CHOICES:
        raise ValueError(f"unknown tier {tier!r}: use one of {', '.join(TIER_CHOICES)}")


@library_app.command("build")
@friendly_errors
def build(
    trajectories: list[Path] = typer.Option(..., "--trajectories", "-t", help="Trajectory JSONL file(s)."),
    out: Path = typer.Option(..., "--out", "-o", help="Library folder (created, or extended when it exists)."),
    summarizer: str = typer.Option("heuristic", "--summarizer", help="llm or heuristic (fast, no model)."),
    model: str = typer.Option("smollm2-135m", "--model", "-m", help="Model for --summarizer llm."),
    extractor: Optional[str] = typer.Option(  # noqa: UP045 - typer needs Optional
        None, "--extractor", help="llm or heuristic for the planning/functional/atomic tiers (default: as --summarizer)."),
    tiers: str = typer.Option("trajectory,planning,functional,atomic", "--tiers", help="Tiers to build, comma-separated."),
    embedder: str = typer.Option("minilm", "--embedder", help="Embedder of a new library (minilm, hashing, a path)."),
    threshold: float = typer.Option(0.85, "--threshold", help="Cosine at or above which a candidate modifies a skill."),
    merge_threshold: float = typer.Option(0.90, "--merge-threshold", help="Cosine for merging duplicates (0 = off)."),
    max_new_tokens: int = typer.Option(256, "--max-new-tokens", help="Tokens per model answer."),
    max_retries: int = typer.Option(2, "--max-retries", help="Retries of an invalid model answer before the fallback."),
    constrained: bool = typer.Option(True, "--constrained/--free-json",
                                     help="Hold model answers to their JSON schema (constrained decoding) or not."),
    device: str = typer.Option("auto", "--device", help="Device of the model (auto, cpu, cuda)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Summarize trajectories (grouped by task) into trajectory skills, extract planning / functional /
    atomic skills, ADD/MODIFY/KEEP them against the library, merge duplicates, save."""
    quiet_libraries()
    if summarizer not in ("llm", "heuristic"):
        raise ValueError(f"--summarizer must be llm or heuristic, not {summarizer!r}")
    extractor = extractor or summarizer
    if extractor not in ("llm", "heuristic"):
        raise ValueError(f"--extractor must be llm or heuristic, not {extractor!r}")
    wanted = _tiers(tiers)
    started = time.perf_counter()
    trajs = [t for path in trajectories for t in read_trajectories(path)]
    if not trajs:
        raise ValueError("the trajectory files hold no episode")
    backend = None
    if "llm" in (summarizer, extractor):
        # torch and transformers load only when a command runs a model
        from skillkit.core.llm.hf import HFBackend

        with console.status(f"loading {model}"):
            backend = HFBackend.from_pretrained(model, device=device)
    lib = _open(out, None) if SkillLibrary.exists(out) else SkillLibrary.create(out, embedder=embedder)
    extraction_round = 1 + max((s.extraction_round for s in lib), default=0)
    groups = list(group_by_task(trajs).values())
    summ = Summarizer(backend if summarizer == "llm" else None, max_retries=max_retries,
                      max_new_tokens=max_new_tokens, constrained=constrained)
    summaries = []
    if "trajectory" in wanted:
        with console.status(f"summarizing {len(groups)} task group(s) ({summarizer})"):
            summaries = summ.summarize_many(groups, extraction_round=extraction_round)
    ex = Extractor(backend if extractor == "llm" else None, max_retries=max(0, min(max_retries, 1)),
                   max_new_tokens=max_new_tokens, constrained=constrained, threshold=threshold, merge_threshold=merge_threshold or None)
    with console.status("extracting skills, deciding ADD/MODIFY/KEEP, merging duplicates"):
        report = ex.update(lib, trajs, tiers=[t for t in wanted if t != "trajectory"],
                           extraction_round=extraction_round, extra=summaries)
        lib.save()
    result = {
        "library": str(out), "episodes": len(trajs), "tasks": len(groups), "round": extraction_round,
        "summarizer": summarizer, "summarizer_stats": summ.stats.as_dict(), **report.as_dict(),
        "size": len(lib), "seconds": round(time.perf_counter() - started, 2),
    }
    if as_json:
        console.print_json(json.dumps(result))
        return
    table = Table(title=f"library {out} (round {extraction_round})")
    for col in ("tier", "ADD", "MODIFY", "KEEP", "in library"):
        table.add_column(col, justify="right" if col != "tier" else "left")
    tiers_now = lib.stats()["tiers"]
    counts = report.counts()
    for tier in TIER_CHOICES:
        row = counts.get(tier, {})
        table.add_row(tier, str(row.get("ADD", 0)), str(row.get("MODIFY", 0)), str(row.get("KEEP", 0)),
                      str(tiers_now.get(tier, 0)))
    console.print(table)
    s = summ.stats
    console.print(f"{len(trajs)} episode(s), {len(groups)} task(s); summaries: {s.llm_ok} from the model "
                  f"({s.repaired} repaired, {s.retried} retries), {s.fallback} deterministic; "
                  f"{len(report.merges)} duplicate cluster(s) merged; {result['seconds']} s", highlight=False)


@library_app.command("show")
@friendly_errors
def show(
    path: Path = typer.Argument(..., help="Library folder."),
    tier: Optional[str] = typer.Option(None, "--tier", help="Only this tier."),  # noqa: UP045
    name: Optional[str] = typer.Option(None, "--name", "-n", help="Show one skill in full."),  # noqa: UP045
    tag: Optional[list[str]] = typer.Option(None, "--tag", help="Only skills with this tag (repeatable)."),  # noqa: UP045
    env: Optional[str] = typer.Option(None, "--env", help="Only skills of this environment."),  # noqa: UP045
    query: Optional[str] = typer.Option(None, "--search", "-q", help="Rank by similarity to this text."),  # noqa: UP045
    limit: int = typer.Option(50, "--limit", help="Rows to show."),
    as_json: bool = typer.Option(False, "--json", help="Print skills as JSON."),
) -> None:
    """List skills (rich table), filter by tier/tag/env, search by meaning, or show one skill in full."""
    _check_tier(tier)
    lib = _open(path)
    if name is not None:
        skill = lib.get(name)
        if as_json:
            console.print_json(skill.model_dump_json())
            return
        console.rule(f"[bold]{skill.name}[/] ({skill.tier}, v{skill.version})")
        console.print(skill.description, highlight=False)
        meta = (f"id {skill.id} | env {skill.env or '-'} | tags {', '.join(skill.tags) or '-'} | round "
                f"{skill.extraction_round} | selected {skill.n_selected}x, mean reward {skill.mean_reward:.3f} | "
                f"tasks {', '.join(skill.source_tasks[:5]) or '-'}{' ...' if len(skill.source_tasks) > 5 else ''}")
        console.print(f"[dim]{meta}[/]", highlight=False)
        console.print(Markdown(skill.body_text()))
        files = bundled_files(skill)
        if files:
            console.print(f"[bold]bundled files[/] ({len(files)})")
            for f in files:
                console.print(f"  {f.path}  {f.size} B{'  (executable)' if f.executable else ''}", highlight=False)
        return
    if query:
        quiet_libraries()
        rows = [(s, score) for s, score in lib.search(query, k=limit, tier=tier, tags=tag or None, env=env)]
    else:
        rows = [(s, None) for s in lib.list(tier=tier, tags=tag or None, env=env)][:limit]
    if as_json:
        console.print_json(json.dumps([{**s.model_dump(mode="json"), **({"score": sc} if sc is not None else {})}
                                       for s, sc in rows]))
        return
    table = Table(title=f"{path} ({len(lib)} skills)")
    cols = ["name", "tier", "v", "env", "description", "selected", "mean reward"]
    if query:
        cols.insert(0, "score")
    for col in cols:
        table.add_column(col, overflow="fold")
    for skill, score in rows:
        cells = [skill.name, skill.tier, str(skill.version), skill.env or "-",
                 skill.description[:90] + ("..." if len(skill.description) > 90 else ""),
                 str(skill.n_selected), f"{skill.mean_reward:.2f}" if skill.n_selected else "-"]
        if query:
            cells.insert(0, f"{score:.3f}")
        table.add_row(*cells)
    console.print(table)


@library_app.command("stats")
@friendly_errors
def stats(path: Path = typer.Argument(..., help="Library folder."),
          as_json: bool = typer.Option(False, "--json", help="Print as JSON.")) -> None:
    """Counts per tier and environment, embedding model, index state, usage and history."""
    lib = _open(path)
    info = lib.stats()
    manifest = lib.manifest()
    info["files"] = {k: v.get("size") for k, v in manifest.get("files", {}).items()}
    if as_json:
        console.print_json(json.dumps(info))
        return
    table = Table(title=f"library {path}", show_header=False)
    table.add_column("key")
    table.add_column("value", overflow="fold")
    table.add_row("skills", str(info["count"]))
    for tier, n in info["tiers"].items():
        table.add_row(f"  {tier}", str(n))
    table.add_row("environments", ", ".join(f"{k}: {v}" for k, v in info["envs"].items()) or "-")
    table.add_row("embedding model", f"{info['embedding_model']} (dim {info['dim']})")
    table.add_row("index", "up to date" if info["index_up_to_date"] else "will be rebuilt on the next save")
    table.add_row("generation", str(info["generation"]))
    table.add_row("extraction rounds", ", ".join(map(str, info["extraction_rounds"])) or "-")
    table.add_row("selections", f"{info['selections']} (reward sum {info['reward_sum']:.2f})")
    table.add_row("history records", str(info["history_records"]))
    table.add_row("files", ", ".join(f"{k} {v} B" for k, v in info["files"].items()))
    console.print(table)


@library_app.command("export")
@friendly_errors
def export(
    path: Path = typer.Argument(..., help="Library folder."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write one <name>/SKILL.md per skill into."),
    tier: Optional[str] = typer.Option(None, "--tier", help="Only this tier."),  # noqa: UP045
) -> None:
    """Export skills as Agent Skills folders (SKILL.md with YAML front matter, and the bundled files)."""
    _check_tier(tier)
    lib = _open(path)
    files = export_skills(lib.list(tier=tier), out, store=lib.file_store())
    console.print(f"wrote {len(files)} SKILL.md folder(s) to {out}")


@library_app.command("import")
@friendly_errors
def import_cmd(
    source: Path = typer.Argument(..., help="A folder of SKILL.md folders (or one skill folder / file)."),
    out: Path = typer.Option(..., "--out", "-o", help="Library folder (created when missing)."),
    embedder: str = typer.Option("minilm", "--embedder", help="Embedder of a new library."),
    on_conflict: str = typer.Option("skip", "--on-conflict", help="When a name exists: skip, replace or rename."),
    strict: bool = typer.Option(False, "--strict", help="Import nothing when any SKILL.md is broken."),
) -> None:
    """Import SKILL.md folders, whole (bundled scripts, references and assets too), into a library.

    A broken SKILL.md is reported with its path and reason and the others are imported (unless
    --strict); skillkit exports round-trip losslessly."""
    if on_conflict not in ("skip", "replace", "rename"):
        raise ValueError("--on-conflict must be skip, replace or rename")
    quiet_libraries()
    found = import_collection(source, strict=strict)
    for bad in found.broken:
        err_console.print(f"[yellow]skipped[/] {bad.path}: {bad.reason}", highlight=False)
    for item in found.skills:
        for message in item.warnings:
            err_console.print(f"[yellow]warning:[/] {item.folder}: {message}", highlight=False)
    lib = _open(out) if SkillLibrary.exists(out) else SkillLibrary.create(out, embedder=embedder)
    store = lib.file_store()
    added = replaced = skipped = 0
    for item in found.skills:
        skill = attach_folder(item.skill, item.folder, store)
        if skill.name in lib or skill.id in lib:
            if on_conflict == "skip":
                skipped += 1
                continue
            if on_conflict == "replace":
                lib.update(skill, op="import")
                replaced += 1
                continue
            skill = skill.model_copy(update={"name": lib.unique_name(skill.name), "id": uuid.uuid4().hex[:16]})
        lib.add(skill)
        added += 1
    lib.save()
    console.print(f"imported {added} skill(s) into {out} ({replaced} replaced, {skipped} skipped, "
                  f"{len(found.broken)} broken); library size {len(lib)}")


@library_app.command("merge")
@friendly_errors
def merge(
    path: Path = typer.Argument(..., help="Library folder."),
    threshold: float = typer.Option(0.90, "--threshold", help="Cosine similarity at or above which skills merge."),
    tier: Optional[str] = typer.Option(None, "--tier", help="Only this tier."),  # noqa: UP045
    merger: str = typer.Option("heuristic", "--merger", help="heuristic or llm."),
    model: str = typer.Option("smollm2-135m", "--model", "-m", help="Model for --merger llm."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Only show what would be merged."),
) -> None:
    """Merge near-duplicate skills (embedding clusters, then a deterministic or LLM merge)."""
    _check_tier(tier)
    if merger not in ("heuristic", "llm"):
        raise ValueError("--merger must be heuristic or llm")
    quiet_libraries()
    lib = _open(path)
    fn = None
    if merger == "llm":
        # torch and transformers load only when a command runs a model
        from skillkit.core.llm.hf import HFBackend

        fn = LLMMerger(HFBackend.from_pretrained(model))
    results = merge_duplicates(lib, threshold=threshold, tier=tier, merger=fn, dry_run=dry_run)
    if not dry_run:
        lib.save()
    table = Table(title=f"{'would merge' if dry_run else 'merged'} {len(results)} cluster(s) (cosine >= {threshold})")
    for col in ("kept", "tier", "version", "folded in"):
        table.add_column(col, overflow="fold")
    for r in results:
        table.add_row(r.kept.name, r.kept.tier, str(r.kept.version), ", ".join(r.removed))
    console.print(table)


@library_app.command("rollback")
@friendly_errors
def rollback(
    path: Path = typer.Argument(..., help="Library folder."),
    name: str = typer.Option(..., "--name", "-n", help="Skill name or id (a removed skill is restored)."),
    version: Optional[int] = typer.Option(None, "--version", help="Version to restore (default: the previous)."),  # noqa: UP045
) -> None:
    """Restore the previous (or a given) version of a skill from the history."""
    lib = _open(path)
    skill = lib.rollback(name, version=version)
    lib.save()
    console.print(f"{skill.name} is now version {skill.version}")


@library_app.command("history")
@friendly_errors
def history(
    path: Path = typer.Argument(..., help="Library folder."),
    name: Optional[str] = typer.Option(None, "--name", "-n", help="Only this skill."),  # noqa: UP045
) -> None:
    """Previous versions kept for rollback (modify, merge, remove, rollback)."""
    lib = _open(path)
    table = Table(title=f"history of {name or path}")
    for col in ("when", "op", "name", "version", "tier"):
        table.add_column(col)
    for rec in lib.history(name):
        sk = rec["skill"]
        table.add_row(str(rec.get("at", ""))[:19], rec["op"], sk.get("name", ""), str(sk.get("version", "")),
                      sk.get("tier", ""))
    console.print(table)


@library_app.command("reindex")
@friendly_errors
def reindex(
    path: Path = typer.Argument(..., help="Library folder."),
    full: bool = typer.Option(False, "--full", help="Re-embed every skill, not only changed ones."),
    embedder: Optional[str] = typer.Option(None, "--embedder", help="Switch to this embedder (re-embeds all)."),  # noqa: UP045
) -> None:
    """Rebuild the index now (after a repair warning, a hand edit, or to change the embedder)."""
    quiet_libraries()
    lib = _open(path, embedder)
    n = lib.reindex(full=full or embedder is not None)
    console.print(f"embedded {n} skill(s); index of {len(lib)} skills with {lib.embedding_model} saved")


@library_app.command("search")
@friendly_errors
def search(
    path: Path = typer.Argument(..., help="Library folder."),
    query: str = typer.Argument(..., help="What you need a skill for."),
    k: int = typer.Option(5, "-k", help="How many skills."),
    tier: Optional[str] = typer.Option(None, "--tier", help="Only this tier."),  # noqa: UP045
) -> None:
    """The skills closest in meaning to a query (FAISS over the library's embeddings)."""
    _check_tier(tier)
    quiet_libraries()
    lib = _open(path)
    hits = lib.search(query, k=k, tier=tier)
    if not hits:
        fail("the library is empty")
    table = Table(title=f"top {len(hits)} for {query!r}")
    for col in ("score", "name", "tier", "description"):
        table.add_column(col, overflow="fold")
    for skill, score in hits:
        table.add_row(f"{score:.3f}", skill.name, skill.tier, skill.description[:100])
    console.print(table)


@library_app.command("impact")
@friendly_errors
def impact(
    path: Path = typer.Argument(..., help="Library folder."),
    runs: list[Path] = typer.Option(..., "--runs", help="Run folders or trajectory JSONL files (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """For every skill: how often it was shown and success/return with it vs without skills on the
    same tasks, plus the skills never shown, so you can prune what does not help."""
    lib = _open(path)
    trajectories = load_run_trajectories(runs)
    if not trajectories:
        fail(f"no trajectories found in {', '.join(str(r) for r in runs)}")
    impacts = [i for i in skill_impact(trajectories) if i.name in lib]
    never = sorted(set(lib.names()) - {i.name for i in impacts})
    if as_json:
        console.print_json(json.dumps({"impact": [i.model_dump() | {"success_delta": i.success_delta}
                                                  for i in impacts], "never_shown": never}))
        return
    table = Table(title=f"skill impact over {len(trajectories)} episodes")
    for col in ("skill", "episodes", "tasks", "success with", "success without", "delta", "return with",
                "return without"):
        table.add_column(col, justify="left" if col == "skill" else "right", overflow="fold")

    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f}%"

    for i in impacts:
        delta = i.success_delta
        colour = "green" if delta and delta > 0 else "red" if delta and delta < 0 else "white"
        table.add_row(i.name, str(i.episodes), str(i.tasks), pct(i.success_with), pct(i.success_without),
                      f"[{colour}]{'-' if delta is None else f'{100 * delta:+.1f}'}[/]", f"{i.return_with:.2f}",
                      "-" if i.return_without is None else f"{i.return_without:.2f}")
    console.print(table)
    console.print(f"{len(never)} of {len(lib)} skills were never shown in these runs")


def register(app: typer.Typer) -> None:
    """Add ``skillkit library`` to the main app."""
    app.add_typer(library_app, name="library")
