"""Training config: named methods, renamed teacher keys converted or refused with a reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from skillkit.core.config import ConfigError
from trainer.config import load_train_config

ROOT = Path(__file__).resolve().parent.parent


def test_old_teacher_mode_keeps_its_meaning_with_a_warning():
    with pytest.warns(FutureWarning, match="sync_every: 0"):
        cfg = load_train_config(None, ["teacher.mode=frozen"])
    assert cfg.teacher_sync_every == 0
    with pytest.warns(FutureWarning, match="sync_every: 1"):
        assert load_train_config(None, ["teacher.mode=dynamic"]).teacher_sync_every == 1
    with pytest.raises(ConfigError, match="sync_every only"):
        load_train_config(None, ["teacher.mode=frozen", "teacher.sync_every=2"])


def test_ground_truth_in_skills_is_refused_and_points_to_opsd():
    with pytest.raises(ConfigError, match="method: opsd"):
        load_train_config(None, ["teacher.seed_from_expert=true"])
    with pytest.raises(ConfigError, match="method: opsd"):
        load_train_config(None, ["teacher.skills=expert"])
    with pytest.warns(FutureWarning):
        load_train_config(None, ["teacher.seed_from_expert=false"])


def test_sync_every_per_method():
    assert load_train_config(None, ["teacher.sync_every=2"]).teacher_sync_every == 2
    assert load_train_config(None, ["method=skillsd_frozen"]).teacher_sync_every == 0
    assert load_train_config(None, ["method=grpo"]).teacher_sync_every is None
    with pytest.raises(ConfigError, match="skillsd_frozen means teacher.sync_every=0"):
        load_train_config(None, ["method=skillsd_frozen", "teacher.sync_every=1"])


def test_configs_ship_no_ground_truth_outside_opsd():
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        text = path.read_text()
        assert "seed_from_expert" not in text and "mode: dynamic" not in text, path.name
        if path.name.startswith(("sokoban_", "apps_")):
            cfg = load_train_config(path)
            assert cfg.spec.ground_truth == (cfg.method == "opsd"), path.name


def test_lambda_is_sweepable_from_the_command_line():
    assert load_train_config(ROOT / "configs" / "sokoban_skillsd.yaml", ["loss.lambda_sdl=0.05"]).loss.lambda_sdl == 0.05
