"""skillkit: agents that learn from their own experience.

Packages: ``skillkit`` (schemas, library, summarizer, LLM backends, agent, CLI), ``environments``
(Sokoban, AppWorld-style apps), ``retriever`` (router), ``trainer`` (GRPO and Skill-SD).
"""

__version__ = "0.1.0"
