"""The skill layer: the library and its persistence, the summarizer, tier extraction, UCB
selection, SKILL.md folders and skill impact.

It stands on :mod:`skillkit.core` and :mod:`retriever`, and knows environments only through the
protocol in :mod:`environments.base` (never an environment by name)."""
