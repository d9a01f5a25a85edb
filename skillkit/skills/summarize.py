"""Turn trajectories into Skill-SD trajectory skills: an LLM summarizer with a deterministic fallback.

``Summarizer(backend).summarize(group)`` asks the model for one JSON object (what worked, what
went wrong, the golden workflow), contrasting the successes and failures of a group of episodes
of the same task. By default the answer is held to the JSON schema of :class:`LLMSummary`
(constrained decoding: valid JSON of the right shape that fits the token budget, every workflow
step starting with an action that occurred), and the rest is the safety net. The answer is
repaired (:func:`skillkit.core.llm_json.parse_json_object`: code fences, surrounding text,
trailing commas, quotes, wrong key names) and must be useful: no copy of the instructions, two
different analyses, what worked when an episode succeeded and what went wrong when one failed,
and a workflow naming actions the agent actually took. An answer that does not pass is retried
with the reason fed back; after ``max_retries`` failed retries the deterministic
:func:`heuristic_summary` is used, so a long run never stops on bad model output. The fields that
come from the episodes themselves (task, provenance, reward statistics) never come from the model.

Everything specific to an environment (its actions, sub-goals, errors and their wording) comes
from the environment's analyzer (``environments.analyzer(trajectory.env)``). Summaries are made
from the agent's own episodes only: nothing here asks an oracle or a solver.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import Field, ValidationError, field_validator

import environments
from environments.base import EpisodeAnalyzer
from skillkit.core.episode_analysis import EpisodeAnalysis
from skillkit.core.llm.base import SamplingParams, SchemaRequest
from skillkit.core.llm_json import (
    JSONAnswer,
    ModelAnswer,
    ModelCallStats,
    answer_schema,
    ask_for_json,
    normalize_keys,
    parse_json_object,
)
from skillkit.core.schemas import DESCRIPTION_MAX, Trajectory, TrajectorySkill, slugify

T = TypeVar("T")

# ---------------------------------------------------------------------------------------------
# What a group of episodes did (shared with skillkit.skills.extract)
# ---------------------------------------------------------------------------------------------


def group_by_task(trajectories: Iterable[Trajectory]) -> dict[str, list[Trajectory]]:
    """Trajectories grouped by ``task_id``, in first-seen order."""
    groups: dict[str, list[Trajectory]] = {}
    for traj in trajectories:
        groups.setdefault(traj.task_id, []).append(traj)
    return groups


def analyze(traj: Trajectory) -> EpisodeAnalysis:
    """One episode read by its own environment's analyzer."""
    return environments.analyzer(traj.env).analyze(traj)


def best_episode(analyses: Sequence[EpisodeAnalysis]) -> EpisodeAnalysis:
    """The most successful episode: success first, then return, then fewest steps."""
    return max(analyses, key=lambda a: (a.trajectory.success, a.trajectory.total_reward, -a.trajectory.num_steps))


@dataclass
class Evidence:
    """A group of episodes of one task as its environment reads them; what a model answer about
    them is checked against."""

    analyzer: EpisodeAnalyzer
    analyses: list[EpisodeAnalysis]

    @classmethod
    def of(cls, trajectories: Sequence[Trajectory]) -> Evidence:
        """Analyze a non-empty group of episodes of one environment."""
        if not trajectories:
            raise ValueError("no episodes to analyze")
        analyzer = environments.analyzer(trajectories[0].env)
        return cls(analyzer, [analyzer.analyze(t) for t in trajectories])

    @property
    def wins(self) -> list[EpisodeAnalysis]:
        """The successful episodes."""
        return [a for a in self.analyses if a.trajectory.success]

    @property
    def losses(self) -> list[EpisodeAnalysis]:
        """The failed episodes."""
        return [a for a in self.analyses if not a.trajectory.success]

    def action_names(self) -> list[str]:
        """Every action that occurred in the episodes, in first-seen order."""
        return list(dict.fromkeys(n for a in self.analyses for n in a.action_names))

    def named(self, text: str) -> list[str]:
        """The actions that occurred and that ``text`` names."""
        return self.analyzer.mentions(text, self.action_names())

    def require_named(self, field_name: str, text: str) -> None:
        """Raise ``ValueError`` (a message for the model) when ``text`` names no action that occurred."""
        names = self.action_names()
        if names and not self.named(text):
            raise ValueError(f"{field_name} names no {self.analyzer.action_noun} that occurred in these episodes; "
                             f"name the ones the agent used, e.g. {', '.join(names[:8])}")


