"""What tells Sokoban levels apart, as text a skill router can match.

Every level has the same instruction and every 6x6 grid embeds almost alike, so routing on the
instruction and the raw grid sends every level to the same skill. :func:`layout_tokens` writes the
layout as one token per object and cell (``wallr2c3``, ``targetr1c4``, ``boxr2c2``,
``playerr4c1``; the border walls are left out because every level has them). Two layouts share a
token exactly where they share an object on a cell, so a lexical ranker (BM25) scores a skill
learnt on a level by how much of its layout the current level repeats.
"""

from __future__ import annotations

from environments.sokoban.level import Level


def _cell(level: Level, kind: str, cell: int) -> str:
    row, col = divmod(cell, level.cols)
    return f"{kind}r{row}c{col}"


def inner_walls(level: Level) -> list[int]:
    """The wall cells off the grid's border."""
    return sorted(w for w in level.walls
                  if 0 < w // level.cols < level.rows - 1 and 0 < w % level.cols < level.cols - 1)


def layout_tokens(level: Level) -> str:
    """``sokoban layout:`` then one token per inner wall, target, box and the player, in that order."""
    tokens = ([_cell(level, "wall", w) for w in inner_walls(level)]
              + [_cell(level, "target", t) for t in sorted(level.targets)]
              + [_cell(level, "box", b) for b in sorted(level.boxes)]
              + [_cell(level, "player", level.player)])
    return "sokoban layout: " + " ".join(tokens)


def layout_distance(a: Level, b: Level) -> int:
    """How many (object, cell) facts two same-sized layouts disagree on: walls, targets, boxes, player."""
    if (a.rows, a.cols) != (b.rows, b.cols):
        raise ValueError(f"layouts of different sizes: {a.rows}x{a.cols} and {b.rows}x{b.cols}")
    return (len(a.walls ^ b.walls) + len(a.targets ^ b.targets) + len(a.boxes ^ b.boxes)
            + (a.player != b.player) * 2)
