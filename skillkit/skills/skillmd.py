"""Export skills to Agent Skills ``SKILL.md`` folders and import them back.

One folder per skill, named after the skill, holding ``SKILL.md``::

    ---
    name: push-box-right
    description: Plan for task level-3 ...
    metadata:
      skillkit-tier: planning
      skillkit-id: 4c208a214b5b4d52
      skillkit-version: '2'
      ...
    ---
    ## Task
    ...
    ## Plan
    1. ...

The front matter follows the Agent Skills format (``name``, ``description``, and ``metadata`` as a
map of strings, lists and dicts JSON-encoded); the body is the skill's markdown
(:meth:`SkillBase.body_text`) and is parsed back into the tier's fields on import, so the round
trip is lossless for every field that fits (text without surrounding whitespace, list items that
are not empty). A ``SKILL.md`` written by someone else (no ``skillkit-tier``) imports as a
functional skill whose body is the markdown and whose tools are its ``allowed-tools``.

A skill is its folder: the other files next to ``SKILL.md`` (scripts, references, assets) are
bundled with it (:mod:`skillkit.skills.bundle`) and written back on export. A description over
1,024 characters is kept in full (``metadata["skill_md"]["description"]``, given back unchanged on
export, with a warning on import) while the skill's own ``description``, the one routing indexes,
is its shortened view. :func:`import_collection` imports every skill of a collection it can and
reports the broken ones with their path and reason.
"""

from __future__ import annotations

import dataclasses
import json
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from skillkit.core.fileio import atomic_directory, atomic_write_text
from skillkit.core.schemas import (
    DESCRIPTION_MAX,
    SKILL_CLASSES,
    SkillBase,
    parse_skill,
    slugify,
    validate_skill_name,
)
from skillkit.skills.bundle import BUNDLE_KEY, SKILL_FILE, FileStore, write_bundle

PREFIX = "skillkit-"
_BODY_FIELDS = {
    "trajectory": ("success_analysis", "mistake_analysis", "golden_workflow"),
    "planning": ("task", "plan"),
    "functional": ("body", "tools"),
    "atomic": ("action", "usage", "constraints", "pitfalls", "examples"),
}
_SECTIONS = {
    "trajectory": {"What worked": "success_analysis", "Mistakes to avoid": "mistake_analysis",
                   "Golden workflow": "golden_workflow"},
    "planning": {"Task": "task", "Plan": "plan"},
    "atomic": {"Action": "action", "Usage": "usage", "Constraints": "constraints", "Pitfalls": "pitfalls",
               "Examples": "examples"},
}
_NUMBERED = re.compile(r"^(\d+)\. ?(.*)$")
_BULLET = re.compile(r"^- ?(.*)$")


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------


def _meta_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=isinstance(value, dict))


def to_skill_md(skill: SkillBase) -> str:
    """The ``SKILL.md`` text of a skill (front matter + markdown body)."""
    data = skill.model_dump(mode="json")
    body_fields = set(_BODY_FIELDS[skill.tier])
    metadata: dict[str, str] = {}
    for key, value in data.items():
        if key in ("name", "description", "metadata") or key in body_fields:
            continue
        if value is None:
            continue
        metadata[PREFIX + key.replace("_", "-")] = _meta_value(value)
    extra = dict(skill.metadata)
    foreign = extra.pop("skill_md", None)
    extra.pop(BUNDLE_KEY, None)  # the files themselves travel next to SKILL.md
    if extra:
        metadata[PREFIX + "metadata"] = _meta_value(extra)
    if skill.tier == "trajectory" and isinstance(data.get("golden_workflow"), str):
        metadata[PREFIX + "workflow-format"] = "text"
    front: dict[str, Any] = {"name": skill.name, "description": full_description(skill)}
    if isinstance(foreign, dict):
        for key, value in foreign.items():
            if key not in ("name", "description", "metadata"):
                front[key] = value
        for key, value in (foreign.get("metadata") or {}).items():
            metadata.setdefault(str(key), _meta_value(value))
    front["metadata"] = metadata
    header = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=100_000).strip()
    body = _render_body(skill)
    return f"---\n{header}\n---\n{body}\n" if body else f"---\n{header}\n---\n"


def _render_body(skill: SkillBase) -> str:
    fields = _BODY_FIELDS[skill.tier]
    if all(not getattr(skill, f) for f in fields):
        return ""  # no body: the description says it all
    return skill.body_text()


def shorten_description(description: str) -> str:
    """The description cut to ``DESCRIPTION_MAX`` characters (at a word boundary when one is near),
    ending in an ellipsis; unchanged when it already fits."""
    if len(description) <= DESCRIPTION_MAX:
        return description
    cut = description[:DESCRIPTION_MAX - 1]
    space = cut.rfind(" ")
    if space > DESCRIPTION_MAX - 200:
        cut = cut[:space]
    return cut.rstrip() + "\u2026"


