"""The environment protocol over the real AppWorld, through ``bridge_script.py`` in AppWorld's virtualenv.

AppWorld pins pydantic<2 and needs its data download, so it cannot live in skillkit's environment.
``AppWorldEnv`` starts the bridge with the given interpreter and speaks line-delimited JSON to it.
The interpreter comes from ``python=...``, ``$SKILLKIT_APPWORLD_PYTHON`` or the file written by
``skillkit env appworld setup --python PATH``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from environments.apps.analysis import AppsAnalyzer
from environments.apps.env import INSTRUCTIONS, extract_code
from environments.base import Environment, StepResult

BRIDGE_SCRIPT = Path(__file__).with_name("bridge_script.py")
PROTOCOL = 1


def config_path() -> Path:
    """Where ``skillkit env appworld setup`` records the interpreter."""
    return Path(os.environ.get("SKILLKIT_HOME", Path.home() / ".skillkit")) / "appworld.json"


def configured_python() -> str | None:
    """The AppWorld interpreter from the environment variable or the setup file, if any."""
    if os.environ.get("SKILLKIT_APPWORLD_PYTHON"):
        return os.environ["SKILLKIT_APPWORLD_PYTHON"]
    path = config_path()
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8")).get("python")
    return None


class BridgeError(RuntimeError):
    """The bridge could not be started or answered with an error."""


class BridgeClient:
    """A running bridge process and its request/response channel."""

    def __init__(self, python: str, bridge: str | Path = BRIDGE_SCRIPT, timeout: float = 120.0,
                 env: dict[str, str] | None = None):
        if not Path(python).exists():
            raise FileNotFoundError(f"AppWorld interpreter {python} does not exist; create AppWorld's virtualenv "
                                    "and run `skillkit env appworld setup --python PATH/bin/python`")
        self.timeout = timeout
        self._next_id = 0
        self._proc = subprocess.Popen([python, str(bridge)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})

    def request(self, op: str, **payload: Any) -> Any:
        """Send one request and return its result (``BridgeError`` on an error answer or a dead bridge)."""
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._next_id += 1
        try:
            self._proc.stdin.write(json.dumps({"id": self._next_id, "op": op, **payload}) + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise BridgeError(f"the AppWorld bridge is not running: {self._stderr()}") from None
        line = self._proc.stdout.readline()
        if not line:
            raise BridgeError(f"the AppWorld bridge exited: {self._stderr()}")
        try:
            response = json.loads(line)
        except ValueError:
            raise BridgeError(f"the AppWorld bridge sent a non-JSON line: {line[:200]!r}") from None
        if response.get("id") != self._next_id:
            raise BridgeError(f"the AppWorld bridge answered request {response.get('id')} to {self._next_id}")
        if not response.get("ok"):
            raise BridgeError(f"AppWorld bridge error on {op}: {response.get('error')}")
        return response.get("result")

    def _stderr(self) -> str:
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "(still running)"
        assert self._proc.stderr is not None
        return self._proc.stderr.read()[-2000:].strip() or f"exit code {self._proc.returncode}"

    def close(self) -> None:
        """Ask the bridge to stop, then make sure it has."""
        if self._proc.poll() is None:
            try:
                self.request("close")
            except BridgeError:
                pass
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        for stream in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()


class AppWorldEnv(Environment):
    """The real AppWorld behind the usual protocol; success = AppWorld's evaluation passes (TGC)."""

    name = "appworld"
    instructions = INSTRUCTIONS

    def __init__(self, python: str | None = None, bridge: str | Path = BRIDGE_SCRIPT, max_steps: int = 30,
                 env: dict[str, str] | None = None):
        python = python or configured_python()
        if not python:
            raise ValueError("no AppWorld interpreter configured: pass python=..., set SKILLKIT_APPWORLD_PYTHON, "
                             "or run `skillkit env appworld setup --python PATH`")
        self.max_steps = max_steps
        self.client = BridgeClient(python, bridge, env=env)
        try:
            self.hello = self.client.request("hello")
        except BridgeError:
            self.client.close()
            raise
        if self.hello.get("protocol") != PROTOCOL:
            self.client.close()
            raise BridgeError(f"bridge protocol {self.hello.get('protocol')} is not {PROTOCOL}")
        self._task_id: str | None = None
        self._instruction = ""
        self._steps = 0
        self._done = False
        self._evaluation: dict[str, Any] = {}

    def analyzer(self) -> AppsAnalyzer:
        """AppWorld's actions are app-suite code: read them like the app suite's."""
        return AppsAnalyzer()

    def task_ids(self, split: str) -> list[str]:
        """AppWorld's task ids of a split (train, dev, test_normal, test_challenge; "test" = test_normal)."""
        return list(self.client.request("task_ids", split="test_normal" if split == "test" else split))

    def reset(self, task_id: str | None = None, seed: int | None = None) -> str:
        """Load an AppWorld task; returns its instruction and supervisor."""
        if task_id is None:
            train = self.task_ids("train")
            task_id = train[(seed or 0) % len(train)]
        result = self.client.request("reset", task_id=task_id)
        self._task_id, self._instruction = task_id, result["instruction"]
        self._steps, self._done, self._evaluation = 0, False, {}
        sup = result.get("supervisor") or {}
        return (f"Task: {self._instruction}\nSupervisor: {sup.get('first_name')} {sup.get('last_name')}, "
                f"email {sup.get('email')}, phone {sup.get('phone_number')}.")

    def task_instruction(self) -> str:
        """The current task's instruction."""
        return self._instruction

    def step(self, action: str) -> StepResult:
        """Execute the code; at completion or ``max_steps`` AppWorld evaluates the task."""
        if self._task_id is None:
            raise RuntimeError("call reset() before step()")
        if self._done:
            raise RuntimeError("the episode is over; call reset() to start another")
        self._steps += 1
        result = self.client.request("execute", code=extract_code(action))
        completed = bool(result.get("completed"))
        self._done = completed or self._steps >= self.max_steps
        info: dict[str, Any] = {"task_id": self._task_id, "scenario_id": self._task_id.split("_")[0]}
        reward = 0.0
        if self._done:
            self._evaluation = self.client.request("evaluate")
            info.update(success=bool(self._evaluation.get("success")), completed=completed,
                        evaluation=self._evaluation)
            reward = 1.0 if info["success"] else 0.0
        return StepResult(str(result.get("output", "")), reward, self._done, info)

    def episode_metadata(self) -> dict[str, Any]:
        """Scenario id (AppWorld's task id prefix) and AppWorld's evaluation."""
        if self._task_id is None:
            return {}
        return {"scenario_id": self._task_id.split("_")[0], "evaluation": self._evaluation}

    def close(self) -> None:
        """Stop the bridge process."""
        self.client.close()
