"""The AppWorld adapter against a stand-in bridge that speaks the same protocol (the real serve loop)."""

from __future__ import annotations

import sys
import textwrap

import pytest

import environments
from environments.appworld_bridge import AppWorldEnv, BridgeError
from environments.base import run_episode

STAND_IN = textwrap.dedent('''
    import sys
    sys.path.insert(0, {bridge_dir!r})
    from bridge_script import serve

    class StandIn:
        """Pretends to be AppWorld: two tasks; code that prints DONE completes; success if it sent 'x = 1'."""

        def hello(self):
            return {{"protocol": 1, "appworld_version": "stand-in"}}

        def task_ids(self, split):
            if split not in ("train", "dev", "test_normal"):
                raise ValueError("unknown split " + split)
            return ["50e1ac9_1", "50e1ac9_2"] if split == "train" else ["aaa1111_1"]

        def reset(self, task_id):
            self.code = []
            return {{"instruction": "Do " + task_id, "supervisor": {{"first_name": "Ann", "last_name": "Lee",
                    "email": "ann@x.com", "phone_number": "123"}}}}

        def execute(self, code):
            self.code.append(code)
            if "boom" in code:
                raise RuntimeError("bridge-side failure")
            return {{"output": "ran: " + code, "completed": "DONE" in code}}

        def evaluate(self):
            ok = any("x = 1" in c for c in self.code)
            return {{"success": ok, "num_tests": 1, "passes": ["t"] if ok else [], "failures": [] if ok else ["t"]}}

        def close(self):
            return {{}}

    serve(StandIn())
''')


@pytest.fixture()
def stand_in(tmp_path):
    from environments.appworld_bridge.adapter import BRIDGE_SCRIPT

    path = tmp_path / "stand_in_bridge.py"
    path.write_text(STAND_IN.format(bridge_dir=str(BRIDGE_SCRIPT.parent)))
    return path


def test_adapter_plays_an_episode(stand_in):
    env = environments.make("appworld", python=sys.executable, bridge=stand_in, max_steps=5)
    try:
        assert env.task_ids("train") == ["50e1ac9_1", "50e1ac9_2"] and env.task_ids("test") == ["aaa1111_1"]
        actions = iter(["```python\nx = 1\n```", "print('DONE')"])
        traj = run_episode(env, lambda obs: next(actions), "50e1ac9_1")
        assert traj.success and traj.num_steps == 2 and traj.turns[0].observation == "ran: x = 1"
        assert traj.metadata["scenario_id"] == "50e1ac9" and traj.instruction == "Do 50e1ac9_1"
        assert "Ann Lee" in traj.initial_observation
        obs = env.reset("50e1ac9_2")
        assert "Do 50e1ac9_2" in obs
        with pytest.raises(BridgeError, match="bridge-side failure"):
            env.step("boom")
        result = env.step("print('DONE')")  # the bridge keeps serving after an error
        assert result.done and result.info["success"] is False
        with pytest.raises(BridgeError, match="unknown split"):
            env.task_ids("bogus")
    finally:
        env.close()


def test_missing_interpreter_and_missing_appworld_are_clear(tmp_path, monkeypatch):
    monkeypatch.delenv("SKILLKIT_APPWORLD_PYTHON", raising=False)
    monkeypatch.setenv("SKILLKIT_HOME", str(tmp_path))
    with pytest.raises(ValueError, match="no AppWorld interpreter configured"):
        AppWorldEnv()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        AppWorldEnv(python=str(tmp_path / "nope" / "python"))
    # The real bridge under an interpreter without appworld: a clear error naming the package.
    with pytest.raises(BridgeError, match="appworld package is not importable"):
        AppWorldEnv(python=sys.executable)


def test_bridge_that_dies_is_reported(tmp_path):
    dead = tmp_path / "dead.py"
    dead.write_text("import sys\nsys.stderr.write('cannot start')\nsys.exit(1)\n")
    with pytest.raises(BridgeError, match="cannot start"):
        AppWorldEnv(python=sys.executable, bridge=dead)
