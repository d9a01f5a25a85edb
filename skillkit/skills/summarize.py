"""Turn trajectories into Skill-SD trajectory skills: an LLM summarizer with a deterministic fallback.

``Summarizer(backend).summarize(group)`` asks the model for one JSON object (what worked, what
went wrong, the golden workflow), contrasting the successes and failures of a group of episodes
of the same task. The output is parsed robustly (:mod:`skillkit.core.jsonrepair`): code fences,
surrounding text, trailing commas, quotes and wrong key names are repaired; an answer that still
does not validate is retried with the validation error fed back; after ``max_retries`` failed
retries the deterministic :func:`heuristic_summary` is used, so a long run never stops on bad
model output. The fields that come from the episodes themselves (task, provenance, reward
statistics) never come from the model.

The deterministic summary is built from the environment's own information: the moves of the best
successful episode (Sokoban; plus the minimum-move solver plan when ``environments`` is
installed), the API calls of a successful app episode, and the failing actions, error messages,
wasted moves and failed checks of the failures.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from skillkit.core.jsonrepair import JSONRepairError, as_list, as_text, normalize_keys, parse_json
from skillkit.core.llm_json import ModelCallStats, ask_for_json
from skillkit.core.schemas import DESCRIPTION_MAX, Trajectory, TrajectorySkill, slugify

logger = logging.getLogger(__name__)

SOKOBAN_MOVES = ("Up", "Down", "Left", "Right")
_GRID_CHARS = set("#_OX√PS")
_API_CALL = re.compile(r"\bapis\.([A-Za-z_]\w*)\.([A-Za-z_]\w*)")
_ERROR_LINE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Exit)\b.*)$", re.MULTILINE)


# ---------------------------------------------------------------------------------------------
# What an episode did (shared with skillkit.skills.extract)
# ---------------------------------------------------------------------------------------------


def group_by_task(trajectories: Iterable[Trajectory]) -> dict[str, list[Trajectory]]:
    """Trajectories grouped by ``task_id``, in first-seen order."""
    groups: dict[str, list[Trajectory]] = {}
    for traj in trajectories:
        groups.setdefault(traj.task_id, []).append(traj)
    return groups


def sokoban_grid(text: str) -> str | None:
    """The grid at the top of a Sokoban observation (lines made only of grid symbols), or None."""
    lines: list[str] = []
    for line in (text or "").splitlines():
        stripped = line.strip()
        if stripped and set(stripped) <= _GRID_CHARS and "#" in stripped:
            lines.append(stripped)
        elif lines:
            break
    return "\n".join(lines) if len(lines) >= 3 else None


def _sokoban_moves_of_text(text: str) -> list[str]:
    try:
        from environments.sokoban import parse_actions

        return list(parse_actions(text, max_actions=16).actions)
    except ImportError:  # pragma: no cover - environments is part of the distribution
        canon = {m.lower(): m for m in SOKOBAN_MOVES}
        return [canon[w.lower()] for w in re.findall(r"\b(up|down|left|right)\b", text, re.IGNORECASE)]


def api_calls(code: str) -> list[str]:
    """The ``app.api`` names a code action calls (``apis.phone.login(...)`` -> ``phone.login``), in order."""
    return [f"{app}.{api}" for app, api in _API_CALL.findall(code or "")]


def api_call_lines(code: str) -> dict[str, str]:
    """For every API called in ``code``: the first source line that calls it (trimmed)."""
    out: dict[str, str] = {}
    for line in (code or "").splitlines():
        for call in api_calls(line):
            out.setdefault(call, re.sub(r"\s+", " ", line.strip())[:200])
    return out


def _code_of(action: str) -> str:
    blocks = re.findall(r"```(?:python|py)?\s*\n(.*?)```", action or "", re.DOTALL)
    return "\n".join(blocks) if blocks else (action or "")


def turn_units(traj: Trajectory, turn_index: int) -> list[str]:
    """The atomic actions of one turn: Sokoban moves executed, API calls made, else the action text."""
    turn = traj.turns[turn_index]
    if traj.env == "sokoban":
        moved = turn.info.get("actions")
        if isinstance(moved, list):
            return [str(m) for m in moved]
        return _sokoban_moves_of_text(turn.action)
    calls = api_calls(_code_of(turn.action))
    if calls or traj.env == "apps":
        return calls
    text = re.sub(r"\s+", " ", turn.action.strip())
    return [text[:80]] if text else []


def episode_units(traj: Trajectory) -> list[str]:
    """All atomic actions of an episode, in order."""
    return [u for i in range(len(traj.turns)) for u in turn_units(traj, i)]


def turn_error(traj: Trajectory, turn_index: int) -> str | None:
    """The error a turn caused, as one line (from ``info`` or the observation), or None."""
    turn = traj.turns[turn_index]
    info = turn.info or {}
    if info.get("invalid"):
        match = re.search(r"Invalid action \(([^)]*)\)", turn.observation or "")
        return f"invalid action: {match.group(1)}" if match else "invalid action"
    err = info.get("error")
    if isinstance(err, str) and err.strip():
        return err.strip().splitlines()[-1][:200]
    obs = turn.observation or ""
    if err or "Error:" in obs or "Traceback" in obs:
        lines = _ERROR_LINE.findall(obs)
        if lines:
            return lines[-1].strip()[:200]
        after = obs.split("Error:", 1)[1].strip() if "Error:" in obs else ""
        return (after.splitlines()[0][:200] if after else "error")
    return None


def _condense(moves: Sequence[str]) -> list[str]:
    """Run-length encode repeated moves: Right, Right, Up -> ['Right x2', 'Up']."""
    out: list[str] = []
    i = 0
    while i < len(moves):
        j = i
        while j < len(moves) and moves[j] == moves[i]:
            j += 1
        out.append(moves[i] if j - i == 1 else f"{moves[i]} x{j - i}")
        i = j
    return out


def solver_plan(traj: Trajectory) -> list[str] | None:
    """A minimum-move Sokoban solution of the episode's start grid, when the solver is available."""
    grid = sokoban_grid(traj.initial_observation) or sokoban_grid(str(traj.metadata.get("grid", "")))
    if grid is None:
        return None
    try:
        from environments.sokoban import solve
    except ImportError:  # pragma: no cover
        return None
    try:
        return solve(grid, max_states=200_000)
    except Exception as exc:  # noqa: BLE001 - the plan is optional; never fail a summary on it
        logger.debug("solver failed on %s: %s", traj.task_id, exc)
        return None


