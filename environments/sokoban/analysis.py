"""How Sokoban episodes read: moves, pushes onto and off targets, moves that changed nothing.

The analyzer replays the recorded moves on the episode's start grid with the game's own rules
(:meth:`Level.move`) to see which moves changed nothing and which pushed a box off a target. It
uses nothing but the episode: no solver, no oracle.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from environments.analysis import EpisodeAnalyzer
from environments.sokoban.actions import parse_actions
from environments.sokoban.level import ACTION_NAMES, Level, grid_from_observation
from skillkit.core.episode_analysis import ActionGuide, ActionUse, Issue, Routine, Segment
from skillkit.core.schemas import Trajectory, slugify

_INVALID = re.compile(r"Invalid action \(([^)]*)\)")

RULES = {
    "Up": "moves the player one cell up; walking into a box pushes it up if the cell above the box is free",
    "Down": "moves the player one cell down; walking into a box pushes it down if the cell below the box is free",
    "Left": "moves the player one cell left; walking into a box pushes it left if the cell left of it is free",
    "Right": "moves the player one cell right; walking into a box pushes it right if the cell right of it is free",
}
CONSTRAINTS = ("you cannot pull boxes or push two boxes at once", "walls (#) never move")


def condense(moves: Sequence[str]) -> str:
    """Moves with repeats run-length encoded: Right, Right, Up -> ``"Right x2, Up"``."""
    out: list[str] = []
    i = 0
    while i < len(moves):
        j = i
        while j < len(moves) and moves[j] == moves[i]:
            j += 1
        out.append(moves[i] if j - i == 1 else f"{moves[i]} x{j - i}")
        i = j
    return ", ".join(out)


def start_level(traj: Trajectory) -> Level | None:
    """The episode's start grid as a :class:`Level`, or None when the episode did not record one."""
    try:
        return Level.from_text(grid_from_observation(traj.initial_observation or ""))
    except ValueError:
        return None


