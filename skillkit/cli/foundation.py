"""Foundation subcommands: version, doctor, models, generate, serve-llm, demo."""

from __future__ import annotations

import importlib.util
import json

import typer
from rich.table import Table

from skillkit import __version__
from skillkit.cli.common import console, friendly_errors, quiet_libraries
from skillkit.core.config import package_versions
from skillkit.core.llm.base import SamplingParams
from skillkit.core.llm.server import serve
from skillkit.core.models import KNOWN_MODELS, cache_root

models_app = typer.Typer(help="Embedded and known models.", no_args_is_help=True)


def _version_callback(value: bool) -> None:
    if value:
        console.print(f"skillkit {__version__}")
        raise typer.Exit()


def _main_callback(
    version: bool | None = typer.Option(
        None, "--version", callback=_version_callback, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Agents that learn from their own experience."""


@friendly_errors
def doctor() -> None:
    """Show what is installed: torch/CUDA, faiss (GPU?), vllm, ray, and where the embedded models are."""
    table = Table(title="skillkit doctor", show_lines=False)
    table.add_column("component")
    table.add_column("status")
    versions = package_versions()
    table.add_row("skillkit", __version__)
    table.add_row("python", versions["python"])
    try:
        import torch

        cuda = f"CUDA {torch.version.cuda}, {torch.cuda.device_count()} GPU(s)" if torch.cuda.is_available() else "no CUDA"
        table.add_row("torch", f"{torch.__version__} ({cuda})")
    except ImportError:
        table.add_row("torch", "[red]missing[/]")
    try:
        import faiss

        n_gpu = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
        table.add_row("faiss", f"{faiss.__version__} ({n_gpu} GPU(s))")
    except ImportError:
        table.add_row("faiss", "[red]missing[/]")
    for name in ("transformers", "sentence-transformers", "langgraph", "vllm", "ray", "peft", "fastapi"):
        table.add_row(name, versions.get(name) or _installed(name))
    for info in KNOWN_MODELS.values():
        where = info.location()
        table.add_row(f"model {info.name}", where or f"[red]package {info.package} missing[/]")
    table.add_row("model cache", str(cache_root()))
    console.print(table)


def _installed(name: str) -> str:
    module = name.replace("-", "_")
    return "installed" if importlib.util.find_spec(module) else "[dim]not installed[/]"


@friendly_errors
def models_list() -> None:
    """List the model names skillkit knows (any Hugging Face id or local path works too)."""
    table = Table(title="models")
    for col in ("name", "kind", "description", "files"):
        table.add_column(col)
    for info in KNOWN_MODELS.values():
        table.add_row(info.name, info.kind, info.description, info.location() or "[red]not installed[/]")
    console.print(table)


@friendly_errors
def generate(
    prompts: list[str] = typer.Argument(..., help="One or more prompts (each sent as a user chat message)."),
    model: str = typer.Option("smollm2-135m", "--model", "-m", help="Model name, local path or HF id."),
    max_new_tokens: int = typer.Option(64, help="Tokens to generate per completion."),
    temperature: float = typer.Option(0.0, help="0 = greedy."),
    top_p: float = typer.Option(1.0, help="Nucleus sampling mass."),
    n: int = typer.Option(1, help="Completions per prompt."),
    seed: int | None = typer.Option(None, help="Sampling seed."),
    raw: bool = typer.Option(False, help="Send prompts as raw text instead of a chat message."),
    as_json: bool = typer.Option(False, "--json", help="Print completions as JSON."),
) -> None:
    """Generate completions for prompts with an LLM backend, in one batch."""
    # torch and transformers load only when a command runs a model
    from skillkit.core.llm.hf import HFBackend

    quiet_libraries()
    with console.status(f"loading {model}"):
        backend = HFBackend.from_pretrained(model)
    requests = [p if raw else [{"role": "user", "content": p}] for p in prompts]
    sampling = SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p, n=n, seed=seed)
    completions = backend.generate(requests, sampling)
    if as_json:
        console.print_json(json.dumps([c.model_dump() for c in completions]))
        return
    for completion in completions:
        console.rule(f"prompt {completion.request_index} sample {completion.sample_index}")
        console.print(completion.text, highlight=False)


@friendly_errors
def serve_llm(
    model: str = typer.Option("smollm2-135m", "--model", "-m", help="Model name, local path or HF id."),
    host: str = typer.Option("127.0.0.1", help="Address to bind (localhost by default)."),
    port: int = typer.Option(8000, help="Port (0 picks a free one)."),
    api_key: str | None = typer.Option(None, envvar="SKILLKIT_API_KEY", help="Require this bearer token."),
) -> None:
    """Serve a model as an OpenAI-compatible endpoint (/v1/chat/completions, /v1/completions)."""
    # torch and transformers load only when a command runs a model
    from skillkit.core.llm.hf import HFBackend

    quiet_libraries()
    backend = HFBackend.from_pretrained(model)
    serve(backend, host=host, port=port, model_name=model, api_key=api_key,
          on_ready=lambda url: console.print(f"serving [bold]{model}[/] on {url} (Ctrl-C to stop)", soft_wrap=True))


def register(app: typer.Typer) -> None:
    """Add the foundation subcommands."""
    app.callback()(_main_callback)
    app.command()(doctor)
    app.command()(generate)
    app.command("serve-llm")(serve_llm)
    models_app.command("list")(models_list)
    app.add_typer(models_app, name="models")