def full_description(skill: SkillBase) -> str:
    """The description as the skill's ``SKILL.md`` had it: the kept full text of an over-long one
    (while the skill's description is still its shortened view), else the description."""
    foreign = skill.metadata.get("skill_md")
    full = foreign.get("description") if isinstance(foreign, dict) else None
    if isinstance(full, str) and shorten_description(full) == skill.description:
        return full
    return skill.description


def export_skill(skill: SkillBase, out_dir: str | Path, store: FileStore | None = None) -> Path:
    """Write the folder ``out_dir/<name>/``: ``SKILL.md`` and the bundled files (from ``store``, the
    library's :meth:`~skillkit.skills.library.SkillLibrary.file_store`). The folder is built aside and
    then put in place, replacing an older export of the skill. Returns the path of ``SKILL.md``."""
    folder = Path(out_dir) / skill.name
    with atomic_directory(folder) as tmp:
        atomic_write_text(tmp / SKILL_FILE, to_skill_md(skill))
        write_bundle(skill, tmp, store)
    return folder / SKILL_FILE


def export_skills(skills: Iterable[SkillBase], out_dir: str | Path, store: FileStore | None = None) -> list[Path]:
    """Export many skills (a library works: it iterates over its skills); returns the files written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return [export_skill(s, out, store) for s in skills]


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """(front matter dict, body) of a ``SKILL.md``; an error when the front matter is missing or bad."""
    text = text.lstrip("\ufeff")
    match = re.match(r"^---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|$)(.*)\Z", text, re.DOTALL)
    if not match:
        raise ValueError("a SKILL.md must start with YAML front matter between '---' lines")
    try:
        front = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        raise ValueError(f"the front matter is not valid YAML: {exc}") from exc
    if not isinstance(front, dict):
        raise ValueError("the front matter must be a YAML mapping")
    body = match.group(2)
    return front, body[:-1] if body.endswith("\n") else body


def _items(text: str, numbered: bool) -> list[str]:
    items: list[str] = []
    indent = "   " if numbered else "  "
    pattern = _NUMBERED if numbered else _BULLET
    for line in text.splitlines():
        m = pattern.match(line)
        if m:
            items.append(m.group(m.lastindex or 1))
        elif items and line.startswith(indent):
            items[-1] += "\n" + line[len(indent):]
        elif items and not line.strip():
            items[-1] += "\n"
        elif line.strip():
            items.append(line.strip())
    return [i.rstrip("\n") for i in items]


def _is_list(text: str, numbered: bool) -> bool:
    first = next((line for line in text.splitlines() if line.strip()), "")
    return bool((_NUMBERED if numbered else _BULLET).match(first))


def _sections(body: str, known: dict[str, str]) -> tuple[str, dict[str, str]]:
    """(text before the first known heading, {field: section text}) for ``## Heading`` sections."""
    pre: list[str] = []
    found: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in body.splitlines():
        m = re.match(r"^## (.+?)\s*$", line)
        if m and m.group(1) in known and known[m.group(1)] not in found:
            current = found[known[m.group(1)]] = []
            continue
        (current if current is not None else pre).append(line)
    return "\n".join(pre).strip(), {k: "\n".join(v).strip() for k, v in found.items()}


def parse_body(tier: str, body: str, text_workflow: bool = False) -> dict[str, Any]:
    """The tier's body fields parsed from the markdown body (inverse of ``body_text``)."""
    body = body.strip("\n")
    if tier == "functional":
        idx = body.rfind("## Tools\n")
        if idx >= 0 and (idx == 0 or body[idx - 1] == "\n") and _is_list(body[idx + 9:], numbered=False):
            return {"body": body[:idx].strip(), "tools": _items(body[idx + 9:], numbered=False)}
        return {"body": body.strip(), "tools": []}
    _, sections = _sections(body, _SECTIONS[tier])
    out: dict[str, Any] = {}
    for field, text in sections.items():
        if field in ("plan", "golden_workflow"):
            out[field] = text if (field == "golden_workflow" and text_workflow) else _items(text, numbered=True)
        elif field in ("constraints", "pitfalls", "examples"):
            out[field] = _items(text, numbered=False)
        elif field == "action":
            out[field] = text[1:-1] if len(text) >= 2 and text[0] == text[-1] == "`" else text
        else:
            out[field] = text
    if tier == "trajectory" and text_workflow and "golden_workflow" not in out:
        out["golden_workflow"] = ""
    return out


