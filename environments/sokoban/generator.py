"""Seeded Sokoban level generation by reverse play from a solved room.

1. Carve a room: a random walk inside a border of walls turns walls into floor.
2. Put boxes on targets (a solved state) and the player on a free floor cell.
3. Play backwards: the player walks and *pulls* boxes at random; every state reached this way is
   solvable by construction (replaying the pulls as pushes).
4. Keep the reverse-play state whose boxes moved furthest, solve it with the minimum-move solver
   and accept it when its optimal length is within ``[min_moves, max_moves]``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from environments.sokoban.level import ACTION_NAMES, ACTIONS, Level
from environments.sokoban.solver import solve


@dataclass(frozen=True)
class GeneratedLevel:
    """A verified level: its grid text and the length of its optimal solution."""

    grid: str
    size: int
    boxes: int
    optimal_moves: int
    solution: tuple[str, ...]

    def to_record(self, level_id: str) -> dict:
        """The committed JSONL record ``{"id", "grid", "size", "boxes", "optimal_moves"}``."""
        return {"id": level_id, "grid": self.grid, "size": self.size, "boxes": self.boxes,
                "optimal_moves": self.optimal_moves}


def _carve_room(size: int, rng: random.Random, walk_steps: int, p_turn: float) -> set[int]:
    """Floor cells made by a random walk inside a ``size`` x ``size`` room with border walls."""
    r, c = rng.randrange(1, size - 1), rng.randrange(1, size - 1)
    floor = {r * size + c}
    direction = rng.choice(ACTION_NAMES)
    for _ in range(walk_steps):
        if rng.random() < p_turn:
            direction = rng.choice(ACTION_NAMES)
        dr, dc = ACTIONS[direction]
        if 1 <= r + dr < size - 1 and 1 <= c + dc < size - 1:
            r, c = r + dr, c + dc
            floor.add(r * size + c)
    return floor


def _reverse_play(level: Level, rng: random.Random, steps: int) -> Level:
    """Walk and pull boxes at random from a solved state; return the most scrambled state seen."""
    best, best_score = level, -1
    origin = {b: b for b in level.boxes}  # current box cell -> target it started on
    player, boxes = level.player, set(level.boxes)
    cols = level.cols
    swaps, last_pulled = 0, None
    for _ in range(steps):
        action = rng.choice(ACTION_NAMES)
        dr, dc = ACTIONS[action]
        ahead = level.neighbour(player, action)
        if not level.is_free(ahead) or ahead in boxes:
            continue
        behind = player - (dr * cols + dc)
        pull = rng.random() < 0.8 and behind in boxes
        if pull:
            boxes.remove(behind)
            boxes.add(player)
            origin[player] = origin.pop(behind)
            swaps += origin[player] != last_pulled
            last_pulled = origin[player]
        player = ahead
        if pull:
            score = swaps * sum(_manhattan(b, t, cols) for b, t in origin.items())
            if all(b not in level.targets for b in boxes) and score > best_score:
                best, best_score = level.with_state(player, frozenset(boxes)), score
    return best


def _manhattan(a: int, b: int, cols: int) -> int:
    return abs(a // cols - b // cols) + abs(a % cols - b % cols)


def generate_level(rng: random.Random, size: int = 6, boxes: int = 2, min_moves: int = 1,
                   max_moves: int = 40, reverse_steps: int = 150, max_tries: int = 200) -> GeneratedLevel:
    """Generate one verified level; raises ``RuntimeError`` if ``max_tries`` attempts all fail."""
    if size < 4:
        raise ValueError(f"size must be at least 4, got {size}")
    if not 1 <= boxes <= (size - 2) ** 2 - 1:
        raise ValueError(f"boxes must be between 1 and {(size - 2) ** 2 - 1} for size {size}, got {boxes}")
    if min_moves > max_moves:
        raise ValueError(f"min_moves ({min_moves}) is larger than max_moves ({max_moves})")
    walk = int(1.6 * (size - 2) ** 2)
    for _ in range(max_tries):
        floor = _carve_room(size, rng, walk, 0.35)
        if len(floor) < boxes + 2:
            continue
        cells = rng.sample(sorted(floor), boxes + 1)
        walls = frozenset(range(size * size)) - floor
        solved = Level(size, size, walls, frozenset(cells[:boxes]), frozenset(cells[:boxes]), cells[boxes])
        start = _reverse_play(solved, rng, reverse_steps)
        if start is solved:
            continue
        plan = solve(start)
        if plan is None or not min_moves <= len(plan) <= max_moves:
            continue
        return GeneratedLevel(start.to_text(), size, boxes, len(plan), tuple(plan))
    raise RuntimeError(f"no level of size {size} with {boxes} boxes and {min_moves}-{max_moves} optimal moves "
                       f"after {max_tries} tries")


def generate_levels(n: int, seed: int, size: int = 6, boxes: int = 2, min_moves: int = 1,
                    max_moves: int = 40, unique: bool = True) -> list[GeneratedLevel]:
    """Generate ``n`` verified levels from ``seed`` (deterministic), distinct grids when ``unique``."""
    rng = random.Random(seed)
    out: list[GeneratedLevel] = []
    seen: set[str] = set()
    while len(out) < n:
        level = generate_level(rng, size=size, boxes=boxes, min_moves=min_moves, max_moves=max_moves)
        if unique and level.grid in seen:
            continue
        seen.add(level.grid)
        out.append(level)
    return out
