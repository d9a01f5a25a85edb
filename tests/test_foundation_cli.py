"""The CLI: version, doctor, models list, generate, clean errors."""

from __future__ import annotations

from typer.testing import CliRunner

from skillkit import __version__
from skillkit.cli.main import app

runner = CliRunner()


def test_version_and_help():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output
    assert runner.invoke(app, ["--help"]).exit_code == 0


def test_doctor_and_models_list():
    doctor = runner.invoke(app, ["doctor"])
    assert doctor.exit_code == 0, doctor.output
    assert "torch" in doctor.output and "faiss" in doctor.output
    listing = runner.invoke(app, ["models", "list"])
    assert listing.exit_code == 0 and "smollm2-135m" in listing.output and "minilm" in listing.output


def test_generate_tiny_random_json():
    result = runner.invoke(app, ["generate", "--model", "tiny-random", "--max-new-tokens", "4", "--json", "hello"])
    assert result.exit_code == 0, result.output
    assert '"token_ids"' in result.output


def test_generate_unknown_model_is_one_clean_line():
    result = runner.invoke(app, ["generate", "--model", "bogus-model", "hi"])
    assert result.exit_code == 2
    assert "unknown model 'bogus-model'" in result.output
    assert "Traceback" not in result.output
