"""Planning / functional / atomic skills from batches of trajectories, and keeping a library tidy.

Extraction (SkillX tiers) has a deterministic extractor and an LLM one:

* planning (tier 1): per task, the best successful episode condensed into steps
  ``"sub-goal; key actions/APIs"`` (its segments, as the environment's analyzer splits it);
* functional (tier 2): multi-step action / API n-grams that recur in the successful episodes of
  at least ``min_support`` different tasks, as reusable routines;
* atomic (tier 3): per action / API: how it was used, its constraints, and the pitfalls observed
  (the analyzer's issues caused by that action).

Everything specific to an environment comes from its analyzer (``environments.analyzer(env)``);
nothing here asks an oracle. With a backend, each task's episodes are sent to the model with a
JSON prompt per tier, the answer held to the tier's schema (:func:`tier_schema`, constrained
decoding, unless ``constrained=False``); output is repaired like the summarizer's and must be useful (steps and tools
that name actions the agent took, atomic skills about an action that occurred, with a usage); an
answer that is not is retried with the reason, and replaced by the deterministic skills of that
task when it still fails (counted in ``stats``).

Library maintenance: :func:`apply_candidates` decides ADD / MODIFY / KEEP for every candidate
against the nearest existing skill of its tier (same name, same task for task-specific tiers, or
cosine >= ``threshold``), and :func:`merge_duplicates` clusters skills whose embeddings have
cosine >= ``threshold`` (default 0.90) and merges every cluster into one skill (deterministic, or
an LLM merge when a backend is given). Every MODIFY/merge bumps the version and keeps the previous
version in the library history (``rollback`` restores it).
"""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

import environments
from skillkit.core.episode_analysis import ActionUse, Issue
from skillkit.core.llm.base import SamplingParams
from skillkit.core.llm_json import (
    ModelAnswer,
    ModelCallStats,
    answer_schema,
    as_list,
    as_text,
    normalize_keys,
    parse_json_object,
)
from skillkit.core.schemas import (
    DESCRIPTION_MAX,
    AtomicSkill,
    FunctionalSkill,
    PlanningSkill,
    SkillBase,
    TaskUsage,
    Trajectory,
    parse_skill,
    slugify,
)
from skillkit.skills.summarize import (
    Evidence,
    analyze,
    ask_model,
    best_episode,
    group_by_task,
    render_episodes,
)

logger = logging.getLogger(__name__)

EXTRACT_TIERS = ("planning", "functional", "atomic")
TASK_TIERS = ("trajectory", "planning")  # skills about one task: matched and merged per task only
MAX_LIST = 30


# ---------------------------------------------------------------------------------------------
# Deterministic extraction
# ---------------------------------------------------------------------------------------------


def planning_from_group(trajs: Sequence[Trajectory], extraction_round: int = 0) -> PlanningSkill | None:
    """The plan of the best successful episode of one task (None when no episode succeeded)."""
    wins = [t for t in trajs if t.success]
    if not wins:
        return None
    best = best_episode([analyze(t) for t in wins])
    steps = [seg.step for seg in best.segments][:MAX_LIST]
    if not steps:
        return None
    traj = best.trajectory
    instruction = traj.instruction.strip() or traj.task_id
    description = f"Step-by-step plan for {traj.env} task {traj.task_id}: {instruction}"[:DESCRIPTION_MAX]
    return PlanningSkill(
        name=slugify(f"plan-{traj.task_id}"), description=description, task=instruction, plan=steps,
        source_tasks=[traj.task_id], env=traj.env, tags=[traj.env, "planning"], extraction_round=extraction_round,
        metadata={"extractor": "heuristic", "from_episode": traj.id, "steps": traj.num_steps},
    )


def _ngrams(seq: Sequence[str], n: int) -> set[tuple[str, ...]]:
    return {tuple(seq[i:i + n]) for i in range(len(seq) - n + 1)}


