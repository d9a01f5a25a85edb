"""The AppWorld-style environment: the agent acts by writing Python that calls ``apis``."""

from __future__ import annotations

import re
from typing import Any

from environments.apps.sandbox import ExecResult, Sandbox, SandboxLimits
from environments.apps.tasks import Check, Task, get_task, task_ids
from environments.apps.world import AppSuite
from environments.base import Environment, EpisodeAnalyzer, Oracle, StepResult

_FENCE = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL | re.IGNORECASE)


def extract_code(action: str) -> str:
    """The code in an action: the fenced blocks joined, or the whole text when there is no fence."""
    blocks = _FENCE.findall(action or "")
    return "\n".join(b.strip("\n") for b in blocks) if blocks else (action or "").strip()


INSTRUCTIONS = """You are an assistant that completes tasks for your supervisor by writing Python code that
calls app APIs. Each turn, reply with one block of Python code (```python ... ```); it runs in a
persistent sandbox and you see what it prints. Call APIs as apis.<app>.<api>(**kwargs) with keyword
arguments only. Discover APIs with:
  print(apis.api_docs.show_app_descriptions())
  print(apis.api_docs.show_api_descriptions(app_name="phone"))
  print(apis.api_docs.show_api_doc(app_name="phone", api_name="search_contacts"))
Most APIs need access_token=... from apis.<app>.login(username=..., password=...); usernames are in
apis.supervisor.show_profile() and passwords in apis.supervisor.show_account_passwords(). List APIs
are paginated (page_index from 0, page_limit up to 20): loop until a page comes back short. A failed
call raises an exception whose message says why. Change only what the task asks for. When done, call
apis.supervisor.complete_task(answer=...) with the answer if the task asks a question, otherwise
apis.supervisor.complete_task(). The sandbox has no network and no file access outside its scratch
directory."""


class AppsOracle(Oracle):
    """The app suite's ground truth: each task's reference solution."""

    def expert_actions(self, task_id: str) -> list[str] | None:
        """The reference solution as one code action."""
        return [f"```python\n{get_task(task_id).reference.strip()}\n```"]


class AppsEnv(Environment):
    """Offline app suite (phone, wallet, music, email, calendar, notes, shopping, files) with state-based
    evaluation (TGC/SGC)."""

    name = "apps"
    instructions = INSTRUCTIONS

    def __init__(self, max_steps: int = 20, limits: SandboxLimits | None = None):
        if max_steps < 1:
            raise ValueError(f"max_steps must be positive, got {max_steps}")
        self.max_steps = max_steps
        self.limits = limits or SandboxLimits()
        self._task: Task | None = None
        self._suite: AppSuite | None = None
        self._initial: dict[str, Any] = {}
        self._sandbox: Sandbox | None = None
        self._steps = 0
        self._done = False
        self._checks: list[Check] = []

    def task_ids(self, split: str) -> list[str]:
        """Task ids of "train", "dev", "test_normal" (alias "test") or "test_challenge" (a scenario's variants
        share its split)."""
        return task_ids(split)

    def oracle(self) -> AppsOracle:
        """The tasks' reference solutions."""
        return AppsOracle()

    def analyzer(self) -> EpisodeAnalyzer:
        """The app suite's reading of episodes: API calls, errors, failed checks."""
        from environments.apps.analysis import AppsAnalyzer  # it imports extract_code from this module

        return AppsAnalyzer()

    def reset(self, task_id: str | None = None, seed: int | None = None) -> str:
        """Start a task (by id; with only ``seed``, a train task chosen by the seed)."""
        if task_id is None:
            train = task_ids("train")
            task_id = train[(seed or 0) % len(train)]
        task = get_task(task_id)
        self._close_sandbox()
        self._task = task
        self._suite = AppSuite(task.world())
        self._initial = self._suite.snapshot()
        self._sandbox = Sandbox(self._suite.call, self.limits)
        self._steps, self._done, self._checks = 0, False, []
        profile = self._suite.db["supervisor"]
        return (f"Task: {task.instruction}\n"
                f"Supervisor: {profile['first_name']} {profile['last_name']}, email {profile['email']}, "
                f"phone {profile['phone_number']}.\n"
                "Write Python code using apis.<app>.<api>(...); start with apis.api_docs.show_app_descriptions().")

    def task_instruction(self) -> str:
        """The current task's instruction."""
        if self._task is None:
            raise RuntimeError("call reset() first")
        return self._task.instruction

    def step(self, action: str) -> StepResult:
        """Run the code in ``action``; the episode ends at complete_task or after ``max_steps``."""
        if self._sandbox is None or self._suite is None or self._task is None:
            raise RuntimeError("call reset() before step()")
        if self._done:
            raise RuntimeError("the episode is over; call reset() to start another")
        self._steps += 1
        code = extract_code(action)
        result = self._sandbox.execute(code) if code else ExecResult("", "No code found in your reply.")
        info: dict[str, Any] = {"task_id": self._task.task_id, "scenario_id": self._task.scenario_id,
                                "api_calls": result.api_calls, "error": result.error is not None}
        completed = self._suite.supervisor.completed
        self._done = completed or self._steps >= self.max_steps
        observation = result.as_observation()
        reward = 0.0
        if self._done:
            self._checks = self.evaluate()
            success = all(c.passed for c in self._checks)
            reward = 1.0 if success else 0.0
            info.update(success=success, completed=completed, answer=self._suite.supervisor.answer,
                        checks=[{"name": c.name, "passed": c.passed, "detail": c.detail} for c in self._checks],
                        checks_passed=sum(c.passed for c in self._checks), checks_total=len(self._checks))
            observation += "\nTask marked as completed." if completed else "\nOut of steps."
            self._close_sandbox()
        return StepResult(observation, reward, self._done, info)

    def evaluate(self) -> list[Check]:
        """Run the task's checks on the host-held final state and the answer."""
        assert self._suite is not None and self._task is not None
        supervisor = self._suite.supervisor
        checks = [Check("complete_task was called", supervisor.completed)]
        return checks + self._task.checker(self._initial, self._suite.snapshot(), supervisor.answer)

    def episode_metadata(self) -> dict[str, Any]:
        """Scenario id, split and the evaluation results (for TGC/SGC)."""
        if self._task is None:
            return {}
        return {"scenario_id": self._task.scenario_id, "split": self._task.split, "difficulty": self._task.difficulty,
                "checks": [{"name": c.name, "passed": c.passed, "detail": c.detail} for c in self._checks]}

    def _close_sandbox(self) -> None:
        if self._sandbox is not None:
            self._sandbox.close()
            self._sandbox = None

    def close(self) -> None:
        """Stop the worker process."""
        self._close_sandbox()
