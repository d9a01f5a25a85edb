"""Environment throughput: skillkit's text Sokoban vs the PyPI ``gym-sokoban`` (same run), and app-env code steps.

Measures, at 6x6 with 2 boxes:
* Sokoban env steps/s: random actions, reset when an episode ends (skillkit: text observation with
  the grid and legend; gym-sokoban: ``observation_mode="tiny_rgb_array"``, its cheapest observation);
* levels/s generated and verified: skillkit = reverse play + the minimum-move solver on every
  level (accepted when the optimal length is in the 2box split's 5-20 range); gym-sokoban = its
  ``reset`` (reverse-play generation, levels not checked for optimal length);
* app env code steps/s through the sandbox (one small API-calling code action per step);
* the same app code step on the old three-app world (phone, wallet, music) and on the full world
  (eight apps), in the same run, plus episode resets/s (world build + snapshot) of each.

gym-sokoban is optional (``pip install skillkit[bench]``); when it does not import, the table says
so and our numbers are still reported. gym-sokoban 0.0.6 imports ``pkg_resources``; when setuptools
no longer ships it, a small stand-in providing ``resource_filename`` is installed first.

    python benchmarks/env_speed.py                 # ~20 s
    python benchmarks/env_speed.py --seconds 5
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import os
import platform
import random
import sys
import time
import types
import warnings
from pathlib import Path

from environments.apps import ALL_APPS, ORIGINAL_APPS, AppsEnv, AppSuite, Sandbox, make_world, task_ids  # noqa: E402
from environments.sokoban import ACTION_NAMES, SokobanEnv, generate_level  # noqa: E402
from environments.sokoban.splits import VARIANTS  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "environments.json"


def _timed(fn, seconds: float) -> tuple[int, float]:
    """Call ``fn`` (which returns how many units it did) until ``seconds`` pass; (units, elapsed)."""
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        count += fn()
    return count, time.perf_counter() - start


def ours_steps(seconds: float) -> float:
    env = SokobanEnv(variant="2box", max_steps=40)
    rng = random.Random(0)
    ids = env.task_ids("train")
    env.reset(ids[0])

    def run() -> int:
        for _ in range(100):
            if env.step(rng.choice(ACTION_NAMES)).done:
                env.reset(rng.choice(ids))
        return 100

    n, t = _timed(run, seconds)
    return n / t


def ours_levels(seconds: float) -> float:
    spec = VARIANTS["2box"]
    rng = random.Random(1)

    def run() -> int:
        generate_level(rng, size=6, boxes=2, min_moves=spec.min_moves, max_moves=spec.max_moves)
        return 1

    n, t = _timed(run, seconds)
    return n / t


def _import_gym_sokoban() -> tuple[object | None, str]:
    """gym-sokoban's SokobanEnv class, or None and why not."""
    if importlib.util.find_spec("gym_sokoban") is None:
        return None, "gym-sokoban is not installed (pip install 'skillkit[bench]')"
    if importlib.util.find_spec("pkg_resources") is None:
        shim = types.ModuleType("pkg_resources")
        shim.resource_filename = lambda package, name: os.path.join(  # type: ignore[attr-defined]
            os.path.dirname(importlib.util.find_spec(package).origin), name)
        sys.modules["pkg_resources"] = shim
    try:
        from gym_sokoban.envs.sokoban_env import SokobanEnv as GymSokoban
    except Exception as exc:  # noqa: BLE001 - any import failure is reported, not fatal
        return None, f"gym-sokoban did not import: {type(exc).__name__}: {exc}"
    return GymSokoban, "ok"


def gym_numbers(seconds: float) -> tuple[float | None, float | None, str]:
    warnings.filterwarnings("ignore")
    cls, status = _import_gym_sokoban()
    if cls is None:
        return None, None, status
    import numpy as np

    np.random.seed(0)
    env = cls(dim_room=(6, 6), num_boxes=2, max_steps=40)

    def reset() -> int:
        while True:
            try:
                env.reset()
                return 1
            except (RuntimeError, Warning):
                continue

    reset()
    rng = random.Random(0)

    def run() -> int:
        for _ in range(100):
            _, _, done, _ = env.step(rng.randrange(1, 5), observation_mode="tiny_rgb_array")
            if done:
                reset()
        return 100

    steps, t_steps = _timed(run, seconds)
    levels, t_levels = _timed(reset, seconds)
    return steps / t_steps, levels / t_levels, status


def app_code_steps(seconds: float) -> float:
    env = AppsEnv(max_steps=10**9)
    env.reset(task_ids("train")[0])
    env.step("profile = apis.supervisor.show_profile()")

    def run() -> int:
        env.step("n = len(apis.api_docs.show_api_descriptions(app_name='phone'))\nprint(profile['email'], n)")
        return 1

    n, t = _timed(run, seconds)
    env.close()
    return n / t


