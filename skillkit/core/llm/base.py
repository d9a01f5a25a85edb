"""The one interface every stage uses to talk to a language model."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class ChatMessage(BaseModel):
    """One message of a chat: a role and its text."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str


class SchemaRequest(BaseModel):
    """A chat or prompt whose answer must be JSON valid under ``json_schema``.

    Lets one batch mix constrained and free requests; it overrides ``SamplingParams.json_schema``.
    """

    model_config = ConfigDict(extra="forbid")

    request: list[ChatMessage] | str
    json_schema: dict[str, Any]


#: A request is a chat (list of messages), a raw prompt string, or either of them with a JSON schema.
Request = list[ChatMessage] | list[dict] | str | SchemaRequest


class SamplingParams(BaseModel):
    """How to sample: ``temperature`` 0 means greedy; ``n`` completions per request.

    ``seed`` makes sampling reproducible for the same requests in the same order.
    ``json_schema`` (e.g. ``MyModel.model_json_schema()``) constrains every answer to JSON valid
    under it; an answer cut by ``max_new_tokens`` (``finish_reason="length"``) may be incomplete.
    """

    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(1.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_new_tokens: int = Field(128, ge=1)
    stop: list[str] = Field(default_factory=list)
    seed: int | None = None
    n: int = Field(1, ge=1)
    json_schema: dict[str, Any] | None = None

    @field_validator("stop", mode="before")
    @classmethod
    def _single_stop(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @property
    def greedy(self) -> bool:
        """True when decoding is argmax (temperature 0)."""
        return self.temperature == 0.0


class Completion(BaseModel):
    """One generated continuation.

    ``token_ids`` are the generated tokens (stop strings included when they ended generation,
    while ``text`` is cut before them); ``logprobs[i]`` is log p(token_ids[i]) under the model's
    own distribution (temperature 1, no top-p, no JSON-schema mask), i.e. the "old policy" log-probs a
    trainer needs.
    """

    text: str
    token_ids: list[int] = Field(default_factory=list)
    logprobs: list[float] = Field(default_factory=list)
    finish_reason: Literal["stop", "length"] = "length"
    request_index: int = 0
    sample_index: int = 0
    prompt_token_ids: list[int] = Field(default_factory=list)


def normalize_request(request: Request) -> list[ChatMessage] | str:
    """Turn a request into either a list of ``ChatMessage`` or a prompt string."""
    if isinstance(request, SchemaRequest):
        return request.request
    if isinstance(request, str):
        return request
    if isinstance(request, list):
        return [m if isinstance(m, ChatMessage) else ChatMessage(**m) for m in request]
    raise TypeError(f"a request must be a prompt string or a list of chat messages, got {type(request).__name__}")


def request_schema(request: Request, sampling: SamplingParams) -> dict[str, Any] | None:
    """The JSON schema a request's answer must follow: its own, else the sampling one, else None."""
    return request.json_schema if isinstance(request, SchemaRequest) else sampling.json_schema


@dataclass
class StreamUpdate:
    """Progress of a streamed generation: ``token_ids[s]`` are sample ``s``'s tokens so far;
    the last update also carries the finished ``completions`` (sample order)."""

    token_ids: list[list[int]]
    completions: list[Completion] | None = None


class LLMBackend(ABC):
    """Generates completions for a batch of requests.

    ``generate`` returns ``len(requests) * sampling.n`` completions, request-major: the samples of
    request ``i`` are at ``[i * n, (i + 1) * n)``.
    """

    name: str = "backend"

    @abstractmethod
    def generate(self, requests: list[Request], sampling: SamplingParams | None = None) -> list[Completion]:
        """Generate ``sampling.n`` completions for every request."""

    def stream(self, request: Request, sampling: SamplingParams | None = None) -> Iterator[StreamUpdate]:
        """Generate ``sampling.n`` completions of one request, yielding progress as it comes.

        This default yields once, at the end; backends that decode step by step override it.
        """
        completions = self.generate([request], sampling)
        yield StreamUpdate([c.token_ids for c in completions], completions)

    def complete(self, request: Request, **sampling: object) -> str:
        """Convenience: one request, one completion, its text."""
        return self.generate([request], SamplingParams(**sampling))[0].text

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (engines, sessions)."""