def sokoban_segments(traj: Trajectory) -> list[tuple[list[str], str]]:
    """Split a Sokoban episode at reward events: ``[(moves, what happened at the end), ...]``."""
    segments: list[tuple[list[str], str]] = []
    current: list[str] = []
    for i, turn in enumerate(traj.turns):
        current.extend(turn_units(traj, i))
        event = ""
        if turn.info.get("solved") or (turn.done and traj.success and i == len(traj.turns) - 1):
            event = "the last box reaches its target: solved"
        elif turn.reward >= 0.5:
            event = "a box is pushed onto a target"
        elif turn.reward <= -0.5:
            event = "a box is pushed off a target"
        if event and current:
            segments.append((current, event))
            current = []
    if current:
        segments.append((current, "end of episode"))
    return segments


def _best(trajs: Sequence[Trajectory]) -> Trajectory:
    return max(trajs, key=lambda t: (t.success, t.total_reward, -t.num_steps))


def reward_stats(trajs: Sequence[Trajectory]) -> dict[str, float]:
    """n, success_rate, mean/min/max return and mean steps of a group of episodes."""
    returns = [t.total_reward for t in trajs] or [0.0]
    return {
        "n": float(len(trajs)),
        "success_rate": sum(t.success for t in trajs) / max(1, len(trajs)),
        "mean_return": sum(returns) / len(returns),
        "min_return": min(returns),
        "max_return": max(returns),
        "mean_steps": sum(t.num_steps for t in trajs) / max(1, len(trajs)),
    }


