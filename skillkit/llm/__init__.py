"""LLM backends behind one interface: ``LLMBackend.generate(requests, sampling) -> list[Completion]``."""

from skillkit.llm.base import ChatMessage, Completion, LLMBackend, Request, SamplingParams
from skillkit.llm.factory import make_backend

__all__ = ["ChatMessage", "Completion", "LLMBackend", "Request", "SamplingParams", "make_backend"]
