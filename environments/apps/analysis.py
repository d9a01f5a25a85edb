"""How app-suite episodes read: the ``apis.<app>.<api>`` calls of each code action, the errors they
raised, the checks a failed task did not pass. Also used for the real AppWorld (same action format).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from environments.analysis import EpisodeAnalyzer, one_line
from environments.apps.env import extract_code
from skillkit.core.episode_analysis import ActionGuide, ActionUse, Issue, Routine, Segment
from skillkit.core.schemas import Trajectory, slugify

_API_CALL = re.compile(r"\bapis\.([A-Za-z_]\w*)\.([A-Za-z_]\w*)")
_KWARG = re.compile(r"\b([A-Za-z_]\w*)\s*=(?!=)")
_ERROR_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Exit)\b.*)$", re.MULTILINE)
COMPLETE = "supervisor.complete_task"


def api_calls(code: str) -> list[str]:
    """The ``app.api`` names a code action calls (``apis.phone.login(...)`` -> ``phone.login``), in order."""
    return [f"{app}.{api}" for app, api in _API_CALL.findall(code or "")]


def _goal(call: str) -> str:
    app, _, api = call.partition(".")
    return f"{api.replace('_', ' ')} ({app})" if api else call


class AppsAnalyzer(EpisodeAnalyzer):
    """The app suite's reading: one action per API call, one segment per API that ran without error."""

    action_noun = "API call"
    success_phrase = "completed the task"

    def turn_actions(self, traj: Trajectory, turn: int, ok: bool = True) -> list[ActionUse]:
        """The API calls of the turn's code, each with the first line that calls it and its keyword arguments."""
        out = []
        lines: dict[str, str] = {}
        for line in extract_code(traj.turns[turn].action).splitlines():
            for call in api_calls(line):
                lines.setdefault(call, one_line(line))
        for call in api_calls(extract_code(traj.turns[turn].action)):
            line = lines.get(call, "")
            args = tuple(dict.fromkeys(_KWARG.findall(line.split(call.split(".")[-1] + "(", 1)[-1])))
            out.append(ActionUse(call, turn, line, args, ok))
        return out

    def turn_error(self, traj: Trajectory, turn: int) -> str | None:
        """The exception the turn's code raised (its last ``...Error: message`` line), or None."""
        step = traj.turns[turn]
        error = (step.info or {}).get("error")
        if isinstance(error, str) and error.strip():
            return one_line(error.strip().splitlines()[-1])
        observation = step.observation or ""
        if not (error or "Error:" in observation or "Traceback" in observation):
            return None
        lines = _ERROR_LINE.findall(observation)
        if lines:
            return one_line(lines[-1])
        after = observation.split("Error:", 1)[1].strip() if "Error:" in observation else ""
        return one_line(after.splitlines()[0]) if after else "error"

    def segments(self, traj: Trajectory, actions: Sequence[ActionUse]) -> list[Segment]:
        """One step per API that ran without error, in first-call order, with the line that called it."""
        seen: dict[str, str] = {}
        for action in actions:
            if action.ok and action.name not in seen:
                seen[action.name] = action.example or action.name
        return [Segment(f"call {call}", (call,), line) for call, line in seen.items()]

    def issues(self, traj: Trajectory, actions: Sequence[ActionUse], errors: dict[int, str]) -> list[Issue]:
        """Errors (attributed to the turn's last call), failed checks, and a failure that never
        called ``supervisor.complete_task``."""
        last = {a.turn: a.name for a in actions}
        out = [Issue("error", turn, last.get(turn, "code"), error) for turn, error in errors.items()]
        if traj.success:
            return out
        checks = (traj.turns[-1].info.get("checks") if traj.turns else None) or traj.metadata.get("checks") or []
        out += [Issue("failed-check", -1, detail=str(c.get("name", "check"))) for c in checks
                if isinstance(c, dict) and not c.get("passed", True)]
        if not any(a.name == COMPLETE and a.ok for a in actions):
            out.append(Issue("not-completed", -1))
        return out

    def describe_issues(self, kind: str, issues: Sequence[Issue]) -> str:
        """The app suite's sentences for failed checks and tasks never marked complete."""
        if kind == "failed-check":
            counts = Counter(i.detail for i in issues)
            return "Failed checks: " + "; ".join(f"{name} ({n}x)" for name, n in counts.most_common(5)) + "."
        if kind == "not-completed":
            return f"{len(issues)} episode(s) never completed the task (call apis.{COMPLETE}() at the end)."
        return super().describe_issues(kind, issues)

    def routine(self, gram: Sequence[str], examples: dict[str, str], n_tasks: int, env: str) -> Routine:
        """A sequence of API calls seen in successful episodes of ``n_tasks`` tasks, with example lines."""
        body = "\n".join(f"{i}. {_goal(c)}: `{examples.get(c) or c}`" for i, c in enumerate(gram, 1))
        return Routine(name=slugify("-".join(c.split(".")[-1] for c in gram)),
                       description=f"Routine {' -> '.join(gram)}, used in successful episodes of {n_tasks} "
                                   f"different {env} tasks.",
                       body=body)

    def guide(self, action: str, uses: Sequence[ActionUse], issues: Sequence[Issue]) -> ActionGuide:
        """How to call one API: the keyword arguments that worked, login and paging needs, errors seen."""
        args = [a for a, _ in Counter(arg for u in uses if u.ok for arg in u.args).most_common(8)]
        constraints = []
        if "access_token" in args:
            app = action.split(".")[0]
            constraints.append(f"needs access_token=... from apis.{app}.login(username=..., password=...)")
        if "page_index" in args or "page_limit" in args:
            constraints.append("paginated: loop over page_index until a page comes back short")
        return ActionGuide(
            name=slugify(action.replace(".", "-")),
            description=f"How to call the {action} API: arguments, requirements and errors seen.",
            usage=f"Call apis.{action}(...) with keyword arguments" + (f" ({', '.join(args)})." if args else "."),
            constraints=tuple(constraints), pitfalls=tuple(self._error_pitfalls(issues)),
        )
