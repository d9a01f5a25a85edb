"""Which train scenarios share a scenario's pattern: the relation behind the oracle-skill check.

A train scenario shares the pattern of another scenario when both have the same ``pattern`` tag
(:data:`~environments.apps.scenarios.base.PATTERNS`) and use at least one app in common, so that its
reference solution shows both the kind of work and some of the APIs the other scenario needs.
Matches are ranked by the APIs their reference solutions share beyond the common prelude (logins,
profile, passwords, ``complete_task``), then by how alike the app sets are (Jaccard), then in suite
order. Ranking reads both scenarios' reference solutions: this is ground truth, meant for oracle
baselines, not for an agent that should find its own skills.
"""

from __future__ import annotations

from functools import cache

from environments.apps.analysis import api_calls
from environments.apps.scenarios import ALL_SCENARIOS, Scenario
from environments.apps.tasks import TASKS

_BY_ID: dict[str, Scenario] = {s.id: s for s in ALL_SCENARIOS}


def get_scenario(scenario_id: str) -> Scenario:
    """A scenario by id (KeyError naming the problem otherwise)."""
    if scenario_id not in _BY_ID:
        raise KeyError(f"unknown apps scenario {scenario_id!r}; see `skillkit env apps tasks`")
    return _BY_ID[scenario_id]


def shares_pattern(a: Scenario, b: Scenario) -> bool:
    """Same pattern tag and at least one app in common (a scenario shares its own pattern)."""
    return a.pattern == b.pattern and bool(set(a.apps) & set(b.apps))


@cache
def reference_apis(scenario_id: str) -> frozenset[str]:
    """The ``app.api`` calls of the scenario's reference solution (first variant) beyond the prelude:
    no ``supervisor`` call and no ``login``."""
    task = next(t for t in TASKS.values() if t.scenario_id == scenario_id)
    return frozenset(c for c in api_calls(task.reference) if not c.startswith("supervisor.") and not c.endswith(".login"))


def _app_similarity(a: Scenario, b: Scenario) -> float:
    return len(set(a.apps) & set(b.apps)) / len(set(a.apps) | set(b.apps))


def pattern_matches(scenario_id: str, split: str = "train") -> list[Scenario]:
    """The scenarios of ``split`` (other than this one) that share its pattern, best match first."""
    target = get_scenario(scenario_id)
    order = {s.id: i for i, s in enumerate(ALL_SCENARIOS)}
    found = [s for s in ALL_SCENARIOS if s.split == split and s.id != target.id and shares_pattern(target, s)]
    apis = reference_apis(target.id)
    return sorted(found, key=lambda s: (-len(apis & reference_apis(s.id)), -_app_similarity(target, s), order[s.id]))
