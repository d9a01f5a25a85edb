"""Environments supply the episode analysis; summaries and skills use it and never ask an oracle."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

import pytest

import environments
from environments import registry
from environments.base import Environment, EpisodeAnalyzer, StepResult, run_episode
from skillkit.core.episode_analysis import ActionGuide, ActionUse, Issue, Routine, Segment
from skillkit.core.llm.base import Completion, LLMBackend
from skillkit.core.schemas import Trajectory
from skillkit.skills.extract import Extractor
from skillkit.skills.summarize import Summarizer, group_by_task, heuristic_summary, render_episodes

# ---------------------------------------------------------------------------------------------
# A third environment, registered by this test only: light every lamp by toggling switches
# ---------------------------------------------------------------------------------------------

LAMPS = {"hall": ("red", "blue"), "attic": ("red", "blue", "green")}


class LampsEnv(Environment):
    """``toggle <colour>`` flips one lamp; the task is done when every lamp is on."""

    name = "lamps"
    max_steps = 6
    instructions = "Reply with `toggle <colour>` to flip a lamp; light every lamp."

    def __init__(self) -> None:
        self._on: dict[str, bool] = {}
        self._task = ""
        self._steps = 0

    def task_ids(self, split: str) -> list[str]:
        return sorted(LAMPS)

    def task_instruction(self) -> str:
        return f"Light every lamp in the {self._task}."

    def reset(self, task_id: str | None = None, seed: int | None = None) -> str:
        self._task = task_id or "hall"
        self._on = {c: False for c in LAMPS[self._task]}
        self._steps = 0
        return self._show()

    def _show(self) -> str:
        return ", ".join(f"{c}: {'on' if on else 'off'}" for c, on in self._on.items())

    def step(self, action: str) -> StepResult:
        self._steps += 1
        colour = action.removeprefix("toggle ").strip()
        info: dict = {"unknown": colour not in self._on}
        reward = 0.0
        if colour in self._on:
            self._on[colour] = not self._on[colour]
            reward = 1.0 if self._on[colour] else -1.0
        done = all(self._on.values()) or self._steps >= self.max_steps
        if done:
            info["success"] = all(self._on.values())
        return StepResult(self._show(), reward, done, info)

    def analyzer(self) -> LampsAnalyzer:
        return LampsAnalyzer()


class LampsAnalyzer(EpisodeAnalyzer):
    """The lamps' own reading: switches, a segment per lamp lit, lamps switched back off."""

    action_noun = "switch"
    success_phrase = "lit every lamp"

    def turn_actions(self, traj: Trajectory, turn: int, ok: bool = True) -> list[ActionUse]:
        colour = traj.turns[turn].action.removeprefix("toggle ").strip()
        return [ActionUse(f"switch-{colour}", turn, ok=ok)]

    def turn_error(self, traj: Trajectory, turn: int) -> str | None:
        return "no such lamp" if traj.turns[turn].info.get("unknown") else None

    def segments(self, traj: Trajectory, actions: Sequence[ActionUse]) -> list[Segment]:
        return [Segment(f"the {a.name.split('-')[1]} lamp glows", (a.name,), a.name)
                for a in actions if traj.turns[a.turn].reward > 0]

    def issues(self, traj: Trajectory, actions: Sequence[ActionUse], errors: dict[int, str]) -> list[Issue]:
        darkened = [Issue("darkened", a.turn, a.name) for a in actions if traj.turns[a.turn].reward < 0]
        return [*super().issues(traj, actions, errors), *darkened]

    def describe_issues(self, kind: str, issues: Sequence[Issue]) -> str:
        if kind == "darkened":
            return f"{len(issues)} switch(es) put a lit lamp out again."
        return super().describe_issues(kind, issues)

    def routine(self, gram: Sequence[str], examples: dict[str, str], n_tasks: int, env: str) -> Routine:
        return Routine("lamp-sweep-" + "-".join(g.split("-")[1] for g in gram),
                       f"Sweep of {len(gram)} lamps seen in {n_tasks} rooms.", "\n".join(gram))

    def guide(self, action: str, uses: Sequence[ActionUse], issues: Sequence[Issue]) -> ActionGuide:
        return ActionGuide(f"lamp-{action}", f"What {action} does.", f"{action} flips one lamp",
                           pitfalls=("flipping a lit lamp puts it out",) if issues else ())


@pytest.fixture
def lamps(monkeypatch: pytest.MonkeyPatch) -> str:
    """Register the lamps environment for one test (the registry is restored afterwards)."""
    for table in ("_FACTORIES", "_ANALYZER_FACTORIES", "_ANALYZERS"):
        monkeypatch.setattr(registry, table, dict(getattr(registry, table)))
    environments.register("lamps", LampsEnv, "light every lamp (test only)")
    return "lamps"


def _play(name: str, task: str, actions: list[str], episode_id: str) -> Trajectory:
    moves = iter(actions)
    with environments.make(name) as env:
        return run_episode(env, lambda _obs: next(moves, "toggle red"), task, episode_id=episode_id)


class Scripted(LLMBackend):
    """Answers every request with ``answer(messages)``."""

    name = "scripted"

    def __init__(self, answer) -> None:
        self.answer = answer

    def generate(self, requests, sampling=None):
        return [Completion(text=self.answer(r)) for r in requests]


