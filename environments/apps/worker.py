"""Sandbox worker: runs agent code in its own process (started as ``python -I -S worker.py SCRATCH LIMITS``).

Standard library only. The app state is NOT here: ``apis.<app>.<api>(**kwargs)`` sends a request
to the host over stdout and waits for the answer on stdin (line-delimited JSON). Before any agent
code runs, the worker lowers its resource limits and installs an audit hook that refuses file
access outside the scratch directory, network, process creation, ctypes, signals to other
processes, raising limits and imports outside an allow-list. Agent ``print`` output is captured
and truncated.
"""

import builtins
import collections  # noqa: F401 - preloaded for agent code
import datetime  # noqa: F401
import functools  # noqa: F401
import io
import itertools  # noqa: F401
import json
import math  # noqa: F401
import os
import random  # noqa: F401
import re  # noqa: F401
import resource
import statistics  # noqa: F401
import string  # noqa: F401
import sys
import traceback

ALLOWED_IMPORTS = {
    "collections", "datetime", "functools", "itertools", "json", "math", "random", "re", "statistics", "string",
    "time", "decimal", "fractions", "heapq", "bisect", "operator", "copy", "textwrap", "typing", "dataclasses",
    "enum", "abc", "numbers", "calendar", "difflib", "pprint", "keyword", "contextlib", "types", "_strptime",
    "locale", "encodings", "codecs", "warnings", "weakref", "_weakrefset", "copyreg", "reprlib", "sre_compile",
    "sre_parse", "sre_constants", "_decimal", "_pydecimal", "_heapq", "_bisect", "_datetime", "_json", "_random",
    "_statistics", "_operator", "_functools", "_collections", "_struct", "struct", "_contextvars", "contextvars",
}
BLOCKED_PREFIXES = (
    "socket.", "subprocess.", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty",
    "os.kill", "os.killpg", "os.setuid", "os.setgid", "os.chroot", "os.putenv", "os.unsetenv", "ctypes.",
    "resource.setrlimit", "resource.prlimit", "signal.pthread_kill", "sys.remote_exec", "pty.", "mmap.",
    "webbrowser.", "urllib.", "http.", "ftplib.", "smtplib.", "poplib.", "imaplib.", "nntplib.", "telnetlib.",
    "sqlite3.", "builtins.input", "shutil.", "sys.unraisablehook", "sys.addaudithook", "cpython.",
    "os.setsid", "os.memfd_create", "os.eventfd", "fcntl.", "signal.", "_posixsubprocess", "os.add_dll_directory",
)
PATH_EVENTS = {
    "open", "os.listdir", "os.scandir", "os.remove", "os.rename", "os.replace", "os.rmdir", "os.mkdir", "os.chmod",
    "os.chown", "os.link", "os.symlink", "os.truncate", "os.utime", "os.chdir", "os.chflags", "os.lchflags",
    "os.mkfifo", "os.mknod", "os.getxattr", "os.setxattr", "os.listxattr", "os.removexattr", "os.lockf",
    "os.walk", "glob.glob", "tempfile.mkstemp", "tempfile.mkdtemp",
}
TWO_PATH_EVENTS = {"os.rename", "os.replace", "os.link", "os.symlink"}


class SandboxViolation(PermissionError):
    """An operation the sandbox forbids."""


class _Capture(io.TextIOBase):
    """A stdout/stderr replacement that keeps at most ``limit`` characters."""

    def __init__(self, limit):
        self.limit, self.parts, self.size, self.dropped = limit, [], 0, 0

    def write(self, text):
        text = str(text)
        room = self.limit - self.size
        if room > 0:
            self.parts.append(text[:room])
            self.size += min(room, len(text))
        self.dropped += max(0, len(text) - max(room, 0))
        return len(text)

    def take(self):
        out = "".join(self.parts)
        if self.dropped:
            out += f"\n[output truncated: {self.dropped} more characters]"
        self.parts, self.size, self.dropped = [], 0, 0
        return out


