"""Configs: validation errors name the key and file, overrides, run folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from skillkit.core.config import ConfigError, StrictModel, apply_overrides, create_run_dir, load_config


class Optim(StrictModel):
    lr: float = 1e-5
    betas: list[float] = [0.9, 0.999]


class Experiment(StrictModel):
    name: str = "exp"
    seed: int = 0
    optim: Optim = Optim()


def test_unknown_key_names_key_and_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\noptim:\n  lrr: 0.1\n")
    with pytest.raises(ConfigError) as exc:
        load_config(Experiment, path)
    assert "optim.lrr" in str(exc.value) and str(path) in str(exc.value)


def test_mistyped_value_is_an_error(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("seed: not-a-number\n")
    with pytest.raises(ConfigError, match="'seed'"):
        load_config(Experiment, path)


def test_overrides_are_typed_and_nested(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"name": "base"}))
    cfg = load_config(Experiment, path, ["optim.lr=0.5", "seed=3", "name=run1"])
    assert cfg.optim.lr == 0.5 and cfg.seed == 3 and cfg.name == "run1"
    with pytest.raises(ConfigError, match="key=value"):
        apply_overrides({}, ["seed"])
    with pytest.raises(ConfigError, match="optim.nope"):
        load_config(Experiment, path, ["optim.nope=1"])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(Experiment, tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n- not a mapping\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(Experiment, bad)


def test_run_dir_records_config_seed_versions(tmp_path):
    cfg = Experiment(name="demo", seed=5)
    run = create_run_dir("demo", cfg, seed=5, root=tmp_path)
    assert run.name.startswith("demo-")
    assert yaml.safe_load((run / "config.yaml").read_text())["seed"] == 5
    record = json.loads((run / "run.json").read_text())
    assert record["seed"] == 5 and "torch" in record["versions"] and "python" in record["versions"]
    assert create_run_dir("demo", cfg, root=tmp_path) != run


def test_base_files_merge_and_paths_resolve_relative_to_the_config(tmp_path, monkeypatch):
    from skillkit.core.config import ConfigPath, InputFile, StrictModel, load_config

    class Inner(StrictModel):
        data: InputFile = ""
        out: ConfigPath | None = None
        lr: float = 0.1

    class Cfg(StrictModel):
        name: str = "x"
        inner: Inner = Inner()

    folder = tmp_path / "configs"
    (folder / "bases").mkdir(parents=True)
    (folder / "levels.jsonl").write_text("{}\n")
    (folder / "bases" / "env.yaml").write_text("name: base\ninner: {lr: 0.5, data: levels.jsonl}\n")
    (folder / "method.yaml").write_text("base: bases/env.yaml\nname: method\ninner: {out: results}\n")
    monkeypatch.chdir(tmp_path)
    # a base's relative path resolves against the folder of the file that was loaded
    assert load_config(Cfg, folder / "method.yaml").inner.data == str(folder.resolve() / "levels.jsonl")
    (folder / "bases" / "env.yaml").write_text("name: base\ninner: {lr: 0.5, data: missing.jsonl}\n")
    with pytest.raises(ConfigError, match="inner.data.*file not found"):
        load_config(Cfg, folder / "method.yaml")
    cfg = load_config(Cfg, folder / "method.yaml", ["inner.data=configs/levels.jsonl"])
    assert cfg.name == "method" and cfg.inner.lr == 0.5
    assert cfg.inner.out == str(folder.resolve() / "results")  # from the file: relative to the file
    assert cfg.inner.data == str(tmp_path / "configs" / "levels.jsonl")  # from the command line: cwd
    (folder / "loop.yaml").write_text("base: loop.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(Cfg, folder / "loop.yaml")


def test_pipeline_config_runs_from_any_folder_and_checks_the_training_config_first(tmp_path, monkeypatch):
    from skillkit.pipeline import load_pipeline_config

    repo_configs = Path(__file__).resolve().parents[1] / "configs"
    monkeypatch.chdir(tmp_path)
    cfg = load_pipeline_config(repo_configs / "demo.yaml")
    assert Path(cfg.train.config) == repo_configs / "sokoban_skillsd.yaml"
    with pytest.raises(ConfigError, match="train.config.*file not found"):
        load_pipeline_config(repo_configs / "demo.yaml", ["train.config=missing.yaml"])