def functional_from_batch(trajs: Sequence[Trajectory], min_support: int = 2, sizes: Sequence[int] = (2, 3, 4),
                          max_skills: int = 10, extraction_round: int = 0) -> list[FunctionalSkill]:
    """Routines: action/API n-grams found in successful episodes of >= ``min_support`` different tasks
    (only those the environment's analyzer counts as routines)."""
    support: dict[tuple[str, tuple[str, ...]], set[str]] = defaultdict(set)
    examples: dict[str, dict[str, str]] = defaultdict(dict)
    for traj in trajs:
        if not traj.success:
            continue
        analyzer = environments.analyzer(traj.env)
        analysis = analyzer.analyze(traj)
        for use in analysis.actions:
            if use.example:
                examples[traj.env].setdefault(use.name, use.example)
        for n in sizes:
            for gram in _ngrams(analysis.action_names, n):
                if analyzer.is_routine(gram):
                    support[(traj.env, gram)].add(traj.task_id)
    frequent = [(key, tasks) for key, tasks in support.items() if len(tasks) >= min_support]
    frequent.sort(key=lambda item: (-len(item[1]) * len(item[0][1]), item[0]))
    chosen: list[tuple[tuple[str, tuple[str, ...]], set[str]]] = []
    for (env, gram), tasks in frequent:
        if any(big_env == env and _contains(big, gram) and len(big_tasks) >= 0.8 * len(tasks)
               for (big_env, big), big_tasks in chosen):
            continue
        chosen.append(((env, gram), tasks))
        if len(chosen) == max_skills:
            break
    skills = []
    for (env, gram), tasks in chosen:
        routine = environments.analyzer(env).routine(gram, examples[env], len(tasks), env)
        skills.append(FunctionalSkill(
            name=routine.name, description=routine.description[:DESCRIPTION_MAX], body=routine.body,
            tools=list(dict.fromkeys(gram)), source_tasks=sorted(tasks), env=env, tags=[env, "functional"],
            extraction_round=extraction_round, metadata={"extractor": "heuristic", "support": len(tasks)},
        ))
    return skills


def _contains(big: tuple[str, ...], small: tuple[str, ...]) -> bool:
    return any(big[i:i + len(small)] == small for i in range(len(big) - len(small) + 1))


def atomic_from_batch(trajs: Sequence[Trajectory], extraction_round: int = 0,
                      max_skills: int = 50) -> list[AtomicSkill]:
    """One skill per action / API seen, with its usage, constraints and the pitfalls observed."""
    uses: dict[tuple[str, str], list[ActionUse]] = defaultdict(list)
    win_uses: Counter[tuple[str, str]] = Counter()
    tasks: dict[tuple[str, str], set[str]] = defaultdict(set)
    issues: dict[tuple[str, str], list[Issue]] = defaultdict(list)
    for traj in trajs:
        analysis = analyze(traj)
        for use in analysis.actions:
            key = (traj.env, use.name)
            uses[key].append(use)
            win_uses[key] += int(traj.success)
            tasks[key].add(traj.task_id)
        for issue in analysis.issues:
            if issue.action:
                issues[(traj.env, issue.action)].append(issue)
    counts = Counter({key: len(items) for key, items in uses.items()})
    skills: list[AtomicSkill] = []
    for (env, action), n in counts.most_common(max_skills):
        key = (env, action)
        guide = environments.analyzer(env).guide(action, uses[key], issues[key])
        examples = list(dict.fromkeys(u.example for u in uses[key] if u.ok and u.example))[:2]
        skills.append(AtomicSkill(
            name=guide.name, description=guide.description[:DESCRIPTION_MAX], action=action, usage=guide.usage,
            constraints=list(guide.constraints), pitfalls=list(guide.pitfalls), examples=examples, env=env,
            source_tasks=sorted(tasks[key]), tags=[env, "atomic"], extraction_round=extraction_round,
            metadata={"extractor": "heuristic", "uses": n, "uses_in_successes": win_uses[key],
                      "errors": sum(i.kind == "error" for i in issues[key])},
        ))
    return skills


# ---------------------------------------------------------------------------------------------
# LLM extraction
# ---------------------------------------------------------------------------------------------

_TIER_PROMPTS = {
    "planning": (
        'Write a plan for this task as ONE JSON object: {"description": "when to use this plan", '
        '"plan": ["sub-goal; key actions or APIs", "..."]}'
    ),
    "functional": (
        "List reusable multi-step routines seen in the successful episodes as ONE JSON object: "
        '{"skills": [{"name": "short-name", "description": "what the routine does", '
        '"steps": ["step", "..."], "tools": ["action or API"]}]}'
    ),
    "atomic": (
        "For each action or API the agent used, note how to use it as ONE JSON object: "
        '{"skills": [{"action": "the action or API", "description": "one sentence", "usage": "how to call it", '
        '"constraints": ["..."], "pitfalls": ["mistakes seen"]}]}'
    ),
}
_ALIASES = {
    "steps": "plan", "workflow": "plan", "summary": "description", "title": "name", "routines": "skills",
    "items": "skills", "apis": "skills", "actions": "skills", "api": "action", "tool": "action",
    "how_to_use": "usage", "errors": "pitfalls", "mistakes": "pitfalls", "requirements": "constraints",
    "body": "steps",
}