def _grid_moves(traj: Trajectory) -> tuple[int, list[str]]:
    """Moves that changed nothing on the grid (walked into a wall or an unpushable box)."""
    wasted, examples = 0, []
    before = sokoban_grid(traj.initial_observation)
    for i, turn in enumerate(traj.turns):
        after = sokoban_grid(turn.observation)
        if before is not None and after is not None and after == before and not turn.info.get("invalid"):
            wasted += 1
            if len(examples) < 3:
                examples.append(f"{' || '.join(turn_units(traj, i)) or turn.action.strip()[:20]} at step {i + 1}")
        before = after if after is not None else before
    return wasted, examples


# ---------------------------------------------------------------------------------------------
# The deterministic summary
# ---------------------------------------------------------------------------------------------


def _task_name(task_id: str, suffix: str) -> str:
    base = slugify(task_id, max_len=64 - len(suffix) - 1)
    return f"{base}-{suffix}"


def heuristic_summary(trajectories: Trajectory | Sequence[Trajectory], extraction_round: int = 0) -> TrajectorySkill:
    """A trajectory skill built only from what the episodes recorded (no model involved).

    Successes give the golden workflow (Sokoban: the best episode's moves split at each box placed,
    compared with the solver's minimum when available; apps: the API calls of the best episode
    with the line of code that made each); failures give the mistakes (invalid actions, moves that
    changed nothing, boxes pushed off targets, running out of steps, error messages and the calls
    that raised them, failed checks).
    """
    trajs = [trajectories] if isinstance(trajectories, Trajectory) else list(trajectories)
    if not trajs:
        raise ValueError("heuristic_summary needs at least one trajectory")
    task_id, env = trajs[0].task_id, trajs[0].env
    wins = [t for t in trajs if t.success]
    losses = [t for t in trajs if not t.success]
    if env == "sokoban":
        success, mistakes, workflow = _sokoban_summary(trajs, wins, losses)
    elif env == "apps" or any(api_calls(t.turns[0].action) for t in trajs if t.turns):
        success, mistakes, workflow = _apps_summary(trajs, wins, losses)
    else:
        success, mistakes, workflow = _generic_summary(trajs, wins, losses)
    stats = reward_stats(trajs)
    instruction = trajs[0].instruction.strip()
    what = f" ({instruction[:200]})" if instruction else ""
    description = (
        f"Lessons from {len(trajs)} {env} episode(s) of task {task_id}{what}: {len(wins)} succeeded, "
        f"{len(losses)} failed; best return {stats['max_return']:.2f}."
    )[:DESCRIPTION_MAX]
    return TrajectorySkill(
        name=_task_name(task_id, "summary"), description=description, task_id=task_id, env=env,
        success_analysis=success, mistake_analysis=mistakes, golden_workflow=workflow,
        source_trajectory_ids=[t.id for t in trajs], source_tasks=[task_id], reward_stats=stats,
        tags=[env, "trajectory", "heuristic"], extraction_round=extraction_round,
        metadata={"summarizer": "heuristic"},
    )


