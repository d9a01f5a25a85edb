"""LLM backends behind one interface: ``LLMBackend.generate(requests, sampling) -> list[Completion]``."""

from skillkit.core.llm.base import ChatMessage, Completion, LLMBackend, Request, SamplingParams, SchemaRequest
from skillkit.core.llm.factory import make_backend

__all__ = ["ChatMessage", "Completion", "LLMBackend", "Request", "SamplingParams", "SchemaRequest", "make_backend"]