WORLD_STEP = """contacts = apis.phone.search_contacts(access_token=token, page_limit=20)
songs = apis.music.search_songs(page_limit=20)
print(len(contacts), len(songs), apis.wallet.show_balance(access_token=wallet)["balance"])"""


def app_world_numbers(seconds: float, apps: tuple[str, ...]) -> tuple[float, float]:
    """(code steps/s, resets/s) on a world holding ``apps``: the same API-calling step through the
    sandbox, and building a world + suite + snapshot as ``AppsEnv.reset`` does."""
    suite = AppSuite(make_world(11, apps))
    sandbox = Sandbox(suite.call)
    accounts = suite.db["accounts"]
    sandbox.execute(f"token = apis.phone.login(username={accounts['phone']['username']!r}, "
                    f"password={accounts['phone']['password']!r})['access_token']\n"
                    f"wallet = apis.wallet.login(username={accounts['wallet']['username']!r}, "
                    f"password={accounts['wallet']['password']!r})['access_token']")

    def step() -> int:
        result = sandbox.execute(WORLD_STEP)
        assert result.error is None, result.error
        return 1

    steps, t_steps = _timed(step, seconds)
    sandbox.close()
    seeds = iter(range(10**9))

    def reset() -> int:
        AppSuite(make_world(next(seeds), apps)).snapshot()
        return 1

    resets, t_resets = _timed(reset, seconds)
    return steps / t_steps, resets / t_resets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="Measuring time per number.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    our_steps, our_levels = ours_steps(args.seconds), ours_levels(args.seconds)
    with contextlib.redirect_stdout(io.StringIO()):  # gym-sokoban prints every generation retry
        gym_steps, gym_levels, gym_status = gym_numbers(args.seconds)
    apps = app_code_steps(args.seconds)
    old_steps, old_resets = app_world_numbers(args.seconds, ORIGINAL_APPS)
    new_steps, new_resets = app_world_numbers(args.seconds, ALL_APPS)

    def ratio(ours: float, theirs: float | None) -> str:
        return f"{ours / theirs:.1f}x" if theirs else "n/a"

    rows = [
        ("Sokoban env steps/s (6x6, 2 boxes)", our_steps, gym_steps, ratio(our_steps, gym_steps), ">= 5x"),
        ("levels/s generated (+ verified for ours)", our_levels, gym_levels, ratio(our_levels, gym_levels), ">= 2x"),
        ("app env code steps/s (sandbox)", apps, None, "", ""),
    ]
    world_rows = [("app code steps/s, 3-app vs 8-app world", old_steps, new_steps, new_steps / old_steps, ">= 0.8"),
                  ("app resets/s, 3-app vs 8-app world", old_resets, new_resets, new_resets / old_resets, "")]
    header = f"{'measure':44s} {'skillkit':>10s} {'gym-sokoban':>12s} {'ratio':>7s} {'target':>7s}"
    print(header)
    print("-" * len(header))
    for name, ours, theirs, r, target in rows:
        theirs_text = f"{theirs:,.0f}" if theirs else "-"
        print(f"{name:44s} {ours:>10,.0f} {theirs_text:>12s} {r:>7s} {target:>7s}")
    print(f"gym-sokoban: {gym_status}")
    print(f"{'measure':44s} {'3 apps':>10s} {'8 apps':>12s} {'ratio':>7s} {'target':>7s}")
    for name, old, new, r, target in world_rows:
        print(f"{name:44s} {old:>10,.0f} {new:>12,.0f} {r:>7.2f} {target:>7s}")
    result = {
        "benchmark": "environments", "seconds_per_measure": args.seconds, "python": platform.python_version(),
        "cpu_count": os.cpu_count(), "gym_sokoban_status": gym_status,
        "sokoban_steps_per_s": {"skillkit": our_steps, "gym_sokoban": gym_steps,
                                "ratio": our_steps / gym_steps if gym_steps else None},
        "levels_per_s": {"skillkit_verified": our_levels, "gym_sokoban_unverified": gym_levels,
                         "ratio": our_levels / gym_levels if gym_levels else None},
        "apps_code_steps_per_s": apps,
        "apps_world_code_steps_per_s": {"original_3_apps": old_steps, "all_8_apps": new_steps,
                                         "ratio": new_steps / old_steps},
        "apps_world_resets_per_s": {"original_3_apps": old_resets, "all_8_apps": new_resets,
                                    "ratio": new_resets / old_resets},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
