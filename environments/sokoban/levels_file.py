"""A user's own Sokoban levels: a JSONL file with one ``{"id": ..., "grid": ...}`` object per line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from environments.sokoban.level import Level


def load_levels_file(path: str | Path) -> list[dict[str, Any]]:
    """The level records of ``path`` (``id``, ``grid``); a bad line raises ``ValueError`` naming it."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"levels file {path} does not exist")
    records: list[dict[str, Any]] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path} line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{where}: not valid JSON ({err.msg})") from None
        if not isinstance(record, dict) or not isinstance(record.get("id"), str) or not record["id"].strip():
            raise ValueError(f'{where}: expected an object with a non-empty string "id" and a "grid"')
        if not isinstance(record.get("grid"), str):
            raise ValueError(f'{where}: "grid" must be the level text (rows joined by newlines)')
        if record["id"] in seen:
            raise ValueError(f"{where}: duplicate level id {record['id']!r}")
        try:
            Level.from_text(record["grid"])
        except ValueError as err:
            raise ValueError(f"{where}: {err}") from None
        seen.add(record["id"])
        records.append({"id": record["id"], "grid": record["grid"]})
    if not records:
        raise ValueError(f"levels file {path} holds no levels")
    return records