def test_a_registered_environment_brings_its_own_analysis(lamps: str) -> None:
    assert isinstance(environments.analyzer(lamps), LampsAnalyzer)
    hall_win = _play(lamps, "hall", ["toggle red", "toggle red", "toggle red", "toggle blue"], "hall-win")
    hall_loss = _play(lamps, "hall", ["toggle pink", "toggle blue", "toggle blue"] * 2, "hall-loss")
    attic_win = _play(lamps, "attic", ["toggle red", "toggle blue", "toggle green"], "attic-win")
    assert hall_win.success and attic_win.success and not hall_loss.success

    skill = heuristic_summary([hall_win, hall_loss])
    assert "1 of 2 episodes lit every lamp" in skill.success_analysis
    assert "switch-red, switch-red, switch-blue" not in skill.success_analysis  # its own rendering:
    assert "switch-red -> switch-red -> switch-blue" in skill.success_analysis
    assert skill.golden_workflow == ["the red lamp glows; switch-red", "the red lamp glows; switch-red",
                                     "the blue lamp glows; switch-blue"]
    assert "put a lit lamp out again" in skill.mistake_analysis
    assert "switch-pink raised 'no such lamp'" in skill.mistake_analysis  # the generic reading of errors

    skills = Extractor(None, min_support=2).extract([hall_win, hall_loss, attic_win])
    plans = {s.source_tasks[0]: s for s in skills if s.tier == "planning"}
    assert plans["attic"].plan == ["the red lamp glows; switch-red", "the blue lamp glows; switch-blue",
                                   "the green lamp glows; switch-green"]
    routines = [s for s in skills if s.tier == "functional"]
    assert routines and all(s.name.startswith("lamp-sweep-") for s in routines)
    atoms = {s.action: s for s in skills if s.tier == "atomic"}
    assert atoms["switch-red"].name == "lamp-switch-red" and atoms["switch-red"].usage == "switch-red flips one lamp"
    assert atoms["switch-red"].pitfalls == ["flipping a lit lamp puts it out"]
    assert "Actions: switch-red -> switch-red" in render_episodes([hall_win])

    # a model answer is checked against the actions this environment's analyzer found
    good = {"description": "light the lamps", "success_analysis": "switch-red then switch-blue lit the hall",
            "mistake_analysis": "switch-pink names no lamp", "golden_workflow": ["switch-red", "switch-blue"]}
    wrong = good | {"golden_workflow": ["toggle the lights"]}
    answers = iter([json.dumps(wrong), json.dumps(good)])
    summarizer = Summarizer(Scripted(lambda _m: next(answers)), max_retries=1)
    skill = summarizer.summarize([hall_win, hall_loss])
    assert summarizer.stats.retried == 1 and summarizer.stats.llm_ok == 1
    assert skill.golden_workflow == ["switch-red", "switch-blue"]


# ---------------------------------------------------------------------------------------------
# The oracle is never asked while summarizing and extracting
# ---------------------------------------------------------------------------------------------


def _agent_episodes() -> list[Trajectory]:
    """Episodes of a random Sokoban player and of hand-written app code (no oracle involved)."""
    rng = random.Random(3)
    out = []
    sokoban = environments.make("sokoban", variant="1box", max_steps=20)
    for task in sokoban.task_ids("train")[:4]:
        for k in range(2):
            out.append(run_episode(sokoban, lambda _o: rng.choice(["Up", "Down", "Left", "Right", "jump"]), task,
                                   episode_id=f"{task}-{k}"))
    login = ("```python\npw = {a['account_name']: a['password'] for a in apis.supervisor.show_account_passwords()}\n"
             "me = apis.supervisor.show_profile()\n"
             "tok = apis.phone.login(username=me['phone_number'], password=pw['phone'])['access_token']\n"
             "print(apis.phone.search_contacts(access_token=tok, query='a'))\n```")
    with environments.make("apps", max_steps=3) as apps:
        for task in apps.task_ids("train")[:2]:
            actions = iter([login, "```python\napis.phone.search_contacts(query='x')\n```",
                            "```python\napis.supervisor.complete_task()\n```"])
            out.append(run_episode(apps, lambda _o, a=actions: next(a), task, episode_id=f"{task}-agent"))
    return out


def test_summaries_and_skills_never_ask_the_oracle(monkeypatch: pytest.MonkeyPatch) -> None:
    episodes = _agent_episodes()
    assert {t.env for t in episodes} == {"sokoban", "apps"}
    calls: list[str] = []

    def spy(name: str):
        def called(*args, **kwargs):
            calls.append(name)
            raise AssertionError(f"{name} was called while making skills")
        return called

    from environments.apps.env import AppsEnv, AppsOracle
    from environments.sokoban import SokobanEnv, SokobanOracle

    for target, attr in [("environments.sokoban.solver", "solve"), ("environments.sokoban.oracle", "solve"),
                         ("environments.sokoban", "solve"), ("environments.sokoban.oracle", "_shortest")]:
        monkeypatch.setattr(f"{target}.{attr}", spy(f"{target}.{attr}"))
    for cls, attr in [(SokobanOracle, "expert_actions"), (SokobanOracle, "optimal_next_actions"),
                      (AppsOracle, "expert_actions"), (AppsOracle, "optimal_next_actions"),
                      (Environment, "oracle"), (SokobanEnv, "oracle"), (AppsEnv, "oracle")]:
        monkeypatch.setattr(cls, attr, spy(f"{cls.__name__}.{attr}"))

    groups = list(group_by_task(episodes).values())
    summaries = Summarizer(None).summarize_many(groups)
    skills = Extractor(None).extract(episodes)
    assert len(summaries) == len(groups) and {s.tier for s in skills} >= {"atomic"}
    # with a model too (its answers are off, so every fallback path runs as well)
    llm_summaries = Summarizer(Scripted(lambda _m: "{}"), max_retries=1).summarize_many(groups)
    llm_skills = Extractor(Scripted(lambda _m: '{"plan": ["Up"], "skills": []}')).extract(episodes)
    assert len(llm_summaries) == len(groups) and llm_skills
    for skill in [*summaries, *llm_summaries]:
        assert "shortest" not in skill.body_text().lower()
    assert calls == []
