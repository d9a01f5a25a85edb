"""The foundation every other package stands on: schemas, atomic file writes, config, model
loading, LLM backends, the prompt layout and asking a model for JSON.

Nothing here imports anything else of the project (checked by the import-linter contract in
``pyproject.toml``)."""
