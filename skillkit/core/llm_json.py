"""Ask a model for JSON and never fail: repair, batched calls, validation, retries with the error fed back.

Used by the summarizer and the skill extractor: every conversation is generated in one batch per
round (each may carry the JSON schema its answer is held to: :func:`answer_schema`); an answer that does not validate gets its validation error appended to the conversation
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
from pydantic import BaseModel, ConfigDict, ValidationInfo, field_validator

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
    generate: Callable[[list[int], list[list[dict[str, str]]]], Sequence[Any]],
    conversations: list[list[dict[str, str]]],
    parse: Callable[[int, str], tuple[T, list[str]]],
    feedback: Callable[[str], str],
    max_retries: int,
    stats: ModelCallStats,
) -> list[JSONAnswer[T]]:
    """Run every conversation to a validated answer or a failure.

    ``generate(indices, batch)`` maps a batch of conversations (``indices`` are their positions in
    ``conversations``) to completions (objects with ``.text``);
    ``parse(index, text)`` returns ``(value, repairs)`` for conversation ``index`` or raises
    ``ValueError`` with a message meant for the model;
    ``feedback`` turns that message into the next user turn.
    """
    conversations = [list(c) for c in conversations]
    answers: list[JSONAnswer[T]] = [JSONAnswer(None, [], 0, "not asked") for _ in conversations]
    pending = list(range(len(conversations)))
    while pending:
        try:
            texts: list[str | None] = [c.text for c in generate(pending, [conversations[i] for i in pending])][:len(pending)]
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


def answer_schema(model: type[BaseModel], fields: Sequence[str], max_new_tokens: int | None = None,
                  max_items: int = 5) -> dict[str, Any]:
    """The JSON schema a model's answer is held to: ``model``'s, restricted to ``fields`` (in that
    order, which is the order they are written in, and all required).

    Nested objects (e.g. the items of a list of models) require all their properties too, as in
    OpenAI's strict structured outputs. Arrays without a ``maxItems`` of their own get ``max_items``;
    with ``max_new_tokens``, strings without a ``maxLength`` of their own get one that lets the
    largest answer the schema allows fit the budget, instead of being cut mid-object.
    """
    schema = model.model_json_schema()
    props = schema.get("properties", {})
    unknown = [f for f in fields if f not in props]
    if unknown or not fields:
        raise ValueError(f"{model.__name__} has no field(s) {unknown}; it has {', '.join(props)}")
    schema = _strict({**schema, "properties": {f: props[f] for f in fields}}, max_items)
    if max_new_tokens is not None:
        strings = _string_slots(schema, schema.get("$defs", {}))
        # about 3 characters a token, and 8 tokens of key, quotes and separators around each string
        schema = _cap_strings(schema, max(16, 3 * (max_new_tokens - 8 * strings) // max(1, strings)))
    return schema


def _strict(schema: Any, max_items: int) -> Any:
    """``schema`` with every object's properties required and uncapped arrays capped."""
    if isinstance(schema, list):
        return [_strict(s, max_items) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: v if k in _LITERAL_KEYS else _strict(v, max_items) for k, v in schema.items()}
    if isinstance(out.get("properties"), dict) and out.get("type", "object") == "object":
        out["required"] = list(out["properties"])
    if out.get("type") == "array":
        out.setdefault("maxItems", max_items)
    return out


_LITERAL_KEYS = ("default", "examples", "const", "enum", "required")


def _string_slots(schema: Any, defs: dict[str, Any]) -> int:
    """How many strings the largest answer valid under ``schema`` holds."""
    if not isinstance(schema, dict):
        return 0
    if "$ref" in schema:
        return _string_slots(defs.get(str(schema["$ref"]).rsplit("/", 1)[-1], {}), defs)
    if schema.get("type") == "string":
        return 1
    if schema.get("type") == "array":
        return int(schema.get("maxItems", 1)) * _string_slots(schema.get("items", {}), defs)
    return sum(_string_slots(sub, defs) for sub in schema.get("properties", {}).values())


def _cap_strings(schema: Any, max_chars: int) -> Any:
    if isinstance(schema, list):
        return [_cap_strings(s, max_chars) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: v if k in _LITERAL_KEYS else _cap_strings(v, max_chars) for k, v in schema.items()}
    if out.get("type") == "string":
        out.setdefault("maxLength", max_chars)
    return out


class ModelAnswer(BaseModel):
    """Base of what a model is asked to write: unknown keys are ignored, ``str`` fields take any value
    (:func:`as_text`) and ``list[str]`` fields any value (:func:`as_list`); other fields validate as usual."""

    model_config = ConfigDict(extra="ignore")

    @field_validator("*", mode="before")
    @classmethod
    def _coerce(cls, value: Any, info: ValidationInfo) -> Any:
        annotation = cls.model_fields[info.field_name].annotation if info.field_name else None
        if annotation is str:
            return as_text(value)
        if annotation == list[str]:
            return as_list(value)
        return value


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
