"""YAML experiment configs validated by pydantic, command-line overrides and run folders.

Every stage defines its config as a ``StrictModel`` subclass (unknown keys are errors). A run is
reproducible from its folder: ``runs/<name>-<timestamp>/`` holds ``config.yaml`` (resolved),
``run.json`` (seed, package versions, git commit, command line).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Annotated, Any, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError, ValidationInfo

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

#: Key of a config file naming the file(s) it extends (paths relative to that file).
BASE_KEY = "base"


def _resolve_path(value: str | None, info: ValidationInfo) -> str | None:
    """A relative path read from a config file, made relative to that file's folder."""
    if value is None or value == "":
        return value
    config_dir = (info.context or {}).get("config_dir")
    path = Path(value).expanduser()
    if config_dir is not None and not path.is_absolute():
        path = Path(config_dir) / path
    return os.path.normpath(path)


def _require_file(value: str | None) -> str | None:
    if value is not None and value != "" and not Path(value).exists():
        raise ValueError(f"file not found: {value}")
    return value


#: A path in a config: resolved relative to the config file it was read from (not the working folder).
ConfigPath = Annotated[str, AfterValidator(_resolve_path)]
#: An input file named in a config: resolved like :data:`ConfigPath` and checked to exist when the
#: config is loaded, so a wrong path fails before any work starts.
InputFile = Annotated[str, AfterValidator(_resolve_path), AfterValidator(_require_file)]


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


def validate_config(cls: type[ConfigT], data: dict[str, Any], source: str = "<config>",
                    config_dir: str | Path | None = None) -> ConfigT:
    """Validate a dict as ``cls``; errors name the source and every offending key.

    ``config_dir`` is the folder relative paths (:data:`ConfigPath`, :data:`InputFile`) resolve
    against; None leaves them relative to the working folder.
    """
    try:
        return cls.model_validate(data, context={"config_dir": config_dir})
    except ValidationError as exc:
        raise ConfigError(_describe(exc.errors(), source)) from None


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``update`` laid over it: nested mappings merge, anything else is replaced."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_yaml(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """Read a YAML mapping, with a clear error for a missing file or non-mapping content.

    A file may extend others: ``base: sokoban.yaml`` (or a list, later ones winning) names files,
    relative to this one, whose keys it starts from; its own keys are merged over them.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    if path.resolve() in _seen:
        raise ConfigError(f"{path}: '{BASE_KEY}' files form a cycle: {' -> '.join(map(str, _seen))}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config must be a mapping of keys to values")
    bases = data.pop(BASE_KEY, None)
    if bases is None:
        return data
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"{path}: '{BASE_KEY}' must be a file name or a list of file names")
    merged: dict[str, Any] = {}
    for base in bases:
        merged = deep_merge(merged, read_yaml(path.parent / base, (*_seen, path.resolve())))
    return deep_merge(merged, data)


def load_config(cls: type[ConfigT], path: str | Path | None = None, overrides: list[str] | None = None) -> ConfigT:
    """Load ``path`` (or defaults), apply ``key=value`` overrides and validate as ``cls``.

    Paths inside the file resolve relative to the file's folder; paths given as overrides on the
    command line, relative to the working folder.
    """
    data = read_yaml(path) if path is not None else {}
    source = str(path) if path is not None else "<defaults>"
    config_dir = Path(path).resolve().parent if path is not None else None
    if overrides:
        cwd = Path.cwd()
        for item in overrides:
            keys, value = parse_override(item)
            if isinstance(value, str) and value and _is_path_field(cls, keys) and not Path(value).is_absolute():
                item = f"{'.'.join(keys)}={cwd / value}"
            data = apply_overrides(data, [item])
        source += " (with overrides)"
    return validate_config(cls, data, source, config_dir)


def _is_path_field(cls: type[BaseModel], keys: list[str]) -> bool:
    """Whether the dotted key names a :data:`ConfigPath`/:data:`InputFile` field of ``cls``."""
    model: Any = cls
    for i, key in enumerate(keys):
        fields = getattr(model, "model_fields", None)
        if not fields or key not in fields:
            return False
        field = fields[key]
        if i == len(keys) - 1:
            return any(getattr(m, "func", None) is _resolve_path for m in field.metadata)
        model = field.annotation
        for arg in getattr(model, "__args__", ()):  # Optional[Model]
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                model = arg
    return False


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