def _sokoban_summary(trajs: list[Trajectory], wins: list[Trajectory],
                     losses: list[Trajectory]) -> tuple[str, str, list[str]]:
    plan = solver_plan(trajs[0])
    success_parts: list[str] = []
    workflow: list[str] = []
    if wins:
        best = _best(wins)
        moves = episode_units(best)
        success_parts.append(
            f"{len(wins)} of {len(trajs)} episodes solved the level; the best took {len(moves)} moves "
            f"(return {best.total_reward:.2f}): {', '.join(_condense(moves))}."
        )
        for seg_moves, event in sokoban_segments(best):
            workflow.append(f"{event}; {', '.join(_condense(seg_moves))}")
        if plan is not None and len(plan) < len(moves):
            success_parts.append(f"A shortest solution takes {len(plan)} moves: {', '.join(_condense(plan))}.")
    elif plan is not None:
        success_parts.append(f"No episode solved the level. A shortest solution takes {len(plan)} moves.")
        workflow = [f"follow the shortest solution; {', '.join(_condense(plan))}"]
    else:
        success_parts.append("No episode solved the level.")
    mistakes: list[str] = []
    invalid = sum(1 for t in trajs for tu in t.turns if tu.info.get("invalid"))
    if invalid:
        mistakes.append(f"{invalid} turn(s) had no valid action; answer with Up, Down, Left or Right only.")
    wasted_total, examples = 0, []
    for t in trajs:
        w, ex = _grid_moves(t)
        wasted_total += w
        examples.extend(ex)
    if wasted_total:
        mistakes.append(f"{wasted_total} move(s) changed nothing (a wall or an unpushable box), e.g. "
                        f"{'; '.join(examples[:3])}.")
    off = [(t, i) for t in trajs for i, tu in enumerate(t.turns) if tu.reward <= -0.5]
    if off:
        t, i = off[0]
        mistakes.append(f"{len(off)} push(es) moved a box off a target (e.g. {' || '.join(turn_units(t, i))} at "
                        f"step {i + 1}); keep placed boxes in place.")
    if losses:
        out_of_steps = [t for t in losses if t.turns and not t.turns[-1].info.get("solved")]
        stuck = ", ".join(f"{t.num_steps} steps, {t.turns[-1].info.get('boxes_on_target', '?')} box(es) placed"
                          for t in out_of_steps[:3] if t.turns)
        mistakes.append(f"{len(losses)} episode(s) failed ({stuck or 'no steps taken'}); plan the pushes before "
                        "moving and avoid pushing boxes into corners or against walls away from targets.")
    return " ".join(success_parts), " ".join(mistakes), workflow


def _apps_summary(trajs: list[Trajectory], wins: list[Trajectory],
                  losses: list[Trajectory]) -> tuple[str, str, list[str]]:
    workflow: list[str] = []
    success = ""
    if wins:
        best = _best(wins)
        lines: dict[str, str] = {}
        sequence: list[str] = []
        for i, turn in enumerate(best.turns):
            if turn_error(best, i):
                continue
            code = _code_of(turn.action)
            for call, line in api_call_lines(code).items():
                lines.setdefault(call, line)
            for call in api_calls(code):
                if not sequence or sequence[-1] != call:
                    sequence.append(call)
        seen: list[str] = []
        for call in sequence:
            if call not in seen:
                seen.append(call)
                workflow.append(f"call {call}; {lines.get(call, call)}")
        success = (f"{len(wins)} of {len(trajs)} episodes completed the task. The best one used {best.num_steps} "
                   f"turn(s) and called: {' -> '.join(seen) or 'no API'}.")
    else:
        ok_calls = Counter(c for t in trajs for i, tu in enumerate(t.turns) if not turn_error(t, i)
                           for c in api_calls(_code_of(tu.action)))
        success = "No episode completed the task." + (
            f" Calls that ran without error: {', '.join(c for c, _ in ok_calls.most_common(8))}." if ok_calls else "")
    mistakes: list[str] = []
    errors: Counter[tuple[str, str]] = Counter()
    for t in trajs:
        for i, tu in enumerate(t.turns):
            err = turn_error(t, i)
            if err:
                calls = api_calls(_code_of(tu.action))
                errors[(calls[-1] if calls else "code", err)] += 1
    for (call, err), n in errors.most_common(5):
        mistakes.append(f"{call} raised '{err}'" + (f" ({n} times)" if n > 1 else "") + ".")
    failed_checks: Counter[str] = Counter()
    for t in losses:
        checks = (t.turns[-1].info.get("checks") if t.turns else None) or t.metadata.get("checks") or []
        for check in checks:
            if isinstance(check, dict) and not check.get("passed", True):
                failed_checks[str(check.get("name", "check"))] += 1
    if failed_checks:
        mistakes.append("Failed checks: " + "; ".join(f"{name} ({n}x)" for name, n in failed_checks.most_common(5)) + ".")
    if losses and not errors and not failed_checks:
        mistakes.append(f"{len(losses)} episode(s) did not complete the task (remember apis.supervisor.complete_task()).")
    return success, " ".join(mistakes), workflow


