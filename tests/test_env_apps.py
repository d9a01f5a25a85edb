"""App suite: APIs (login, pagination, errors, docs), tasks and their evaluators, TGC/SGC."""

from __future__ import annotations

import pytest

import environments
from environments.apps import (
    SCENARIOS,
    SPLITS,
    TASKS,
    VARIANTS_PER_SCENARIO,
    ApiError,
    AppsEnv,
    AppSuite,
    extract_code,
    get_task,
    make_world,
    scenario_goal_completion,
    task_goal_completion,
    task_ids,
)
from environments.base import run_episode

COLLATERAL = '''
_pw = {a["account_name"]: a["password"] for a in apis.supervisor.show_account_passwords()}
_mt = apis.music.login(username=apis.supervisor.show_profile()["email"], password=_pw["music"])["access_token"]
_liked = {s["id"] for p in range(3) for s in apis.music.show_liked_songs(access_token=_mt, page_index=p, page_limit=20)}
apis.music.like_song(access_token=_mt, song_id=min(set(range(1, 49)) - _liked))
'''


@pytest.fixture(scope="module")
def env():
    env = environments.make("apps")
    yield env
    env.close()


def test_suite_shape():
    assert len(TASKS) >= 375 and len(SCENARIOS) >= 75
    splits = {s: task_ids(s) for s in SPLITS}
    assert sum(map(len, splits.values())) == len(TASKS) and all(splits.values())
    assert task_ids("test") == task_ids("test_normal")
    with pytest.raises(ValueError, match="unknown apps split"):
        task_ids("validation")
    for scenario in SCENARIOS:
        variants = [t for t in TASKS.values() if t.scenario_id == scenario.id]
        assert len(variants) == VARIANTS_PER_SCENARIO >= 5 and len({t.split for t in variants}) == 1
        assert len({repr(t.params) for t in variants}) == VARIANTS_PER_SCENARIO  # variants differ in data
    suite = AppSuite(make_world(1))
    for app in suite.app_names:
        assert len(suite.apps[app].api_names()) >= 8 and "login" in suite.apps[app].api_names()
    assert "login" not in suite.apps["supervisor"].api_names()


def test_login_pagination_and_errors():
    suite = AppSuite(make_world(5))
    profile = suite.call("supervisor", "show_profile", {})
    passwords = {a["account_name"]: a["password"] for a in suite.call("supervisor", "show_account_passwords", {})}
    with pytest.raises(ApiError, match="invalid or missing access_token"):
        suite.call("phone", "search_contacts", {"access_token": "nope"})
    with pytest.raises(ApiError, match="invalid username or password"):
        suite.call("phone", "login", {"username": profile["phone_number"], "password": "wrong"})
    token = suite.call("phone", "login", {"username": profile["phone_number"], "password": passwords["phone"]})
    token = token["access_token"]
    pages = [suite.call("phone", "search_contacts", {"access_token": token, "page_index": i, "page_limit": 5})
             for i in range(6)]
    flat = [c["id"] for page in pages for c in page]
    assert len(flat) == len(set(flat)) == len(suite.db["phone"]["contacts"])
    assert [len(p) for p in pages][:4] == [5, 5, 5, 5]
    with pytest.raises(ApiError, match="page_limit"):
        suite.call("phone", "search_contacts", {"access_token": token, "page_limit": 500})
    with pytest.raises(ApiError, match="missing required"):
        suite.call("phone", "send_text_message", {"access_token": token})
    with pytest.raises(ApiError, match="unknown parameter"):
        suite.call("phone", "show_contact", {"access_token": token, "contact_id": 1, "x": 2})
    with pytest.raises(ApiError, match="not found"):
        suite.call("phone", "show_contact", {"access_token": token, "contact_id": 999})
    with pytest.raises(ApiError, match="no API"):
        suite.call("phone", "call", {"api_name": "delete_contact", "kwargs": {}})
    with pytest.raises(ApiError, match="unknown app"):
        suite.call("bank", "login", {})
    wtoken = suite.call("wallet", "login", {"username": profile["email"], "password": passwords["wallet"]})
    with pytest.raises(ApiError, match="insufficient balance"):
        suite.call("wallet", "send_money", {"access_token": wtoken["access_token"], "receiver_email": "a@b.c",
                                            "amount": 10**9})


