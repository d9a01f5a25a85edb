"""LLM backends behind one interface: ``LLMBackend.generate(requests, sampling) -> list[Completion]``."""

from skillkit.core.llm.base import ChatMessage, Completion, LLMBackend, Request, SamplingParams
from skillkit.core.llm.factory import make_backend

__all__ = ["ChatMessage", "Completion", "LLMBackend", "Request", "SamplingParams", "make_backend"]
