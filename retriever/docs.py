"""The router's view of a skill: a small record duck-typed from any skill object.

The router never depends on the skill library's classes: anything with ``id``, ``name``,
``description`` and a body (``body_text()``, ``body`` or ``to_text()``) becomes a :class:`RouterDoc`.
Plain dicts and JSON/JSONL files of such records work too, so the router can be used on a
hand-written skill list without building a library first.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

TIERS = ("trajectory", "planning", "functional", "atomic")


def beside_library(library_path: str | Path, name: str) -> Path:
    """Where a model trained for a library lives, so routing finds it without flags: ``LIB/<name>``
    for a library folder, ``LIB.<name>`` next to a JSON/JSONL file."""
    library_path = Path(library_path)
    if library_path.is_dir():
        return library_path / name
    return library_path.with_name(library_path.name + "." + name)


@dataclass(frozen=True)
class RouterDoc:
    """One routable skill: what the encoders and rerankers read, plus the original object."""

    id: str
    name: str
    description: str = ""
    body: str = ""
    tier: str | None = None
    category: str | None = None
    tags: tuple[str, ...] = ()
    routing_text: str = ""
    skill: Any = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"a skill needs a non-empty string id, got {self.id!r}")
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"skill {self.id!r} needs a non-empty name")

    def to_text(self) -> str:
        """The text every model reads: ``name | description | body`` (the body matters), then the
        skill's ``routing_text`` when it has one (features that tell tasks apart)."""
        return " | ".join(part for part in (self.name, self.description, self.body, self.routing_text) if part)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (without the wrapped skill object)."""
        data = asdict(self)
        data.pop("skill")
        data["tags"] = list(self.tags)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RouterDoc:
        """Build from a dict with at least ``name`` (``id`` defaults to the name)."""
        if not isinstance(data, dict):
            raise ValueError(f"a skill record must be a JSON object, got {type(data).__name__}")
        if "name" not in data:
            raise ValueError(f"skill record without a 'name': {str(data)[:120]}")
        body = data.get("body")
        if body is None:
            body = _body_from_fields(data)
        return cls(
            id=str(data.get("id") or data["name"]), name=str(data["name"]),
            description=str(data.get("description") or ""), body=str(body or ""),
            tier=data.get("tier"), category=data.get("category") or data.get("env"),
            tags=tuple(data.get("tags") or ()), routing_text=str(data.get("routing_text") or ""), skill=data,
        )

    @classmethod
    def from_skill(cls, obj: Any) -> RouterDoc:
        """Duck-type a skill-library object (``id``, ``name``, ``description``, ``body_text()``...)."""
        if isinstance(obj, RouterDoc):
            return obj
        if isinstance(obj, dict):
            return cls.from_dict(obj)
        name = getattr(obj, "name", None) or getattr(obj, "task", None)
        if not name:
            raise ValueError(f"cannot route {type(obj).__name__}: it has no name")
        description = getattr(obj, "description", "") or ""
        if callable(getattr(obj, "body_text", None)):
            body = obj.body_text()
        elif isinstance(getattr(obj, "body", None), str):
            body = obj.body
        elif callable(getattr(obj, "to_text", None)):
            body = obj.to_text()
        else:
            body = ""
        tier = getattr(obj, "tier", None)
        category = getattr(obj, "category", None) or getattr(obj, "env", None)
        tags = tuple(getattr(obj, "tags", None) or ())
        return cls(id=str(getattr(obj, "id", None) or name), name=str(name), description=str(description),
                   body=str(body or ""), tier=str(tier) if tier is not None else None,
                   category=str(category) if category else None, tags=tags,
                   routing_text=str(getattr(obj, "routing_text", "") or ""), skill=obj)


def _body_from_fields(data: dict[str, Any]) -> str:
    """A body for records that spell it out in tier-specific fields (plans, workflows, pitfalls)."""
    parts: list[str] = []
    for key in ("plan", "steps", "golden_workflow", "usage", "pitfalls", "success_analysis", "mistake_analysis"):
        value = data.get(key)
        if isinstance(value, list):
            parts.extend(str(v) for v in value)
        elif value:
            parts.append(str(value))
    return "\n".join(parts)


def to_docs(items: Iterable[Any]) -> list[RouterDoc]:
    """Convert skills/dicts/RouterDocs, refusing duplicate ids (the router needs stable unique ids)."""
    docs = [RouterDoc.from_skill(item) for item in items]
    seen: set[str] = set()
    for doc in docs:
        if doc.id in seen:
            raise ValueError(f"duplicate skill id {doc.id!r}")
        seen.add(doc.id)
    return docs


def load_docs_file(path: str | Path) -> list[RouterDoc]:
    """Read skills from a JSON list, a JSON object with a ``skills`` list, or JSONL (one per line)."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        records = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from exc
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: invalid JSON ({exc.msg})") from exc
        records = data.get("skills") if isinstance(data, dict) else data
        if not isinstance(records, list):
            raise ValueError(f"{path}: expected a list of skills or an object with a 'skills' list")
    return to_docs(records)