class PlanAnswer(ModelAnswer):
    """A planning answer."""

    description: str = ""
    plan: list[str] = Field(default_factory=list, json_schema_extra={"minItems": 1})


class RoutineAnswer(ModelAnswer):
    """One routine of a functional answer."""

    name: str = ""
    description: str = Field("", json_schema_extra={"minLength": 1})
    steps: list[str] = Field(default_factory=list, json_schema_extra={"minItems": 1, "maxItems": 3})
    tools: list[str] = Field(default_factory=list, json_schema_extra={"minItems": 1, "maxItems": 3})


class ActionAnswer(ModelAnswer):
    """One action's note of an atomic answer."""

    action: str = Field("", json_schema_extra={"minLength": 1})
    description: str = ""
    usage: str = Field("", json_schema_extra={"minLength": 1})
    constraints: list[str] = Field(default_factory=list, json_schema_extra={"maxItems": 2})
    pitfalls: list[str] = Field(default_factory=list, json_schema_extra={"maxItems": 2})


class RoutinesAnswer(BaseModel):
    """A functional answer."""

    skills: list[RoutineAnswer] = Field(json_schema_extra={"minItems": 1, "maxItems": 2})


class ActionsAnswer(BaseModel):
    """An atomic answer."""

    skills: list[ActionAnswer] = Field(json_schema_extra={"minItems": 1, "maxItems": 2})


#: The model each tier's answer is written as (the shape of its prompt).
TIER_ANSWERS: dict[str, type[BaseModel]] = {"planning": PlanAnswer, "functional": RoutinesAnswer,
                                            "atomic": ActionsAnswer}


def tier_schema(tier: str, max_new_tokens: int) -> dict[str, Any]:
    """The JSON schema a constrained answer for ``tier`` is held to (its :data:`TIER_ANSWERS` model),
    with strings capped so that the largest answer fits ``max_new_tokens``."""
    model = TIER_ANSWERS[tier]
    return answer_schema(model, list(model.model_fields), max_new_tokens)


def _validate_llm(tier: str, text: str, evidence: Evidence, extraction_round: int) -> tuple[list[SkillBase], list[str]]:
    """Parse and check one model answer for ``tier`` about one task's episodes; raises ``ValueError``
    with a message for the model when the answer is not usable."""
    parsed, repairs = parse_json_object(text)
    first = evidence.analyses[0].trajectory
    task_id, env = first.task_id, first.env
    common = {"source_tasks": [task_id], "env": env, "tags": [env, tier], "extraction_round": extraction_round,
              "metadata": {"extractor": "llm"}}
    if tier == "planning":
        data, more = normalize_keys(parsed, list(PlanAnswer.model_fields), _ALIASES)
        answer = PlanAnswer.model_validate(data)
        plan = answer.plan[:MAX_LIST]
        if not plan:
            raise ValueError("plan must be a non-empty list of steps")
        evidence.require_named("plan", "\n".join(plan))
        instruction = first.instruction.strip() or task_id
        desc = answer.description or f"Plan for {env} task {task_id}"
        return [PlanningSkill(name=slugify(f"plan-{task_id}"), description=desc[:DESCRIPTION_MAX], task=instruction,
                              plan=plan, **common)], repairs + more
    outer, more = normalize_keys(parsed, ["skills"], _ALIASES)
    repairs += more
    items = outer.get("skills")
    if isinstance(items, dict):
        items = [items]
    if not isinstance(items, list) or not items:
        raise ValueError("'skills' must be a non-empty list of objects")
    out: list[SkillBase] = []
    for item in items[:10]:
        if not isinstance(item, dict):
            continue
        if tier == "functional":
            data, more = normalize_keys(item, list(RoutineAnswer.model_fields), _ALIASES)
            routine = RoutineAnswer.model_validate(data)
            tools = evidence.named(" ".join(routine.tools)) or evidence.named("\n".join(routine.steps))
            if not routine.steps or not routine.description or not tools:
                continue
            out.append(FunctionalSkill(
                name=slugify(routine.name or routine.description[:40]), description=routine.description[:DESCRIPTION_MAX],
                body="\n".join(f"{i}. {s}" for i, s in enumerate(routine.steps, 1)), tools=tools, **common))
        else:
            data, more = normalize_keys(item, list(ActionAnswer.model_fields), _ALIASES)
            note = ActionAnswer.model_validate(data)
            action = evidence.named(note.action)
            if not action or not note.usage:
                continue
            desc = note.description or f"How to use {action[0]}"
            out.append(AtomicSkill(
                name=slugify(action[0].replace(".", "-")), description=desc[:DESCRIPTION_MAX], action=action[0],
                usage=note.usage, constraints=note.constraints, pitfalls=note.pitfalls, **common))
        repairs += more
    if not out:
        used = ", ".join(evidence.action_names()[:12]) or "none"
        raise ValueError("no usable skill: every item needs " + (
            "a description and non-empty steps that name actions the agent took" if tier == "functional"
            else "an 'action' the agent took and a non-empty 'usage'") + f" (actions that occurred: {used})")
    return out, repairs


