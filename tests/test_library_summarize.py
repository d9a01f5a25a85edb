"""Summarizer: robust JSON parsing, retries with the validation error, deterministic fallback."""

from __future__ import annotations

import json
import random

import pytest

import environments
from skillkit.core.llm.base import (
    Completion,
    LLMBackend,
    SamplingParams,
    SchemaRequest,
    normalize_request,
    request_schema,
)
from skillkit.core.llm_json import answer_schema, normalize_keys, parse_json_object
from skillkit.core.schemas import Trajectory, TrajectorySkill, Turn, validate_skill_name
from skillkit.skills.summarize import (
    SUMMARY_FIELDS,
    Evidence,
    LLMSummary,
    Summarizer,
    heuristic_summary,
    render_episodes,
)

GRID = "######\n#P_XO#\n#____#\n######"
SOLVED = "######\n#__P√#\n#____#\n######"
MIDDLE = "######\n#_PXO#\n#____#\n######"


def _obs(grid: str, feedback: str) -> str:
    return f"{grid}\n{feedback}\nLegend: ...\nSteps left: 9."


def sokoban_win(episode: str = "win") -> Trajectory:
    return Trajectory(
        id=episode, env="sokoban", task_id="level-7", instruction="Push every box onto a target.",
        initial_observation=_obs(GRID, "Start."), success=True, total_reward=10.8,
        turns=[
            Turn(action="Right", observation=_obs(MIDDLE, "You moved Right."), reward=-0.1,
                 info={"actions": ["Right"], "invalid": False, "boxes_on_target": 0, "solved": False}),
            Turn(action="<answer>Right</answer>", observation=_obs(SOLVED, "You moved Right. solved!"), reward=10.9,
                 done=True, info={"actions": ["Right"], "invalid": False, "boxes_on_target": 1, "solved": True,
                                  "success": True}),
        ],
    )


def sokoban_loss() -> Trajectory:
    return Trajectory(
        id="loss", env="sokoban", task_id="level-7", initial_observation=_obs(GRID, "Start."), success=False,
        total_reward=-0.3,
        turns=[
            Turn(action="Up", observation=_obs(GRID, "You moved Up."), reward=-0.1,
                 info={"actions": ["Up"], "invalid": False, "boxes_on_target": 0}),
            Turn(action="fly", observation=_obs(GRID, "Invalid action ('fly' is not an action)."), reward=-0.1,
                 info={"actions": [], "invalid": True, "boxes_on_target": 0}),
            Turn(action="Left", observation=_obs(GRID, "You moved Left. Out of steps."), reward=-0.1, done=True,
                 info={"actions": ["Left"], "invalid": False, "boxes_on_target": 0, "success": False}),
        ],
    )


def apps_trajs() -> list[Trajectory]:
    code_ok = ("```python\np = {a['account_name']: a['password'] for a in apis.supervisor.show_account_passwords()}\n"
               "tok = apis.phone.login(username='555', password=p['phone'])['access_token']\n"
               "apis.phone.send_text_message(access_token=tok, phone_number='5551', message='hi')\n"
               "apis.supervisor.complete_task()\n```")
    win = Trajectory(id="a1", env="apps", task_id="send-text-1", instruction="Text Ava 'hi'.", success=True,
                     total_reward=1.0,
                     turns=[Turn(action=code_ok, observation="Output:\n\nTask marked as completed.", reward=1.0, done=True,
                                 info={"api_calls": 4, "error": False, "success": True})])
    bad = ("```python\napis.phone.send_text_message(phone_number='5551', message='hi')\n```")
    loss = Trajectory(
        id="a2", env="apps", task_id="send-text-1", success=False, total_reward=0.0,
        turns=[Turn(action=bad, observation="Error:\nTraceback ...\nApiError: invalid or missing access_token: "
                                             "call apis.phone.login(...) first", info={"error": True}),
               Turn(action="```python\napis.supervisor.complete_task()\n```", observation="Task marked as completed.",
                    done=True, info={"error": False, "success": False,
                                     "checks": [{"name": "message sent", "passed": False, "detail": ""}]})],
    )
    return [win, loss]


