"""Sokoban levels as text: parsing, rendering and the move rules shared by the env and the solver.

Symbols: ``#`` wall, ``_`` floor, ``O`` target, ``X`` box, ``√`` box on target, ``P`` player,
``S`` player on target. Rows are joined by newlines with no spaces.
"""

from __future__ import annotations

from dataclasses import dataclass

WALL, FLOOR, TARGET, BOX, BOX_ON_TARGET, PLAYER, PLAYER_ON_TARGET = "#", "_", "O", "X", "√", "P", "S"
SYMBOLS = (WALL, FLOOR, TARGET, BOX, BOX_ON_TARGET, PLAYER, PLAYER_ON_TARGET)
LEGEND = ("# wall, _ floor, O target, X box, √ box on target, P player, S player on target")

#: Action names and their (row, column) offsets, in a fixed order.
ACTIONS: dict[str, tuple[int, int]] = {"Up": (-1, 0), "Down": (1, 0), "Left": (0, -1), "Right": (0, 1)}
ACTION_NAMES = tuple(ACTIONS)


@dataclass(frozen=True)
class Level:
    """A parsed level: the static layout (walls, targets) and the dynamic state (player, boxes).

    Cells are flat indices ``row * cols + col``.
    """

    rows: int
    cols: int
    walls: frozenset[int]
    targets: frozenset[int]
    boxes: frozenset[int]
    player: int

    @classmethod
    def from_text(cls, grid: str) -> Level:
        """Parse a grid; raises ``ValueError`` naming the problem for malformed text."""
        if not isinstance(grid, str):
            raise ValueError(f"a Sokoban grid must be text, got {type(grid).__name__}")
        lines = [line.strip() for line in grid.strip().splitlines() if line.strip()]
        if not lines:
            raise ValueError("empty Sokoban grid")
        cols = len(lines[0])
        walls, targets, boxes, players = set(), set(), set(), []
        for r, line in enumerate(lines):
            if len(line) != cols:
                raise ValueError(f"Sokoban grid row {r} has {len(line)} cells, expected {cols} (rows must be equal)")
            for c, ch in enumerate(line):
                cell = r * cols + c
                if ch not in SYMBOLS:
                    raise ValueError(f"unknown Sokoban symbol {ch!r} at row {r}, column {c} (use {LEGEND})")
                if ch == WALL:
                    walls.add(cell)
                if ch in (TARGET, BOX_ON_TARGET, PLAYER_ON_TARGET):
                    targets.add(cell)
                if ch in (BOX, BOX_ON_TARGET):
                    boxes.add(cell)
                if ch in (PLAYER, PLAYER_ON_TARGET):
                    players.append(cell)
        if len(players) != 1:
            raise ValueError(f"a Sokoban grid needs exactly one player (P or S), found {len(players)}")
        if not boxes:
            raise ValueError("a Sokoban grid needs at least one box (X or √)")
        if len(targets) < len(boxes):
            raise ValueError(f"a Sokoban grid has {len(boxes)} boxes but only {len(targets)} targets")
        return cls(len(lines), cols, frozenset(walls), frozenset(targets), frozenset(boxes), players[0])

    def with_state(self, player: int, boxes: frozenset[int]) -> Level:
        """The same layout with another player position and box set."""
        return Level(self.rows, self.cols, self.walls, self.targets, frozenset(boxes), player)

    def to_text(self) -> str:
        """Render the grid (rows joined by newlines, no spaces)."""
        out = []
        for r in range(self.rows):
            row = []
            for c in range(self.cols):
                cell = r * self.cols + c
                on_target = cell in self.targets
                if cell in self.walls:
                    row.append(WALL)
                elif cell == self.player:
                    row.append(PLAYER_ON_TARGET if on_target else PLAYER)
                elif cell in self.boxes:
                    row.append(BOX_ON_TARGET if on_target else BOX)
                else:
                    row.append(TARGET if on_target else FLOOR)
            out.append("".join(row))
        return "\n".join(out)

    def neighbour(self, cell: int, action: str) -> int | None:
        """The cell one step from ``cell`` in ``action``'s direction, or None off the grid."""
        dr, dc = ACTIONS[action]
        r, c = divmod(cell, self.cols)
        r, c = r + dr, c + dc
        if 0 <= r < self.rows and 0 <= c < self.cols:
            return r * self.cols + c
        return None

    def is_free(self, cell: int | None) -> bool:
        """Whether a cell is on the grid and not a wall (boxes are ignored)."""
        return cell is not None and cell not in self.walls

    @property
    def boxes_on_target(self) -> int:
        """How many boxes stand on targets."""
        return len(self.boxes & self.targets)

    @property
    def solved(self) -> bool:
        """Every box is on a target."""
        return self.boxes <= self.targets

    def move(self, action: str) -> tuple[Level, int | None, int | None]:
        """Apply one move: returns (new level, box moved from, box moved to).

        A move into a wall or into a box that cannot be pushed (wall or box behind it) leaves the
        level unchanged; then both box cells are None.
        """
        target = self.neighbour(self.player, action)
        if not self.is_free(target):
            return self, None, None
        if target in self.boxes:
            beyond = self.neighbour(target, action)
            if not self.is_free(beyond) or beyond in self.boxes:
                return self, None, None
            boxes = (self.boxes - {target}) | {beyond}
            return self.with_state(target, boxes), target, beyond
        return self.with_state(target, self.boxes), None, None


def grid_from_observation(observation: str) -> str:
    """The grid at the top of an observation (the rows made only of Sokoban symbols)."""
    rows = []
    for line in observation.strip().splitlines():
        line = line.strip()
        if not line or any(ch not in SYMBOLS for ch in line):
            break
        rows.append(line)
    if not rows:
        raise ValueError("no Sokoban grid at the start of the observation")
    return "\n".join(rows)
