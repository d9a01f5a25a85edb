"""What an episode did, as an environment reads it: the records an episode analyzer returns.

An environment's analyzer (``environments.analyzer(name)``) turns a :class:`Trajectory` into an
:class:`EpisodeAnalysis`: the atomic actions taken (moves, API calls, commands), the stretches
that reached a sub-goal, the errors and the other problems it saw. Summaries and skill extraction
are written from these records only, so they hold nothing specific to one environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from skillkit.core.schemas import Trajectory


@dataclass(frozen=True)
class ActionUse:
    """One atomic action the agent took.

    ``name`` is the action's canonical name (``"Right"``, ``"phone.login"``), ``turn`` the index of
    the turn that made it, ``example`` the text that made it when it says more than the name (a
    line of code), ``args`` the keyword arguments given, ``ok`` False when its turn failed.
    """

    name: str
    turn: int
    example: str = ""
    args: tuple[str, ...] = ()
    ok: bool = True


@dataclass(frozen=True)
class Segment:
    """A stretch of an episode that ends at a sub-goal (or at the end of the episode).

    ``goal`` says what happened at its end, ``how`` shows the actions that got there, ``progress``
    tells whether it moved the task forward.
    """

    goal: str
    actions: tuple[str, ...]
    how: str
    progress: bool = True

    @property
    def step(self) -> str:
        """The segment as one plan step, ``"sub-goal; key actions"``."""
        return f"{self.goal}; {self.how}" if self.goal else self.how


@dataclass(frozen=True)
class Issue:
    """Something that went wrong: ``kind`` (an environment's own short key, e.g. ``"error"``),
    the ``turn`` index (-1 for the episode as a whole), the ``action`` that caused it when known,
    and a one-line ``detail``."""

    kind: str
    turn: int
    action: str = ""
    detail: str = ""


@dataclass
class EpisodeAnalysis:
    """One episode read by its environment's analyzer."""

    trajectory: Trajectory
    actions: list[ActionUse] = field(default_factory=list)
    turn_errors: dict[int, str] = field(default_factory=dict)
    segments: list[Segment] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)

    @property
    def action_names(self) -> list[str]:
        """The names of all actions taken, in order."""
        return [a.name for a in self.actions]


@dataclass(frozen=True)
class ActionGuide:
    """What an atomic skill says about one action: its skill name, a description, how to use it,
    the constraints that hold and the pitfalls seen."""

    name: str
    description: str
    usage: str
    constraints: tuple[str, ...] = ()
    pitfalls: tuple[str, ...] = ()


@dataclass(frozen=True)
class Routine:
    """What a functional skill says about a recurring sequence of actions."""

    name: str
    description: str
    body: str