class ExtractorStats(ModelCallStats):
    """``llm_ok``/``fallback`` count (task, tier) pairs answered by the model / by the heuristic."""


@dataclass(eq=False)
class Extractor:
    """Planning / functional / atomic candidates from a batch of trajectories (see the module doc).

    ``constrained`` holds every model answer to its tier's :func:`tier_schema` (constrained decoding);
    False lets the model write freely (parsing, retries and the fallback apply either way).
    """

    backend: Any | None = None
    constrained: bool = True
    max_retries: int = 1
    max_new_tokens: int = 384
    min_support: int = 2
    max_functional: int = 10
    max_atomic: int = 50
    max_prompt_chars: int = 2400
    threshold: float = 0.85
    merge_threshold: float | None = 0.90
    stats: ExtractorStats = field(default_factory=ExtractorStats, init=False)

    def heuristic(self, trajectories: Sequence[Trajectory], tiers: Sequence[str] = EXTRACT_TIERS,
                  extraction_round: int = 0) -> list[SkillBase]:
        """The deterministic candidates of a batch."""
        out: list[SkillBase] = []
        if "planning" in tiers:
            for group in group_by_task(trajectories).values():
                plan = planning_from_group(group, extraction_round)
                if plan is not None:
                    out.append(plan)
        if "functional" in tiers:
            out += functional_from_batch(trajectories, self.min_support, max_skills=self.max_functional,
                                         extraction_round=extraction_round)
        if "atomic" in tiers:
            out += atomic_from_batch(trajectories, extraction_round, max_skills=self.max_atomic)
        return out

    def extract(self, trajectories: Sequence[Trajectory], tiers: Sequence[str] = EXTRACT_TIERS,
                extraction_round: int = 0) -> list[SkillBase]:
        """Candidates of every tier in ``tiers`` (duplicates are sorted out by :func:`apply_candidates`)."""
        bad = [t for t in tiers if t not in EXTRACT_TIERS]
        if bad:
            raise ValueError(f"unknown extraction tier(s) {bad}: use {', '.join(EXTRACT_TIERS)}")
        trajectories = list(trajectories)
        if self.backend is None:
            return self.heuristic(trajectories, tiers, extraction_round)
        groups = list(group_by_task(trajectories).values())
        jobs = [(tier, g) for tier in tiers for g in groups
                if not (tier in ("planning", "functional") and not any(t.success for t in g))]
        results = self._run_llm(jobs, extraction_round)
        out: list[SkillBase] = []
        heuristic_cache: dict[str, list[SkillBase]] = {}
        for (tier, group), skills in zip(jobs, results):
            if skills is None:
                self.stats.fallback += 1
                if tier not in heuristic_cache:
                    heuristic_cache[tier] = self.heuristic(trajectories, (tier,), extraction_round)
                task = group[0].task_id
                skills = [s for s in heuristic_cache[tier] if task in s.source_tasks]
                if tier != "planning":
                    skills = [s for s in skills if s.id not in {x.id for x in out}]
            out.extend(skills)
        return out

    def update(self, library: Any, trajectories: Sequence[Trajectory], tiers: Sequence[str] = EXTRACT_TIERS,
               extraction_round: int | None = None, extra: Sequence[SkillBase] = (),
               save: bool = False) -> ExtractionReport:
        """One library round: extract candidates (plus ``extra`` ones, e.g. trajectory skills), apply
        ADD / MODIFY / KEEP, then merge duplicates (when ``merge_threshold`` is set)."""
        if extraction_round is None:
            extraction_round = 1 + max((s.extraction_round for s in library), default=0)
        candidates = [*extra, *self.extract(trajectories, tiers, extraction_round)]
        for cand in candidates:
            cand.extraction_round = extraction_round
        merger = LLMMerger(self.backend) if self.backend is not None else None
        decisions = apply_candidates(library, candidates, threshold=self.threshold, merger=merger)
        merges = merge_duplicates(library, self.merge_threshold, merger=merger) if self.merge_threshold else []
        if save:
            library.save()
        return ExtractionReport(extraction_round, decisions, merges, self.stats.as_dict())

    def _run_llm(self, jobs: list[tuple[str, list[Trajectory]]], extraction_round: int) -> list[list[SkillBase] | None]:
        evidence = [Evidence.of(group) for _, group in jobs]
        convs = [[{"role": "system", "content": "You extract reusable skills from agent episodes. " + _TIER_PROMPTS[tier]},
                  {"role": "user", "content": render_episodes(group, self.max_prompt_chars) + "\n\nThe JSON:"}]
                 for tier, group in jobs]
        answers = ask_model(
            self.backend, convs, lambda i, text: _validate_llm(jobs[i][0], text, evidence[i], extraction_round),
            lambda error: f"That answer was not valid: {error[:400]}. Reply again with only the JSON object.",
            SamplingParams(max_new_tokens=self.max_new_tokens, temperature=0.0), self.max_retries, self.stats,
            schemas=[tier_schema(tier, self.max_new_tokens) for tier, _ in jobs] if self.constrained else None)
        return [answer.value for answer in answers]