def ask_model(backend: Any, conversations: list[list[dict[str, str]]], parse: Callable[[int, str], tuple[T, list[str]]],
              feedback: Callable[[str], str], sampling: SamplingParams, max_retries: int, stats: ModelCallStats,
              batch_size: int | None = None, schemas: Sequence[dict[str, Any] | None] | None = None
              ) -> list[JSONAnswer[T]]:
    """How the summarizer and the extractor ask a model: :func:`~skillkit.core.llm_json.ask_for_json`
    over ``backend.generate`` with ``sampling``, ``batch_size`` conversations per call (None: all at once);
    ``schemas[i]`` (when given and not None) is the JSON schema conversation ``i``'s answers are held to."""
    if schemas is not None and len(schemas) != len(conversations):
        raise ValueError(f"{len(schemas)} schemas for {len(conversations)} conversations")

    def request(index: int, conversation: list[dict[str, str]]) -> Any:
        schema = schemas[index] if schemas is not None else None
        return conversation if schema is None else SchemaRequest(request=conversation, json_schema=schema)

    def generate(indices: list[int], batch: list[list[dict[str, str]]]) -> list[Any]:
        requests = [request(i, c) for i, c in zip(indices, batch)]
        step = batch_size or max(1, len(requests))
        out: list[Any] = []
        for start in range(0, len(requests), step):
            out.extend(backend.generate(requests[start:start + step], sampling))
        return out

    return ask_for_json(generate, conversations, parse, feedback, max_retries, stats)


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


# ---------------------------------------------------------------------------------------------
# The deterministic summary
# ---------------------------------------------------------------------------------------------

MAX_WORKFLOW = 30


def _what_worked(evidence: Evidence) -> tuple[str, list[str]]:
    """The success analysis and the workflow: the best success's segments, else the steps of the best
    attempt that made progress."""
    analyzer, n = evidence.analyzer, len(evidence.analyses)
    wins = evidence.wins
    if wins:
        best = best_episode(wins)
        worked = [name for seg in best.segments for name in seg.actions]
        text = (f"{len(wins)} of {n} episodes {analyzer.success_phrase}. The best one took {best.trajectory.num_steps} "
                f"turn(s) (return {best.trajectory.total_reward:.2f}); its {analyzer.action_noun}(s): "
                f"{analyzer.render(worked) or 'none'}.")
        return text, [seg.step for seg in best.segments][:MAX_WORKFLOW]
    best = best_episode(evidence.analyses)
    progress = [seg for seg in best.segments if seg.progress]
    text = f"No episode {analyzer.success_phrase}."
    if progress:
        text += (f" What worked in the best attempt: "
                 f"{analyzer.render([name for seg in progress for name in seg.actions])}.")
    return text, [seg.step for seg in progress][:MAX_WORKFLOW]


def heuristic_summary(trajectories: Trajectory | Sequence[Trajectory], extraction_round: int = 0) -> TrajectorySkill:
    """A trajectory skill built only from what the episodes recorded (no model, no oracle).

    Successes give the golden workflow (the best episode's segments, as its environment's analyzer
    splits it: e.g. the moves up to each sub-goal, or each API call with the line that made it);
    failures give the mistakes (the analyzer's issues: invalid actions, errors and the calls that
    raised them, failed checks, ...).
    """
    trajs = [trajectories] if isinstance(trajectories, Trajectory) else list(trajectories)
    if not trajs:
        raise ValueError("heuristic_summary needs at least one trajectory")
    evidence = Evidence.of(trajs)
    task_id, env = trajs[0].task_id, trajs[0].env
    success, workflow = _what_worked(evidence)
    mistakes = " ".join(evidence.analyzer.mistakes(evidence.analyses))
    stats = reward_stats(trajs)
    instruction = trajs[0].instruction.strip()
    what = f" ({instruction[:200]})" if instruction else ""
    description = (
        f"Lessons from {len(trajs)} {env} episode(s) of task {task_id}{what}: {len(evidence.wins)} succeeded, "
        f"{len(evidence.losses)} failed; best return {stats['max_return']:.2f}."
    )[:DESCRIPTION_MAX]
    return TrajectorySkill(
        name=f"{slugify(task_id, max_len=64 - len('summary') - 1)}-summary", description=description,
        task_id=task_id, env=env, success_analysis=success, mistake_analysis=mistakes, golden_workflow=workflow,
        source_trajectory_ids=[t.id for t in trajs], source_tasks=[task_id], reward_stats=stats,
        tags=[env, "trajectory", "heuristic"], extraction_round=extraction_round,
        metadata={"summarizer": "heuristic"},
    )


# ---------------------------------------------------------------------------------------------
# The LLM summarizer
# ---------------------------------------------------------------------------------------------

