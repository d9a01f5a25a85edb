"""``skillkit env``: list environments, generate/solve/play Sokoban, run app tasks, set up AppWorld."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.table import Table

from environments import describe_envs
from environments.sokoban import SokobanEnv, generate_levels, solve
from environments.sokoban.splits import write_levels_jsonl
from skillkit.cli.common import console, fail, friendly_errors
from skillkit.core.fileio import atomic_write_text

# environments.apps (and the AppWorld bridge, which imports it) builds the app suite's tasks on import,
# about a second: the apps and appworld commands import it when they run, so `skillkit --help` stays fast.

env_app = typer.Typer(help="Environments: Sokoban, the offline app suite and the real-AppWorld bridge.",
                      no_args_is_help=True)
sokoban_app = typer.Typer(help="Text Sokoban: generate, solve and play levels.", no_args_is_help=True)
apps_app = typer.Typer(help="The offline AppWorld-style app suite.", no_args_is_help=True)
appworld_app = typer.Typer(help="The real AppWorld through a bridge in its own virtualenv.", no_args_is_help=True)
env_app.add_typer(sokoban_app, name="sokoban")
env_app.add_typer(apps_app, name="apps")
env_app.add_typer(appworld_app, name="appworld")

KEYS = {"w": "Up", "s": "Down", "a": "Left", "d": "Right", "k": "Up", "j": "Down", "h": "Left", "l": "Right"}


@env_app.command("list")
@friendly_errors
def list_cmd() -> None:
    """Show the registered environments."""
    table = Table(title="environments")
    table.add_column("name")
    table.add_column("description")
    for name, description in describe_envs().items():
        table.add_row(name, description)
    console.print(table)


@sokoban_app.command("generate")
@friendly_errors
def sokoban_generate(
    n: int = typer.Option(10, "--n", help="How many levels."),
    seed: int = typer.Option(0, "--seed", help="Random seed (same seed, same levels)."),
    size: int = typer.Option(6, "--size", help="Room side, walls included."),
    boxes: int = typer.Option(2, "--boxes", help="Boxes per level."),
    min_moves: int = typer.Option(1, "--min-moves", help="Smallest accepted optimal solution length."),
    max_moves: int = typer.Option(40, "--max-moves", help="Largest accepted optimal solution length."),
    out: Path = typer.Option(..., "--out", help="Output JSONL file."),
) -> None:
    """Generate solver-verified levels by reverse play; writes {id, grid, size, boxes, optimal_moves} lines."""
    if n < 1:
        raise ValueError("--n must be at least 1")
    start = time.perf_counter()
    levels = generate_levels(n, seed, size=size, boxes=boxes, min_moves=min_moves, max_moves=max_moves)
    elapsed = time.perf_counter() - start
    write_levels_jsonl(out, [lv.to_record(f"sokoban-{size}x{size}-{boxes}box-s{seed}-{i:04d}")
                             for i, lv in enumerate(levels)])
    lengths = [lv.optimal_moves for lv in levels]
    console.print(f"wrote {n} levels to {out} in {elapsed:.2f}s ({n / elapsed:.0f} levels/s); optimal moves "
                  f"{min(lengths)}-{max(lengths)}, mean {sum(lengths) / n:.1f}")


@sokoban_app.command("solve")
@friendly_errors
def sokoban_solve(
    levels_file: Path = typer.Argument(..., help="Level JSONL (lines with a 'grid') or a text file with one grid."),
    show: bool = typer.Option(False, "--show", help="Print each solution."),
) -> None:
    """Solve levels with the minimum-move solver and compare with their recorded optimal length."""
    if not levels_file.exists():
        raise FileNotFoundError(f"no such file: {levels_file}")
    text = levels_file.read_text(encoding="utf-8")
    if text.lstrip().startswith("{"):
        records = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except ValueError as exc:
                    raise ValueError(f"{levels_file}:{lineno}: not JSON: {exc}") from None
    else:
        records = [{"id": levels_file.stem, "grid": text}]
    table = Table(title=f"solutions of {levels_file}")
    for column in ("id", "recorded", "solver", "ms", "ok"):
        table.add_column(column)
    mismatches = 0
    for i, rec in enumerate(records):
        if "grid" not in rec:
            raise ValueError(f"{levels_file}: record {i} has no 'grid'")
        start = time.perf_counter()
        plan = solve(rec["grid"])
        ms = (time.perf_counter() - start) * 1000
        recorded = rec.get("optimal_moves")
        length = None if plan is None else len(plan)
        ok = length is not None and (recorded is None or recorded == length)
        mismatches += not ok
        table.add_row(str(rec.get("id", i)), str(recorded if recorded is not None else "-"),
                      "unsolvable" if plan is None else str(length), f"{ms:.1f}", "yes" if ok else "[red]NO[/]")
        if show and plan is not None:
            console.print(f"{rec.get('id', i)}: {' '.join(plan)}")
    console.print(table)
    if mismatches:
        fail(f"{mismatches} level(s) unsolvable or not matching their recorded optimal length", code=1)


@sokoban_app.command("play")
@friendly_errors
def sokoban_play(
    level: str = typer.Option(None, "--level", help="A level id from the splits (default: the first train level)."),
    variant: str = typer.Option("2box", "--variant", help="2box or 1box."),
    seed: int = typer.Option(None, "--seed", help="Play a freshly generated level instead."),
    max_steps: int = typer.Option(40, "--max-steps"),
) -> None:
    """Play a level in the terminal: type Up/Down/Left/Right (or w/a/s/d), 'hint', or 'quit'."""
    env = SokobanEnv(variant=variant, max_steps=max_steps)
    if seed is None and level is None:
        level = env.task_ids("train")[0]
    console.print(env.reset(task_id=level, seed=seed if level is None else None), highlight=False)
    total = 0.0
    while True:
        try:
            raw = input("move> ").strip()
        except EOFError:
            raw = "quit"
        if raw.lower() in ("q", "quit", "exit"):
            console.print(f"bye; total reward {total:.1f}")
            return
        if raw.lower() == "hint":
            plan = solve(env.render())
            console.print(f"hint: {plan[0] if plan else 'this position cannot be solved any more'}")
            continue
        action = " || ".join(KEYS.get(ch, ch) for ch in raw.lower()) if raw and set(raw.lower()) <= set(KEYS) else raw
        result = env.step(action)
        total += result.reward
        console.print(result.observation, highlight=False)
        console.print(f"reward {result.reward:+.1f} (total {total:+.1f})")
        if result.done:
            console.print("[green]solved![/]" if result.info["success"] else "[red]out of steps[/]")
            return


@apps_app.command("tasks")
@friendly_errors
def apps_tasks(split: str = typer.Option(
        None, "--split", help="train, dev, test_normal (alias test) or test_challenge (default: all).")) -> None:
    """List the app tasks with their scenario, split and difficulty."""
    from environments.apps import TASKS, task_ids

    chosen = task_ids(split) if split else list(TASKS)
    table = Table(title=f"app tasks ({len(chosen)})")
    table.add_column("task id", overflow="fold")
    for column in ("scenario", "split", "level", "instruction"):
        table.add_column(column)
    for tid in chosen:
        task = TASKS[tid]
        table.add_row(tid, task.scenario_id, task.split, str(task.difficulty), task.instruction)
    console.print(table)


@apps_app.command("stats")
@friendly_errors
def apps_stats(
    reference: bool = typer.Option(True, "--reference/--no-reference",
                                   help="Also run every reference solution (in-process) for the pass rate."),
) -> None:
    """Suite report: apps and APIs, scenarios and tasks per split and difficulty and per pattern, reference pass rate."""
    from environments.apps import SCENARIOS, SPLITS, TASKS, AppSuite, make_world, run_reference
    from environments.apps.patterns import pattern_matches
    from environments.apps.scenarios.base import PATTERNS

    suite = AppSuite(make_world(0))
    apps = Table(title="apps")
    for column in ("app", "APIs", "description"):
        apps.add_column(column)
    for name, app in suite.apps.items():
        apps.add_row(name, str(len(app.api_names())), app.description)
    apps.add_row("[bold]total[/]", str(sum(len(a.api_names()) for a in suite.apps.values())), "")
    console.print(apps)
    splits = Table(title="scenarios / tasks per split and difficulty")
    splits.add_column("split")
    for column in ("level 1", "level 2", "level 3", "all"):
        splits.add_column(column, justify="right")
    for split in SPLITS:
        cells = []
        for level in (1, 2, 3, None):
            chosen = [s for s in SCENARIOS if s.split == split and level in (None, s.difficulty)]
            ids = {s.id for s in chosen}
            cells.append(f"{len(chosen)} / {sum(t.scenario_id in ids for t in TASKS.values())}")
        splits.add_row(split, *cells)
    console.print(splits)
    patterns = Table(title="scenarios per pattern (in brackets: those with a train scenario sharing it)")
    patterns.add_column("pattern")
    for split in SPLITS:
        patterns.add_column(split, justify="right")
    for pattern in PATTERNS:
        cells = []
        for split in SPLITS:
            chosen = [s for s in SCENARIOS if s.split == split and s.pattern == pattern]
            matched = "" if split == "train" else f" ({sum(bool(pattern_matches(s.id)) for s in chosen)})"
            cells.append(f"{len(chosen)}{matched}")
        patterns.add_row(pattern, *cells)
    console.print(patterns)
    if reference:
        start = time.perf_counter()
        passed = sum(all(c.passed for c in run_reference(task).checks()) for task in TASKS.values())
        console.print(f"reference solutions: {passed}/{len(TASKS)} tasks pass "
                      f"({passed / len(TASKS):.1%}, {time.perf_counter() - start:.1f}s in-process)")
        if passed != len(TASKS):
            raise typer.Exit(1)


@apps_app.command("run-task")
@friendly_errors
def apps_run_task(
    task_id: str = typer.Argument(..., help="Task id (see `skillkit env apps tasks`)."),
    reference: bool = typer.Option(False, "--reference", help="Run the scripted reference solution."),
    code: Path = typer.Option(None, "--code", help="Run the Python code in this file instead."),
    show_code: bool = typer.Option(False, "--show-code", help="Print the code before running it."),
) -> None:
    """Run a scripted solution of one task in the sandbox and show the evaluation checks."""
    from environments.apps import AppsEnv

    if reference == (code is not None):
        raise ValueError("give exactly one of --reference or --code FILE")
    env = AppsEnv()
    try:
        console.print(env.reset(task_id), highlight=False)
        action = env.oracle().expert_actions(task_id)[0] if reference else code.read_text(encoding="utf-8")
        if show_code:
            console.print(action, highlight=False)
        result = env.step(action)
        console.print(result.observation, highlight=False)
        if not result.done:
            result = env.step("apis.supervisor.complete_task()")
        table = Table(title=f"checks of {task_id}")
        table.add_column("check")
        table.add_column("passed")
        table.add_column("detail")
        for check in result.info["checks"]:
            table.add_row(check["name"], "[green]yes[/]" if check["passed"] else "[red]no[/]",
                          "" if check["passed"] else check["detail"][:120])
        console.print(table)
        console.print(f"task goal completion: {'[green]success[/]' if result.info['success'] else '[red]failure[/]'}")
    finally:
        env.close()
    if not result.info["success"]:
        raise typer.Exit(1)


@appworld_app.command("setup")
@friendly_errors
def appworld_setup(python: Path = typer.Option(..., "--python", help="The interpreter of AppWorld's virtualenv.")) -> None:
    """Check an AppWorld interpreter (package and data) through the bridge and remember it."""
    from environments.appworld_bridge import BRIDGE_SCRIPT, AppWorldEnv, BridgeError, config_path

    try:
        env = AppWorldEnv(python=str(python))
    except BridgeError as exc:
        fail(f"{exc}\nIn that virtualenv: pip install appworld && appworld install && appworld download data")
        return
    hello = env.hello
    env.close()
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"python": str(python), "bridge": str(BRIDGE_SCRIPT)}, indent=2))
    console.print(f"AppWorld {hello.get('appworld_version')} OK (data: {hello.get('data')}); saved to {path}. "
                  "Use environments.make('appworld').")


def register(app: typer.Typer) -> None:
    """Add ``skillkit env`` to the main app."""
    app.add_typer(env_app, name="env")