def test_api_docs_are_discoverable_from_code(env):
    env.reset(task_ids("train")[0])
    obs = env.step('apps = apis.api_docs.show_app_descriptions()\nprint(sorted(a["name"] for a in apps))\n'
                   'print(apis.api_docs.show_api_doc(app_name="wallet", api_name="send_money")["parameters"][1])\n'
                   'print(len(apis.api_docs.show_api_descriptions(app_name="music")))').observation
    assert "['api_docs', 'calendar', 'email', 'files', 'music', 'notes', 'phone', 'shopping', 'supervisor', 'wallet']" in obs
    assert "receiver_email" in obs
    bad = env.step('apis.api_docs.show_api_doc(app_name="phone", api_name="fly")').observation
    assert "has no API 'fly'" in bad


@pytest.mark.parametrize("text, code", [
    ("```python\nprint(1)\n```", "print(1)"), ("print(2)", "print(2)"),
    ("Let me look.\n```py\na = 1\n```\nthen\n```\nprint(a)\n```", "a = 1\nprint(a)"),
])
def test_extract_code(text, code):
    assert extract_code(text) == code


def test_reference_solutions_pass_in_the_sandbox_and_wrong_ones_fail(env):
    """The first variant of every scenario through the real sandbox (all variants run in-process in
    tests/test_env_apps_suite.py)."""
    results = {}
    for task_id in [t.task_id for t in TASKS.values() if t.task_id.endswith("_1")]:
        env.reset(task_id)
        result = env.step(env.oracle().expert_actions(task_id)[0])
        assert result.done and result.info["success"], (task_id, result.observation, result.info["checks"])
        assert result.reward == 1.0 and result.info["scenario_id"] == get_task(task_id).scenario_id
        results[task_id] = bool(result.info["success"])
        # Wrong: finish at once with a wrong answer.
        env.reset(task_id)
        wrong = env.step("apis.supervisor.complete_task(answer='no idea')")
        assert wrong.done and not wrong.info["success"], task_id
        results[task_id + "-wrong"] = bool(wrong.info["success"])
    # the rates come from the episodes' own outcomes: every reference passed, every wrong answer failed
    references = {t: ok for t, ok in results.items() if not t.endswith("-wrong")}
    assert task_goal_completion(references) == 1.0 and scenario_goal_completion(references) == 1.0
    assert not any(ok for t, ok in results.items() if t.endswith("-wrong"))
    # Collateral damage through the sandbox: the reference plus an extra liked song.
    task = next(t for t in TASKS.values() if ("music", "liked", "added") not in _changes(t))
    env.reset(task.task_id)
    damaged = env.step(COLLATERAL + task.reference)
    assert damaged.done and not damaged.info["success"]
    assert "no other changes" in {c["name"] for c in damaged.info["checks"] if not c["passed"]}


def _changes(task):
    return next(s for s in SCENARIOS if s.id == task.scenario_id).changes


def test_tgc_and_sgc():
    results = {t: True for t in TASKS}
    first = next(iter(TASKS))
    results[first] = False
    assert task_goal_completion(results) == pytest.approx(1 - 1 / len(TASKS))
    assert scenario_goal_completion(results) == pytest.approx(1 - 1 / len(SCENARIOS))


def test_state_persists_across_turns_and_episode_is_recorded():
    env = AppsEnv(max_steps=3)
    actions = iter(["x = 41", "print(x + 1)", "print('still going')"])
    traj = run_episode(env, lambda obs: next(actions), task_ids("dev")[0])
    assert "42" in traj.turns[1].observation
    assert traj.num_steps == 3 and not traj.success and traj.turns[-1].done
    assert traj.turns[-1].info["checks_total"] >= 2 and traj.metadata["scenario_id"] == get_task(traj.task_id).scenario_id
    assert "Task:" in traj.initial_observation and traj.instruction == get_task(traj.task_id).instruction
    env.close()