def _generic_summary(trajs: list[Trajectory], wins: list[Trajectory],
                     losses: list[Trajectory]) -> tuple[str, str, list[str]]:
    workflow: list[str] = []
    if wins:
        best = _best(wins)
        workflow = [u for u in episode_units(best)][:30]
        success = f"{len(wins)} of {len(trajs)} episodes succeeded; the best took {best.num_steps} steps."
    else:
        success = "No episode succeeded."
    errs = Counter(e for t in trajs for i in range(len(t.turns)) if (e := turn_error(t, i)))
    mistakes = " ".join(f"'{e}' ({n}x)." for e, n in errs.most_common(5))
    if losses and not mistakes:
        mistakes = f"{len(losses)} episode(s) failed."
    return success, mistakes, workflow


# ---------------------------------------------------------------------------------------------
# The LLM summarizer
# ---------------------------------------------------------------------------------------------

SUMMARY_KEYS = ("success_analysis", "mistake_analysis", "golden_workflow", "description", "tags")
SUMMARY_ALIASES = {
    "success": "success_analysis", "successes": "success_analysis", "what_worked": "success_analysis",
    "worked": "success_analysis", "analysis": "success_analysis", "strengths": "success_analysis",
    "success_analyses": "success_analysis",
    "mistakes": "mistake_analysis", "mistake": "mistake_analysis", "errors": "mistake_analysis",
    "failures": "mistake_analysis", "failure_analysis": "mistake_analysis", "pitfalls": "mistake_analysis",
    "what_failed": "mistake_analysis", "mistakes_analysis": "mistake_analysis", "error_analysis": "mistake_analysis",
    "workflow": "golden_workflow", "steps": "golden_workflow", "plan": "golden_workflow",
    "golden_steps": "golden_workflow", "solution": "golden_workflow", "procedure": "golden_workflow",
    "best_workflow": "golden_workflow", "actions": "golden_workflow",
    "summary": "description", "title": "description", "skill": "description", "name": "description",
    "keywords": "tags", "labels": "tags",
}

SYSTEM_PROMPT = (
    "You turn an agent's episodes on one task into a reusable lesson. Answer with ONE JSON object and "
    "nothing else, with exactly these keys:\n"
    '{"description": "one sentence: when this lesson helps", '
    '"success_analysis": "what the successful episodes did right", '
    '"mistake_analysis": "what went wrong in the failed episodes and how to avoid it", '
    '"golden_workflow": ["step 1", "step 2", "..."]}'
)


