"""The app suite at scale: every reference solution passes on every variant (in-process), doing
nothing or adding collateral damage fails, every API is used by some reference, and the splits
follow AppWorld (test_challenge needs an app no train scenario uses)."""

from __future__ import annotations

from collections import Counter

import pytest

from environments.apps import (
    ALL_APPS,
    ORIGINAL_APPS,
    SCENARIOS,
    SPLITS,
    TASKS,
    AppSuite,
    ReferenceRun,
    make_world,
    run_reference,
    task_ids,
)
from environments.apps.framework import ApiError

# Collateral damage done after the reference; the first whose change kind the scenario does not allow is used.
COLLATERAL = [
    (("music", "liked", "added"), "music", lambda s, t: s.call("music", "like_song", {
        "access_token": t, "song_id": min(set(s.db["music"]["songs"]) - set(s.db["music"]["liked"]))})),
    (("notes", "notes", "added"), "notes", lambda s, t: s.call("notes", "create_note", {
        "access_token": t, "title": "stray note"})),
]
SCENARIO = {s.id: s for s in SCENARIOS}


def _token(suite: AppSuite, app: str) -> str:
    account = suite.db["accounts"][app]
    return suite.call(app, "login", {"username": account["username"], "password": account["password"]})["access_token"]


@pytest.fixture(scope="module")
def runs() -> dict[str, ReferenceRun]:
    return {task_id: run_reference(task) for task_id, task in TASKS.items()}


def test_suite_size_splits_and_difficulties():
    suite = AppSuite(make_world(3))
    assert len(suite.app_names) >= 6 and set(ORIGINAL_APPS) <= set(suite.app_names)
    assert sum(len(suite.apps[a].api_names()) for a in suite.apps) >= 100
    scenarios = Counter(s.split for s in SCENARIOS)
    assert scenarios["train"] >= 30 and scenarios["dev"] >= 5 and scenarios["test_normal"] >= 30
    assert scenarios["test_challenge"] >= 10 and len(task_ids("test")) >= 150
    for split in SPLITS:  # every split has all three difficulty levels, recorded on its tasks
        assert {TASKS[t].difficulty for t in task_ids(split)} == {1, 2, 3}, split
    first = task_ids("train")[:len({TASKS[t].scenario_id for t in task_ids("train")})]
    assert len({TASKS[t].scenario_id for t in first}) == len(first)  # variant-major order
    for app, cls in suite.apps.items():  # every API documented, with every parameter described
        for name in cls.api_names():
            doc = suite.call("api_docs", "show_api_doc", {"app_name": app, "api_name": name})
            assert doc["description"] and all(p["description"] for p in doc["parameters"]), (app, name)


def test_old_three_app_world_is_unchanged_and_still_served():
    old, new = make_world(7, ORIGINAL_APPS), make_world(7)
    assert {k: new[k] for k in ("phone", "wallet", "music", "supervisor")} == \
        {k: old[k] for k in ("phone", "wallet", "music", "supervisor")}
    suite = AppSuite(old)
    assert suite.app_names == list(ORIGINAL_APPS) and set(suite.snapshot()) == set(ORIGINAL_APPS)
    with pytest.raises(ApiError, match="unknown app"):
        suite.call("email", "login", {"username": "x", "password": "y"})
    with pytest.raises(ValueError, match="apps must include"):
        make_world(1, ("email",))


def test_every_reference_passes_on_every_variant(runs):
    failures = {tid: [(c.name, c.detail[:200]) for c in run.checks() if not c.passed] for tid, run in runs.items()}
    assert not {tid: f for tid, f in failures.items() if f}


def test_every_api_is_used_by_a_reference_and_references_use_their_apps(runs):
    used = {call for run in runs.values() for call in run.calls}
    suite = AppSuite(make_world(0))
    every = {(app, name) for app, cls in suite.apps.items() for name in cls.api_names()}
    assert not every - used, f"APIs no reference uses: {sorted(every - used)}"
    for tid, run in runs.items():
        apps = {app for app, _ in run.calls} - {"supervisor"}
        assert apps == set(TASKS[tid].apps), tid


def test_challenge_split_needs_an_app_unseen_in_train(runs):
    def apps_of(split):
        return {app for t in task_ids(split) for app, _ in runs[t].calls} - {"supervisor"}

    train = apps_of("train")
    assert apps_of("test_normal") <= train and apps_of("dev") <= train
    unseen = set(ALL_APPS) - train
    assert unseen and all(set(TASKS[t].apps) & unseen for t in task_ids("test_challenge"))


def test_doing_nothing_fails_every_task():
    for task_id, task in TASKS.items():
        run = ReferenceRun(task)
        run.execute("apis.supervisor.complete_task()")
        assert not all(c.passed for c in run.checks()), task_id


def test_collateral_damage_fails_every_task():
    for task_id, task in TASKS.items():
        allowed = SCENARIO[task.scenario_id].changes
        kind, app, damage = next(c for c in COLLATERAL if c[0] not in allowed)
        run = run_reference(task)
        damage(run.suite, _token(run.suite, app))
        failed = {c.name for c in run.checks() if not c.passed}
        assert failed == {"no other changes"}, (task_id, failed)
