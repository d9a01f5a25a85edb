"""The teacher-hacking watch: is the student matching its teacher, or getting better at the task?

A falling KL(student || teacher) says the student imitates the teacher more closely; it does not
say the student plays better. Next to the KL the trainer logs ``oracle_agreement``: the share of
the states the rollouts visited where the student's move was one the oracle calls optimal (a metric,
like the evaluation: it never enters the loss). :class:`HackingWatch` raises a flag
(``teacher_hacking`` = 1 and a log line) when, over the last ``window`` iterations, the KL keeps
falling while oracle agreement falls, or while held-out success fell between the last two
evaluations.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from environments.base import Environment
from skillkit.core.schemas import Trajectory


def visited_moves(trajectories: Sequence[Trajectory]) -> list[tuple[str, str]]:
    """(observation, the first move the environment applied there) for every turn of every episode;
    the move is ``info["actions"][0]`` when the environment reports it, else the action text."""
    out = []
    for traj in trajectories:
        observation = traj.initial_observation
        for turn in traj.turns:
            actions = turn.info.get("actions")
            move = actions[0] if isinstance(actions, list) and actions else turn.action.strip()
            out.append((observation, str(move)))
            observation = turn.observation
    return out


def oracle_agreement(env: Environment, trajectories: Sequence[Trajectory], max_states: int,
                     rng: np.random.Generator) -> float | None:
    """Share of up to ``max_states`` visited states (drawn with ``rng``) where the student's move is one of
    the oracle's optimal next moves; states the oracle cannot judge (no answer, solved or dead) are
    skipped. None when no state could be judged (an environment without an oracle or without
    ``optimal_next_actions``, as the app suite)."""
    moves = visited_moves(trajectories)
    oracle = env.oracle() if moves and max_states > 0 else None
    if oracle is None:
        return None
    picked = rng.choice(len(moves), size=min(max_states, len(moves)), replace=False)
    hits = []
    for k in sorted(int(i) for i in picked):
        observation, move = moves[k]
        optimal = oracle.optimal_next_actions(observation)
        if optimal:
            hits.append(move in optimal)
    return float(np.mean(hits)) if hits else None


def _falling(values: Sequence[float]) -> bool:
    """A least-squares slope below 0 and a last value below the first."""
    if len(values) < 2:
        return False
    slope = np.polyfit(np.arange(len(values)), np.asarray(values, dtype=float), 1)[0]
    return bool(slope < 0 and values[-1] < values[0])


class HackingWatch:
    """Flags a student-teacher KL that keeps falling while the task measures fall (module docstring)."""

    def __init__(self, window: int = 5) -> None:
        self.window = window
        self.kl: list[float] = []
        self.agreement: list[float] = []
        self.success: list[float] = []

    def state_dict(self) -> dict[str, list[float]]:
        """The recorded series (a checkpoint keeps them, so a resumed run warns as the uninterrupted one)."""
        return {"kl": list(self.kl), "agreement": list(self.agreement), "success": list(self.success)}

    def load_state_dict(self, state: dict[str, list[float]]) -> None:
        """Restore :meth:`state_dict`."""
        self.kl, self.agreement, self.success = list(state["kl"]), list(state["agreement"]), list(state["success"])

    def add_eval(self, success_rate: float) -> None:
        """Record a held-out success rate (every evaluation)."""
        self.success.append(success_rate)

    def check(self, kl: float | None, agreement: float | None) -> str | None:
        """Record one iteration; a warning text when the watch fires, else None."""
        if kl is None:
            return None
        self.kl.append(kl)
        if agreement is not None:
            self.agreement.append(agreement)
        kl_falls = len(self.kl) >= self.window and _falling(self.kl[-self.window:])
        agreement_falls = len(self.agreement) >= self.window and _falling(self.agreement[-self.window:])
        success_falls = len(self.success) >= 2 and self.success[-1] < self.success[-2]
        if not (kl_falls and (agreement_falls or success_falls)):
            return None
        what = " and ".join(name for name, on in (("oracle agreement", agreement_falls),
                                                  ("held-out success", success_falls)) if on)
        return (f"teacher hacking? KL(student || teacher) fell over the last {self.window} iterations "
                f"({self.kl[-self.window]:.4f} -> {self.kl[-1]:.4f}) while {what} fell")
