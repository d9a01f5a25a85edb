"""Robust parsing of JSON written by language models.

Small models wrap JSON in code fences, add text before and after it, leave trailing commas, use
single quotes or Python literals, forget commas or quotes around keys, stop in the middle of an
object, and use slightly wrong key names. :func:`parse_json` undoes all of that with a lenient
recursive-descent parser and reports what it had to repair; :func:`normalize_keys` maps wrong keys
onto the expected ones (aliases, case, close spellings).

    >>> parse_json('Sure! ```json\\n{"a": 1, "b": [1, 2,],}\\n``` hope this helps')
    ParsedJSON(value={'a': 1, 'b': [1, 2]}, repairs=['code fence', 'trailing comma'])
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n?(.*?)(?:```|\Z)", re.DOTALL)
_QUOTES = {'"': '"', "'": "'", "\u201c": "\u201d", "\u2018": "\u2019"}
_LITERALS = {"true": True, "false": False, "null": None, "none": None, "nan": None, "undefined": None}
_NEXT_KEY = re.compile(r"\s*[\"'][^\"'\n]{1,80}[\"']\s*:")  # a missing comma before the next key
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/", "\\": "\\", '"': '"', "'": "'"}


class JSONRepairError(ValueError):
    """No JSON value could be recovered from the text."""


@dataclass
class ParsedJSON:
    """A recovered value and the list of repairs it needed (empty for valid JSON)."""

    value: Any
    repairs: list[str] = field(default_factory=list)

    @property
    def repaired(self) -> bool:
        """True when the text was not valid JSON as it stood."""
        return bool(self.repairs)


class _Lenient:
    """A forgiving JSON parser: accepts the usual mistakes of model output and records them."""

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.n = len(text)
        self.repairs: list[str] = []

    def note(self, what: str) -> None:
        if what not in self.repairs:
            self.repairs.append(what)

    def eof(self) -> bool:
        return self.i >= self.n

    def skip(self) -> None:
        s, n = self.s, self.n
        while self.i < n:
            c = s[self.i]
            if c in " \t\r\n\ufeff\u00a0":
                self.i += 1
            elif s.startswith("//", self.i) or c == "#":
                self.note("comment")
                end = s.find("\n", self.i)
                self.i = n if end < 0 else end + 1
            elif s.startswith("/*", self.i):
                self.note("comment")
                end = s.find("*/", self.i + 2)
                self.i = n if end < 0 else end + 2
            else:
                break

    def value(self, depth: int = 0) -> Any:
        if depth > 200:
            raise JSONRepairError("JSON nested too deeply")
        self.skip()
        if self.eof():
            self.note("truncated")
            return None
        c = self.s[self.i]
        if c == "{":
            return self.obj(depth)
        if c == "[":
            return self.arr(depth)
        if c in _QUOTES:
            return self.string()
        if c in "-+.0123456789":
            return self.number()
        return self.bare()

    def obj(self, depth: int) -> dict[str, Any]:
        self.i += 1
        out: dict[str, Any] = {}
        while True:
            self.skip()
            if self.eof():
                self.note("truncated")
                return out
            c = self.s[self.i]
            if c == "}":
                self.i += 1
                return out
            if c == ",":
                self.i += 1
                self.note("trailing comma" if self._next_is("}") else "extra comma")
                continue
            if c in "]":
                self.note("mismatched bracket")
                self.i += 1
                return out
            key = self.string() if c in _QUOTES else self.bare_key()
            self.skip()
            if not self.eof() and self.s[self.i] in ":=":
                self.i += 1
            else:
                self.note("missing colon")
            self.skip()
            if self.eof() or self.s[self.i] in ",}":
                self.note("truncated" if self.eof() else "missing value")
                out[str(key)] = None
            else:
                out[str(key)] = self.value(depth + 1)
            self._separator("}")

    def arr(self, depth: int) -> list[Any]:
        self.i += 1
        out: list[Any] = []
        while True:
            self.skip()
            if self.eof():
                self.note("truncated")
                return out
            c = self.s[self.i]
            if c == "]":
                self.i += 1
                return out
            if c == ",":
                self.i += 1
                self.note("trailing comma" if self._next_is("]") else "extra comma")
                continue
            if c == "}":
                self.note("mismatched bracket")
                self.i += 1
                return out
            out.append(self.value(depth + 1))
            self._separator("]")

    def _separator(self, closer: str) -> None:
        """After a member: consume one comma (noting a trailing one) or note a missing comma."""
        self.skip()
        if self.eof():
            return
        c = self.s[self.i]
        if c == ",":
            self.i += 1
            if self._next_is(closer):
                self.note("trailing comma")
        elif c not in "}]":
            self.note("missing comma")

    def _next_is(self, closer: str) -> bool:
        save = self.i
        self.skip()
        result = not self.eof() and self.s[self.i] == closer
        self.i = save
        return result

    def string(self) -> str:
        s, n = self.s, self.n
        opener = s[self.i]
        closer = _QUOTES[opener]
        if opener != '"':
            self.note("single or typographic quotes")
        self.i += 1
        out: list[str] = []
        while self.i < n:
            c = s[self.i]
            if c == "\\" and self.i + 1 < n:
                nxt = s[self.i + 1]
                if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", s[self.i + 2:self.i + 6] or ""):
                    out.append(chr(int(s[self.i + 2:self.i + 6], 16)))
                    self.i += 6
                    continue
                out.append(_ESCAPES.get(nxt, nxt))
                self.i += 2
                continue
            if c == closer or (closer == '"' and c == "\u201d"):
                # A quote followed by something that cannot follow a string is part of the text.
                j = self.i + 1
                while j < n and s[j] in " \t":
                    j += 1
                if j >= n or s[j] in ",:}]\r\n" or s.startswith("//", j) or _NEXT_KEY.match(s, j):
                    self.i += 1
                    return "".join(out)
                self.note("unescaped quote")
            elif c == "\n":
                self.note("newline in string")
            out.append(c)
            self.i += 1
        self.note("truncated")
        return "".join(out)

    def number(self) -> Any:
        match = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?").match(self.s, self.i)
        if not match:
            return self.bare()
        text = match.group(0)
        self.i = match.end()
        # "3 steps" or "1-2" are words, not numbers
        rest = self.s[self.i:self.i + 64].lstrip(" \t")
        if rest and rest[0] not in ",]}\r\n/#":
            self.i = match.start()
            return self.bare()
        if text.startswith("+") or text.startswith(".") or text.endswith("."):
            self.note("odd number")
        try:
            value = float(text)
        except ValueError:  # pragma: no cover - the regex only matches numbers
            return text
        return int(value) if re.fullmatch(r"[-+]?\d+", text) else value

    def bare(self) -> Any:
        """An unquoted word: a literal (true/True/None...) or, failing that, text up to a delimiter."""
        match = re.compile(r"[^,\]}\r\n]*").match(self.s, self.i)
        text = match.group(0) if match else ""
        self.i += len(text)
        word = text.strip()
        if word.lower() in _LITERALS:
            if word not in ("true", "false", "null"):
                self.note("python literal")
            return _LITERALS[word.lower()]
        self.note("unquoted string")
        return word

    def bare_key(self) -> str:
        match = re.compile(r"[^:=,{}\[\]\r\n]*").match(self.s, self.i)
        text = match.group(0) if match else ""
        self.i += len(text) or 1  # always advance, even on a stray character
        self.note("unquoted key")
        return text.strip()


def _strip_fence(text: str) -> tuple[str, bool]:
    """The content of the first code fence that holds a JSON object or array, if any."""
    for match in _FENCE.finditer(text):
        body = match.group(2)
        if "{" in body or "[" in body:
            return body, True
    return text, False


def parse_json(text: str, expect: type | tuple[type, ...] = (dict, list)) -> ParsedJSON:
    """Recover the first JSON value of type ``expect`` (default object or array) from model output.

    Raises :class:`JSONRepairError` when there is no ``{``/``[`` to start from.
    """
    if not isinstance(text, str):
        raise JSONRepairError(f"expected text, got {type(text).__name__}")
    repairs: list[str] = []
    body, fenced = _strip_fence(text)
    if fenced:
        repairs.append("code fence")
    wants = expect if isinstance(expect, tuple) else (expect,)
    openers = [c for c, t in (("{", dict), ("[", list)) if t in wants]
    starts = [p for p in (body.find(c) for c in openers) if p >= 0]
    if not starts:
        raise JSONRepairError("no JSON object found in the model output" if "{" in openers
                              else "no JSON array found in the model output")
    start = min(starts)
    candidate = body[start:]
    try:
        value, end = json.JSONDecoder().raw_decode(candidate)
        if body[:start].strip() or candidate[end:].strip():
            repairs.append("text around the JSON")
        return ParsedJSON(value, repairs)
    except ValueError:
        pass
    parser = _Lenient(candidate)
    value = parser.value()
    if body[:start].strip() or candidate[parser.i:].strip():
        repairs.append("text around the JSON")
    repairs.extend(r for r in parser.repairs if r not in repairs)
    if not isinstance(value, wants):
        raise JSONRepairError(f"the model output holds a {type(value).__name__}, not a JSON object")
    return ParsedJSON(value, repairs)


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
    alias (``aliases`` maps canonical alias -> expected key), or when it is a close spelling
    (difflib ratio >= ``cutoff``). Keys that match nothing are dropped (and reported). When two
    keys map to the same expected key, the first one wins.
    """
    expected = list(expected)
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
