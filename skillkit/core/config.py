"""YAML experiment configs validated by pydantic, command-line overrides and run folders.

Every stage defines its config as a ``StrictModel`` subclass (unknown keys are errors). A run is
reproducible from its folder: ``runs/<name>-<timestamp>/`` holds ``config.yaml`` (resolved),
``run.json`` (seed, package versions, git commit, command line).
"""

from __future__ import annotations

import datetime as _dt
import json
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from skillkit.core.fileio import atomic_write_text

TRACKED_PACKAGES = (
    "skillkit", "torch", "transformers", "accelerate", "sentence-transformers", "faiss-cpu", "faiss-gpu-cu12",
    "langgraph", "pydantic", "numpy", "bm25s", "peft", "vllm", "ray", "gguf",
)


class ConfigError(ValueError):
    """A config file or override is invalid; the message names the file and the key."""


class StrictModel(BaseModel):
    """Base for config sections: unknown keys are rejected, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


ConfigT = TypeVar("ConfigT", bound=BaseModel)


def parse_override(item: str) -> tuple[list[str], Any]:
    """Parse ``a.b.c=value`` into (["a", "b", "c"], value) with YAML typing of the value."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key=value (dots for nested keys)")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {item!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of ``data`` with ``key=value`` overrides applied (nested keys with dots)."""
    result = json.loads(json.dumps(data))
    for item in overrides:
        path, value = parse_override(item)
        node = result
        for part in path[:-1]:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[path[-1]] = value
    return result


def _describe(errors: list[dict[str, Any]], source: str) -> str:
    lines = []
    for err in errors:
        key = ".".join(str(p) for p in err["loc"]) or "<root>"
        if err["type"] == "extra_forbidden":
            lines.append(f"{source}: unknown key '{key}'")
        else:
            lines.append(f"{source}: key '{key}': {err['msg']}")
    return "\n".join(lines)


def validate_config(cls: type[ConfigT], data: dict[str, Any], source: str = "<config>") -> ConfigT:
    """Validate a dict as ``cls``; errors name the source and every offending key."""
    try:
        return cls.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc.errors(), source)) from None


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping, with a clear error for a missing file or non-mapping content."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys to values")
    return data


def load_config(cls: type[ConfigT], path: str | Path | None = None, overrides: list[str] | None = None) -> ConfigT:
    """Load ``path`` (or defaults), apply ``key=value`` overrides and validate as ``cls``."""
    data = read_yaml(path) if path is not None else {}
    source = str(path) if path is not None else "<defaults>"
    if overrides:
        data = apply_overrides(data, overrides)
        source += " (with overrides)"
    return validate_config(cls, data, source)


def package_versions() -> dict[str, str]:
    """Installed versions of the packages that change results."""
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def git_commit(cwd: str | Path | None = None) -> str | None:
    """Commit hash of the working tree (with ``-dirty`` when it has changes), or None outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=5)
        return head.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def create_run_dir(name: str, config: BaseModel, seed: int | None = None, root: str | Path = "runs",
                   run_dir: str | Path | None = None) -> Path:
    """Create ``root/<name>-<timestamp>/`` (or ``run_dir``) and record how to reproduce the run."""
    if run_dir is None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        run_dir = Path(root) / f"{name}-{stamp}"
        suffix = 1
        while run_dir.exists():
            run_dir = Path(root) / f"{name}-{stamp}-{suffix}"
            suffix += 1
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    write_run_record(run_dir, config, seed)
    return run_dir


def write_run_record(run_dir: str | Path, config: BaseModel, seed: int | None = None) -> None:
    """Write ``config.yaml`` (resolved) and ``run.json`` (seed, versions, commit, argv) into a run folder."""
    run_dir = Path(run_dir)
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False))
    record = {
        "seed": seed,
        "created_at": _dt.datetime.now().isoformat(timespec="seconds"),
        "versions": package_versions(),
        "git_commit": git_commit(Path(__file__).resolve().parent.parent),
        "argv": sys.argv,
    }
    atomic_write_text(run_dir / "run.json", json.dumps(record, indent=2))