class ScriptedBackend(LLMBackend):
    """Answers from a list of texts, in order; records every request it saw (as message dicts) and
    the JSON schema each was held to."""

    name = "scripted"

    def __init__(self, answers: list[str]) -> None:
        self.answers = list(answers)
        self.requests: list = []
        self.schemas: list = []

    def generate(self, requests, sampling: SamplingParams | None = None) -> list[Completion]:
        out = []
        for req in requests:
            self.requests.append([m.model_dump() for m in normalize_request(req)])
            self.schemas.append(request_schema(req, sampling or SamplingParams()))
            text = self.answers.pop(0) if self.answers else "no idea"
            out.append(Completion(text=text))
        return out


GOOD = {"description": "Push the box right twice", "success_analysis": "Walking right pushed the box home.",
        "mistake_analysis": "Invalid words and walking into walls waste steps.", "golden_workflow": ["Right", "Right"]}


@pytest.mark.parametrize(
    ("answer", "repaired"),
    [
        (json.dumps(GOOD), False),
        ("```json\n" + json.dumps(GOOD) + "\n```", True),
        ("Here is the lesson:\n" + json.dumps(GOOD) + "\nI hope this helps!", True),
        (json.dumps(GOOD)[:-1] + ",}", True),
        (json.dumps(GOOD).replace('"Right"]', '"Right",]'), True),
        (str(GOOD), True),  # Python dict: single quotes
        (json.dumps({"summary": GOOD["description"], "what_worked": GOOD["success_analysis"],
                     "mistakes": GOOD["mistake_analysis"], "steps": "1. Right\n2. Right"}), True),
        (json.dumps({"Success Analysis": "ok", "mistake-analysis": "bad", "golden_workflow": "Right, then Right"}), True),
        (json.dumps(GOOD)[:-6], True),  # cut off inside the last string
    ],
)
def test_broken_answers_are_repaired(answer: str, repaired: bool) -> None:
    backend = ScriptedBackend([answer])
    summarizer = Summarizer(backend)
    skill = summarizer.summarize([sokoban_win(), sokoban_loss()])
    assert isinstance(skill, TrajectorySkill)
    assert summarizer.stats.llm_ok == 1 and summarizer.stats.fallback == 0 and summarizer.stats.retried == 0
    assert summarizer.stats.repaired == int(repaired)
    assert skill.golden_workflow and skill.golden_workflow[0].startswith("Right")
    assert skill.task_id == "level-7" and skill.source_trajectory_ids == ["win", "loss"]
    assert skill.reward_stats["success_rate"] == 0.5
    validate_skill_name(skill.name)


def test_invalid_answer_is_retried_with_the_error_fed_back() -> None:
    backend = ScriptedBackend(['{"description": "x"}', json.dumps(GOOD)])
    summarizer = Summarizer(backend, max_retries=2)
    skill = summarizer.summarize(sokoban_win())
    assert summarizer.stats.retried == 1 and summarizer.stats.llm_ok == 1 and summarizer.stats.fallback == 0
    retry = backend.requests[1]
    assert retry[-2]["role"] == "assistant" and retry[-2]["content"] == '{"description": "x"}'
    assert "golden_workflow" in retry[-1]["content"] and "not valid" in retry[-1]["content"]
    assert skill.success_analysis == GOOD["success_analysis"]
    assert skill.metadata["attempts"] == 2


@pytest.mark.parametrize("garbage", ["I cannot do that.", "{}", '{"golden_workflow": []}', "[1, 2, 3]",
                                     '{"success_analysis": "what the successful episodes did right", '
                                     '"golden_workflow": ["step 1"]}'])
def test_fallback_after_retries(garbage: str) -> None:
    backend = ScriptedBackend([garbage] * 3)
    summarizer = Summarizer(backend, max_retries=2)
    skill = summarizer.summarize([sokoban_win(), sokoban_loss()])
    assert summarizer.stats.fallback == 1 and summarizer.stats.retried == 2 and summarizer.stats.llm_ok == 0
    assert len(backend.requests) == 3
    assert skill.metadata["summarizer"] == "heuristic" and "fallback_reason" in skill.metadata
    assert skill.golden_workflow