SUMMARY_KEYS = ("success_analysis", "mistake_analysis", "golden_workflow", "description", "tags")
#: What the model writes, in the order it writes it (the prompt's order); the rest comes from the episodes.
SUMMARY_FIELDS = ("description", "success_analysis", "mistake_analysis", "golden_workflow")
#: The most workflow steps a constrained answer may hold (each step may name several actions).
SCHEMA_STEPS = 5
#: The most action names a workflow step may start with in a grounded schema (first-seen order).
SCHEMA_ACTIONS = 24
_REGEX_SPECIAL = set("\\.^$|?*+()[]{}-/#&~")


def _starts_with_one_of(names: Sequence[str]) -> str:
    """A regex for a text that starts with one of ``names`` as a whole word (as
    :meth:`EpisodeAnalyzer.mentions` reads it), then anything."""
    escaped = ("".join("\\" + c if c in _REGEX_SPECIAL else c for c in name) for name in names)
    return "^(?:" + "|".join(escaped) + ")(?:[ :,;.(].*)?$"
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

class LLMSummary(ModelAnswer):
    """What the model must produce (after key repair and coercion); the field descriptions are the
    prompt's instructions."""

    success_analysis: str = Field("", description="what the successful episodes did right, naming the actions that "
                                                  "worked", json_schema_extra={"minLength": 1})
    mistake_analysis: str = Field("", description="what went wrong in the failed episodes and how to avoid it",
                                  json_schema_extra={"minLength": 1})
    golden_workflow: list[str] = Field(default_factory=list, validate_default=True,
                                       description="the steps to follow, each starting with an action the agent took",
                                       json_schema_extra={"minItems": 1, "items": {"type": "string", "minLength": 1}})
    description: str = Field("", description="one sentence: when this lesson helps", json_schema_extra={"minLength": 1})
    tags: list[str] = Field(default_factory=list)

    @field_validator("golden_workflow")
    @classmethod
    def _workflow(cls, value: list[str]) -> list[str]:
        value = [v[:500] for v in value if v.strip() and v.strip() not in ("...", "step 1", "step 2")][:30]
        if not value:
            raise ValueError("golden_workflow must be a non-empty list of concrete steps")
        return value

    def check(self, evidence: Evidence) -> None:
        """Raise ``ValueError`` (a message for the model) unless the answer is useful for ``evidence``:
        no copy of the instructions, two different analyses, what worked when an episode succeeded,
        what went wrong when one failed, and a workflow that names actions the agent took."""
        copied = [name for name in ("description", "success_analysis", "mistake_analysis")
                  if _copies(getattr(self, name), type(self).model_fields[name].description or "")]
        if copied:
            raise ValueError(f"{', '.join(copied)} repeat(s) the instructions instead of describing the episodes")
        if self.success_analysis and " ".join(self.success_analysis.lower().split()) == " ".join(
                self.mistake_analysis.lower().split()):
            raise ValueError("success_analysis and mistake_analysis say the same thing: say what worked and, "
                             "separately, what went wrong")
        wins, losses = len(evidence.wins), len(evidence.losses)
        if wins and not self.success_analysis:
            raise ValueError(f"success_analysis is empty but {wins} episode(s) succeeded: say what worked")
        if losses and not self.mistake_analysis:
            raise ValueError(f"mistake_analysis is empty but {losses} episode(s) failed: say what went wrong")
        evidence.require_named("golden_workflow", "\n".join(self.golden_workflow))


def _copies(text: str, instruction: str) -> bool:
    """Whether ``text`` is the instruction, or a start of it cut by a length cap."""
    said, asked = " ".join(text.lower().split()), " ".join(instruction.lower().split())
    return bool(asked) and len(said) >= 12 and (asked.startswith(said) or said.startswith(asked))


SYSTEM_PROMPT = (
    "You turn an agent's episodes on one task into a reusable lesson. Answer with ONE JSON object and "
    "nothing else, with exactly these keys:\n"
    + "\n".join(f"- {name}: {LLMSummary.model_fields[name].description}" for name in SUMMARY_FIELDS)
)


class SummarizerStats(ModelCallStats):
    """Counters of one summarizer: ``llm_ok`` skills came from the model (``repaired`` of them needed
    JSON or key repair, ``retried`` retry requests were sent in all); ``fallback`` skills came from
    the deterministic summary."""