# ---------------------------------------------------------------------------------------------
# Merging
# ---------------------------------------------------------------------------------------------


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", str(text).strip().lower())


def _union(*lists: Sequence[str], cap: int = MAX_LIST) -> list[str]:
    seen: dict[str, str] = {}
    for items in lists:
        for item in items:
            key = _norm(item)
            if key and key not in seen:
                seen[key] = item
    return list(seen.values())[:cap]


def _merge_usage(skills: Sequence[SkillBase]) -> dict[str, Any]:
    usage: dict[str, TaskUsage] = {}
    for s in skills:
        for task, u in s.task_usage.items():
            cur = usage.setdefault(task, TaskUsage())
            cur.n += u.n
            cur.reward_sum += u.reward_sum
    return {
        "n_selected": sum(s.n_selected for s in skills),
        "reward_sum": sum(s.reward_sum for s in skills),
        "task_usage": usage,
    }


def merge_skills(primary: SkillBase, others: Sequence[SkillBase], newer_wins: bool = False) -> SkillBase:
    """Merge ``others`` into ``primary`` deterministically (same tier); returns a new object with
    ``primary``'s id and name.

    Provenance, tags and list fields are unions; trajectory summaries take the newest text
    (``newer_wins``: the last of ``others``); plans keep the shortest plan; functional routines keep
    the primary body and unite tools; atomic skills unite constraints, pitfalls and examples.
    """
    if any(o.tier != primary.tier for o in others):
        raise ValueError("only skills of the same tier can be merged")
    allskills = [primary, *others]
    update: dict[str, Any] = {
        "tags": _union(*(s.tags for s in allskills)),
        "source_tasks": _union(*(s.source_tasks for s in allskills), cap=10_000),
        "extraction_round": max(s.extraction_round for s in allskills),
        "metadata": {**primary.metadata, "merged_from": _union(
            primary.metadata.get("merged_from", []), [o.name for o in others if o.name != primary.name], cap=200)},
    }
    if not update["metadata"]["merged_from"]:
        update["metadata"].pop("merged_from")
    if primary.tier == "trajectory":
        latest = others[-1] if (newer_wins and others) else primary
        update.update({
            "success_analysis": latest.success_analysis, "mistake_analysis": latest.mistake_analysis,  # type: ignore[attr-defined]
            "golden_workflow": latest.golden_workflow,  # type: ignore[attr-defined]
            "description": latest.description, "reward_stats": latest.reward_stats,  # type: ignore[attr-defined]
            "source_trajectory_ids": _union(*(s.source_trajectory_ids for s in allskills), cap=10_000),  # type: ignore[attr-defined]
        })
    elif primary.tier == "planning":
        best = min(allskills, key=lambda s: (len(s.plan) if s.plan else 10**6))  # type: ignore[attr-defined]
        update.update({"plan": best.plan, "task": primary.task or best.task})  # type: ignore[attr-defined]
    elif primary.tier == "functional":
        body = primary.body or next((s.body for s in others if s.body), "")  # type: ignore[attr-defined]
        update.update({"body": body, "tools": _union(*(s.tools for s in allskills))})  # type: ignore[attr-defined]
    elif primary.tier == "atomic":
        update.update({
            "usage": primary.usage or next((s.usage for s in others if s.usage), ""),  # type: ignore[attr-defined]
            "constraints": _union(*(s.constraints for s in allskills)),  # type: ignore[attr-defined]
            "pitfalls": _union(*(s.pitfalls for s in allskills)),  # type: ignore[attr-defined]
            "examples": _union(*(s.examples for s in allskills), cap=3),  # type: ignore[attr-defined]
        })
    merged = primary.model_copy(deep=True, update=update)
    return parse_skill(merged.model_dump(mode="json"))