def test_backend_exception_falls_back() -> None:
    class Broken(LLMBackend):
        def generate(self, requests, sampling=None):
            raise RuntimeError("CUDA out of memory")

    summarizer = Summarizer(Broken())
    skills = summarizer.summarize_many([[sokoban_win()], apps_trajs()])
    assert len(skills) == 2 and summarizer.stats.fallback == 2 and summarizer.stats.errors == 1

    class Silent(LLMBackend):  # answers fewer completions than asked
        def generate(self, requests, sampling=None):
            return []

    summarizer = Summarizer(Silent())
    skills = summarizer.summarize_many([[sokoban_win()], apps_trajs()])
    assert [s.task_id for s in skills] == ["level-7", "send-text-1"] and summarizer.stats.fallback == 2


def test_batched_groups_keep_their_order() -> None:
    other = GOOD | {"success_analysis": "second", "golden_workflow": ["phone.login", "phone.send_text_message"]}
    backend = ScriptedBackend(["junk", json.dumps(other), json.dumps(GOOD)])  # group 0 retried after group 1
    summarizer = Summarizer(backend)
    a, b = summarizer.summarize_many([[sokoban_win()], apps_trajs()])
    assert a.task_id == "level-7" and a.success_analysis == GOOD["success_analysis"]
    assert b.task_id == "send-text-1" and b.success_analysis == "second"
    assert summarizer.stats.as_dict()["retried"] == 1


def test_heuristic_sokoban_summary() -> None:
    skill = heuristic_summary([sokoban_win(), sokoban_loss()])
    assert skill.name == "level-7-summary" and skill.tier == "trajectory"
    assert "1 of 2 episodes solved" in skill.success_analysis
    assert "Right x2" in skill.success_analysis
    assert skill.golden_workflow[-1].endswith("Right x2") and "solved" in skill.golden_workflow[-1]
    assert "no valid action" in skill.mistake_analysis
    assert "changed nothing" in skill.mistake_analysis
    assert skill.reward_stats["n"] == 2 and skill.reward_stats["max_return"] == pytest.approx(10.8)
    only_loss = heuristic_summary(sokoban_loss())
    assert "No episode solved" in only_loss.success_analysis
    # nothing in the failed episode made progress, and no solver plan stands in for it
    assert only_loss.golden_workflow == [] and "shortest" not in only_loss.success_analysis


def test_heuristic_apps_summary() -> None:
    skill = heuristic_summary(apps_trajs())
    assert "supervisor.show_account_passwords -> phone.login -> phone.send_text_message" in skill.success_analysis
    assert skill.golden_workflow[1].startswith("call phone.login; tok = apis.phone.login(")
    assert "phone.send_text_message raised 'ApiError: invalid or missing access_token" in skill.mistake_analysis
    assert "message sent" in skill.mistake_analysis


def test_environment_analyzers_read_the_episodes() -> None:
    from environments.apps.analysis import api_calls

    assert api_calls("x = apis.phone.login(a=1)\nall_pages(apis.phone.search_contacts, q=2)") == [
        "phone.login", "phone.search_contacts"]
    sokoban = environments.analyzer("sokoban")
    assert GRID in sokoban.start_state(sokoban_loss())
    assert sokoban.turn_error(sokoban_loss(), 1).startswith("invalid action")
    assert sokoban.turn_error(sokoban_loss(), 0) is None
    loss = sokoban.analyze(sokoban_loss())
    assert [(i.kind, i.action) for i in loss.issues] == [("no-effect", "Up"), ("invalid", ""), ("no-effect", "Left"),
                                                         ("failed", "")]
    win = sokoban.analyze(sokoban_win())
    assert [s.step for s in win.segments] == ["the last box reaches its target: solved; Right x2"]
    apps = environments.analyzer("apps").analyze(apps_trajs()[1])
    assert apps.turn_errors[0].startswith("ApiError: invalid or missing access_token")
    assert {i.kind for i in apps.issues} == {"error", "failed-check"}
    assert type(environments.analyzer("no-such-env")) is environments.EpisodeAnalyzer
    text = render_episodes([sokoban_win(), sokoban_loss()])
    assert "SUCCESS" in text and "FAILURE" in text and GRID in text