class LLMSummary(BaseModel):
    """What the model must produce (after key repair and coercion)."""

    model_config = ConfigDict(extra="ignore")

    success_analysis: str = ""
    mistake_analysis: str = ""
    golden_workflow: list[str] = Field(default_factory=list, validate_default=True)
    description: str = ""
    tags: list[str] = Field(default_factory=list)

    @field_validator("success_analysis", "mistake_analysis", "description", mode="before")
    @classmethod
    def _text(cls, value: Any) -> str:
        return as_text(value)

    @field_validator("golden_workflow", "tags", mode="before")
    @classmethod
    def _items(cls, value: Any) -> list[str]:
        return as_list(value)

    @field_validator("golden_workflow")
    @classmethod
    def _workflow(cls, value: list[str]) -> list[str]:
        value = [v[:500] for v in value if v.strip() and v.strip() not in ("...", "step 1", "step 2")][:30]
        if not value:
            raise ValueError("golden_workflow must be a non-empty list of concrete steps")
        return value

    def check(self) -> None:
        """Raise ``ValueError`` when the analyses are missing or are the prompt's placeholders."""
        if not (self.success_analysis.strip() or self.mistake_analysis.strip()):
            raise ValueError("success_analysis and mistake_analysis are both empty: describe at least one")
        placeholders = {"what the successful episodes did right",
                        "what went wrong in the failed episodes and how to avoid it"}
        if self.success_analysis.strip().lower() in placeholders or self.mistake_analysis.strip().lower() in placeholders:
            raise ValueError("the analyses repeat the instructions instead of describing the episodes")


class SummarizerStats(ModelCallStats):
    """Counters of one summarizer: ``llm_ok`` skills came from the model (``repaired`` of them needed
    JSON or key repair, ``retried`` retry requests were sent in all); ``fallback`` skills came from
    the deterministic summary."""