class SokobanAnalyzer(EpisodeAnalyzer):
    """Sokoban's reading: one action per move, segments that end when a box reaches or leaves a target."""

    action_noun = "move"
    success_phrase = "solved the level"

    def turn_actions(self, traj: Trajectory, turn: int, ok: bool = True) -> list[ActionUse]:
        """The moves the turn executed (``info["actions"]``), else the moves its text names."""
        step = traj.turns[turn]
        moved = step.info.get("actions")
        names = [str(m) for m in moved] if isinstance(moved, list) else list(parse_actions(step.action, 16).actions)
        return [ActionUse(name, turn, ok=ok) for name in names]

    def turn_error(self, traj: Trajectory, turn: int) -> str | None:
        """``"invalid action: why"`` for a turn with no valid move, else None."""
        step = traj.turns[turn]
        if not step.info.get("invalid"):
            return None
        match = _INVALID.search(step.observation or "")
        return f"invalid action: {match.group(1)}" if match else "invalid action"

    @staticmethod
    def effects(traj: Trajectory, actions: Sequence[ActionUse]) -> list[str]:
        """Per action, replayed on the start grid: ``"no-effect"`` (a wall or an unpushable box),
        ``"box-off-target"``, or ``""``; all ``""`` when the episode recorded no start grid."""
        level = start_level(traj)
        out = []
        for action in actions:
            if level is None or action.name not in ACTION_NAMES:
                out.append("")
                continue
            after, src, dst = level.move(action.name)
            if after == level:
                out.append("no-effect")
            elif src is not None and src in level.targets and dst not in level.targets:
                out.append("box-off-target")
            else:
                out.append("")
            level = after
        return out

    def segments(self, traj: Trajectory, actions: Sequence[ActionUse]) -> list[Segment]:
        """The moves that changed the grid, split at every reward event (a box onto or off a target, solved)."""
        segments: list[Segment] = []
        current: list[str] = []
        by_turn: dict[int, list[str]] = {}
        for action, effect in zip(actions, self.effects(traj, actions)):
            if effect != "no-effect":
                by_turn.setdefault(action.turn, []).append(action.name)
        last = len(traj.turns) - 1
        for i, step in enumerate(traj.turns):
            current.extend(by_turn.get(i, []))
            if step.info.get("solved") or (step.done and traj.success and i == last):
                goal, progress = "the last box reaches its target: solved", True
            elif step.reward >= 0.5:
                goal, progress = "a box is pushed onto a target", True
            elif step.reward <= -0.5:
                goal, progress = "a box is pushed off a target", False
            else:
                continue
            if current:
                segments.append(Segment(goal, tuple(current), condense(current), progress))
                current = []
        if current:
            segments.append(Segment("end of episode", tuple(current), condense(current), False))
        return segments

    def issues(self, traj: Trajectory, actions: Sequence[ActionUse], errors: dict[int, str]) -> list[Issue]:
        """Invalid turns, moves that changed nothing, pushes off a target (replayed on the start
        grid), and a failed episode with how far it got."""
        out = [Issue("invalid", turn, detail=error) for turn, error in errors.items()]
        out += [Issue(effect, action.turn, action.name)
                for action, effect in zip(actions, self.effects(traj, actions)) if effect]
        if not traj.success:
            placed = traj.turns[-1].info.get("boxes_on_target", "?") if traj.turns else 0
            out.append(Issue("failed", -1, detail=f"{traj.num_steps} steps, {placed} box(es) placed"))
        return out

    def describe_issues(self, kind: str, issues: Sequence[Issue]) -> str:
        """Sokoban's sentences for invalid turns, wasted moves, pushes off targets and failures."""
        n = len(issues)
        if kind == "invalid":
            return f"{n} turn(s) had no valid action; answer with {', '.join(ACTION_NAMES[:-1])} or {ACTION_NAMES[-1]} only."
        if kind == "no-effect":
            examples = "; ".join(f"{i.action} at step {i.turn + 1}" for i in issues[:3])
            return f"{n} move(s) changed nothing (a wall or an unpushable box), e.g. {examples}."
        if kind == "box-off-target":
            first = issues[0]
            return (f"{n} push(es) moved a box off a target (e.g. {first.action} at step {first.turn + 1}); "
                    "keep placed boxes in place.")
        if kind == "failed":
            ends = "; ".join(f"{end} ({k}x)" if k > 1 else end
                             for end, k in Counter(i.detail for i in issues).most_common(3))
            return (f"{n} episode(s) failed ({ends}); plan the pushes before moving and avoid pushing boxes into "
                    "corners or against walls away from targets.")
        return super().describe_issues(kind, issues)

    def start_state(self, traj: Trajectory) -> str:
        """The start grid (or the generic start text when there is none)."""
        level = start_level(traj)
        return f"Start grid:\n{level.to_text()}" if level is not None else super().start_state(traj)

    def render(self, names: Sequence[str]) -> str:
        """Moves with repeats condensed (``Right x2, Up``)."""
        return condense(names)

    def is_routine(self, gram: Sequence[str]) -> bool:
        """Every recurring move sequence is a routine (``Up, Up`` walks two cells)."""
        return True

    def routine(self, gram: Sequence[str], examples: dict[str, str], n_tasks: int, env: str) -> Routine:
        """A move sequence seen in the solutions of ``n_tasks`` levels."""
        return Routine(name=slugify("-".join(["moves", *[g.lower() for g in gram]])),
                       description=f"Move sequence {condense(gram)}, used in successful solutions of {n_tasks} "
                                   "Sokoban levels.",
                       body="\n".join(f"{i}. {g}" for i, g in enumerate(gram, 1)))

    def guide(self, action: str, uses: Sequence[ActionUse], issues: Sequence[Issue]) -> ActionGuide:
        """What a move does and the pitfalls seen with it (wasted steps, boxes pushed off targets)."""
        kinds = {i.kind for i in issues}
        pitfalls = []
        if "no-effect" in kinds:
            pitfalls.append("moving into a wall or a box that cannot move wastes a step")
        if "box-off-target" in kinds:
            pitfalls.append("this move can push a box off its target (-1); check before pushing a placed box")
        return ActionGuide(name=slugify(f"move-{action.lower()}"),
                           description=f"The Sokoban move {action}: what it does and when it backfires.",
                           usage=RULES.get(action, f"the action {action}"), constraints=CONSTRAINTS,
                           pitfalls=tuple(pitfalls))
