"""A small OpenAI-compatible HTTP endpoint over any backend (stdlib only, for localhost use).

Routes: ``GET /v1/models``, ``POST /v1/chat/completions`` and ``POST /v1/completions``, answered
whole or, with ``stream: true``, as server-sent events in OpenAI's chunk format ending with
``data: [DONE]``. Answers carry the usage object (prompt, completion and total tokens); a stream
carries it in a last chunk when ``stream_options.include_usage`` is set. ``response_format``
(``json_schema`` or ``json_object``) constrains the answer where the backend supports schemas.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pydantic import ValidationError

from skillkit.core.llm.base import Completion, LLMBackend, SamplingParams, StreamUpdate

MAX_BODY_BYTES = 4 * 1024 * 1024


def _json_schema_from(response_format: Any) -> dict[str, Any] | None:
    if response_format is None:
        return None
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        if isinstance(schema, dict):
            return schema
    raise ValueError("response_format must be {type: text | json_object | json_schema (with json_schema.schema)}")


def _sampling_from(payload: dict[str, Any]) -> SamplingParams:
    return SamplingParams(
        temperature=payload.get("temperature", 1.0), top_p=payload.get("top_p", 1.0),
        max_new_tokens=payload.get("max_tokens") or payload.get("max_completion_tokens") or 128,
        stop=payload.get("stop") or [], seed=payload.get("seed"), n=payload.get("n", 1),
        json_schema=_json_schema_from(payload.get("response_format")),
    )


def _usage(completions: list[Completion]) -> dict[str, int]:
    prompt = len(completions[0].prompt_token_ids) if completions else 0
    generated = sum(len(c.token_ids) for c in completions)
    return {"prompt_tokens": prompt, "completion_tokens": generated, "total_tokens": prompt + generated}


def _token_text(tokenizer: Any, token: int) -> str:
    return tokenizer.decode([token]) if tokenizer is not None else ""


def _chat_choice(c: Completion, tokenizer: Any) -> dict[str, Any]:
    content = []
    for token, logprob in zip(c.token_ids, c.logprobs):
        text = _token_text(tokenizer, token)
        content.append({"token": text, "logprob": logprob, "bytes": list(text.encode()), "top_logprobs": []})
    return {"index": c.sample_index, "message": {"role": "assistant", "content": c.text},
            "finish_reason": c.finish_reason, "logprobs": {"content": content}, "token_ids": c.token_ids}


def _text_choice(c: Completion, tokenizer: Any) -> dict[str, Any]:
    return {"index": c.sample_index, "text": c.text, "finish_reason": c.finish_reason,
            "logprobs": {"token_logprobs": c.logprobs,
                         "tokens": [_token_text(tokenizer, t) for t in c.token_ids]},
            "token_ids": c.token_ids}


class TextDeltas:
    """Turns growing token lists into text pieces whose concatenation is the final ``Completion.text``.

    Text that could still change is held back: everything from a stop string on (the final text is
    cut there), a trailing partial UTF-8 character (decoded as U+FFFD) and the last
    ``len(longest stop string) - 1`` characters, which may begin a stop string. Without a
    tokenizer all text comes with the final update.
    """

    def __init__(self, tokenizer: Any, stops: list[str]) -> None:
        self.tokenizer = tokenizer
        self.stops = stops
        self.hold = max((len(s) for s in stops), default=1) - 1
        self.sent: list[str] = []

    def update(self, update: StreamUpdate) -> list[tuple[int, str]]:
        """The new ``(sample index, text)`` pieces this update makes safe to send."""
        while len(self.sent) < len(update.token_ids):
            self.sent.append("")
        pieces = []
        for index, tokens in enumerate(update.token_ids):
            if update.completions is not None:
                text = update.completions[index].text
            elif self.tokenizer is None:
                continue
            else:
                text = self.tokenizer.decode(tokens, skip_special_tokens=True)
                text = text[:min([text.find(s) for s in self.stops if s in text], default=len(text))]
                text = text.rstrip("\ufffd")
                text = text[:max(len(text) - self.hold, 0)]
            if len(text) > len(self.sent[index]) and text.startswith(self.sent[index]):
                pieces.append((index, text[len(self.sent[index]):]))
                self.sent[index] = text
        return pieces


def _sse_chunks(updates: Iterator[StreamUpdate], deltas: TextDeltas, chat: bool, base: dict[str, Any],
                include_usage: bool) -> Iterator[dict[str, Any]]:
    """OpenAI streaming chunks for a stream of backend updates (text pieces, then finish reasons)."""

    def chunk(index: int, text: str | None, finish: str | None) -> dict[str, Any]:
        if chat:
            delta = {"content": text} if text is not None else {}
            if text is not None and not started.get(index):
                delta["role"] = started[index] = "assistant"
            choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
        else:
            choice = {"index": index, "text": text or "", "logprobs": None, "finish_reason": finish}
        return {**base, "choices": [choice], **({"usage": None} if include_usage else {})}

    started: dict[int, str] = {}
    completions: list[Completion] = []
    for update in updates:
        for index, text in deltas.update(update):
            yield chunk(index, text, None)
        completions = update.completions or completions
    for c in completions:
        yield chunk(c.sample_index, None if started.get(c.sample_index) or not chat else "", c.finish_reason)
    if include_usage:
        yield {**base, "choices": [], "usage": _usage(completions)}


def make_server(backend: LLMBackend, host: str = "127.0.0.1", port: int = 8000, model_name: str = "skillkit",
                api_key: str | None = None) -> ThreadingHTTPServer:
    """Build (not start) a threaded HTTP server; generation is serialized with a lock."""
    lock = threading.Lock()
    tokenizer = getattr(backend, "tokenizer", None)
    created = int(time.time())

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            return

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _error(self, status: int, message: str) -> None:
            self._send(status, {"error": {"message": message, "code": status}})

        def _authorized(self) -> bool:
            if api_key and self.headers.get("Authorization") != f"Bearer {api_key}":
                self._error(401, "missing or wrong bearer token")
                return False
            return True

        def _send_events(self, events: Iterator[dict[str, Any]]) -> None:
            """Server-sent events, one per HTTP chunk (chunked transfer keeps the connection reusable)."""
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for data in _with_done(events):
                payload = f"data: {data}\n\n".encode()
                self.wfile.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")

        def do_GET(self) -> None:  # noqa: N802 - stdlib naming
            if self.path.rstrip("/") in ("/health", "/v1/health"):
                self._send(200, {"status": "ok"})
            elif self.path.rstrip("/") == "/v1/models":
                if self._authorized():
                    self._send(200, {"object": "list", "data": [
                        {"id": model_name, "object": "model", "created": created, "owned_by": "skillkit"}]})
            else:
                self._error(404, f"no route {self.path}")

        def do_POST(self) -> None:  # noqa: N802 - stdlib naming
            if not self._authorized():
                return
            route = self.path.rstrip("/")
            if route not in ("/v1/chat/completions", "/v1/completions"):
                self._error(404, f"no route {self.path}")
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                self._error(413, f"request body over {MAX_BODY_BYTES} bytes")
                return
            chat = route.endswith("chat/completions")
            base = {"id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:12]}", "created": int(time.time()),
                    "model": model_name}
            try:
                payload = json.loads(self.rfile.read(length) or b"{}")
                sampling = _sampling_from(payload)
                request = payload["messages"] if chat else payload["prompt"]
                if payload.get("stream"):
                    include_usage = bool((payload.get("stream_options") or {}).get("include_usage"))
                    with lock:
                        updates = backend.stream(request, sampling)
                        first = next(updates)  # bad requests fail here, before the 200 status is sent
                        base["object"] = "chat.completion.chunk" if chat else "text_completion"
                        self._send_events(_sse_chunks(_prepend(first, updates), TextDeltas(tokenizer, sampling.stop),
                                                      chat, base, include_usage))
                    return
                with lock:
                    completions = backend.generate([request], sampling)
            except (KeyError, ValueError, TypeError, ValidationError, AttributeError) as exc:
                self._error(400, f"bad request: {exc}")
                return
            make_choice = _chat_choice if chat else _text_choice
            self._send(200, {**base, "object": "chat.completion" if chat else "text_completion",
                             "choices": [make_choice(c, tokenizer) for c in completions],
                             "usage": _usage(completions)})

    return ThreadingHTTPServer((host, port), Handler)


def _prepend(first: StreamUpdate, rest: Iterator[StreamUpdate]) -> Iterator[StreamUpdate]:
    yield first
    yield from rest


def _with_done(events: Iterator[dict[str, Any]]) -> Iterator[str]:
    for event in events:
        yield json.dumps(event)
    yield "[DONE]"


def serve(backend: LLMBackend, host: str = "127.0.0.1", port: int = 8000, model_name: str = "skillkit",
          api_key: str | None = None, on_ready: Callable[[str], None] | None = None) -> None:
    """Serve until interrupted; ``on_ready`` gets the base URL once bound (port 0 picks a free port)."""
    server = make_server(backend, host, port, model_name, api_key)
    if on_ready is not None:
        on_ready(f"http://{host}:{server.server_address[1]}/v1")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
