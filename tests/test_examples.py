"""Every example in examples/ runs end to end (tiny model where a policy is needed)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(script: str, *args: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result.stdout


def test_build_then_route_examples(tmp_path):
    library = tmp_path / "lib"
    out = _run("build_library.py", "--out", str(library), "--tasks", "6")
    assert "exported" in out and (library / "skills.jsonl").exists()
    assert any((library / "skills").glob("*/SKILL.md"))
    out = _run("route_skills_into_agent.py", "--library", str(library), "--model", "tiny-random", "--episodes", "1")
    assert "skills shown:" in out and "action:" in out


def test_train_example(tmp_path):
    out = _run("train_skillsd.py", "--model", "tiny-random", "--iterations", "1", "--output-root", str(tmp_path))
    assert "loss_sdl" in out and "student weights:" in out
