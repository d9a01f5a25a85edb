"""Sokoban: rules and rewards, action parsing, solver optimality, generator and committed splits."""

from __future__ import annotations

import itertools
import random
import time
from collections import deque

import pytest

import environments
from environments.base import VectorEnv, run_episode
from environments.sokoban import (
    ACTION_NAMES,
    Level,
    SokobanEnv,
    SolverLimitError,
    generate_level,
    generate_levels,
    load_split,
    parse_actions,
    solve,
)
from skillkit.core.schemas import Trajectory


def grid_of(env: SokobanEnv) -> str:
    return env.render()


# -- rules and rewards ------------------------------------------------------------------------------
ROOM = "#######\n#P_X_O#\n#_____#\n#######"


def test_symbols_round_trip():
    grid = "######\n#S√XO#\n#_P__#\n######".replace("P", "_")
    level = Level.from_text(grid)
    assert level.to_text() == grid
    assert level.boxes_on_target == 1 and len(level.targets) == 3


@pytest.mark.parametrize("bad, words", [
    ("####\n#PX#\n###", "row 2"), ("#P#\n#X#\n#Q#", "unknown Sokoban symbol"),
    ("#__#\n#XO#", "one player"), ("#P_#\n#_O#", "at least one box"), ("#PXX#\n#_O_#", "only 1 targets"),
])
def test_bad_grids_name_the_problem(bad, words):
    with pytest.raises(ValueError, match=words):
        Level.from_text(bad)


def test_walk_push_and_rewards():
    env = SokobanEnv.from_text(ROOM)
    obs = env.reset()
    assert obs.startswith(ROOM)
    assert "Legend" in obs and "Up, Down, Left, Right" in obs
    r = env.step("Right")  # walk
    assert r.reward == pytest.approx(-0.1) and not r.done
    assert grid_of(env).splitlines()[1] == "#_PX_O#"
    r = env.step("Right")  # push the box
    assert r.reward == pytest.approx(-0.1)
    assert grid_of(env).splitlines()[1] == "#__PXO#"
    r = env.step("Right")  # push onto the target: solved
    assert r.reward == pytest.approx(-0.1 + 1 + 10)
    assert r.done and r.info["success"] is True
    assert grid_of(env).splitlines()[1] == "#___P√#"
    with pytest.raises(RuntimeError, match="reset"):
        env.step("Up")


def test_wall_and_unpushable_box_leave_state_unchanged():
    env = SokobanEnv.from_text("######\n#PXX_#\n#O_O_#\n######")
    env.reset()
    before = grid_of(env)
    for action in ("Up", "Left", "Right"):  # wall, wall, two boxes in a row
        r = env.step(action)
        assert r.reward == pytest.approx(-0.1)
        assert grid_of(env) == before
    assert r.info["steps"] == 3


def test_box_off_target_and_target_to_target():
    env = SokobanEnv.from_text("#######\n#P√O__#\n#__XO_#\n#######")
    env.reset()
    r = env.step("Right")  # box from target onto another target
    assert r.reward == pytest.approx(-0.1)
    r = env.step("Right")  # box off target
    assert r.reward == pytest.approx(-1.1)
    assert grid_of(env).splitlines()[1] == "#_OSX_#"
    assert not r.done


def test_player_on_target_symbol():
    env = SokobanEnv.from_text("#####\n#PO_#\n#_X_#\n#_O_#\n#####")
    env.reset()
    env.step("Right")
    assert grid_of(env).splitlines()[1] == "#_S_#"
    r = env.step("Down")  # push box from (2,2) to (3,2) target: solved
    assert r.done and r.info["success"]
    assert r.reward == pytest.approx(10.9)


def test_max_steps_ends_episode_unsolved():
    env = SokobanEnv.from_text(ROOM, max_steps=3)
    env.reset()
    results = [env.step("Up") for _ in range(3)]
    assert [r.done for r in results] == [False, False, True]
    assert results[-1].info["success"] is False
    assert "Steps left: 0" in results[-1].observation


