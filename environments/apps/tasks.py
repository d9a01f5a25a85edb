"""Tasks of the app suite: every scenario applied to several seeded worlds (its variants).

Splits follow AppWorld: ``train``, ``dev``, ``test_normal`` (unseen scenarios on apps that train
scenarios use) and ``test_challenge`` (scenarios that need an app no train scenario uses: file
storage). ``test`` is an alias of ``test_normal``. Task goal completion (TGC) = all checks of a
task pass; scenario goal completion (SGC) = all variants of a scenario pass.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from environments.apps.scenarios import ALL_SCENARIOS, Check, Scenario
from environments.apps.world import diff_state, make_world

VARIANTS_PER_SCENARIO = 5
MAX_SEED_TRIES = 40  # seeds tried per scenario to find worlds with fitting data
SPLITS = ("train", "dev", "test_normal", "test_challenge")
SPLIT_ALIASES = {"test": "test_normal", "test-normal": "test_normal", "test-challenge": "test_challenge"}
SCENARIOS: list[Scenario] = ALL_SCENARIOS


@dataclass
class Task:
    """One task: a scenario applied to one seeded world."""

    task_id: str
    scenario_id: str
    split: str
    seed: int
    instruction: str
    params: dict[str, Any]
    reference: str
    checker: Callable[[dict[str, Any], dict[str, Any], Any], list[Check]] = field(repr=False)
    difficulty: int = 1
    apps: tuple[str, ...] = ()

    def world(self) -> dict[str, Any]:
        """The task's initial database."""
        return make_world(self.seed)


def _variants(scenario: Scenario) -> list[Task]:
    """``VARIANTS_PER_SCENARIO`` tasks with different parameters from consecutive seeds."""
    base = zlib.crc32(scenario.id.encode()) % 100_000 * 100
    tasks: list[Task] = []
    seen: set[str] = set()
    for seed in range(base, base + MAX_SEED_TRIES):
        world = make_world(seed)
        params = scenario.params(world, random.Random(seed * 7 + 1))
        if params is None or repr(params) in seen:
            continue
        seen.add(repr(params))
        tasks.append(Task(f"{scenario.id}_{len(tasks) + 1}", scenario.id, scenario.split, seed,
                          scenario.instruction(params), params, scenario.reference(params),
                          _checker(scenario, params), scenario.difficulty, scenario.apps))
        if len(tasks) == VARIANTS_PER_SCENARIO:
            return tasks
    raise RuntimeError(f"scenario {scenario.id} found only {len(tasks)} fitting worlds in {MAX_SEED_TRIES} seeds")


def _checker(scenario: Scenario, params: dict[str, Any]) -> Callable[[dict, dict, Any], list[Check]]:
    def run(before: dict[str, Any], after: dict[str, Any], answer: Any) -> list[Check]:
        return scenario.evaluate(params, before, after, diff_state(before, after), answer)

    return run


def _build() -> dict[str, Task]:
    by_scenario = [_variants(s) for s in SCENARIOS]
    # Variant-major order: the first n ids of a split cover as many scenarios as possible.
    return {t.task_id: t for variant in zip(*by_scenario) for t in variant}


TASKS: dict[str, Task] = _build()


def canonical_split(split: str) -> str:
    """The split name behind an alias (``test`` is ``test_normal``); ValueError for unknown names."""
    name = SPLIT_ALIASES.get(split, split)
    if name not in SPLITS:
        raise ValueError(f"unknown apps split {split!r}; choose one of {[*SPLITS, *SPLIT_ALIASES]}")
    return name


def task_ids(split: str) -> list[str]:
    """Task ids of a split (train, dev, test_normal or its alias test, test_challenge), variant-major:
    the first variant of every scenario, then the second, ... (all variants of a scenario share its split)."""
    name = canonical_split(split)
    return [t.task_id for t in TASKS.values() if t.split == name]


def get_task(task_id: str) -> Task:
    """A task by id (KeyError naming the known ids' pattern otherwise)."""
    if task_id not in TASKS:
        raise KeyError(f"unknown apps task {task_id!r}; see `skillkit env apps tasks`")
    return TASKS[task_id]


def scenario_goal_completion(results: dict[str, bool]) -> float:
    """SGC: the fraction of scenarios (among those with results) whose every variant succeeded."""
    by_scenario: dict[str, list[bool]] = {}
    for task_id, ok in results.items():
        by_scenario.setdefault(get_task(task_id).scenario_id, []).append(ok)
    return sum(all(v) for v in by_scenario.values()) / len(by_scenario) if by_scenario else 0.0


def task_goal_completion(results: dict[str, bool]) -> float:
    """TGC: the fraction of tasks whose every check passed."""
    return sum(results.values()) / len(results) if results else 0.0
