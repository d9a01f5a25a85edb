"""SkillLibrary persistence: add/get/update/remove/search, atomic saves, repair and a SIGKILL crash test."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

from skillkit.core.schemas import AtomicSkill, FunctionalSkill, PlanningSkill, TrajectorySkill
from skillkit.skills.library import (
    HISTORY_FILE,
    INDEX_FILE,
    KEYS_FILE,
    MANIFEST_FILE,
    SKILLS_FILE,
    LibraryCorruptError,
    LibraryRepairWarning,
    SkillLibrary,
)

EMB = "hashing-128"


def _skills() -> list:
    return [
        PlanningSkill(name="solve-level-3", description="Plan for Sokoban level 3: push both boxes right",
                      task="level-3", plan=["push box A right; Right, Right", "push box B up; Up"], tags=["sokoban"],
                      env="sokoban"),
        FunctionalSkill(name="login-then-search", description="Log into an app and search its catalog",
                        body="1. call login\n2. call search", tools=["spotify.login", "spotify.search"],
                        tags=["apps"], env="apps"),
        AtomicSkill(name="spotify-login", description="How to call spotify.login", action="spotify.login",
                    constraints=["needs username and password"], pitfalls=["wrong password raises 401"],
                    env="apps", tags=["apps", "auth"]),
        TrajectorySkill(name="level-3-summary", description="What worked on level 3", task_id="level-3",
                        success_analysis="pushed boxes in order", mistake_analysis="pushed box into corner",
                        golden_workflow=["Right", "Right", "Up"], env="sokoban"),
    ]


def test_add_get_list_search_and_reload(tmp_path: Path) -> None:
    lib = SkillLibrary.create(tmp_path / "lib", embedder=EMB)
    for skill in _skills():
        lib.add(skill)
    assert len(lib) == 4
    assert lib.get("spotify-login").action == "spotify.login"
    assert lib.get(lib.get("spotify-login").id).name == "spotify-login"
    assert [s.name for s in lib.list(tier="atomic")] == ["spotify-login"]
    assert {s.name for s in lib.list(tags=["apps"])} == {"login-then-search", "spotify-login"}
    assert [s.name for s in lib.list(tags=["apps", "auth"])] == ["spotify-login"]
    assert {s.name for s in lib.list(env="sokoban")} == {"solve-level-3", "level-3-summary"}
    with pytest.raises(ValueError, match="unknown tier"):
        lib.list(tier="nope")
    with pytest.raises(ValueError, match="already"):
        lib.add(AtomicSkill(name="spotify-login", description="dup"))
    assert lib.unique_name("spotify-login") == "spotify-login-2"
    with pytest.raises(KeyError):
        lib.get("missing")

    hits = lib.search("spotify login password", k=2)
    assert hits[0][0].name == "spotify-login"
    assert hits[0][1] >= hits[1][1]
    hits = lib.search("spotify login password", k=5, tier="functional")
    assert [s.name for s, _ in hits] == ["login-then-search"]
    lib.save()

    files = {p.name for p in (tmp_path / "lib").iterdir()}
    assert {SKILLS_FILE, INDEX_FILE, KEYS_FILE, MANIFEST_FILE} <= files
    manifest = json.loads((tmp_path / "lib" / MANIFEST_FILE).read_text())
    assert manifest["count"] == 4 and manifest["embedding_model"] == EMB and manifest["dim"] == 128

    with warnings.catch_warnings():
        warnings.simplefilter("error", LibraryRepairWarning)  # a clean library loads without repair
        again = SkillLibrary.load(tmp_path / "lib")
    assert [s.model_dump() for s in again] == [s.model_dump() for s in lib]
    assert again.search("spotify login password", k=1)[0][0].name == "spotify-login"
    assert not again._stale  # vectors came from the cache: nothing re-encoded


def test_open_create_and_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        SkillLibrary.load(tmp_path / "none")
    lib = SkillLibrary.open(tmp_path / "lib", embedder=EMB)
    assert len(lib) == 0
    with pytest.raises(FileExistsError):
        SkillLibrary.create(tmp_path / "lib")
    assert len(SkillLibrary.open(tmp_path / "lib")) == 0
    assert lib.search("anything") == []


def test_update_history_rollback_remove(tmp_path: Path) -> None:
    lib = SkillLibrary.create(tmp_path / "lib", embedder=EMB)
    plan = lib.add(_skills()[0])
    created = plan.created_at
    changed = plan.model_copy(update={"plan": ["a new plan; Left"]})
    new = lib.update(changed)
    assert new.version == 2 and new.created_at == created and new.modified_at >= created
    lib.save()
    lib = SkillLibrary.load(tmp_path / "lib")
    assert lib.get("solve-level-3").plan == ["a new plan; Left"]
    assert [r["skill"]["version"] for r in lib.history("solve-level-3")] == [1]
    back = lib.rollback("solve-level-3")
    assert back.version == 1 and back.plan == plan.plan
    with pytest.raises(ValueError, match="no an older version|has no"):
        lib.rollback("solve-level-3")
    again = lib.rollback("solve-level-3", version=2)
    assert again.plan == ["a new plan; Left"]
    lib.remove("solve-level-3")
    lib.save()
    lib = SkillLibrary.load(tmp_path / "lib")
    assert "solve-level-3" not in lib
    restored = lib.rollback("solve-level-3")
    assert restored.name == "solve-level-3"
    lib.save()
    lib = SkillLibrary.load(tmp_path / "lib")
    assert lib.search("push both boxes right", k=1)[0][0].name == "solve-level-3"
    # an update never reuses a version number that is already in the history
    third = lib.update(lib.get("solve-level-3").model_copy(update={"task": "x"}))
    assert third.version == 3


def test_record_usage_persists(tmp_path: Path) -> None:
    lib = SkillLibrary.create(tmp_path / "lib", embedder=EMB)
    lib.add(_skills()[2])
    lib.record_usage("spotify-login", 1.0, task_id="t1")
    lib.record_usage("spotify-login", 0.0, task_id="t1")
    lib.record_usage("spotify-login", 0.5)
    again = SkillLibrary.load(tmp_path / "lib")
    skill = again.get("spotify-login")
    assert skill.n_selected == 3 and skill.reward_sum == pytest.approx(1.5)
    assert skill.task_usage["t1"].n == 2 and skill.task_usage["t1"].reward_sum == pytest.approx(1.0)
    assert skill.version == 1  # usage is not a modification


def test_corrupt_or_mismatched_index_is_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "lib"
    lib = SkillLibrary.create(path, embedder=EMB)
    for skill in _skills():
        lib.add(skill)
    lib.save()

    (path / INDEX_FILE).write_bytes(b"garbage")
    with pytest.warns(LibraryRepairWarning, match="unreadable|does not match"):
        lib = SkillLibrary.load(path)
    assert lib.search("spotify login password", k=1)[0][0].name == "spotify-login"
    lib.save()
    with warnings.catch_warnings():
        warnings.simplefilter("error", LibraryRepairWarning)
        SkillLibrary.load(path)

    # skills.jsonl edited by hand: the edited skill is re-embedded, the manifest rewritten
    lines = (path / SKILLS_FILE).read_text().splitlines()
    rec = json.loads(lines[0])
    rec["description"] = "completely different words about music playlists"
    lines[0] = json.dumps(rec)
    (path / SKILLS_FILE).write_text("\n".join(lines) + "\n")
    with pytest.warns(LibraryRepairWarning):
        lib = SkillLibrary.load(path)
    assert lib._stale == {rec["id"]}
    assert lib.reindex(save=False) == 1 and not lib._stale
    assert lib.search("music playlists", k=1)[0][0].id == rec["id"]
    lib.save()

    # another embedder: everything is re-embedded
    with pytest.warns(LibraryRepairWarning, match="embedded with"):
        lib = SkillLibrary.load(path, embedder="hashing-64")
    assert lib.search("spotify login password", k=1)[0][0].name == "spotify-login"
    lib.save()
    assert SkillLibrary.load(path).manifest()["dim"] == 64

    # a broken skills.jsonl is a clear error, not a silent loss
    (path / SKILLS_FILE).write_text('{"tier": "atomic", "name": "Bad Name"}\n')
    with pytest.raises(LibraryCorruptError, match="skills.jsonl:1"):
        SkillLibrary.load(path)


def test_precomputed_embeddings_and_search_vector(tmp_path: Path) -> None:
    lib = SkillLibrary.create(tmp_path / "lib", embedder=EMB)
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(20, 128)).astype(np.float32)
    skills = [AtomicSkill(name=f"a-{i}", description=f"skill {i}", tier="atomic") for i in range(20)]
    lib.add_embeddings(skills, vecs)
    hits = lib.search_vector(vecs[7], k=3)
    assert hits[0][0].name == "a-7" and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    assert lib.search_vector(vecs[7], k=3, min_score=0.99)[0][0].name == "a-7"
    assert len(lib.search_vector(vecs[7], k=3, min_score=0.99)) == 1
    np.testing.assert_allclose(lib.embeddings([lib.get("a-3")])[0], vecs[3] / np.linalg.norm(vecs[3]), atol=1e-5)


def test_history_tolerates_a_cut_last_line(tmp_path: Path) -> None:
    lib = SkillLibrary.create(tmp_path / "lib", embedder=EMB)
    lib.add(_skills()[2])
    lib.save()
    lib.update(lib.get("spotify-login").model_copy(update={"usage": "v2"}))
    lib.save()
    with open(tmp_path / "lib" / HISTORY_FILE, "a") as fh:
        fh.write('{"op": "modify", "skill": {"tier": "ato')  # a crash in the middle of an append
    lib = SkillLibrary.load(tmp_path / "lib")
    assert len(lib.history()) == 1
    lib.update(lib.get("spotify-login").model_copy(update={"usage": "v3"}))
    lib.save()
    lines = (tmp_path / "lib" / HISTORY_FILE).read_text().splitlines()
    assert len(lines) == 2 and all(json.loads(line) for line in lines)


WRITER = textwrap.dedent(
    """
    import builtins, random, sys, time
    import skillkit.skills.library as library_module
    from skillkit.skills.library import SkillLibrary
    from skillkit.core.schemas import PlanningSkill
    path, seed = sys.argv[1], int(sys.argv[2])

    class SlowFile:  # a slow disk: writes land in small pieces, so kills often hit a half-written file
        def __init__(self, fh):
            self.fh = fh
        def write(self, data):
            for i in range(0, len(data), 8192):
                self.fh.write(data[i:i + 8192])
                self.fh.flush()
                time.sleep(0.001)
            return len(data)
        def __getattr__(self, name):
            return getattr(self.fh, name)
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            return self.fh.__exit__(*exc)

    library_module.open = lambda *a, **k: SlowFile(builtins.open(*a, **k))
    rng = random.Random(seed)
    lib = SkillLibrary.open(path, embedder="hashing-64")
    print("ready", flush=True)
    batch = 0
    while True:
        batch += 1
        tag = f"s{seed}-b{batch}"
        for j in range(3):  # a batch of 3 skills is saved together: all or none must survive
            steps = [f"step {k} " + "x" * rng.randint(0, 300) for k in range(rng.randint(1, 6))]
            lib.add(PlanningSkill(name=f"{tag}-{j}", description=f"batch {tag} skill {j}", task=tag,
                                  plan=steps, tags=[tag], metadata={"batch_size": 3}))
        if len(lib) > 60:
            victim = rng.choice(lib.list())
            for s in lib.list(tags=victim.tags):
                lib.remove(s.name)
        if len(lib) and rng.random() < 0.5:
            s = rng.choice(lib.list())
            lib.update(s.model_copy(update={"plan": s.plan + ["more"]}))
        lib.save()
    """
)


def test_sigkill_at_random_moments_never_leaves_a_partial_library(tmp_path: Path) -> None:
    path = tmp_path / "lib"
    rng = random.Random(1234)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    kills, loads, deadline = 0, 0, time.monotonic() + 10.0
    seen_counts = set()
    while time.monotonic() < deadline or kills < 8:
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path), str(kills)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == b"ready", proc.stderr.read().decode() if proc.stderr else ""
        time.sleep(rng.uniform(0.0, 0.4))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        kills += 1
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", LibraryRepairWarning)  # repairs of the derived index are allowed
            lib = SkillLibrary.load(path)
        loads += 1
        # every line of skills.jsonl is a complete, valid skill ...
        raw = (path / SKILLS_FILE).read_text().splitlines()
        assert len(raw) == len(lib)
        # ... and every batch saved together is there completely or not at all
        batches: dict[str, int] = {}
        for skill in lib:
            batches[skill.tags[0]] = batches.get(skill.tags[0], 0) + 1
        assert all(n == 3 for n in batches.values()), batches
        seen_counts.add(lib.manifest().get("generation", 0))
        if len(lib):
            probe = rng.choice(lib.list())
            hits = lib.search(probe.to_text(), k=1)
            assert hits and hits[0][1] == pytest.approx(1.0, abs=1e-4)
        assert not list(path.glob(".*.tmp"))  # temp files of the killed writer are cleaned up
    assert kills >= 8 and loads == kills
    assert len(seen_counts) > kills // 2  # the writer committed saves between most kills