def test_invalid_action_costs_a_step_and_names_valid_actions():
    env = SokobanEnv.from_text(ROOM)
    env.reset()
    before = grid_of(env)
    r = env.step("jump over the box")
    assert r.reward == pytest.approx(-0.1) and r.info["invalid"] and r.info["steps"] == 1
    assert "Valid actions are: Up, Down, Left, Right" in r.observation
    assert grid_of(env) == before


def test_multiple_actions_per_turn_are_capped():
    env = SokobanEnv.from_text(ROOM, max_actions_per_turn=2)
    env.reset()
    r = env.step("Down || Right || Right || Right")
    assert r.info["actions"] == ["Down", "Right"] and r.info["steps"] == 2
    assert r.reward == pytest.approx(-0.2)
    r = env.step("<answer>Up || Right</answer>")  # push onto target: 1 walk + 1 push, no solve yet
    assert r.info["actions"] == ["Up", "Right"]
    assert grid_of(env).splitlines()[1] == "#__PXO#"
    r = env.step("Right || Left")  # solves on the first action; the rest is not played
    assert r.done and r.info["actions"] == ["Right"] and r.reward == pytest.approx(10.9)


@pytest.mark.parametrize("text, expected", [
    ("Up", ("Up",)), ("up", ("Up",)), ("  DOWN. ", ("Down",)), ("<answer>Left</answer>", ("Left",)),
    ("I think <answer>left</answer> then <answer>Right</answer>", ("Right",)),
    ("Up || Left||right", ("Up", "Left", "Right")), ("`Right`", ("Right",)),
])
def test_parse_valid(text, expected):
    parsed = parse_actions(text)
    assert parsed.valid and parsed.actions == expected


@pytest.mark.parametrize("text", ["", "   ", "jump", "Up Left", "Up || fly", "<answer></answer>", "north"])
def test_parse_invalid(text):
    parsed = parse_actions(text)
    assert not parsed.valid and parsed.error


# -- solver ---------------------------------------------------------------------------------------
def brute_force_length(level: Level, limit: int) -> int | None:
    """Plain BFS over every reachable state, no pruning and no heuristic."""
    start = (level.player, level.boxes)
    seen = {start}
    queue = deque([(level, 0)])
    while queue:
        cur, depth = queue.popleft()
        if cur.solved:
            return depth
        if depth >= limit:
            continue
        for action in ACTION_NAMES:
            nxt, _, _ = cur.move(action)
            key = (nxt.player, nxt.boxes)
            if key not in seen:
                seen.add(key)
                queue.append((nxt, depth + 1))
    return None


def replay(grid: str, moves: list[str]) -> bool:
    level = Level.from_text(grid)
    for move in moves:
        level, _, _ = level.move(move)
    return level.solved


def test_solver_matches_exhaustive_sequences_on_tiny_levels():
    grids = ["######\n#PX_O#\n######", "#####\n#P__#\n#_X_#\n#__O#\n#####",
             "######\n#OXP_#\n#__X_#\n#___O#\n######"]
    for grid in grids:
        plan = solve(grid)
        assert plan is not None and replay(grid, plan)
        shorter = any(replay(grid, list(seq)) for n in range(len(plan))
                      for seq in itertools.product(ACTION_NAMES, repeat=n))
        assert not shorter, grid


def test_solver_is_optimal_against_brute_force_on_random_levels():
    rng = random.Random(7)
    checked = 0
    for _ in range(60):
        size = rng.choice((5, 6))
        boxes = rng.choice((1, 2, 3)) if size == 6 else rng.choice((1, 2))
        try:
            lv = generate_level(rng, size=size, boxes=boxes)
        except RuntimeError:
            continue
        level = Level.from_text(lv.grid)
        plan = solve(level)
        assert plan is not None and replay(lv.grid, plan)
        assert len(plan) == brute_force_length(level, 60)
        checked += 1
    assert checked >= 40