def _inside(path, scratch):
    if isinstance(path, int) or path is None:
        return False
    try:
        real = os.path.realpath(os.fsdecode(path))
    except (TypeError, ValueError):
        return False
    return real == scratch or real.startswith(scratch + os.sep)


def make_hook(scratch):
    """The audit hook enforcing the sandbox policy."""

    def hook(event, args):
        if event == "import":
            top = str(args[0]).split(".")[0]
            if top not in ALLOWED_IMPORTS and top not in sys.modules:
                raise SandboxViolation(f"sandbox: importing {args[0]!r} is not allowed")
            return
        if event.startswith(BLOCKED_PREFIXES):
            raise SandboxViolation(f"sandbox: {event} is not allowed")
        if event in PATH_EVENTS:
            checked = args[:2] if event in TWO_PATH_EVENTS else args[:1]
            for path in checked:
                if not _inside(path, scratch):
                    raise SandboxViolation(f"sandbox: {event} outside the scratch directory is not allowed")

    return hook


class _Channel:
    """The host link: JSON lines on the original stdin/stdout file descriptors."""

    def __init__(self, exec_id_box):
        self.reader = sys.stdin.buffer
        self.exec_id_box = exec_id_box

    def send(self, message):
        data = (json.dumps(message) + "\n").encode()
        while data:
            data = data[os.write(1, data):]

    def receive(self):
        line = self.reader.readline()
        if not line:
            raise SystemExit(0)
        return json.loads(line)


class ApiError(Exception):
    """An app API refused the call."""


class _Api:
    def __init__(self, channel, app):
        self._channel, self._app = channel, app

    def __getattr__(self, api_name):
        if api_name.startswith("__"):
            raise AttributeError(api_name)
        channel, app = self._channel, self._app

        def call(*args, **kwargs):
            if args:
                raise TypeError(f"call apis.{app}.{api_name} with keyword arguments only")
            channel.send({"type": "call", "exec_id": channel.exec_id_box[0], "app": app, "api": api_name,
                          "kwargs": kwargs})
            reply = channel.receive()
            if not reply.get("ok"):
                raise ApiError(reply.get("error", "API call failed"))
            return reply.get("value")

        call.__name__ = api_name
        return call


class Apis:
    """``apis.<app>.<api>(**kwargs)``: every call is answered by the host."""

    def __init__(self, channel):
        self._channel = channel

    def __getattr__(self, app):
        if app.startswith("__"):
            raise AttributeError(app)
        return _Api(self._channel, app)


def _agent_traceback(exc):
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == "<agent>"]
    lines = ["Traceback (most recent call last):\n"] + traceback.format_list(frames) if frames else []
    return "".join(lines + traceback.format_exception_only(type(exc), exc)).rstrip()


def main():
    scratch, limits = os.path.realpath(sys.argv[1]), json.loads(sys.argv[2])
    os.chdir(scratch)
    mem = limits["memory_bytes"]
    resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
    resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu_seconds"], limits["cpu_seconds"] + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_bytes"], limits["file_bytes"]))
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32))
    exec_id_box = [None]
    channel = _Channel(exec_id_box)
    capture = _Capture(limits["output_chars"])
    namespace = {"__name__": "__main__", "__builtins__": builtins, "apis": Apis(channel), "ApiError": ApiError}
    sys.stdin = io.StringIO("")
    sys.stdout = sys.stderr = sys.__stdout__ = sys.__stderr__ = capture
    sys.addaudithook(make_hook(scratch))
    channel.send({"type": "ready"})
    while True:
        request = channel.receive()
        exec_id_box[0] = request.get("exec_id")
        error = None
        try:
            exec(compile(request["code"], "<agent>", "exec"), namespace)
        except SystemExit:
            error = "SystemExit: exit() is not allowed in the sandbox; your code stopped there"
        except BaseException as exc:  # noqa: BLE001 - every failure becomes an observation
            error = _agent_traceback(exc)
        channel.send({"type": "done", "exec_id": exec_id_box[0], "output": capture.take(), "error": error})


if __name__ == "__main__":
    main()
