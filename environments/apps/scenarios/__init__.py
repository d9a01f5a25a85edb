"""Every scenario of the app suite, grouped by the apps they exercise."""

from __future__ import annotations

from environments.apps.scenarios import challenge, cross, original, productivity, shopping
from environments.apps.scenarios.base import DIFFICULTIES, Check, Scenario

ALL_SCENARIOS: list[Scenario] = [*original.SCENARIOS, *productivity.SCENARIOS, *shopping.SCENARIOS, *cross.SCENARIOS,
                                 *challenge.SCENARIOS]

__all__ = ["ALL_SCENARIOS", "DIFFICULTIES", "Check", "Scenario"]
