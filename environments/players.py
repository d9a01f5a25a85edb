"""Seeded random players: the agent that knows nothing, for experience without a model or an oracle.

``random_player(env_name, rng)`` returns a policy (observation text -> action text) for
:func:`environments.base.run_episode`. Sokoban: one to three random moves a turn. The app suite:
one to three random APIs of random apps a turn, called without arguments (as an agent that has not
read the docs tries them), sometimes ending the task. Neither looks at the task's solution.
"""

from __future__ import annotations

import random
from collections.abc import Callable


def random_player(env_name: str, rng: random.Random) -> Callable[[str], str]:
    """A random policy for environment ``env_name`` ("sokoban" or "apps") drawing from ``rng``."""
    if env_name == "sokoban":
        from environments.sokoban.level import ACTION_NAMES

        return lambda _obs: " || ".join(rng.choice(ACTION_NAMES) for _ in range(rng.randint(1, 3)))
    if env_name == "apps":
        from environments.apps.world import APP_CLASSES

        apis = [(app, api) for app, cls in sorted(APP_CLASSES.items()) for api in cls.api_names()]

        def act(_obs: str) -> str:
            calls = [f"print(apis.{app}.{api}())" for app, api in (rng.choice(apis) for _ in range(rng.randint(1, 3)))]
            if rng.random() < 0.3:
                calls.append("apis.supervisor.complete_task()")
            return "```python\n" + "\n".join(calls) + "\n```"

        return act
    raise ValueError(f"no random player for environment {env_name!r}: use sokoban or apps")
