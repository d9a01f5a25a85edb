"""JSON-schema constrained decoding with llguidance: per-row allowed-token masks for a decode loop."""

from __future__ import annotations

import functools
import json
from typing import Any

import llguidance
import llguidance.hf
import torch

#: One space after ``,`` and ``:`` and no other whitespace: the layout models see most (``json.dumps``),
#: and a model cannot stall in endless whitespace. A schema's own ``x-guidance`` options win.
JSON_LAYOUT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}


#: Row b, column j: True when bit j of byte b is 0 (token forbidden).
_FORBIDDEN_BITS = ((torch.arange(256)[:, None] >> torch.arange(8)) & 1) == 0


@functools.lru_cache(maxsize=1)
def _executor() -> llguidance.LLExecutor:
    """One thread pool for every batch's mask computations."""
    return llguidance.LLExecutor()


@functools.lru_cache(maxsize=256)
def _grammar(schema_json: str) -> str:
    return llguidance.LLMatcher.grammar_from_json_schema(schema_json, defaults=JSON_LAYOUT)


_SUBSCHEMA_MAPS = ("properties", "patternProperties", "$defs", "definitions", "dependentSchemas")
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMAS = ("items", "additionalProperties", "not", "if", "then", "else", "contains", "propertyNames")


def closed_objects(schema: Any) -> Any:
    """A copy of ``schema`` where objects that do not say otherwise allow no extra keys.

    JSON Schema allows extra keys by default, and pydantic's schemas do not forbid them, so a
    model could append keys forever; a parser ignores them anyway (the same default as
    xgrammar's strict mode and OpenAI's strict structured outputs).
    """
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    for key in _SUBSCHEMA_MAPS:
        if isinstance(out.get(key), dict):
            out[key] = {name: closed_objects(sub) for name, sub in out[key].items()}
    for key in _SUBSCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [closed_objects(sub) for sub in out[key]]
    for key in _SUBSCHEMAS:
        if key in out:
            out[key] = closed_objects(out[key])
    if (out.get("type") == "object" or "properties" in out) and "additionalProperties" not in out:
        out["additionalProperties"] = False
    return out


def json_schema_grammar(schema: dict[str, Any]) -> str:
    """The llguidance grammar for a JSON schema with closed objects (cached by the schema's JSON text)."""
    try:
        return _grammar(json.dumps(closed_objects(schema)))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"not a usable JSON schema: {exc}") from None


def guidance_tokenizer(tokenizer: Any, vocab_size: int, eos_ids: set[int]) -> llguidance.LLTokenizer:
    """Wrap a fast Hugging Face tokenizer for llguidance (about a second: build once per backend).

    ``vocab_size`` is the width of the model's logits, so every mask covers every logit.
    """
    return llguidance.hf.from_tokenizer(tokenizer, n_vocab=vocab_size, eos_token=sorted(eos_ids))


class GrammarMasks:
    """The grammar state of every row of one decode batch; rows whose schema is None are free.

    Each step ``mask`` computes the allowed tokens of the live constrained rows (llguidance's
    executor, in parallel, GIL released) into one CPU bitmask, unpacks it on the logits' device and
    sets the rest to -inf; ``advance`` feeds each row its chosen token. EOS is allowed exactly
    when the row's grammar accepts, so a constrained row stops on EOS with complete JSON.
    """

    def __init__(self, tokenizer: llguidance.LLTokenizer, schemas: list[dict[str, Any] | None]) -> None:
        self.matchers: list[llguidance.LLMatcher | None] = []
        for row, schema in enumerate(schemas):
            if schema is None:
                self.matchers.append(None)
                continue
            matcher = llguidance.LLMatcher(tokenizer, json_schema_grammar(schema))
            if matcher.is_error():
                raise ValueError(f"request row {row}: JSON schema not supported: {matcher.get_error()}")
            self.matchers.append(matcher)
        self.vocab_size = tokenizer.vocab_size
        words = (self.vocab_size + 31) // 32
        self.bitmask = torch.full((len(schemas), words), -1, dtype=torch.int32)
        self._forbidden_bits: torch.Tensor | None = None

    @property
    def active(self) -> bool:
        """True when at least one row is constrained."""
        return any(m is not None for m in self.matchers)

    def mask(self, logits: torch.Tensor, alive: list[bool]) -> torch.Tensor:
        """``logits`` (rows x vocab) with the tokens the live rows' grammars forbid set to -inf."""
        live = [(m, row) for row, m in enumerate(self.matchers) if m is not None and alive[row]]
        if not live:
            return logits
        _executor().unsafe_compute_mask_ptr(
            live, self.bitmask.data_ptr(), self.bitmask.shape[1] * 4, self.bitmask.shape[0])
        if self._forbidden_bits is None or self._forbidden_bits.device != logits.device:
            self._forbidden_bits = _FORBIDDEN_BITS.to(logits.device)
        # Little-endian words: byte k of the row holds tokens 8k..8k+7, bit j for token 8k+j.
        as_bytes = self.bitmask.view(torch.uint8).to(logits.device, non_blocking=True).long()
        forbidden = self._forbidden_bits[as_bytes].view(as_bytes.shape[0], -1)
        return logits.masked_fill(forbidden[:, :logits.shape[-1]], float("-inf"))

    def advance(self, row: int, token: int) -> None:
        """Feed the chosen token to the row's grammar (no-op for free rows)."""
        matcher = self.matchers[row]
        if matcher is not None and not matcher.consume_token(token):
            raise RuntimeError(f"grammar rejected token {token} in row {row}: {matcher.get_error()}")