def test_useless_answers_are_retried_with_the_reason() -> None:
    """An answer must name actions that occurred and cover the successes and the failures."""
    off_topic = GOOD | {"golden_workflow": ["think hard", "then fly"]}
    no_mistakes = GOOD | {"mistake_analysis": ""}
    backend = ScriptedBackend([json.dumps(off_topic), json.dumps(no_mistakes), json.dumps(GOOD)])
    summarizer = Summarizer(backend, max_retries=2)
    skill = summarizer.summarize([sokoban_win(), sokoban_loss()])
    assert summarizer.stats.retried == 2 and summarizer.stats.llm_ok == 1
    first_retry, second_retry = [m["content"] for m in backend.requests[-1][2:] if m["role"] == "user"]
    assert "golden_workflow names no move that occurred" in first_retry and "Right" in first_retry
    assert "mistake_analysis is empty but 1 episode(s) failed" in second_retry
    assert skill.golden_workflow == GOOD["golden_workflow"]


def test_no_backend_means_heuristic() -> None:
    summarizer = Summarizer(None)
    assert summarizer.summarize(sokoban_win()).metadata["summarizer"] == "heuristic"
    assert summarizer.stats.fallback == 1


def test_jsonrepair_edge_cases() -> None:
    assert parse_json_object('{"a": 1}') == ({"a": 1}, [])
    assert parse_json_object("{'a': True, b: None,}")[0] == {"a": True, "b": None}
    assert parse_json_object('{"a": "x" "b": 2}')[0] == {"a": "x", "b": 2}
    assert parse_json_object('{"q": "he said "hi" twice"}')[0] == {"q": 'he said "hi" twice'}
    assert parse_json_object('{"a": 1 /* c */, // d\n"b": [1,2,]}')[0] == {"a": 1, "b": [1, 2]}
    assert parse_json_object('{"a": 1}\n{"b": 2}')[0] == {"a": 1}
    for no_object in ("nothing here", "[1, 2, 3]", "42"):
        with pytest.raises(ValueError, match="not a JSON object"):
            parse_json_object(no_object)
    data, repairs = normalize_keys({"GoldenWorkflow": [1], "Mistakes": "m", "zzz": 1},
                                   ["golden_workflow", "mistake_analysis"], {"mistakes": "mistake_analysis"})
    assert data == {"golden_workflow": [1], "mistake_analysis": "m"}
    assert any("zzz" in r for r in repairs)


@pytest.mark.integration
def test_real_smollm2_writes_useful_json_summaries(smollm2_backend) -> None:
    """SmolLM2 held to the summary's schema writes summaries that pass every check (not the fallback)
    for groups of a seeded random player's episodes on Sokoban levels and app tasks (train splits)."""
    from environments.base import run_episode
    from environments.players import random_player

    groups = []
    for name, options, tasks in (("sokoban", {"variant": "1box", "max_steps": 20}, slice(0, 2)),
                                 ("apps", {"max_steps": 3}, slice(0, 64, 16))):
        with environments.make(name, **options) as env:
            for task in env.task_ids("train")[tasks]:
                groups.append([run_episode(env, random_player(name, random.Random(k)), task, episode_id=f"{task}-{k}")
                               for k in range(3)])
    summarizer = Summarizer(smollm2_backend, max_retries=1, max_new_tokens=160, max_prompt_chars=1200)
    assert summarizer.constrained  # the default
    skills = summarizer.summarize_many(groups)
    stats = summarizer.stats
    assert stats.llm_ok + stats.fallback == len(groups) and stats.errors == 0
    assert stats.llm_ok >= 1, [s.metadata.get("fallback_reason") for s in skills]
    for skill, group in zip(skills, groups):
        validate_skill_name(skill.name)
        assert skill.task_id == group[0].task_id and skill.body_text()
        if skill.metadata["summarizer"] != "heuristic":  # what the model wrote passes the checks again
            assert skill.golden_workflow and skill.success_analysis != skill.mistake_analysis
            answer = {k: getattr(skill, k) for k in SUMMARY_FIELDS}
            assert Summarizer.parse(json.dumps(answer), Evidence.of(group))[0].golden_workflow == skill.golden_workflow


