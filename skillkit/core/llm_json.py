"""Ask a model for JSON and never fail: batched calls, validation, retries with the error fed back.

Used by the summarizer and the skill extractor: every conversation is generated in one batch per
round; an answer that does not validate gets its validation error appended to the conversation
and is asked again (``max_retries`` times); a backend exception ends the loop for that round's
conversations. The caller decides what to do with the ones that failed (a deterministic fallback).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
logger = logging.getLogger(__name__)


@dataclass
class ModelCallStats:
    """Counters: ``requests`` sent, ``llm_ok`` answers used (``repaired`` of them needed JSON or key
    repair), ``retried`` retry requests, ``fallback`` results made without the model, backend ``errors``."""

    requests: int = 0
    llm_ok: int = 0
    repaired: int = 0
    retried: int = 0
    fallback: int = 0
    errors: int = 0

    def as_dict(self) -> dict[str, int]:
        """The counters as a dict."""
        return asdict(self)


@dataclass
class JSONAnswer(Generic[T]):
    """One conversation's outcome: the parsed value (None when it failed), the repairs made, the
    number of model answers it took, and why it failed."""

    value: T | None
    repairs: list[str]
    attempts: int
    error: str = ""


def ask_for_json(
    generate: Callable[[list[list[dict[str, str]]]], Sequence[Any]],
    conversations: list[list[dict[str, str]]],
    parse: Callable[[int, str], tuple[T, list[str]]],
    feedback: Callable[[str], str],
    max_retries: int,
    stats: ModelCallStats,
) -> list[JSONAnswer[T]]:
    """Run every conversation to a validated answer or a failure.

    ``generate`` maps a batch of conversations to completions (objects with ``.text``);
    ``parse(index, text)`` returns ``(value, repairs)`` for conversation ``index`` or raises
    ``ValueError`` with a message meant for the model;
    ``feedback`` turns that message into the next user turn.
    """
    conversations = [list(c) for c in conversations]
    answers: list[JSONAnswer[T]] = [JSONAnswer(None, [], 0, "not asked") for _ in conversations]
    pending = list(range(len(conversations)))
    while pending:
        try:
            texts: list[str | None] = [c.text for c in generate([conversations[i] for i in pending])][:len(pending)]
            texts += [None] * (len(pending) - len(texts))
        except Exception as exc:  # noqa: BLE001 - a backend failure must not end a long run
            logger.warning("model backend failed (%s: %s); falling back", type(exc).__name__, exc)
            stats.errors += 1
            texts = [None] * len(pending)
        stats.requests += len(pending)
        retry: list[int] = []
        for i, text in zip(pending, texts):
            answers[i].attempts += 1
            if text is None:
                answers[i].error = "backend error"
                continue
            try:
                value, repairs = parse(i, text)
            except ValueError as exc:
                answers[i].error = str(exc)
                if answers[i].attempts <= max_retries:
                    stats.retried += 1
                    conversations[i] += [{"role": "assistant", "content": text[:2000]},
                                         {"role": "user", "content": feedback(str(exc))}]
                    retry.append(i)
                continue
            stats.llm_ok += 1
            stats.repaired += int(bool(repairs))
            answers[i] = JSONAnswer(value, repairs, answers[i].attempts)
        pending = retry
    return answers
