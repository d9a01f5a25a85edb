"""The one held-out evaluation: episode metrics, a dense metric, and one set of metric names.

Used by the trainer (``trainer.train.evaluate``, logged with an ``eval_`` prefix), by
``skillkit evaluate`` and by the pipeline's report. Names:

``success_rate``             share of episodes that succeed (task goal completion on the app suite)
``sgc``                      scenario goal completion (app suite: a scenario counts when every
                             evaluated variant succeeds); None where tasks have no scenario
``mean_steps``, ``mean_return``
``outcomes``                 ``{task_id: 0/1}``, so that two arms can be paired on the same tasks
``dense_greedy_optimal``     share of held-out states where the model's greedy next move is optimal
``dense_logprob_optimal``    mean log-prob of the optimal moves under the plain prompt
``dense_teacher_advantage``  the same log-prob under the teacher's prompt (skill inserted) minus
                             under the plain one, over the states whose task has a skill

Intervals (``intervals[name] = (low, high)``) are 95% percentile bootstraps
(:func:`skillkit.core.stats.bootstrap_mean`) over evaluation units: the task's scenario on the app
suite (its variants are not independent), else the task; the dense metrics over levels.

Dense metric (docs/design.md section 10): states come from the environment's ``probe_states`` (Sokoban:
on and off the solver paths of held-out levels), the optimal moves from its oracle. The
log-prob of a move is the summed log-prob of the move text's tokens as the response to the plain
prompt (the trainer's layout, empty history), without an end-of-turn token, so it measures the
*next* move whatever follows. The log-prob of the optimal moves is their **log-sum-exp**: the
log of the probability that the next move is an optimal one (one optimal move: its log-prob).
The greedy move is the argmax of the move log-probs over the moves the environment accepts, the
model's greedy choice among valid moves; it needs no generation and moves smoothly on a CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from pydantic import BaseModel, Field

from environments.base import Environment, ProbeState
from skillkit.core.prompts import SkillPosition, build_messages, insert_skill
from skillkit.core.schemas import Trajectory
from skillkit.core.stats import bootstrap_mean, grouped_means
from trainer.logprobs import next_token_logprobs, token_logprobs
from trainer.rollout import TurnSample, chat_token_ids, collate, response_logprobs

#: The scalar metrics of an evaluation, in report order.
METRICS = ("success_rate", "sgc", "mean_steps", "mean_return", "dense_greedy_optimal", "dense_logprob_optimal",
           "dense_teacher_advantage")


class EvalResult(BaseModel):
    """One evaluation of one agent on one split (see the module docstring for the names)."""

    label: str
    env: str
    split: str
    episodes: int
    success_rate: float
    sgc: float | None = None
    mean_steps: float
    mean_return: float
    outcomes: dict[str, int] = Field(default_factory=dict)
    dense_states: int = 0
    dense_greedy_optimal: float | None = None
    dense_logprob_optimal: float | None = None
    dense_teacher_advantage: float | None = None
    dense_teacher_states: int = 0
    dense_outcomes: dict[str, dict[str, float]] = Field(default_factory=dict)   # task -> dense metric -> its mean
    intervals: dict[str, tuple[float, float]] = Field(default_factory=dict)

    def metrics(self, prefix: str = "") -> dict[str, Any]:
        """Flat metrics (``{prefix}{name}``, ``{prefix}{name}_ci``, counts, outcomes) for a metrics log."""
        out: dict[str, Any] = {f"{prefix}episodes": self.episodes, f"{prefix}dense_states": self.dense_states}
        for name in METRICS:
            out[f"{prefix}{name}"] = getattr(self, name)
            if name in self.intervals:
                out[f"{prefix}{name}_ci"] = list(self.intervals[name])
        out[f"{prefix}outcomes"] = dict(self.outcomes)
        out[f"{prefix}dense_outcomes"] = dict(self.dense_outcomes)
        return out


def _interval(values: Sequence[float], units: Sequence[str]) -> tuple[float, float]:
    _, means = grouped_means(values, units)
    estimate = bootstrap_mean(means)
    return estimate.low, estimate.high


def summarize_trajectories(trajectories: Sequence[Trajectory], label: str, env: str, split: str) -> EvalResult:
    """Episode metrics of one episode per task, with intervals over scenarios (app suite) or tasks."""
    n = len(trajectories)
    if n == 0:
        raise ValueError(f"no episodes to summarize for {label!r}")
    success = [float(t.success) for t in trajectories]
    scenarios = [t.metadata.get("scenario_id") for t in trajectories]
    units = [str(s) if s is not None else t.task_id for s, t in zip(scenarios, trajectories)]
    intervals = {"success_rate": _interval(success, units),
                 "mean_return": _interval([t.total_reward for t in trajectories], units)}
    sgc = None
    if any(s is not None for s in scenarios):
        _, per_scenario = grouped_means(success, units)
        solved = [float(m == 1.0) for m in per_scenario]
        sgc = sum(solved) / len(solved)
        estimate = bootstrap_mean(solved)
        intervals["sgc"] = (estimate.low, estimate.high)
    return EvalResult(
        label=label, env=env, split=split, episodes=n, success_rate=sum(success) / n, sgc=sgc,
        mean_steps=sum(t.num_steps for t in trajectories) / n,
        mean_return=sum(t.total_reward for t in trajectories) / n,
        outcomes={t.task_id: int(t.success) for t in trajectories}, intervals=intervals,
    )


# ---------------------------------------------------------------------------------------------
# The dense metric
# ---------------------------------------------------------------------------------------------

@dataclass
class ProbeItem:
    """One held-out state: the plain chat at it, the candidate moves and the optimal ones."""

    task_id: str
    chat: list[dict[str, str]]
    moves: list[str]
    optimal: list[str]


@dataclass
class DenseProbe:
    """Held-out states with their plain chats and optimal moves: built once, scored for any model."""

    items: list[ProbeItem]

    @classmethod
    def build(cls, env: Environment, task_ids: Sequence[str], n: int, seed: int = 0) -> DenseProbe:
        """Up to ``n`` states of ``task_ids`` from ``env.probe_states``, the oracle's optimal moves for each
        (states the oracle cannot answer are dropped). Empty for environments without probe states."""
        oracle = env.oracle()
        states: list[ProbeState] = env.probe_states(list(task_ids), n, seed) if oracle is not None and n else []
        task_text: dict[str, str] = {}
        items = []
        for state in states:
            optimal = oracle.optimal_next_actions(state.observation) if oracle is not None else None
            if not optimal:
                continue
            if state.task_id not in task_text:
                env.reset(task_id=state.task_id)
                task_text[state.task_id] = env.task_instruction()
            chat = build_messages(env.instructions, task_text[state.task_id], [], state.observation, window=0)
            items.append(ProbeItem(state.task_id, chat, list(state.moves), [m for m in optimal if m in state.moves]))
        return cls(items)

    def __len__(self) -> int:
        return len(self.items)

    def score(self, model: torch.nn.Module, tokenizer: Any, skill_text: Callable[[str], str | None] | None = None,
              skill_position: SkillPosition = "user", batch_size: int = 32,
              chunk_size: int | None = 512) -> dict[str, Any]:
        """The dense metrics of ``model`` (names in the module docstring), with intervals over tasks."""
        if not self.items:
            return {}
        student = _move_logprobs(model, tokenizer, [(item.chat, item.moves) for item in self.items], batch_size,
                                 chunk_size)
        greedy, optimal_lp, tasks = [], [], []
        for item, lps in zip(self.items, student):
            by_move = dict(zip(item.moves, lps))
            greedy.append(float(max(item.moves, key=by_move.__getitem__) in item.optimal))
            optimal_lp.append(_logsumexp([by_move[m] for m in item.optimal]))
            tasks.append(item.task_id)
        out: dict[str, Any] = {
            "dense_states": len(self.items), "dense_greedy_optimal": sum(greedy) / len(greedy),
            "dense_logprob_optimal": sum(optimal_lp) / len(optimal_lp),
            "intervals": {"dense_greedy_optimal": _interval(greedy, tasks),
                          "dense_logprob_optimal": _interval(optimal_lp, tasks)},
        }
        skilled = [(k, text) for k, item in enumerate(self.items) if skill_text and (text := skill_text(item.task_id))]
        if skilled:
            teacher = _move_logprobs(model, tokenizer, [
                (insert_skill(self.items[k].chat, text, skill_position), self.items[k].optimal) for k, text in skilled
            ], batch_size, chunk_size)
            gains = [_logsumexp(lps) - optimal_lp[k] for (k, _), lps in zip(skilled, teacher)]
            out["dense_teacher_advantage"] = sum(gains) / len(gains)
            out["dense_teacher_states"] = len(gains)
            out["intervals"]["dense_teacher_advantage"] = _interval(gains, [tasks[k] for k, _ in skilled])
        per_state = {"dense_greedy_optimal": dict(enumerate(greedy)), "dense_logprob_optimal": dict(enumerate(optimal_lp))}
        if skilled:
            per_state["dense_teacher_advantage"] = {k: g for (k, _), g in zip(skilled, gains)}
        out["dense_outcomes"] = _task_means(per_state, tasks)
        return out


def visited_teacher_advantage(model: torch.nn.Module, tokenizer: Any, env: Environment | None,
                              samples: Sequence[tuple[list[dict[str, str]], str, str]],
                              skill_position: SkillPosition = "user", batch_size: int = 32) -> dict[str, float] | None:
    """The teacher's advantage on the states the student visited: for each ``(plain chat, skill text,
    task id)`` whose last message is a state ``env``'s oracle can judge, the log-prob of the oracle's
    optimal next moves (their log-sum-exp) under the chat with the skill inserted minus under the
    plain chat. Positive: the skill makes the model prefer the right moves, so distilling it has
    something to transfer. Returns the mean, its 95% interval (bootstrap over tasks: a task's states
    are not independent) and the number of states, or None."""
    oracle = env.oracle() if env is not None else None
    requests, teacher_requests, units = [], [], []
    for chat, skill, task_id in samples:
        optimal = oracle.optimal_next_actions(chat[-1]["content"]) if oracle is not None else None
        if optimal:
            requests.append((chat, list(optimal)))
            teacher_requests.append((insert_skill(chat, skill, skill_position), list(optimal)))
            units.append(task_id)
    if not requests:
        return None
    plain = _move_logprobs(model, tokenizer, requests, batch_size, None)
    taught = _move_logprobs(model, tokenizer, teacher_requests, batch_size, None)
    gains = [_logsumexp(t) - _logsumexp(p) for p, t in zip(plain, taught)]
    low, high = _interval(gains, units)
    return {"teacher_advantage": sum(gains) / len(gains), "teacher_advantage_low": low,
            "teacher_advantage_high": high, "teacher_advantage_states": float(len(gains))}


def _task_means(per_state: dict[str, dict[int, float]], tasks: Sequence[str]) -> dict[str, dict[str, float]]:
    """``{task: {metric: mean over the task's states}}``: the per-level outcomes a study pairs arms on."""
    sums: dict[str, dict[str, list[float]]] = {}
    for metric, values in per_state.items():
        for k, value in values.items():
            sums.setdefault(tasks[k], {}).setdefault(metric, []).append(value)
    return {task: {m: sum(v) / len(v) for m, v in by_metric.items()} for task, by_metric in sums.items()}


def _logsumexp(values: Sequence[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


@torch.no_grad()
def _move_logprobs(model: torch.nn.Module, tokenizer: Any, requests: Sequence[tuple[list[dict[str, str]], list[str]]],
                   batch_size: int, chunk_size: int | None) -> list[list[float]]:
    """For every (chat, moves): the summed log-prob of each move's tokens as the response to the chat.

    A one-token move is read from the distribution after the prompt (one prompt pass per chat,
    whatever the number of moves: Sokoban's four moves are one token each); a longer move gets a
    pass of its own over prompt + move."""
    prompts = [chat_token_ids(tokenizer, chat) for chat, _ in requests]
    encoded = [[tokenizer(m, add_special_tokens=False)["input_ids"] for m in moves] for _, moves in requests]
    out: list[list[float]] = [[0.0] * len(moves) for _, moves in requests]
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        short = [k for k, moves in enumerate(encoded) if any(len(m) == 1 for m in moves)]
        for start in range(0, len(short), batch_size):
            ks = short[start:start + batch_size]
            logp = next_token_logprobs(model, [prompts[k] for k in ks], tokenizer.pad_token_id).cpu()
            for row, k in enumerate(ks):
                for j, move in enumerate(encoded[k]):
                    if len(move) == 1:
                        out[k][j] = float(logp[row, move[0]])
        rows = [(k, j, TurnSample(prompts[k], move, [0.0] * len(move), chat, "", 0, 0, 0))
                for k, ((chat, _), moves) in enumerate(zip(requests, encoded)) for j, move in enumerate(moves)
                if len(move) != 1]
        for start in range(0, len(rows), batch_size):
            part = rows[start:start + batch_size]
            batch = collate([r for _, _, r in part], tokenizer.pad_token_id, device=device)
            logp = token_logprobs(model, batch["input_ids"], batch["attention_mask"], batch["mask"], chunk_size)
            for (k, j, _), lp in zip(part, response_logprobs(logp, batch)):
                out[k][j] = float(sum(lp))
    finally:
        model.train(was_training)
    return out


# ---------------------------------------------------------------------------------------------
# The evaluation
# ---------------------------------------------------------------------------------------------

def evaluate(play: Callable[[list[str]], list[Trajectory]], task_ids: Sequence[str], label: str, env: str,
             split: str, batch_size: int | None = None, on_batch: Callable[[int], None] | None = None,
             probe: DenseProbe | None = None, model: torch.nn.Module | None = None, tokenizer: Any = None,
             skill_text: Callable[[str], str | None] | None = None,
             skill_position: SkillPosition = "user") -> tuple[EvalResult, list[Trajectory]]:
    """Play one episode per task (``play(task_ids) -> trajectories``, ``batch_size`` tasks at a time,
    default all) and summarize; with a ``probe`` and a ``model``/``tokenizer``, add the dense metrics
    (``skill_text(task_id)`` gives the teacher's skill for ``dense_teacher_advantage``)."""
    trajectories: list[Trajectory] = []
    step = batch_size or max(len(task_ids), 1)
    for start in range(0, len(task_ids), step):
        batch = list(task_ids[start:start + step])
        trajectories.extend(play(batch))
        if on_batch is not None:
            on_batch(len(batch))
    for t in trajectories:
        t.metadata["eval_label"] = label
    result = summarize_trajectories(trajectories, label, env, split)
    if probe is not None and model is not None:
        dense = probe.score(model, tokenizer, skill_text, skill_position)
        intervals = {**result.intervals, **dense.pop("intervals", {})}
        result = result.model_copy(update={**dense, "intervals": intervals})
    return result, trajectories
