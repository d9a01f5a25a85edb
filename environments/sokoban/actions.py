"""Parse Sokoban actions out of free model text.

Accepted: ``Up``, ``up``, ``<answer>Left</answer>`` (the last answer tag wins), and several actions
in one turn separated by ``||`` (``Up || Left``), capped at a maximum per turn.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from environments.sokoban.level import ACTION_NAMES

_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.IGNORECASE | re.DOTALL)
_CANONICAL = {name.lower(): name for name in ACTION_NAMES}
_STRIP = " \t\r\n.,;:!?'\"`*[](){}"


@dataclass(frozen=True)
class ParsedActions:
    """The actions found in a text (empty when invalid) and, if invalid, why."""

    actions: tuple[str, ...]
    error: str = ""

    @property
    def valid(self) -> bool:
        """Whether at least one action was found and nothing was malformed."""
        return bool(self.actions) and not self.error


def parse_actions(text: str, max_actions: int = 3) -> ParsedActions:
    """Parse one turn's text into at most ``max_actions`` actions (extra ones are dropped)."""
    answers = _ANSWER.findall(text or "")
    body = answers[-1] if answers else (text or "")
    parts = [part.strip(_STRIP) for part in body.split("||")]
    if not any(parts):
        return ParsedActions((), "no action given")
    actions = []
    for part in parts:
        name = _CANONICAL.get(part.lower())
        if name is None:
            return ParsedActions((), f"{part[:40]!r} is not an action")
        actions.append(name)
    return ParsedActions(tuple(actions[:max_actions]))
