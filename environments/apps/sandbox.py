"""Host side of the code sandbox: one worker process per episode, API calls proxied to the host.

The worker (``worker.py``, run with ``python -I -S``) executes agent code with resource limits and
an audit hook; whenever the code calls ``apis.<app>.<api>(...)`` the request comes back here and
is answered from the host-held :class:`~environments.apps.world.AppSuite`. The app database never
enters the worker, so agent code can only change it through the APIs, and the evaluator reads it
here. Wall-time overruns, crashes, CPU/memory kills and protocol garbage kill the worker; the next
execution starts a fresh one (Python variables are lost, the app state is kept).
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from environments.apps.framework import ApiError

WORKER = Path(__file__).with_name("worker.py")
MAX_MESSAGE_BYTES = 1 << 20


@dataclass
class SandboxLimits:
    """Per-episode limits of the worker process."""

    wall_seconds: float = 10.0  # per execution
    cpu_seconds: int = 30  # per worker (episode) in total
    memory_bytes: int = 1 << 30
    file_bytes: int = 1 << 20
    output_chars: int = 4000


@dataclass
class ExecResult:
    """What one code execution produced: printed output, an error text, and whether the worker died."""

    output: str
    error: str | None
    restarted: bool = False
    api_calls: int = 0

    def as_observation(self) -> str:
        """The text shown to the agent."""
        parts = []
        if self.output:
            parts.append(f"Output:\n{self.output.rstrip()}")
        if self.error:
            parts.append(f"Error:\n{self.error}")
        if self.restarted:
            parts.append("The sandbox process was restarted: variables from earlier code are gone "
                         "(the app data is kept).")
        return "\n".join(parts) if parts else "Execution finished with no output."


class _WorkerGone(Exception):
    """The worker died or broke the protocol; the message says why."""


class Sandbox:
    """Runs code for one episode in a locked-down worker process."""

    def __init__(self, handler: Callable[[str, str, dict[str, Any]], Any], limits: SandboxLimits | None = None):
        self.handler = handler
        self.limits = limits or SandboxLimits()
        self.scratch = tempfile.mkdtemp(prefix="skillkit-apps-")
        self._proc: subprocess.Popen[bytes] | None = None
        self._buffer = b""

    # -- process management ------------------------------------------------------------------------
    def _start(self) -> None:
        limits = {"memory_bytes": self.limits.memory_bytes, "cpu_seconds": self.limits.cpu_seconds,
                  "file_bytes": self.limits.file_bytes, "output_chars": self.limits.output_chars}
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
        self._proc = subprocess.Popen(
            [sys.executable, "-I", "-S", str(WORKER), self.scratch, json.dumps(limits)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=self.scratch, env=env,
            start_new_session=True, close_fds=True,
        )
        self._buffer = b""
        os.set_blocking(self._proc.stdout.fileno(), False)  # type: ignore[union-attr]
        message = self._read(time.monotonic() + 15)
        if message.get("type") != "ready":
            raise _WorkerGone("the sandbox worker did not start")

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                proc.kill()
        proc.wait()
        for stream in (proc.stdin, proc.stdout):
            if stream is not None:
                stream.close()

    def close(self) -> None:
        """Stop the worker and delete the scratch directory."""
        self._kill()
        shutil.rmtree(self.scratch, ignore_errors=True)

    @property
    def alive(self) -> bool:
        """Whether a worker process is running."""
        return self._proc is not None and self._proc.poll() is None

    # -- protocol ----------------------------------------------------------------------------------
    def _death_reason(self) -> str:
        assert self._proc is not None
        try:
            code = self._proc.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return "the sandbox process stopped answering"
        if code < 0:
            name = signal.Signals(-code).name
            if name == "SIGXCPU":
                return f"CPU time limit exceeded ({self.limits.cpu_seconds} s per episode)"
            if name == "SIGXFSZ":
                return f"file size limit exceeded ({self.limits.file_bytes} bytes)"
            return f"the sandbox process was killed by {name}"
        return f"the sandbox process exited with code {code}"

    def _read(self, deadline: float) -> dict[str, Any]:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _WorkerGone(f"wall-time limit exceeded ({self.limits.wall_seconds:g} s per execution)")
                if not sel.select(remaining):
                    continue
                try:
                    chunk = os.read(fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    raise _WorkerGone(self._death_reason())
                self._buffer += chunk
                if len(self._buffer) > MAX_MESSAGE_BYTES:
                    raise _WorkerGone("the sandbox process sent an oversized message")
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            message = json.loads(line)
        except ValueError:
            raise _WorkerGone("the sandbox process broke the protocol") from None
        if not isinstance(message, dict):
            raise _WorkerGone("the sandbox process broke the protocol")
        return message

    def _send(self, message: dict[str, Any]) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write((json.dumps(message) + "\n").encode())
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise _WorkerGone(self._death_reason()) from None

    def execute(self, code: str) -> ExecResult:
        """Run ``code`` in the worker (state kept across calls) and return its output or error."""
        calls = 0
        try:
            if not self.alive:
                self._kill()
                self._start()
            exec_id = uuid.uuid4().hex
            self._send({"type": "exec", "exec_id": exec_id, "code": code})
            deadline = time.monotonic() + self.limits.wall_seconds
            while True:
                message = self._read(deadline)
                if message.get("exec_id") != exec_id:
                    continue  # stale or forged message: ignore
                if message.get("type") == "done":
                    output = str(message.get("output") or "")[: self.limits.output_chars + 200]
                    error = message.get("error")
                    return ExecResult(output, str(error)[:4000] if error else None, False, calls)
                if message.get("type") != "call":
                    raise _WorkerGone("the sandbox process broke the protocol")
                calls += 1
                self._send(self._answer(message))
        except _WorkerGone as exc:
            self._kill()
            return ExecResult("", f"SandboxError: {exc}", True, calls)

    def _answer(self, message: dict[str, Any]) -> dict[str, Any]:
        try:
            value = self.handler(message.get("app"), message.get("api"), message.get("kwargs") or {})
            return {"ok": True, "value": value}
        except ApiError as exc:
            return {"ok": False, "error": str(exc)}
