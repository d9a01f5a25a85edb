"""Pydantic contracts shared between stages: trajectories (episodes) and skills."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator


class Turn(BaseModel):
    """One agent step: the action text the agent produced and what the environment answered."""

    model_config = ConfigDict(extra="allow")

    action: str
    observation: str
    reward: float = 0.0
    done: bool = False
    info: dict[str, Any] = Field(default_factory=dict)
    skills_shown: list[str] = Field(default_factory=list)


class Trajectory(BaseModel):
    """One episode, one JSONL line: the task, the initial observation, the turns and the outcome."""

    model_config = ConfigDict(extra="allow")

    id: str
    env: str
    task_id: str
    instruction: str = ""
    initial_observation: str = ""
    turns: list[Turn] = Field(default_factory=list)
    success: bool = False
    total_reward: float = 0.0
    metadata: dict[str, Any] = Field(default_factory=dict)

    @property
    def num_steps(self) -> int:
        """Number of agent steps taken."""
        return len(self.turns)


def write_jsonl(path: str | Path, records: Iterable[BaseModel | dict]) -> int:
    """Write records (pydantic models or dicts) as JSON lines; returns how many were written."""
    count = 0
    with open(path, "w", encoding="utf-8") as fh:
        for rec in records:
            data = rec.model_dump(mode="json") if isinstance(rec, BaseModel) else rec
            fh.write(json.dumps(data, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_trajectories(path: str | Path) -> Iterator[Trajectory]:
    """Read a trajectory JSONL file, naming the line of any invalid record."""
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield Trajectory.model_validate_json(line)
            except ValueError as exc:
                raise ValueError(f"{path}:{lineno}: not a valid trajectory: {exc}") from exc


# ---------------------------------------------------------------------------------------------
# Skills
# ---------------------------------------------------------------------------------------------

#: The four kinds of skill: the Skill-SD trajectory summary and the three SkillX tiers.
Tier = Literal["trajectory", "planning", "functional", "atomic"]
TIERS: tuple[str, ...] = ("trajectory", "planning", "functional", "atomic")

NAME_MAX = 64
DESCRIPTION_MAX = 1024
_NAME_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
_SPACE_RE = re.compile(r"\s")


def validate_skill_name(name: str) -> str:
    """Check a skill name against the Agent Skills rules; returns it or raises ``ValueError``.

    Rules: 1-64 characters, only lowercase letters, digits and hyphens, no leading, trailing or
    doubled hyphen (so the name is a valid folder name and a valid ``SKILL.md`` ``name``).
    """
    if not isinstance(name, str):
        raise ValueError(f"a skill name must be a string, got {type(name).__name__}")
    if not 1 <= len(name) <= NAME_MAX:
        raise ValueError(f"skill name {name!r} must be 1-{NAME_MAX} characters long (it has {len(name)})")
    if not _NAME_RE.match(name):
        bad = sorted({c for c in name if not (c.isascii() and (c.islower() or c.isdigit() or c == "-"))})
        why = f"characters {''.join(bad)!r} are not allowed" if bad else "hyphens may not lead, trail or repeat"
        raise ValueError(
            f"skill name {name!r} is invalid: use lowercase letters, digits and single hyphens ([a-z0-9-]); {why}"
        )
    return name


def slugify(text: str, max_len: int = NAME_MAX, default: str = "skill") -> str:
    """Turn any text into a valid skill name (lowercase, ``[a-z0-9-]``, at most ``max_len`` chars)."""
    text = unicodedata.normalize("NFKD", str(text)).encode("ascii", "ignore").decode("ascii").lower()
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")
    if len(slug) > max_len:
        slug = slug[:max_len].rstrip("-")
    return slug or default


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _new_id() -> str:
    return uuid.uuid4().hex[:16]


def _numbered(items: list[str]) -> str:
    """Render a list as ``1. item`` lines; continuation lines of multi-line items are indented."""
    return "\n".join(f"{i}. " + str(item).strip().replace("\n", "\n   ") for i, item in enumerate(items, 1))


def _bulleted(items: list[str]) -> str:
    """Render a list as ``- item`` lines; continuation lines of multi-line items are indented."""
    return "\n".join("- " + str(item).strip().replace("\n", "\n  ") for item in items)


def _sections(parts: list[tuple[str, str]]) -> str:
    """Join ``(heading, text)`` pairs into markdown, leaving out empty sections."""
    return "\n\n".join(f"## {head}\n{text.strip()}" for head, text in parts if text and text.strip())


class TaskUsage(BaseModel):
    """How often a skill was selected for one task and the rewards it got there (UCB counters)."""

    model_config = ConfigDict(extra="ignore")

    n: int = Field(0, ge=0)
    reward_sum: float = 0.0

    @property
    def mean_reward(self) -> float:
        """Average reward over the selections (0 when never selected)."""
        return self.reward_sum / self.n if self.n else 0.0


class SkillBase(BaseModel):
    """Metadata every skill carries, whatever its tier.

    ``name`` follows the Agent Skills rules (see :func:`validate_skill_name`); ``description`` is
    1-1024 characters. ``n_selected``/``reward_sum`` are the global usage counters and
    ``task_usage`` the per-task ones used by UCB selection. ``routing_text`` is matched by the router
    but never shown to agents: the features of the situation the skill was learnt in, when the
    environment's tasks share one instruction (e.g. a Sokoban level's layout).
    """

    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    id: str = Field(default_factory=_new_id)
    name: str
    description: str
    tier: Tier
    tags: list[str] = Field(default_factory=list)
    version: int = Field(1, ge=1)
    source_tasks: list[str] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=_utcnow)
    modified_at: datetime = Field(default_factory=_utcnow)
    extraction_round: int = Field(0, ge=0)
    n_selected: int = Field(0, ge=0)
    reward_sum: float = 0.0
    task_usage: dict[str, TaskUsage] = Field(default_factory=dict)
    embedding_model: str | None = None
    env: str | None = None
    routing_text: str = ""
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        value = str(value).strip()
        if not value or len(value) > 128 or _SPACE_RE.search(value):
            raise ValueError(f"skill id {value!r} must be 1-128 characters without whitespace")
        return value

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return validate_skill_name(value)

    @field_validator("description")
    @classmethod
    def _check_description(cls, value: str) -> str:
        value = str(value).strip()
        if not value:
            raise ValueError("a skill description must not be empty")
        if len(value) > DESCRIPTION_MAX:
            raise ValueError(
                f"a skill description must be at most {DESCRIPTION_MAX} characters (it has {len(value)})"
            )
        return value

    @field_validator("tags")
    @classmethod
    def _check_tags(cls, value: list[str]) -> list[str]:
        out: list[str] = []
        for tag in value:
            tag = str(tag).strip()
            if tag and tag not in out:
                out.append(tag)
        return out

    @field_validator("created_at", "modified_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)

    @property
    def mean_reward(self) -> float:
        """Average reward over all selections (0 when never selected)."""
        return self.reward_sum / self.n_selected if self.n_selected else 0.0

    def body_text(self) -> str:
        """The markdown body shown to agents and teachers (and written to ``SKILL.md``)."""
        return self.description

    def to_text(self) -> str:
        """``name | description | body`` (``| routing_text`` when set): the text that is embedded and routed on."""
        text = f"{self.name} | {self.description} | {self.body_text()}"
        return f"{text} | {self.routing_text}" if self.routing_text else text

    def content_hash(self) -> str:
        """SHA-256 of :meth:`to_text` (what the embedding depends on), as 32 hex characters."""
        return hashlib.sha256(self.to_text().encode("utf-8")).hexdigest()[:32]

    def touch(self) -> None:
        """Set ``modified_at`` to now."""
        self.modified_at = _utcnow()


class TrajectorySkill(SkillBase):
    """A Skill-SD trajectory summary: what worked, what went wrong, and the workflow to follow."""

    tier: Literal["trajectory"] = "trajectory"
    task_id: str = ""
    success_analysis: str = ""
    mistake_analysis: str = ""
    golden_workflow: list[str] | str = Field(default_factory=list)
    source_trajectory_ids: list[str] = Field(default_factory=list)
    reward_stats: dict[str, float] = Field(default_factory=dict)

    def workflow_steps(self) -> list[str]:
        """The golden workflow as a list of steps (a string workflow is split into lines)."""
        if isinstance(self.golden_workflow, list):
            return list(self.golden_workflow)
        return [line.strip() for line in self.golden_workflow.splitlines() if line.strip()]

    def body_text(self) -> str:
        workflow = self.golden_workflow
        rendered = _numbered(workflow) if isinstance(workflow, list) else workflow
        return _sections([
            ("What worked", self.success_analysis),
            ("Mistakes to avoid", self.mistake_analysis),
            ("Golden workflow", rendered),
        ]) or self.description


class PlanningSkill(SkillBase):
    """SkillX tier 1: a plan for a task, each step ``sub-goal; key APIs/actions``."""

    tier: Literal["planning"] = "planning"
    task: str = ""
    plan: list[str] = Field(default_factory=list)

    def body_text(self) -> str:
        return _sections([("Task", self.task), ("Plan", _numbered(self.plan))]) or self.description


class FunctionalSkill(SkillBase):
    """SkillX tier 2: a reusable multi-step routine (markdown ``body``) and the tools it uses."""

    tier: Literal["functional"] = "functional"
    body: str = ""
    tools: list[str] = Field(default_factory=list)

    def body_text(self) -> str:
        parts = [self.body.strip()] if self.body.strip() else []
        if self.tools:
            parts.append("## Tools\n" + _bulleted(self.tools))
        return "\n\n".join(parts) or self.description


class AtomicSkill(SkillBase):
    """SkillX tier 3: one API or action with its usage, constraints and pitfalls."""

    tier: Literal["atomic"] = "atomic"
    action: str = ""
    usage: str = ""
    constraints: list[str] = Field(default_factory=list)
    pitfalls: list[str] = Field(default_factory=list)
    examples: list[str] = Field(default_factory=list)

    def body_text(self) -> str:
        return _sections([
            ("Action", f"`{self.action}`" if self.action else ""),
            ("Usage", self.usage),
            ("Constraints", _bulleted(self.constraints)),
            ("Pitfalls", _bulleted(self.pitfalls)),
            ("Examples", _bulleted(self.examples)),
        ]) or self.description


#: Any skill, discriminated by its ``tier``.
AnySkill = Annotated[
    TrajectorySkill | PlanningSkill | FunctionalSkill | AtomicSkill, Field(discriminator="tier")
]
SKILL_CLASSES: dict[str, type[SkillBase]] = {
    "trajectory": TrajectorySkill, "planning": PlanningSkill, "functional": FunctionalSkill, "atomic": AtomicSkill,
}
_SKILL_ADAPTER: TypeAdapter[Any] = TypeAdapter(AnySkill)


def parse_skill(data: dict[str, Any] | str | bytes) -> TrajectorySkill | PlanningSkill | FunctionalSkill | AtomicSkill:
    """Build the right skill class from a dict (or a JSON string) by its ``tier``.

    Raises ``ValueError`` (a pydantic ``ValidationError``) naming the offending field.
    """
    if isinstance(data, (str, bytes)):
        return _SKILL_ADAPTER.validate_json(data)
    if isinstance(data, SkillBase):
        return data  # type: ignore[return-value]
    if not isinstance(data, dict):
        raise ValueError(f"a skill must be a JSON object, got {type(data).__name__}")
    if "tier" not in data:
        raise ValueError(f"a skill needs a 'tier' (one of {', '.join(TIERS)})")
    return _SKILL_ADAPTER.validate_python(data)


def skill_to_dict(skill: SkillBase) -> dict[str, Any]:
    """The JSON-ready dict of a skill (what one ``skills.jsonl`` line holds)."""
    return skill.model_dump(mode="json")
