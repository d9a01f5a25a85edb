"""`skillkit evaluate` on a user's own levels (--levels) and with a LoRA adapter (--adapter), tiny model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from skillkit.cli.main import app

#: Levels the project's splits do not hold (5x5 and 6x7 rooms).
LEVELS = [
    {"id": "mine-1", "grid": "#####\n#P__#\n#_X_#\n#__O#\n#####"},
    {"id": "mine-2", "grid": "#######\n#P____#\n#_X_X_#\n#_O_O_#\n#_____#\n#######"},
]
ARGS = ["--model", "tiny-random", "--max-new-tokens", "3", "--option", "max_steps=2", "--dense-states", "8", "--json"]


def _results(output: str) -> list[dict]:
    return json.loads([line for line in output.splitlines() if line.startswith("[")][-1])


@pytest.fixture()
def levels(tmp_path):
    path = tmp_path / "levels.jsonl"
    path.write_text("".join(json.dumps(level) + "\n" for level in LEVELS))
    return path


def test_evaluate_on_own_levels(levels):
    result = CliRunner().invoke(app, ["evaluate", "--levels", str(levels), *ARGS])
    assert result.exit_code == 0, result.output
    (row,) = _results(result.output)
    assert row["label"] == "no skills" and row["env"] == "sokoban" and row["episodes"] == 2
    assert set(row["outcomes"]) == {"mine-1", "mine-2"}
    assert 0 < row["dense_states"] <= 8 and row["dense_logprob_optimal"] < 0 and "success_rate" in row["intervals"]


@pytest.mark.parametrize("line, problem", [
    ('{"id": "bad", "grid": "#####\\n#P_Q#\\n#####"}', "unknown Sokoban symbol"),
    ("not json", "not valid JSON"),
    ('{"grid": "#####"}', '"id"'),
    (json.dumps(LEVELS[0]), "duplicate level id"),
])
def test_bad_levels_file_names_the_line(tmp_path, line, problem):
    path = tmp_path / "levels.jsonl"
    path.write_text(json.dumps(LEVELS[0]) + "\n" + line + "\n")
    result = CliRunner().invoke(app, ["evaluate", "--levels", str(path), *ARGS])
    message = " ".join(result.output.split())  # rich wraps long lines
    assert result.exit_code == 2 and "levels.jsonl line 2:" in message and problem in message, message


def test_evaluate_with_lora_adapter(tmp_path, levels, tiny_adapter):
    adapter = tiny_adapter
    runner = CliRunner()
    plain = runner.invoke(app, ["evaluate", "--levels", str(levels), *ARGS])
    adapted = runner.invoke(app, ["evaluate", "--levels", str(levels), "--adapter", str(adapter), *ARGS])
    assert plain.exit_code == 0 and adapted.exit_code == 0, plain.output + adapted.output
    a, b = _results(plain.output)[0], _results(adapted.output)[0]
    assert a["dense_states"] == b["dense_states"] > 0
    assert abs(a["dense_logprob_optimal"] - b["dense_logprob_optimal"]) > 1e-3
    missing = runner.invoke(app, ["evaluate", "--levels", str(levels), "--adapter", str(tmp_path), *ARGS])
    assert missing.exit_code == 2 and "not a peft adapter folder" in " ".join(missing.output.split())


def test_merged_warm_start_is_cached_and_named_in_pipeline_configs(tmp_path, monkeypatch, tiny_adapter):
    import shutil

    import torch

    from skillkit.core.models import load_causal_lm, merged_model_dir
    from skillkit.pipeline import load_pipeline_config

    monkeypatch.setenv("SKILLKIT_CACHE", str(tmp_path / "cache"))
    adapter = Path(shutil.copytree(tiny_adapter, tmp_path / "adapter"))
    folder = Path(merged_model_dir("tiny-random", adapter))
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert merged_model_dir("tiny-random", adapter) == str(folder)                  # built once
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp
    ids = torch.tensor([[1, 2, 3, 4]])
    expected = load_causal_lm("tiny-random", device="cpu", adapter=adapter)[0](ids).logits
    torch.testing.assert_close(load_causal_lm(str(folder), device="cpu")[0](ids).logits, expected)

    config = tmp_path / "run.yaml"
    config.write_text("adapter: adapter\n")                                          # relative to the config
    assert load_pipeline_config(config).adapter == str(adapter)
    config.write_text("adapter: no-such-adapter\n")
    with pytest.raises(Exception, match="no-such-adapter"):
        load_pipeline_config(config)