def test_answers_are_held_to_the_summary_schema_unless_free() -> None:
    backend = ScriptedBackend(['{"description": "x"}', json.dumps(GOOD)])
    summarizer = Summarizer(backend, max_retries=2, max_new_tokens=200)
    summarizer.summarize(sokoban_win())
    schema = summarizer.schema(Evidence.of([sokoban_win()]))
    assert backend.schemas == [schema, schema]  # the retry too
    assert list(schema["properties"]) == list(SUMMARY_FIELDS) == schema["required"]
    assert "tags" not in schema["properties"]
    workflow = schema["properties"]["golden_workflow"]
    assert workflow["minItems"] == 1 and workflow["items"]["maxLength"] == schema["properties"]["description"]["maxLength"]
    assert workflow["items"]["pattern"] == "^(?:Right)(?:[ :,;.(].*)?$"  # the only move that occurred
    assert "pattern" not in Summarizer(ground_workflow=False).schema(Evidence.of([sokoban_win()]))[
        "properties"]["golden_workflow"]["items"]
    free = ScriptedBackend([json.dumps(GOOD)])
    Summarizer(free, constrained=False).summarize(sokoban_win())
    assert free.schemas == [None]


def test_answer_schema_restricts_requires_and_caps() -> None:
    full = answer_schema(LLMSummary, ["golden_workflow", "description"], max_items=3)
    assert list(full["properties"]) == ["golden_workflow", "description"] == full["required"]
    assert full["properties"]["golden_workflow"]["maxItems"] == 3 and "maxLength" not in full["properties"]["description"]
    small, large = (answer_schema(LLMSummary, SUMMARY_FIELDS, tokens)["properties"]["description"]["maxLength"]
                    for tokens in (120, 480))
    assert 16 <= small < large
    with pytest.raises(ValueError, match="no field"):
        answer_schema(LLMSummary, ["description", "nope"])


def test_constrained_answers_of_a_random_model_are_valid_json(tiny_backend) -> None:
    """Even a random 2-layer model writes JSON of the summary's shape when held to its schema, with
    workflow steps that start with moves that occurred."""
    summarizer = Summarizer(tiny_backend, max_retries=0, max_new_tokens=96, max_prompt_chars=600)
    schema = summarizer.schema(Evidence.of([sokoban_win(), sokoban_loss()]))
    texts = [c.text for c in tiny_backend.generate(
        [SchemaRequest(request=summarizer._messages([sokoban_win(), sokoban_loss()]), json_schema=schema)],
        SamplingParams(max_new_tokens=96, temperature=1.0, seed=1))]
    value = json.loads(texts[0])
    assert list(value) == list(SUMMARY_FIELDS)
    assert all(len(value[k]) <= schema["properties"][k]["maxLength"] for k in SUMMARY_FIELDS[:3])
    assert 1 <= len(value["golden_workflow"]) <= schema["properties"]["golden_workflow"]["maxItems"]
    assert all(step.split()[0].rstrip(":,;.(") in ("Right", "Up", "Left") for step in value["golden_workflow"])
    LLMSummary.model_validate(value)


@pytest.mark.parametrize(("answer", "why"), [
    (GOOD | {"success_analysis": "What the successful episodes did right, naming"}, "success_analysis repeat"),
    (GOOD | {"description": "one sentence: when this lesson helps"}, "description repeat"),
    (GOOD | {"mistake_analysis": " walking  right pushed the box home."}, "say the same thing"),
])
def test_copied_or_identical_analyses_are_not_useful(answer: dict, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        Summarizer.parse(json.dumps(answer), Evidence.of([sokoban_win(), sokoban_loss()]))