def render_episodes(trajs: Sequence[Trajectory], max_chars: int = 2400) -> str:
    """A compact text of a group of episodes for the summarizer prompt (start state once, then per
    episode: outcome, actions, errors)."""
    first = trajs[0]
    parts = [f"Environment: {first.env}. Task: {first.task_id}."]
    if first.instruction:
        parts.append(f"Goal: {first.instruction.strip()[:400]}")
    start = sokoban_grid(first.initial_observation) if first.env == "sokoban" else None
    if start:
        parts.append(f"Start grid:\n{start}")
    elif first.initial_observation:
        parts.append(f"Start: {first.initial_observation.strip()[:400]}")
    budget = max(200, (max_chars - sum(len(p) for p in parts)) // max(1, len(trajs)))
    for k, traj in enumerate(trajs, 1):
        units = episode_units(traj)
        shown = ", ".join(_condense(units)) if traj.env == "sokoban" else " -> ".join(units)
        errors = [e for i in range(len(traj.turns)) if (e := turn_error(traj, i))]
        line = (f"Episode {k}: {'SUCCESS' if traj.success else 'FAILURE'}, return {traj.total_reward:.2f}, "
                f"{traj.num_steps} steps. Actions: {shown or 'none'}.")
        if errors:
            line += " Errors: " + "; ".join(dict.fromkeys(errors)) + "."
        parts.append(line[:budget])
    return "\n".join(parts)[:max_chars]


class Summarizer:
    """Trajectory skills from a model, repaired, retried, and never failing (see the module doc).

    ``backend`` None means: always use :func:`heuristic_summary`.
    """

    def __init__(self, backend: Any | None = None, max_retries: int = 2, max_new_tokens: int = 384,
                 temperature: float = 0.0, seed: int | None = 0, batch_size: int | None = None,
                 max_prompt_chars: int = 2400) -> None:
        self.backend = backend
        self.max_retries = max_retries
        self.max_new_tokens = max_new_tokens
        self.temperature = temperature
        self.seed = seed
        self.batch_size = batch_size
        self.max_prompt_chars = max_prompt_chars
        self.stats = SummarizerStats()

    # ----- one model answer ---------------------------------------------------------------------

    @staticmethod
    def parse(text: str) -> tuple[LLMSummary, list[str]]:
        """Parse one model answer into a checked :class:`LLMSummary`; returns it and the repairs made.

        Raises ``ValueError`` with a message meant to be shown to the model on a retry.
        """
        try:
            parsed = parse_json(text, expect=dict)
        except JSONRepairError as exc:
            raise ValueError(f"{exc}; reply with one JSON object") from exc
        data, key_repairs = normalize_keys(parsed.value, SUMMARY_KEYS, SUMMARY_ALIASES)
        try:
            summary = LLMSummary.model_validate(data)
            summary.check()
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors())
            raise ValueError(problems) from exc
        return summary, parsed.repairs + key_repairs

    def _messages(self, trajs: Sequence[Trajectory]) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": render_episodes(trajs, self.max_prompt_chars) + "\n\nThe JSON lesson:"},
        ]

    def _build(self, trajs: Sequence[Trajectory], summary: LLMSummary, repairs: list[str], attempts: int,
               extraction_round: int) -> TrajectorySkill:
        base = heuristic_summary(trajs, extraction_round=extraction_round)
        description = summary.description.strip() or base.description
        tags = [t for t in dict.fromkeys([*base.tags[:2], *summary.tags[:5]]) if t != "heuristic"]
        return base.model_copy(update={
            "description": description[:DESCRIPTION_MAX],
            "success_analysis": summary.success_analysis,
            "mistake_analysis": summary.mistake_analysis,
            "golden_workflow": summary.golden_workflow,
            "tags": tags,
            "metadata": {"summarizer": getattr(self.backend, "name", "llm"), "attempts": attempts,
                         "repairs": repairs[:10]},
        })

    # ----- public API ---------------------------------------------------------------------------

    def summarize(self, trajectories: Trajectory | Sequence[Trajectory], extraction_round: int = 0) -> TrajectorySkill:
        """One trajectory skill for one trajectory or a group of trajectories of the same task."""
        group = [trajectories] if isinstance(trajectories, Trajectory) else list(trajectories)
        return self.summarize_many([group], extraction_round=extraction_round)[0]

    def summarize_many(self, groups: Sequence[Sequence[Trajectory]], extraction_round: int = 0) -> list[TrajectorySkill]:
        """Summarize many groups, batching the model calls (retries of all groups go in one batch)."""
        groups = [list(g) for g in groups]
        for g in groups:
            if not g:
                raise ValueError("cannot summarize an empty group of trajectories")
        results: list[TrajectorySkill | None] = [None] * len(groups)
        if self.backend is None:
            for i, g in enumerate(groups):
                results[i] = heuristic_summary(g, extraction_round=extraction_round)
                self.stats.fallback += 1
            return [r for r in results if r is not None]

        from skillkit.core.llm.base import SamplingParams

        sampling = SamplingParams(max_new_tokens=self.max_new_tokens, temperature=self.temperature, seed=self.seed)
        answers = ask_for_json(lambda convs: self._generate(convs, sampling), [self._messages(g) for g in groups],
                               lambda _, text: self.parse(text), self._feedback, self.max_retries, self.stats)
        for i, answer in enumerate(answers):
            if answer.value is None:
                results[i] = self._fallback(groups[i], extraction_round, answer.error)
            else:
                results[i] = self._build(groups[i], answer.value, answer.repairs, answer.attempts, extraction_round)
        return [r for r in results if r is not None]

    def _generate(self, requests: list[list[dict[str, str]]], sampling: Any) -> list[Any]:
        if self.batch_size is None:
            return self.backend.generate(requests, sampling)  # type: ignore[union-attr]
        out: list[Any] = []
        for start in range(0, len(requests), self.batch_size):
            out.extend(self.backend.generate(requests[start:start + self.batch_size], sampling))  # type: ignore[union-attr]
        return out

    @staticmethod
    def _feedback(error: str) -> str:
        return (f"That answer was not valid: {error[:500]}. Reply again with only one JSON object with the keys "
                "description, success_analysis, mistake_analysis and golden_workflow (a list of steps).")

    def _fallback(self, group: list[Trajectory], extraction_round: int, why: str) -> TrajectorySkill:
        self.stats.fallback += 1
        skill = heuristic_summary(group, extraction_round=extraction_round)
        skill.metadata = {**skill.metadata, "fallback_reason": why[:300]}
        return skill

