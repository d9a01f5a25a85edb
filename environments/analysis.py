"""How an environment's episodes are read for summaries and skill extraction: the analyzer protocol.

:class:`EpisodeAnalyzer` is the generic reading (each turn's action text is one action; errors
come from ``info``); an environment with more to say subclasses it (Sokoban's moves and boxes, the
app suite's API calls and checks) and returns it from ``Environment.analyzer()``. Skills get an
analyzer with ``environments.analyzer(trajectory.env)`` and never see an environment's internals.
An analyzer reads only what the episode recorded: it never asks an oracle.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from skillkit.core.episode_analysis import ActionGuide, ActionUse, EpisodeAnalysis, Issue, Routine, Segment
from skillkit.core.schemas import Trajectory, slugify

_SPACES = re.compile(r"\s+")


def one_line(text: str, limit: int = 200) -> str:
    """``text`` with runs of whitespace as one space, stripped and cut to ``limit`` characters."""
    return _SPACES.sub(" ", text or "").strip()[:limit]


class EpisodeAnalyzer:
    """The generic reading of an episode; subclasses override the parts their environment knows better.

    ``action_noun`` names one atomic action ("move", "API call"); ``success_phrase`` completes
    "k of n episodes ..." ("solved the level").
    """

    action_noun = "action"
    success_phrase = "succeeded"

    # ----- one episode ------------------------------------------------------------------------

    def analyze(self, traj: Trajectory) -> EpisodeAnalysis:
        """Read one episode: its actions, the errors of its turns, its segments and its issues (in turn
        order, those about the whole episode last)."""
        actions: list[ActionUse] = []
        errors: dict[int, str] = {}
        for i in range(len(traj.turns)):
            error = self.turn_error(traj, i)
            if error:
                errors[i] = error
            actions.extend(self.turn_actions(traj, i, ok=error is None))
        issues = sorted(self.issues(traj, actions, errors), key=lambda i: i.turn if i.turn >= 0 else len(traj.turns))
        return EpisodeAnalysis(traj, actions, errors, self.segments(traj, actions), issues)

    def turn_actions(self, traj: Trajectory, turn: int, ok: bool = True) -> list[ActionUse]:
        """The atomic actions of one turn (generic: the action text, on one line)."""
        text = one_line(traj.turns[turn].action, 80)
        return [ActionUse(text, turn, ok=ok)] if text else []

    def turn_error(self, traj: Trajectory, turn: int) -> str | None:
        """The error a turn caused, as one line, or None (generic: ``info["invalid"]``/``info["error"]``)."""
        step = traj.turns[turn]
        info = step.info or {}
        if info.get("invalid"):
            return "invalid action"
        error = info.get("error")
        if isinstance(error, str) and error.strip():
            return one_line(error.strip().splitlines()[-1])
        if error:
            lines = [line for line in (step.observation or "").splitlines() if "error" in line.lower()]
            return one_line(lines[-1]) if lines else "error"
        return None

    def segments(self, traj: Trajectory, actions: Sequence[ActionUse]) -> list[Segment]:
        """The episode's stretches toward sub-goals (generic: one per action; progress when it ran)."""
        return [Segment("", (a.name,), a.name, progress=a.ok) for a in actions]

    def issues(self, traj: Trajectory, actions: Sequence[ActionUse], errors: dict[int, str]) -> list[Issue]:
        """What went wrong (generic: every turn's error, attributed to the turn's last action, and a
        failed episode)."""
        last = {a.turn: a.name for a in actions}
        out = [Issue("error", turn, last.get(turn, ""), error) for turn, error in errors.items()]
        if not traj.success:
            out.append(Issue("failed", -1, detail=f"{traj.num_steps} steps"))
        return out

    # ----- texts for summaries and skills -----------------------------------------------------

    def start_state(self, traj: Trajectory) -> str:
        """The start of the episode as shown to a summarizer."""
        return (traj.initial_observation or "").strip()[:400]

    def render(self, names: Sequence[str]) -> str:
        """A sequence of action names as one short text."""
        return " -> ".join(names)

    def mistakes(self, analyses: Sequence[EpisodeAnalysis]) -> list[str]:
        """One sentence per kind of issue seen in ``analyses`` (first-seen order)."""
        by_kind: dict[str, list[Issue]] = {}
        for analysis in analyses:
            for issue in analysis.issues:
                by_kind.setdefault(issue.kind, []).append(issue)
        return [text for kind, issues in by_kind.items() if (text := self.describe_issues(kind, issues))]

    def describe_issues(self, kind: str, issues: Sequence[Issue]) -> str:
        """The sentence for the issues of one kind ("" to leave them out)."""
        if kind == "error":
            counts = Counter((i.action, i.detail) for i in issues)
            return " ".join(f"{action or 'a turn'} raised '{detail}'" + (f" ({n} times)" if n > 1 else "") + "."
                            for (action, detail), n in counts.most_common(5))
        if kind == "failed":
            return f"{len(issues)} episode(s) failed."
        examples = "; ".join(dict.fromkeys(i.detail or i.action for i in issues if i.detail or i.action))
        return f"{kind} ({len(issues)}x)" + (f": {examples[:300]}" if examples else "") + "."

    def mentions(self, text: str, names: Sequence[str]) -> list[str]:
        """The action names of ``names`` that ``text`` mentions (case-insensitive, whole words)."""
        return [name for name in names
                if name and re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text or "", re.IGNORECASE)]

    def is_routine(self, gram: Sequence[str]) -> bool:
        """Whether a recurring action sequence is worth a functional skill (generic: not one action
        repeated, which is a loop)."""
        return len(set(gram)) > 1

    def routine(self, gram: Sequence[str], examples: dict[str, str], n_tasks: int, env: str) -> Routine:
        """The functional skill text for ``gram``, seen in successful episodes of ``n_tasks`` tasks
        (``examples`` maps an action to a text that made it)."""
        body = "\n".join(f"{i}. {a}" + (f": `{examples[a]}`" if examples.get(a) else "") for i, a in enumerate(gram, 1))
        return Routine(name=slugify("-".join(gram)),
                       description=f"Routine {self.render(gram)}, used in successful episodes of {n_tasks} "
                                   f"different {env} tasks.",
                       body=body)

    def guide(self, action: str, uses: Sequence[ActionUse], issues: Sequence[Issue]) -> ActionGuide:
        """The atomic skill text for one action from its uses and the issues it caused."""
        wins = sum(u.ok for u in uses)
        return ActionGuide(
            name=slugify(action), description=f"The {self.action_noun} {action}: when it worked and what went wrong.",
            usage=f"{action} ({len(uses)} use(s), {wins} without error).",
            pitfalls=tuple(self._error_pitfalls(issues)),
        )

    @staticmethod
    def _error_pitfalls(issues: Sequence[Issue]) -> list[str]:
        counts = Counter(i.detail for i in issues if i.kind == "error")
        return [f"raised '{err}'" + (f" ({n}x)" if n > 1 else "") for err, n in counts.most_common(4)]