def render_episodes(trajs: Sequence[Trajectory], max_chars: int = 2400) -> str:
    """A compact text of a group of episodes for a model prompt (start state once, then per episode:
    outcome, actions, errors), as the environment's analyzer reads them."""
    evidence = Evidence.of(trajs)
    first = trajs[0]
    parts = [f"Environment: {first.env}. Task: {first.task_id}."]
    if first.instruction:
        parts.append(f"Goal: {first.instruction.strip()[:400]}")
    start = evidence.analyzer.start_state(first)
    if start:
        parts.append(start if start.startswith("Start") else f"Start: {start}")
    budget = max(200, (max_chars - sum(len(p) for p in parts)) // max(1, len(trajs)))
    for k, analysis in enumerate(evidence.analyses, 1):
        traj = analysis.trajectory
        line = (f"Episode {k}: {'SUCCESS' if traj.success else 'FAILURE'}, return {traj.total_reward:.2f}, "
                f"{traj.num_steps} steps. Actions: {evidence.analyzer.render(analysis.action_names) or 'none'}.")
        if analysis.turn_errors:
            line += " Errors: " + "; ".join(dict.fromkeys(analysis.turn_errors.values())) + "."
        parts.append(line[:budget])
    return "\n".join(parts)[:max_chars]


@dataclass(eq=False)
class Summarizer:
    """Trajectory skills from a model, repaired, checked, retried, and never failing (see the module doc).

    ``backend`` None means: always use :func:`heuristic_summary`. ``constrained`` holds every answer to
    :meth:`schema` (constrained decoding, so answers are valid JSON of the right shape by construction;
    parsing, checks, retries and the fallback stay as the safety net); False lets the model write
    freely. ``ground_workflow`` makes each group's schema start every workflow step with an action
    that occurred in its episodes.
    """

    backend: Any | None = None
    constrained: bool = True
    ground_workflow: bool = True
    max_retries: int = 2
    max_new_tokens: int = 384
    temperature: float = 0.0
    seed: int | None = 0
    batch_size: int | None = None
    max_prompt_chars: int = 2400
    stats: SummarizerStats = field(default_factory=SummarizerStats, init=False)

    # ----- one model answer ---------------------------------------------------------------------

    def schema(self, evidence: Evidence | None = None) -> dict[str, Any]:
        """The JSON schema of the fields the model writes (:data:`SUMMARY_FIELDS` of :class:`LLMSummary`),
        with strings and the workflow capped so that an answer fits ``max_new_tokens``; with ``evidence``
        and ``ground_workflow``, every workflow step starts with an action that occurred there."""
        schema = answer_schema(LLMSummary, SUMMARY_FIELDS, self.max_new_tokens, max_items=SCHEMA_STEPS)
        names = evidence.action_names()[:SCHEMA_ACTIONS] if evidence is not None and self.ground_workflow else []
        if names:
            schema["properties"]["golden_workflow"]["items"]["pattern"] = _starts_with_one_of(names)
        return schema

    @staticmethod
    def parse(text: str, evidence: Evidence) -> tuple[LLMSummary, list[str]]:
        """Parse one model answer about ``evidence`` into a checked :class:`LLMSummary`; returns it and
        the repairs made. Raises ``ValueError`` with a message meant to be shown to the model on a retry.
        """
        parsed, repairs = parse_json_object(text)
        data, key_repairs = normalize_keys(parsed, SUMMARY_KEYS, SUMMARY_ALIASES)
        try:
            summary = LLMSummary.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'value'}: {e['msg']}" for e in exc.errors())
            raise ValueError(problems) from exc
        summary.check(evidence)
        return summary, repairs + key_repairs

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
        if self.backend is None:
            self.stats.fallback += len(groups)
            return [heuristic_summary(g, extraction_round=extraction_round) for g in groups]
        evidence = [Evidence.of(g) for g in groups]
        schemas = [self.schema(e) for e in evidence] if self.constrained else None
        answers = self._ask([self._messages(g) for g in groups], lambda i, text: self.parse(text, evidence[i]), schemas)
        return [self._fallback(g, extraction_round, answer.error) if answer.value is None
                else self._build(g, answer.value, answer.repairs, answer.attempts, extraction_round)
                for g, answer in zip(groups, answers)]

    def _ask(self, conversations: list[list[dict[str, str]]], parse: Callable[[int, str], tuple[LLMSummary, list[str]]],
             schemas: list[dict[str, Any]] | None) -> list[JSONAnswer[LLMSummary]]:
        """The one place the model is asked (sampling settings, batching, retries with the reason fed back)."""
        sampling = SamplingParams(max_new_tokens=self.max_new_tokens, temperature=self.temperature, seed=self.seed)
        return ask_model(self.backend, conversations, parse, self._feedback, sampling, self.max_retries, self.stats,
                         self.batch_size, schemas)

    @staticmethod
    def _feedback(error: str) -> str:
        return (f"That answer was not valid: {error[:500]}. Reply again with only one JSON object with the keys "
                "description, success_analysis, mistake_analysis and golden_workflow (a list of steps).")

    def _fallback(self, group: list[Trajectory], extraction_round: int, why: str) -> TrajectorySkill:
        self.stats.fallback += 1
        skill = heuristic_summary(group, extraction_round=extraction_round)
        skill.metadata = {**skill.metadata, "fallback_reason": why[:300]}
        return skill
