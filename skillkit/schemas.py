"""Pydantic contracts shared between stages: trajectories (episodes) and skills."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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
