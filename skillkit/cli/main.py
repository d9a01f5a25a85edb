"""Entry point of the ``skillkit`` command: assembles the subcommands of every stage."""

from __future__ import annotations

import typer

from skillkit.cli import env_cmd, foundation, library_cmd, pipeline_cmd, router_cmd, train_cmd

app = typer.Typer(
    name="skillkit",
    help="Agents that learn from their own experience: build skill libraries, route skills into "
    "agents, and train students with Skill-SD.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
    add_completion=False,
)

for module in (foundation, env_cmd, library_cmd, router_cmd, train_cmd, pipeline_cmd):
    module.register(app)


if __name__ == "__main__":
    app()