class LLMMerger:
    """Merge skills with a model: it rewrites the description and body fields of the merged skill
    (JSON, repaired and validated); anything invalid falls back to :func:`merge_skills`."""

    def __init__(self, backend: Any, max_new_tokens: int = 384) -> None:
        self.backend = backend
        self.max_new_tokens = max_new_tokens
        self.stats = {"llm_ok": 0, "fallback": 0}

    def __call__(self, primary: SkillBase, others: Sequence[SkillBase]) -> SkillBase:
        base = merge_skills(primary, others)
        fields = {"trajectory": ["success_analysis", "mistake_analysis", "golden_workflow"],
                  "planning": ["plan"], "functional": ["body", "tools"],
                  "atomic": ["usage", "constraints", "pitfalls"]}[primary.tier]
        shown = "\n\n".join(f"Skill {i}: {s.to_text()[:1200]}" for i, s in enumerate([primary, *others], 1))
        keys = ", ".join(["description", *fields])
        prompt = [{"role": "system", "content": f"Merge near-duplicate skills into one. Answer with ONE JSON object "
                                                f"with the keys {keys}."},
                  {"role": "user", "content": shown + "\n\nThe merged JSON:"}]
        try:
            text = self.backend.generate([prompt], SamplingParams(max_new_tokens=self.max_new_tokens,
                                                                  temperature=0.0))[0].text
            data, _ = normalize_keys(parse_json_object(text)[0], ["description", *fields], _ALIASES)
            update: dict[str, Any] = {}
            if as_text(data.get("description")):
                update["description"] = as_text(data["description"])[:DESCRIPTION_MAX]
            for f in fields:
                if f not in data:
                    continue
                current = getattr(base, f)
                value = as_list(data[f]) if isinstance(current, list) else as_text(data[f])
                if value:
                    update[f] = value
            if not update:
                raise ValueError("empty merge")
            merged = parse_skill({**base.model_dump(mode="json"), **update,
                                  "metadata": {**base.metadata, "merger": "llm"}})
            self.stats["llm_ok"] += 1
            return merged
        except Exception as exc:  # noqa: BLE001 - a bad merge must never lose the skills
            logger.info("LLM merge failed (%s); merging deterministically", exc)
            self.stats["fallback"] += 1
            return base


# ---------------------------------------------------------------------------------------------
# ADD / MODIFY / KEEP
# ---------------------------------------------------------------------------------------------


@dataclass
class Decision:
    """What happened to one candidate: ``op`` is ADD, MODIFY or KEEP; ``skill`` is the stored result."""

    op: str
    candidate: SkillBase
    skill: SkillBase
    target: str | None = None  # name of the existing skill compared with
    similarity: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """A short JSON-able record."""
        return {"op": self.op, "candidate": self.candidate.name, "skill": self.skill.name, "target": self.target,
                "similarity": None if self.similarity is None else round(self.similarity, 4),
                "version": self.skill.version, "tier": self.skill.tier}


