"""The ``skillkit`` command line: one typer app, one module of subcommands per stage."""
