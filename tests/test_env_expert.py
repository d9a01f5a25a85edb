"""Expert (scripted reference) episodes: recorded like any episode, and they succeed."""

from __future__ import annotations

import environments
from environments.base import run_expert_episode


def test_sokoban_and_apps_expert_episodes_succeed():
    sokoban = environments.make("sokoban", variant="1box")
    task = sokoban.task_ids("train")[0]
    episode = run_expert_episode(sokoban, task, response_template="<answer>{action}</answer>")
    assert episode is not None and episode.success and episode.id == f"expert-{task}"
    assert episode.num_steps == len(sokoban.oracle().expert_actions(task))
    assert episode.turns[0].action.startswith("<answer>")
    assert episode.metadata["source"] == "expert" and episode.metadata["instructions"] == sokoban.instructions
    apps = environments.make("apps")
    try:
        task = apps.task_ids("train")[0]
        episode = run_expert_episode(apps, task)
        assert episode is not None and episode.success
    finally:
        apps.close()