def _task_key(skill: SkillBase) -> str | None:
    if skill.tier == "trajectory":
        return getattr(skill, "task_id", None) or (skill.source_tasks[0] if skill.source_tasks else None)
    if skill.tier == "planning":
        return skill.source_tasks[0] if skill.source_tasks else getattr(skill, "task", None)
    return None


def _norm_action(text: str) -> str:
    return re.sub(r"[\s`()]+", "", str(text).lower())


def _subsequence(small: Sequence[str], big: Sequence[str]) -> bool:
    it = iter(big)
    return all(any(x == y for y in it) for x in small)


def compatible(a: SkillBase, b: SkillBase) -> bool:
    """Whether two skills of a tier may be the same skill: atomic skills must be about the same action,
    functional routines must use the same tools (one list in order inside the other), task skills
    must be about the same task. Skills without that information are compatible."""
    if a.tier != b.tier:
        return False
    if a.tier in TASK_TIERS:
        return _task_key(a) == _task_key(b)
    if a.tier == "atomic":
        x, y = _norm_action(getattr(a, "action", "")), _norm_action(getattr(b, "action", ""))
        return not x or not y or x == y
    if a.tier == "functional":
        x = [_norm_action(t) for t in getattr(a, "tools", [])]
        y = [_norm_action(t) for t in getattr(b, "tools", [])]
        return not x or not y or _subsequence(x, y) or _subsequence(y, x)
    return True


def nearest(library: Any, candidate: SkillBase, threshold: float,
            vector: np.ndarray | None = None) -> tuple[SkillBase | None, float | None]:
    """The existing skill a candidate should be compared with (see :func:`apply_candidates`);
    ``vector`` is the candidate's embedding when already computed."""
    if candidate.tier in TASK_TIERS:
        key = _task_key(candidate)
        same_task = [s for s in library.list(tier=candidate.tier) if key is not None and _task_key(s) == key]
        if not same_task:
            return None, None
        if len(same_task) == 1:
            return same_task[0], None
        vec = vector if vector is not None else library.encode([candidate.to_text()])[0]
        sims = library.embeddings(same_task) @ vec
        best = int(np.argmax(sims))
        return same_task[best], float(sims[best])
    existing = library.find(candidate.name)
    if existing is not None and existing.tier == candidate.tier:
        return existing, None
    if vector is None:
        hits = library.search(candidate.to_text(), k=5, tier=candidate.tier, min_score=threshold)
    else:
        hits = library.search_vector(vector, k=5, tier=candidate.tier, min_score=threshold)
    for skill, score in hits:
        if compatible(skill, candidate):
            return skill, score
    return None, (hits[0][1] if hits else None)


def apply_candidates(library: Any, candidates: Sequence[SkillBase], threshold: float = 0.85,
                     merger: Callable[[SkillBase, Sequence[SkillBase]], SkillBase] | None = None,
                     dry_run: bool = False) -> list[Decision]:
    """ADD / MODIFY / KEEP every candidate against the library (changes are not saved).

    The skill a candidate is compared with: for trajectory and planning skills, the skill of the
    same tier and task; otherwise the skill with the same name and tier, else the nearest
    :func:`compatible` skill of the tier (same action / same tools) with cosine >= ``threshold``. With none: ADD (under a unique name).
    With one: the two are merged (``merger``, default :func:`merge_skills` with the newer summary
    winning); an unchanged result is KEEP (provenance still recorded, no new version), a changed
    one is MODIFY (new version, previous one in the history).
    """
    decisions: list[Decision] = []
    candidates = list(candidates)
    # one batch of embeddings for all candidates instead of one encoder call each
    vectors = library.encode([c.to_text() for c in candidates]) if candidates else []
    for cand, vec in zip(candidates, vectors):
        target, sim = nearest(library, cand, threshold, vector=vec)
        if target is None:
            if dry_run:
                decisions.append(Decision("ADD", cand, cand, None, sim))
                continue
            if cand.name in library:
                cand = cand.model_copy(update={"name": library.unique_name(cand.name)})
                cand = parse_skill(cand.model_dump(mode="json"))
            stored = library.add(cand, embedding=vec)
            decisions.append(Decision("ADD", cand, stored, None, sim))
            continue
        if merger is not None:
            merged = merger(target, [cand])
        else:
            merged = merge_skills(target, [cand], newer_wins=True)
        if merged.content_hash() == target.content_hash():
            changed = (merged.source_tasks != target.source_tasks or merged.tags != target.tags
                       or merged.model_dump(include={"source_trajectory_ids"}) != target.model_dump(include={"source_trajectory_ids"}))
            stored = target
            if changed and not dry_run:
                stored = library.update(merged, bump_version=False, history=False)
            decisions.append(Decision("KEEP", cand, stored, target.name, sim))
        else:
            stored = merged if dry_run else library.update(merged, op="modify")
            decisions.append(Decision("MODIFY", cand, stored, target.name, sim))
    return decisions


