"""A minimum-move Sokoban solver: A* over (player, boxes) with deadlock pruning.

Every move costs 1, so the optimal solution minimises the number of actions (walks and pushes).
The heuristic (sum over boxes of the fewest pushes to the nearest target, ignoring the other
boxes) never overestimates and changes by at most 1 per move, so A* returns an optimal plan.
Pruning is sound: a box on a *dead square* (one from which no target is reachable by pushes)
or a *frozen* box off target (blocked on both axes by walls/other frozen boxes) can never be
solved, so those states are dropped.
"""

from __future__ import annotations

import heapq
from collections import deque

from environments.sokoban.level import ACTION_NAMES, Level


class SolverLimitError(RuntimeError):
    """The search visited more states than allowed before finding a solution or proving none."""


class _Layout:
    """Precomputed per-layout tables: neighbours per direction, push distances to targets."""

    def __init__(self, level: Level):
        self.n = level.rows * level.cols
        self.targets_mask = 0
        for t in level.targets:
            self.targets_mask |= 1 << t
        # step[d][cell] -> neighbour cell in direction d or -1 (wall / off grid).
        self.step = []
        for action in ACTION_NAMES:
            table = []
            for cell in range(self.n):
                nxt = level.neighbour(cell, action) if cell not in level.walls else None
                table.append(nxt if level.is_free(nxt) else -1)
            self.step.append(table)
        self.dist = self._push_distances(level)

    def _push_distances(self, level: Level) -> list[float]:
        """Fewest pushes from each cell to any target ignoring other boxes (inf = dead square).

        Computed by pulling from the targets: a box at ``c`` reaches ``c - d`` by a pull when the
        player can stand at ``c - 2d``.
        """
        inf = float("inf")
        dist = [inf] * self.n
        queue = deque()
        for t in level.targets:
            dist[t] = 0
            queue.append(t)
        opposite = (1, 0, 3, 2)  # Up<->Down, Left<->Right
        while queue:
            cell = queue.popleft()
            for d in range(4):
                back = self.step[opposite[d]][cell]  # where the box came from
                if back < 0:
                    continue
                stand = self.step[opposite[d]][back]  # where the player stood to push it
                if stand < 0 or dist[back] != inf:
                    continue
                dist[back] = dist[cell] + 1
                queue.append(back)
        return dist

    def frozen(self, box: int, boxes: int) -> bool:
        """Whether ``box`` is frozen off target (or freezes another box off target): a deadlock."""
        off_target: list[bool] = []
        if self._blocked_both(box, boxes, 0, off_target):
            return any(off_target)
        return False

    def _blocked_axis(self, box: int, boxes: int, axis: int, walls_extra: int, off_target: list[bool]) -> bool:
        a, b = (0, 1) if axis == 0 else (2, 3)
        na, nb = self.step[a][box], self.step[b][box]
        if na < 0 or nb < 0:
            return True
        if (walls_extra >> na) & 1 or (walls_extra >> nb) & 1:
            return True
        inf = float("inf")
        if self.dist[na] == inf and self.dist[nb] == inf:
            return True
        for nbr in (na, nb):
            if (boxes >> nbr) & 1 and self._blocked_both(nbr, boxes, walls_extra | (1 << box), off_target):
                return True
        return False

    def _blocked_both(self, box: int, boxes: int, walls_extra: int, off_target: list[bool]) -> bool:
        mark = len(off_target)
        off_target.append(not (self.targets_mask >> box) & 1)
        if self._blocked_axis(box, boxes, 0, walls_extra, off_target) and \
                self._blocked_axis(box, boxes, 1, walls_extra, off_target):
            return True
        del off_target[mark:]
        return False


def solve(grid: str | Level, max_states: int = 2_000_000) -> list[str] | None:
    """Return a minimum-move solution (action names) for a level, or None if it is unsolvable.

    ``grid`` is the level text (or a parsed :class:`Level`). Raises :class:`SolverLimitError` when
    more than ``max_states`` states would be expanded.
    """
    level = grid if isinstance(grid, Level) else Level.from_text(grid)
    if level.solved:
        return []
    lay = _Layout(level)
    inf = float("inf")
    boxes0 = 0
    for b in level.boxes:
        boxes0 |= 1 << b
    if any(lay.dist[b] == inf for b in level.boxes):
        return None
    n, step, dist, targets_mask = lay.n, lay.step, lay.dist, lay.targets_mask
    h0 = sum(dist[b] for b in level.boxes)
    start = boxes0 * n + level.player
    parent: dict[int, tuple[int, int]] = {start: (-1, -1)}
    g_of = {start: 0}
    counter = 0
    heap = [(h0, 0, counter, start, level.player, boxes0, h0)]
    expanded = 0
    while heap:
        _, neg_g, _, key, player, boxes, h = heapq.heappop(heap)
        g = -neg_g
        if g_of.get(key, inf) < g:
            continue
        if (boxes & ~targets_mask) == 0:
            return _path(parent, key)
        expanded += 1
        if expanded > max_states:
            raise SolverLimitError(f"Sokoban solver gave up after {max_states} states")
        g1 = g + 1
        for d in range(4):
            nxt = step[d][player]
            if nxt < 0:
                continue
            nh = h
            nboxes = boxes
            if (boxes >> nxt) & 1:
                beyond = step[d][nxt]
                if beyond < 0 or (boxes >> beyond) & 1 or dist[beyond] == inf:
                    continue
                nboxes = (boxes & ~(1 << nxt)) | (1 << beyond)
                if lay.frozen(beyond, nboxes):
                    continue
                nh = h - dist[nxt] + dist[beyond]
            nkey = nboxes * n + nxt
            if g_of.get(nkey, inf) <= g1:
                continue
            g_of[nkey] = g1
            parent[nkey] = (key, d)
            counter += 1
            heapq.heappush(heap, (g1 + nh, -g1, counter, nkey, nxt, nboxes, nh))
    return None


def _path(parent: dict[int, tuple[int, int]], key: int) -> list[str]:
    moves = []
    while True:
        prev, d = parent[key]
        if prev < 0:
            break
        moves.append(ACTION_NAMES[d])
        key = prev
    moves.reverse()
    return moves