HAND_GRIDS = [
    "######\n#X__O#\n#__P_#\n######",  # box in a corner: dead square
    "######\n#_XX_#\n#_P__#\n#OO__#\n######",  # boxes along the top wall, targets below
    "######\n#____#\n#_XX_#\n#_XX_#\n#POOO#\n######".replace("#POOO#", "#OOOO#").replace("#____#", "#P___#"),
    "#######\n#_____#\n#_XX__#\n#P____#\n#O_O__#\n#######",
    "#######\n#__#__#\n#_X_X_#\n#_#P#_#\n#O___O#\n#######",
    "######\n#_P__#\n#_XO_#\n######",
]


@pytest.mark.parametrize("grid", HAND_GRIDS)
def test_solver_on_hand_levels_matches_brute_force(grid):
    plan = solve(grid)
    assert (None if plan is None else len(plan)) == brute_force_length(Level.from_text(grid), 200)
    if plan is not None:
        assert replay(grid, plan)


def test_solver_trivial_cases():
    assert solve("######\n#X__O#\n#__P_#\n######") is None
    assert solve("#####\n#P√_#\n#####") == []


def test_solver_unsolvable_matches_brute_force():
    rng = random.Random(3)
    for _ in range(40):
        cells = [c for c in range(1, 4)]
        rows = ["#" * 6] + ["#" + "".join(rng.choice("____#") for _ in range(4)) + "#" for _ in cells] + ["#" * 6]
        level_rows = [list(r) for r in rows]
        free = [(r, c) for r in range(1, 4) for c in range(1, 5) if level_rows[r][c] == "_"]
        if len(free) < 5:
            continue
        picks = rng.sample(free, 5)
        for (r, c), ch in zip(picks, "PXXOO"):
            level_rows[r][c] = ch
        grid = "\n".join("".join(r) for r in level_rows)
        plan = solve(grid)
        expected = brute_force_length(Level.from_text(grid), 200)
        assert (None if plan is None else len(plan)) == expected, grid


def test_solver_speed_and_limit():
    levels = load_split("2box", "test")
    start = time.perf_counter()
    for rec in levels:
        solve(rec["grid"])
    per_level = (time.perf_counter() - start) / len(levels)
    assert per_level < 0.05
    with pytest.raises(SolverLimitError):
        solve(levels[-1]["grid"], max_states=1)


# -- generator and splits -------------------------------------------------------------------------
def test_generator_is_seeded_verified_and_respects_controls():
    a = generate_levels(10, seed=5, size=6, boxes=2, min_moves=6, max_moves=12)
    b = generate_levels(10, seed=5, size=6, boxes=2, min_moves=6, max_moves=12)
    assert [x.grid for x in a] == [x.grid for x in b]
    for lv in a:
        assert 6 <= lv.optimal_moves <= 12
        assert len(solve(lv.grid)) == lv.optimal_moves
        level = Level.from_text(lv.grid)
        assert len(level.boxes) == 2 and level.rows == level.cols == 6 and level.boxes_on_target == 0
    big = generate_levels(2, seed=1, size=7, boxes=3)
    assert all(Level.from_text(x.grid).rows == 7 for x in big)
    with pytest.raises(ValueError, match="min_moves"):
        generate_levels(1, seed=0, min_moves=9, max_moves=3)


@pytest.mark.parametrize("variant, boxes", [("2box", 2), ("1box", 1)])
def test_committed_splits_are_solvable_optimal_and_disjoint(variant, boxes):
    train, test = load_split(variant, "train"), load_split(variant, "test")
    assert (len(train), len(test)) == (96, 64)
    assert [r["optimal_moves"] for r in train] == sorted(r["optimal_moves"] for r in train)
    assert not {r["grid"] for r in train} & {r["grid"] for r in test}
    ids = [r["id"] for r in train + test]
    assert len(set(ids)) == len(ids)
    for rec in train + test:
        assert set(rec) == {"id", "grid", "size", "boxes", "optimal_moves"}
        assert rec["size"] == 6 and rec["boxes"] == boxes
        assert rec["optimal_moves"] <= 40
        plan = solve(rec["grid"])
        assert plan is not None and len(plan) == rec["optimal_moves"]


