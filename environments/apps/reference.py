"""Run the suite's own reference solutions in-process (fast, no sandbox) and record their API calls.

Only for code the suite wrote itself (reference solutions, tests, the suite report): agent code
always goes through :class:`~environments.apps.sandbox.Sandbox`. Calls take the same path as in
the sandbox (``AppSuite.call``, JSON copies of results).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from environments.apps.tasks import Check, Task
from environments.apps.world import AppSuite


class _App:
    def __init__(self, run: ReferenceRun, app: str):
        self._run, self._app = run, app

    def __getattr__(self, api_name: str) -> Any:
        def call(**kwargs: Any) -> Any:
            self._run.calls.append((self._app, api_name))
            return self._run.suite.call(self._app, api_name, kwargs)

        return call


class _Apis:
    def __init__(self, run: ReferenceRun):
        self._run = run

    def __getattr__(self, app: str) -> _App:
        return _App(self._run, app)


@dataclass
class ReferenceRun:
    """One in-process episode: the suite, the initial snapshot and every (app, api) called."""

    task: Task
    suite: AppSuite = field(init=False)
    initial: dict[str, Any] = field(init=False)
    calls: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.suite = AppSuite(self.task.world())
        self.initial = self.suite.snapshot()

    def execute(self, code: str) -> None:
        """Run suite-written code with ``apis`` bound to this episode (exceptions propagate)."""
        exec(compile(code, f"<reference {self.task.task_id}>", "exec"), {"__name__": "__reference__", "apis": _Apis(self)})

    def checks(self) -> list[Check]:
        """The task's checks on the current state, as the environment computes them."""
        supervisor = self.suite.supervisor
        return [Check("complete_task was called", supervisor.completed)] + \
            self.task.checker(self.initial, self.suite.snapshot(), supervisor.answer)


def run_reference(task: Task) -> ReferenceRun:
    """Run a task's reference solution in-process and return the finished episode."""
    run = ReferenceRun(task)
    run.execute(task.reference)
    return run