@dataclass
class ExtractionReport:
    """What one library round did: the decisions per candidate, the merges, the extractor counters."""

    extraction_round: int
    decisions: list[Decision]
    merges: list[MergeResult]
    stats: dict[str, int]

    def counts(self) -> dict[str, dict[str, int]]:
        """``{tier: {"ADD": n, "MODIFY": n, "KEEP": n}}``."""
        out: dict[str, dict[str, int]] = {}
        for d in self.decisions:
            row = out.setdefault(d.skill.tier, {"ADD": 0, "MODIFY": 0, "KEEP": 0})
            row[d.op] += 1
        return out

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able summary."""
        return {"extraction_round": self.extraction_round, "candidates": len(self.decisions),
                "counts": self.counts(), "merged": [m.as_dict() for m in self.merges], "extractor": self.stats}


# ---------------------------------------------------------------------------------------------
# Duplicates
# ---------------------------------------------------------------------------------------------


def find_duplicate_clusters(library: Any, threshold: float = 0.90, tier: str | None = None,
                            block: int = 2048) -> list[list[SkillBase]]:
    """Groups of skills of the same tier (and task, for task tiers) with cosine >= ``threshold``
    (single linkage over :func:`compatible` pairs), largest first; singletons are left out."""
    clusters: list[list[SkillBase]] = []
    tiers = [tier] if tier else sorted({s.tier for s in library})
    for t in tiers:
        skills = library.list(tier=t)
        if len(skills) < 2:
            continue
        vecs = library.embeddings(skills)
        parent = list(range(len(skills)))
        find = _finder(parent)
        keys = [_task_key(s) if t in TASK_TIERS else None for s in skills]
        for start in range(0, len(skills), block):
            sims = vecs[start:start + block] @ vecs.T
            rows, cols = np.nonzero(sims >= threshold)
            for r, c in zip(rows.tolist(), cols.tolist()):
                i = start + r
                if c <= i or keys[i] != keys[c] or not compatible(skills[i], skills[c]):
                    continue
                ri, rc = find(i), find(c)
                if ri != rc:
                    parent[max(ri, rc)] = min(ri, rc)
        groups: dict[int, list[SkillBase]] = defaultdict(list)
        for i, s in enumerate(skills):
            groups[find(i)].append(s)
        clusters.extend(g for g in groups.values() if len(g) > 1)
    clusters.sort(key=len, reverse=True)
    return clusters


def _finder(parent: list[int]) -> Callable[[int], int]:
    """Union-find root lookup with path halving over ``parent``."""

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    return find


@dataclass
class MergeResult:
    """One merged cluster: the surviving skill and the names folded into it."""

    kept: SkillBase
    removed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """A short JSON-able record."""
        return {"kept": self.kept.name, "version": self.kept.version, "removed": self.removed, "tier": self.kept.tier}


def merge_duplicates(library: Any, threshold: float = 0.90, tier: str | None = None,
                     merger: Callable[[SkillBase, Sequence[SkillBase]], SkillBase] | None = None,
                     dry_run: bool = False) -> list[MergeResult]:
    """Merge every cluster of near-duplicates into its primary skill (most selected, then oldest);
    the others are removed (kept in the history). Changes are not saved."""
    results = []
    for cluster in find_duplicate_clusters(library, threshold, tier):
        ordered = sorted(cluster, key=lambda s: (-s.n_selected, s.created_at, s.name))
        primary, others = ordered[0], ordered[1:]
        merged = (merger or merge_skills)(primary, others)
        merged = merged.model_copy(update=_merge_usage([primary, *others]))
        if dry_run:
            results.append(MergeResult(merged, [o.name for o in others]))
            continue
        for other in others:
            library.remove(other.id)
        kept = library.update(parse_skill(merged.model_dump(mode="json")), op="merge")
        results.append(MergeResult(kept, [o.name for o in others]))
    return results