def test_env_plays_split_levels_with_expert_actions():
    env = environments.make("sokoban", variant="2box", max_steps=40)
    assert env.max_steps == 40 and "Up" in env.instructions
    tid = env.task_ids("train")[0]
    plan = env.oracle().expert_actions(tid)
    moves = iter(plan)
    traj = run_episode(env, lambda obs: next(moves), tid)
    assert isinstance(traj, Trajectory) and traj.success and traj.num_steps == len(plan)
    assert traj.total_reward == pytest.approx(-0.1 * len(plan) + 2 + 10)
    assert traj.metadata["optimal_moves"] == len(plan)
    Trajectory.model_validate_json(traj.model_dump_json())
    with pytest.raises(KeyError, match="unknown Sokoban level"):
        env.reset("nope")
    obs = env.reset(seed=11)
    assert obs.splitlines()[0] == "######"


def test_moves_to_go_starts_levels_that_many_optimal_moves_before_solved():
    full = environments.make("sokoban", variant="1box", max_steps=8)
    short = environments.make("sokoban", variant="1box", max_steps=8, moves_to_go=2)
    for tid in full.task_ids("test")[:6]:
        plan = full.oracle().expert_actions(tid)
        assert len(plan) > 2
        rest = short.oracle().expert_actions(tid)
        assert len(rest) == 2  # the same level, 2 optimal moves from solved
        traj = run_episode(short, lambda obs, moves=iter(rest): next(moves), tid)
        assert traj.success and traj.num_steps == 2 and traj.metadata["optimal_moves"] == 2
        assert short.level_grid(tid) != full.level_grid(tid)
    assert len(short.oracle().optimal_next_actions(short.reset(full.task_ids("test")[0]))) >= 1
    with pytest.raises(ValueError, match="moves_to_go"):
        SokobanEnv(variant="1box", moves_to_go=0)


def test_vector_env_steps_only_unfinished_episodes():
    envs = [SokobanEnv.from_text(ROOM), SokobanEnv.from_text(ROOM, max_steps=1)]
    vec = VectorEnv(envs)
    obs = vec.reset([None, None])
    assert len(obs) == 2
    first = vec.step(["Right", "Up"])
    assert [r.done for r in first] == [False, True]
    second = vec.step(["Right", "Up"])
    assert second[1].done and second[1].reward == 0.0 and vec.dones == [False, True]
    third = vec.step(["Right", "Up"])
    assert third[0].done and third[0].info["success"] and vec.dones == [True, True]
    with pytest.raises(ValueError, match="actions"):
        vec.step(["Up"])


def test_registry_lists_and_rejects():
    assert {"sokoban", "apps", "appworld"} <= set(environments.list_envs())
    with pytest.raises(KeyError, match="unknown environment"):
        environments.make("chess")
    with pytest.raises(ValueError, match="variant"):
        environments.make("sokoban", variant="9box")


def test_oracle_optimal_next_actions_match_brute_force():
    """Every optimal first move (not only the solver's) and nothing else, on solved/dead states too."""
    from environments.sokoban import SokobanEnv, SokobanOracle, solve
    from environments.sokoban.level import ACTION_NAMES, Level

    env = SokobanEnv(variant="1box")
    oracle = env.oracle()
    assert isinstance(oracle, SokobanOracle)
    checked = 0
    for tid in env.task_ids("test")[:6]:
        obs = env.reset(task_id=tid)
        level = Level.from_text(env.render())
        best = len(solve(level))
        expected = []
        for a in ACTION_NAMES:
            after = level.move(a)[0]
            plan = solve(after) if after != level else None
            if plan is not None and len(plan) + 1 == best:
                expected.append(a)
        assert oracle.optimal_next_actions(obs) == expected and expected
        assert oracle.expert_actions(tid)[0] in expected
        checked += 1
    assert checked == 6
    assert oracle.optimal_next_actions("#####\n#_SX#\n#####\n") == []  # box in a dead corner... no target
    solved = SokobanEnv.from_text("#####\n#P√_#\n#####")
    assert solved.oracle().optimal_next_actions(solved.reset()) == []
