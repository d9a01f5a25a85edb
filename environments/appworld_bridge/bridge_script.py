"""Bridge to the real AppWorld: run this file with the interpreter of AppWorld's own virtualenv.

Standard library + ``appworld`` only (it must not import skillkit). It reads one JSON request per
line on stdin and writes one JSON response per line on stdout:

    {"id": 1, "op": "hello"}                        -> {"id": 1, "ok": true, "result": {"protocol": 1, ...}}
    {"id": 2, "op": "task_ids", "split": "train"}   -> [...task ids...]
    {"id": 3, "op": "reset", "task_id": "..."}      -> {"instruction": ..., "supervisor": {...}}
    {"id": 4, "op": "execute", "code": "..."}       -> {"output": ..., "completed": bool}
    {"id": 5, "op": "evaluate"}                     -> {"success": bool, "num_tests": n, "passes": [...], "failures": [...]}
    {"id": 6, "op": "close"}                        -> {} and the bridge exits

Errors come back as {"id": ..., "ok": false, "error": "..."}. Setup: ``pip install appworld``
and ``appworld install && appworld download data`` in that virtualenv.
"""

import json
import os
import sys
import traceback

PROTOCOL = 1


class AppWorldBackend:
    """Serves the protocol with the real ``appworld`` package."""

    def __init__(self, experiment_name="skillkit"):
        self.experiment_name = experiment_name
        self.world = None

    def hello(self):
        try:
            import appworld
        except ImportError as exc:
            raise RuntimeError(f"the appworld package is not importable in {sys.executable}: {exc}") from None
        root = os.environ.get("APPWORLD_ROOT", os.getcwd())
        data = os.path.join(root, "data")
        if not os.path.isdir(data):
            raise RuntimeError(f"AppWorld data not found at {data}; run `appworld download data` "
                               "there or set APPWORLD_ROOT")
        return {"protocol": PROTOCOL, "appworld_version": getattr(appworld, "__version__", "unknown"), "data": data}

    def task_ids(self, split):
        from appworld import load_task_ids

        return list(load_task_ids(split))

    def reset(self, task_id):
        from appworld import AppWorld

        self.close()
        self.world = AppWorld(task_id=task_id, experiment_name=self.experiment_name)
        task = self.world.task
        supervisor = task.supervisor
        fields = ("first_name", "last_name", "email", "phone_number")
        info = {k: (supervisor[k] if isinstance(supervisor, dict) else getattr(supervisor, k, None)) for k in fields}
        return {"instruction": task.instruction, "supervisor": info}

    def _require(self):
        if self.world is None:
            raise RuntimeError("no task: send reset first")
        return self.world

    def execute(self, code):
        world = self._require()
        output = world.execute(code)
        return {"output": str(output), "completed": bool(world.task_completed())}

    def evaluate(self):
        tracker = self._require().evaluate()
        data = tracker.to_dict() if hasattr(tracker, "to_dict") else dict(tracker)
        passes, failures = data.get("passes", []), data.get("failures", [])
        return {"success": bool(data.get("success")), "num_tests": data.get("num_tests", len(passes) + len(failures)),
                "passes": passes, "failures": failures}

    def close(self):
        if self.world is not None:
            self.world.close()
            self.world = None
        return {}


def serve(backend, stdin=None, stdout=None):
    """Answer requests until ``close`` or end of input."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    for line in stdin:
        if not line.strip():
            continue
        request_id = None
        try:
            request = json.loads(line)
            request_id = request.get("id")
            op = request.get("op")
            if op == "hello":
                result = backend.hello()
            elif op == "task_ids":
                result = backend.task_ids(request["split"])
            elif op == "reset":
                result = backend.reset(request["task_id"])
            elif op == "execute":
                result = backend.execute(request["code"])
            elif op == "evaluate":
                result = backend.evaluate()
            elif op == "close":
                result = backend.close()
            else:
                raise ValueError(f"unknown op {op!r}")
            response = {"id": request_id, "ok": True, "result": result}
        except Exception as exc:  # noqa: BLE001 - every failure is answered, the bridge keeps serving
            detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            response = {"id": request_id, "ok": False, "error": detail}
        stdout.write(json.dumps(response) + "\n")
        stdout.flush()
        if response["ok"] and request.get("op") == "close":
            return


if __name__ == "__main__":
    serve(AppWorldBackend())
