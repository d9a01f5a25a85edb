"""Checkpoints with exact resume: model, optimizer, RNG states, iteration, skill-source counters.

A checkpoint is a folder ``<run>/checkpoints/iter-000012/`` holding ``state.pt`` (written to a
temporary folder first, then renamed, so a crash never leaves a half-written checkpoint) and
``config.yaml`` (the resolved config it was trained with).
"""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

STATE_FILE = "state.pt"


def capture_rng() -> dict[str, Any]:
    """The python, numpy, torch (and CUDA) RNG states."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.random.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    """Put back RNG states captured by :func:`capture_rng`."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.random.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_dir(run_dir: str | Path, iteration: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"iter-{iteration:06d}"


def save_checkpoint(path: str | Path, *, model: torch.nn.Module, optimizer: torch.optim.Optimizer, iteration: int,
                    config: dict[str, Any], skills: dict[str, Any] | None = None,
                    teacher: dict[str, Any] | None = None, keep: int | None = None,
                    extra: dict[str, Any] | None = None) -> Path:
    """Write a checkpoint folder atomically (``extra``: more named state, e.g. the generations'); with
    ``keep``, delete all but the newest ``keep`` siblings."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    state = {
        "iteration": iteration,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "rng": capture_rng(),
        "skills": skills,
        "teacher": teacher,
        **(extra or {}),
    }
    torch.save(state, tmp / STATE_FILE)
    (tmp / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    if path.exists():
        shutil.rmtree(path)
    os.replace(tmp, path)
    if keep:
        siblings = sorted(p for p in path.parent.glob("iter-*") if p.is_dir())
        for old in siblings[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    return path


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder itself, or the newest checkpoint of a run folder."""
    path = Path(path)
    if (path / STATE_FILE).exists():
        return path
    found = sorted((path / "checkpoints").glob("iter-*/" + STATE_FILE)) if (path / "checkpoints").exists() else []
    if not found:
        raise FileNotFoundError(f"no checkpoint in {path} (expected {STATE_FILE} or checkpoints/iter-*/)")
    return found[-1].parent


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint's state (CPU tensors)."""
    ckpt = find_checkpoint(path)
    return torch.load(ckpt / STATE_FILE, map_location="cpu", weights_only=False)


def checkpoint_config(path: str | Path) -> dict[str, Any]:
    """The resolved config a checkpoint was written with."""
    return yaml.safe_load((find_checkpoint(path) / "config.yaml").read_text())