def _meta_decode(key: str, value: Any, annotation_hint: Any) -> Any:
    if not isinstance(value, str):
        return value
    if annotation_hint is str:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def from_skill_md(text: str, source: str | None = None) -> SkillBase:
    """Build a skill from the text of a ``SKILL.md`` (see the module doc for foreign files)."""
    where = f"{source}: " if source else ""
    try:
        front, body = split_front_matter(text)
    except ValueError as exc:
        raise ValueError(f"{where}{exc}") from exc
    meta = front.get("metadata") or {}
    if not isinstance(meta, dict):
        raise ValueError(f"{where}'metadata' must be a mapping")
    name = str(front.get("name", "")).strip()
    description = str(front.get("description", "") or "").strip()
    kept: dict[str, str] = {}  # the full text of an over-long description, kept for export
    if len(description) > DESCRIPTION_MAX:
        warnings.warn(f"{where}the description has {len(description)} characters (over {DESCRIPTION_MAX}): kept "
                      "in full for export, routing uses a shortened view", UserWarning, stacklevel=2)
        kept["description"] = description
        description = shorten_description(description)
    tier = meta.get(PREFIX + "tier")
    if tier is None:
        return _foreign(front, body, name, description, where, kept)
    if tier not in SKILL_CLASSES:
        raise ValueError(f"{where}unknown skillkit-tier {tier!r}")
    cls = SKILL_CLASSES[tier]
    data: dict[str, Any] = {"name": name, "description": description, "tier": tier}
    for key, value in meta.items():
        if not str(key).startswith(PREFIX) or key in (PREFIX + "tier", PREFIX + "workflow-format"):
            continue
        field = str(key)[len(PREFIX):].replace("-", "_")
        if field == "metadata":
            data["metadata"] = _meta_decode(field, value, dict)
            continue
        info = cls.model_fields.get(field)
        if info is None:
            continue
        data[field] = _meta_decode(field, value, info.annotation if info.annotation in (str, str | None) else None)
    text_workflow = meta.get(PREFIX + "workflow-format") == "text"
    data.update(parse_body(tier, body, text_workflow=text_workflow))
    foreign_meta = {k: v for k, v in meta.items() if not str(k).startswith(PREFIX)}
    foreign_front = {**{k: v for k, v in front.items() if k not in ("name", "description", "metadata")}, **kept}
    if foreign_meta or foreign_front:
        extra = dict(data.get("metadata") or {})
        extra["skill_md"] = {**foreign_front, **({"metadata": foreign_meta} if foreign_meta else {})}
        data["metadata"] = extra
    try:
        return parse_skill(data)
    except ValueError as exc:
        raise ValueError(f"{where}{exc}") from exc


def _foreign(front: dict[str, Any], body: str, name: str, description: str, where: str,
             kept: dict[str, str]) -> SkillBase:
    try:
        validate_skill_name(name)
    except ValueError as exc:
        fixed = slugify(name)
        warnings.warn(f"{where}{exc}; imported as {fixed!r}", UserWarning, stacklevel=3)
        name = fixed
    tools = front.get("allowed-tools") or []
    if isinstance(tools, str):
        tools = tools.split()
    extra = {**{k: v for k, v in front.items() if k not in ("name", "description")}, **kept}
    data = {"tier": "functional", "name": name, "description": description or body.strip()[:200] or name,
            "body": body.strip(), "tools": [str(t) for t in tools], "metadata": {"skill_md": extra} if extra else {}}
    try:
        return parse_skill(data)
    except ValueError as exc:
        raise ValueError(f"{where}{exc}") from exc


def find_skill_files(root: str | Path) -> list[Path]:
    """Every ``SKILL.md`` under ``root`` (``root`` itself may be one skill folder), sorted."""
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"{root} does not exist")
    if root.is_file():
        return [root]
    if (root / SKILL_FILE).exists():
        return [root / SKILL_FILE]
    return sorted(root.rglob(SKILL_FILE))


@dataclass
class FoundSkill:
    """A skill read from a collection: the skill, its folder and the warnings its import raised."""

    skill: SkillBase
    folder: Path
    warnings: list[str] = dataclasses.field(default_factory=list)


@dataclass
class BrokenSkill:
    """A ``SKILL.md`` of a collection that could not be imported, and why."""

    path: Path
    reason: str


@dataclass
class CollectionImport:
    """What :func:`import_collection` found: the skills it could read and the broken ones."""

    skills: list[FoundSkill]
    broken: list[BrokenSkill]


def import_collection(root: str | Path, strict: bool = False) -> CollectionImport:
    """Read every ``SKILL.md`` under ``root``; a broken one (bad name, broken YAML, no front matter,
    unreadable) is reported with its path and reason and the others still import. With ``strict``
    any broken file is an error naming all of them, so nothing is imported."""
    found: list[FoundSkill] = []
    broken: list[BrokenSkill] = []
    for path in find_skill_files(root):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                skill = from_skill_md(path.read_text(encoding="utf-8"))
            except (ValueError, OSError, UnicodeDecodeError) as exc:
                broken.append(BrokenSkill(path, str(exc)))
                continue
        found.append(FoundSkill(skill, path.parent, [str(w.message) for w in caught]))
    if strict and broken:
        lines = "\n".join(f"  {b.path}: {b.reason}" for b in broken)
        raise ValueError(f"{len(broken)} broken SKILL.md file(s) under {root}; nothing imported:\n{lines}")
    return CollectionImport(found, broken)
