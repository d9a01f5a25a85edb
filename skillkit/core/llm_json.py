"""Ask a model for JSON and never fail: repair, batched calls, validation, retries with the error fed back.

Used by the summarizer and the skill extractor: every conversation is generated in one batch per
round; an answer that does not validate gets its validation error appended to the conversation
and is asked again (``max_retries`` times); a backend exception ends the loop for that round's
conversations. The caller decides what to do with the ones that failed (a deterministic fallback).

Small models wrap JSON in code fences, add text around it, leave trailing commas, use single quotes
or Python literals, forget commas or quotes and stop mid-object: :func:`parse_json_object` repairs
that with the ``json-repair`` package; :func:`normalize_keys` maps slightly wrong key names onto
the expected ones, and :func:`as_text` / :func:`as_list` coerce the values.
"""

from __future__ import annotations

import difflib
import json
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Generic, TypeVar

import json_repair

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


# ---------------------------------------------------------------------------------------------
# Reading a model's JSON
# ---------------------------------------------------------------------------------------------


def parse_json_object(text: str) -> tuple[dict[str, Any], list[str]]:
    """The JSON object in a model answer and the repairs it needed (empty for valid JSON).

    Raises ``ValueError`` with a message meant for the model when no object can be recovered.
    """
    if not isinstance(text, str):
        raise ValueError(f"expected the model's answer as text, got {type(text).__name__}")
    try:
        value, repairs = json.loads(text), []
    except ValueError:
        value, log = json_repair.loads(text, logging=True)
        repairs = ["invalid JSON repaired", *dict.fromkeys(entry["text"] for entry in log)][:6]
    if isinstance(value, list):  # several values, or an array around the object: the first object wins
        first = next((v for v in value if isinstance(v, dict)), None)
        if first is not None:
            value = first
            repairs.append("took the first JSON object")
    if not isinstance(value, dict):
        found = "no JSON" if value in ("", None) else f"a JSON {type(value).__name__}"
        raise ValueError(f"the answer holds {found}, not a JSON object; reply with one JSON object")
    return value, repairs


def _canon(key: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(key).strip().lower()).strip("_")


def normalize_keys(
    data: Mapping[str, Any],
    expected: Iterable[str],
    aliases: Mapping[str, str] | None = None,
    cutoff: float = 0.75,
) -> tuple[dict[str, Any], list[str]]:
    """Map the keys of ``data`` onto ``expected`` keys; returns (new dict, repairs made).

    A key matches when equal after lowercasing and turning separators into ``_``, when it is an
    alias (``aliases`` maps alias -> expected key), or when it is a close spelling (difflib ratio
    >= ``cutoff``). Keys that match nothing are dropped (and reported). When two keys map to the
    same expected key, the first one wins.
    """
    canon_expected = {_canon(k): k for k in expected}
    alias_map = {_canon(a): t for a, t in (aliases or {}).items()}
    out: dict[str, Any] = {}
    repairs: list[str] = []
    for key, value in data.items():
        ck = _canon(key)
        target = canon_expected.get(ck) or alias_map.get(ck)
        if target is None:
            close = difflib.get_close_matches(ck, list(canon_expected) + list(alias_map), n=1, cutoff=cutoff)
            if close:
                target = canon_expected.get(close[0]) or alias_map.get(close[0])
        if target is None:
            repairs.append(f"dropped unknown key {key!r}")
            continue
        if target != key:
            repairs.append(f"renamed key {key!r} to {target!r}")
        if target in out:
            repairs.append(f"ignored duplicate key {key!r}")
            continue
        out[target] = value
    return out, repairs


def as_text(value: Any) -> str:
    """Coerce a model-produced value to a string (lists joined by newlines, dicts as 'k: v')."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, (list, tuple)):
        return "\n".join(t for t in (as_text(v) for v in value) if t)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {as_text(v)}" for k, v in value.items())
    return str(value)


def as_list(value: Any) -> list[str]:
    """Coerce a model-produced value to a list of non-empty strings (a text is split into lines/items)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [t for t in (as_text(v) for v in value) if t]
    if isinstance(value, dict):
        return [t for t in (f"{k}: {as_text(v)}" if not str(k).isdigit() else as_text(v) for k, v in value.items()) if t]
    text = as_text(value)
    lines = [re.sub(r"^\s*(?:\d+[.)]|[-*\u2022])\s*", "", line).strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if len(lines) == 1 and ";" in lines[0] and len(lines[0]) > 80:
        lines = [part.strip() for part in lines[0].split(";") if part.strip()]
    return lines
