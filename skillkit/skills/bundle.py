"""Files bundled with a skill (``scripts/``, ``references/``, assets, a licence): a skill is its folder.

A skill folder's files other than its ``SKILL.md`` are stored content-addressed in the library
(``LIB/files/ab/abcdef...``, one blob per distinct content, written atomically and never changed)
and listed in the skill's ``metadata["bundle"]``: relative path, SHA-256, size and whether it is
executable. The list lives in the skill record itself, so every version in the history, a merge
(which keeps the primary's metadata) and a rollback carry their own file list, and the blobs they
name are still there. Export writes the files back byte for byte, run bits included.
"""

from __future__ import annotations

import hashlib
import os
import stat
import warnings
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from skillkit.core.fileio import atomic_write_bytes
from skillkit.core.schemas import SkillBase

BUNDLE_KEY = "bundle"
FILES_DIR = "files"
SKILL_FILE = "SKILL.md"
#: Folders that are tooling state, not part of a skill.
SKIPPED_DIRS = frozenset({".git", "__pycache__"})


class BundledFile(BaseModel):
    """One file of a skill folder: ``path`` relative to the folder (POSIX form), content hash, size,
    and whether any execute bit was set."""

    model_config = ConfigDict(extra="forbid")

    path: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0)
    executable: bool = False

    @field_validator("path")
    @classmethod
    def _safe_path(cls, value: str) -> str:
        parts = PurePosixPath(value).parts
        if (not parts or value.startswith("/") or "\\" in value or any(p in ("..", ".") for p in parts)
                or value == SKILL_FILE):
            raise ValueError(f"bundled file path {value!r} must be relative, inside the skill folder, not SKILL.md")
        return value


class FileStore:
    """Content-addressed blobs under ``root``: ``put`` returns the SHA-256, ``get`` checks it."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def __contains__(self, sha256: object) -> bool:
        return isinstance(sha256, str) and self._path(sha256).is_file()

    def put(self, data: bytes) -> str:
        """Store ``data`` (once per distinct content) and return its SHA-256."""
        sha = hashlib.sha256(data).hexdigest()
        if sha not in self:
            atomic_write_bytes(self._path(sha), data)
        return sha

    def get(self, sha256: str) -> bytes:
        """The bytes stored under ``sha256``; an error when missing or damaged."""
        path = self._path(sha256)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(f"bundled file {sha256} is missing from {self.root}") from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ValueError(f"bundled file {path} is damaged (its content no longer matches its hash)")
        return data


def read_folder(folder: str | Path) -> list[tuple[BundledFile, bytes]]:
    """Every regular file of a skill folder except its ``SKILL.md``, sorted by path.

    Symbolic links are skipped with a warning (their target may lie outside the folder), and so
    are ``.git`` and ``__pycache__`` folders.
    """
    folder = Path(folder)
    found: list[tuple[BundledFile, bytes]] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIPPED_DIRS)
        here = Path(dirpath)
        for name in filenames:
            path = here / name
            rel = path.relative_to(folder).as_posix()
            if rel == SKILL_FILE:
                continue
            if path.is_symlink():
                warnings.warn(f"{path}: symbolic link not bundled", UserWarning, stacklevel=2)
                continue
            if not path.is_file():
                continue
            data = path.read_bytes()
            mode = path.stat().st_mode
            found.append((BundledFile(path=rel, sha256=hashlib.sha256(data).hexdigest(), size=len(data),
                                      executable=bool(mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH))), data))
    return sorted(found, key=lambda item: item[0].path)


def bundled_files(skill: SkillBase | dict[str, Any]) -> list[BundledFile]:
    """The files bundled with a skill, or with a skill record read from JSON (empty when it has none)."""
    metadata = skill.get("metadata") if isinstance(skill, dict) else skill.metadata
    return [BundledFile.model_validate(f) for f in (metadata or {}).get(BUNDLE_KEY) or []]


class SkillFiles:
    """Reads the files bundled with skills by skill and relative path, from a library's store.

    What the agent's ``read_skill_file`` action and the skill server's ``/skills/{name}/files``
    endpoints read through (neither imports the library): only the paths a skill lists are served,
    so no path can reach outside its folder.
    """

    def __init__(self, store: FileStore) -> None:
        self.store = store

    @classmethod
    def of(cls, library: Any) -> SkillFiles:
        """The files of a :class:`~skillkit.skills.library.SkillLibrary` (its ``file_store()``) or of
        the library folder at a path."""
        if callable(getattr(library, "file_store", None)):
            return cls(library.file_store())
        return cls(FileStore(Path(library) / FILES_DIR))

    def list(self, skill: SkillBase | dict[str, Any]) -> list[BundledFile]:
        """The files ``skill`` bundles, sorted by path."""
        return bundled_files(skill)

    def read(self, skill: SkillBase | dict[str, Any], path: str) -> bytes:
        """The bytes of the file ``path`` of ``skill``; ``FileNotFoundError`` when it bundles none there."""
        for entry in bundled_files(skill):
            if entry.path == path:
                return self.store.get(entry.sha256)
        name = skill.get("name") if isinstance(skill, dict) else skill.name
        raise FileNotFoundError(f"skill {name!r} bundles no file {path!r}")


def attach_folder(skill: SkillBase, folder: str | Path, store: FileStore) -> SkillBase:
    """A copy of ``skill`` that bundles the files of ``folder`` (stored in ``store``); the skill itself
    when the folder holds nothing but its ``SKILL.md``."""
    files = read_folder(folder)
    metadata = {k: v for k, v in skill.metadata.items() if k != BUNDLE_KEY}
    if files:
        metadata[BUNDLE_KEY] = [entry.model_dump() for entry, _ in files]
        for _, data in files:
            store.put(data)
    if metadata == skill.metadata:
        return skill
    return skill.model_copy(update={"metadata": metadata})


def write_bundle(skill: SkillBase, folder: str | Path, store: FileStore | None) -> list[Path]:
    """Write a skill's bundled files into ``folder`` (run bits restored); returns the paths written."""
    files = bundled_files(skill)
    if files and store is None:
        raise ValueError(f"skill {skill.name!r} bundles {len(files)} file(s): export it from its library")
    written = []
    for entry in files:
        path = Path(folder, *PurePosixPath(entry.path).parts)
        atomic_write_bytes(path, store.get(entry.sha256))  # type: ignore[union-attr]
        if entry.executable:
            mode = path.stat().st_mode
            path.chmod(mode | ((mode & 0o444) >> 2))  # execute wherever read is allowed
        written.append(path)
    return written
