"""The committed level splits (JSONL inside the package) and how they were made.

Paper setting ``2box``: 6x6 rooms, 2 boxes, 96 train levels in curriculum order (shortest optimal
solution first) and 64 test levels, 40 steps per episode. ``1box``: an easier split for small
models, same sizes. Train and test grids are disjoint. ``build_split_files`` regenerates them
deterministically from their seeds.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from environments.sokoban.generator import generate_levels

DATA_DIR = Path(__file__).parent / "data"
SPLITS = ("train", "test")


@dataclass(frozen=True)
class VariantSpec:
    """How a variant's levels are generated."""

    size: int
    boxes: int
    min_moves: int
    max_moves: int
    n_train: int
    n_test: int
    seed: int


VARIANTS: dict[str, VariantSpec] = {
    "2box": VariantSpec(size=6, boxes=2, min_moves=5, max_moves=20, n_train=96, n_test=64, seed=2024),
    "1box": VariantSpec(size=6, boxes=1, min_moves=3, max_moves=15, n_train=96, n_test=64, seed=1024),
}


def split_path(variant: str, split: str) -> Path:
    """Where a split's JSONL lives."""
    return DATA_DIR / f"6x6_{variant}_{split}.jsonl"


@cache
def _read(variant: str, split: str) -> tuple[dict[str, Any], ...]:
    path = split_path(variant, split)
    if not path.exists():
        raise FileNotFoundError(f"Sokoban split file {path} is missing (rebuild with build_split_files)")
    with open(path, encoding="utf-8") as fh:
        return tuple(json.loads(line) for line in fh if line.strip())


def load_split(variant: str, split: str) -> list[dict[str, Any]]:
    """The level records ``{"id", "grid", "size", "boxes", "optimal_moves"}`` of a split."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown Sokoban variant {variant!r}; choose one of {sorted(VARIANTS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown Sokoban split {split!r}; choose one of {list(SPLITS)}")
    return [dict(rec) for rec in _read(variant, split)]


def write_levels_jsonl(path: str | Path, records: list[dict[str, Any]]) -> None:
    """Write level records as JSONL atomically (temp file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def build_split_files(variant: str) -> dict[str, Path]:
    """Regenerate a variant's train/test files from its seed; returns the paths written."""
    spec = VARIANTS[variant]
    levels = generate_levels(spec.n_train + spec.n_test, spec.seed, size=spec.size, boxes=spec.boxes,
                             min_moves=spec.min_moves, max_moves=spec.max_moves)
    test = levels[:spec.n_test]
    train = sorted(levels[spec.n_test:], key=lambda lv: lv.optimal_moves)
    paths = {}
    for split, chosen in (("train", train), ("test", test)):
        records = [lv.to_record(f"sokoban-6x6-{variant}-{split}-{i:03d}") for i, lv in enumerate(chosen)]
        paths[split] = split_path(variant, split)
        write_levels_jsonl(paths[split], records)
    _read.cache_clear()
    return paths
