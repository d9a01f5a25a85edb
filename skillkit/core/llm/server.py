"""A small OpenAI-compatible HTTP endpoint over any backend (stdlib only, for localhost use)."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from pydantic import ValidationError

from skillkit.core.llm.base import Completion, LLMBackend, SamplingParams

MAX_BODY_BYTES = 4 * 1024 * 1024


def _sampling_from(payload: dict[str, Any]) -> SamplingParams:
    return SamplingParams(
        temperature=payload.get("temperature", 1.0), top_p=payload.get("top_p", 1.0),
        max_new_tokens=payload.get("max_tokens") or payload.get("max_completion_tokens") or 128,
        stop=payload.get("stop") or [], seed=payload.get("seed"), n=payload.get("n", 1),
    )


def _chat_choice(c: Completion, tokenizer: Any) -> dict[str, Any]:
    content = [{"token": tokenizer.decode([t]) if tokenizer else "", "logprob": lp}
               for t, lp in zip(c.token_ids, c.logprobs)]
    return {"index": c.sample_index, "message": {"role": "assistant", "content": c.text},
            "finish_reason": c.finish_reason, "logprobs": {"content": content}, "token_ids": c.token_ids}


def _text_choice(c: Completion, tokenizer: Any) -> dict[str, Any]:
    return {"index": c.sample_index, "text": c.text, "finish_reason": c.finish_reason,
            "logprobs": {"token_logprobs": c.logprobs,
                         "tokens": [tokenizer.decode([t]) if tokenizer else "" for t in c.token_ids]},
            "token_ids": c.token_ids}


def make_server(backend: LLMBackend, host: str = "127.0.0.1", port: int = 8000, model_name: str = "skillkit",
                api_key: str | None = None) -> ThreadingHTTPServer:
    """Build (not start) a threaded HTTP server; generation is serialized with a lock."""
    lock = threading.Lock()
    tokenizer = getattr(backend, "tokenizer", None)

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

        def do_GET(self) -> None:  # noqa: N802 - stdlib naming
            if self.path.rstrip("/") in ("/health", "/v1/health"):
                self._send(200, {"status": "ok"})
            elif self.path.rstrip("/") == "/v1/models":
                if self._authorized():
                    self._send(200, {"object": "list", "data": [{"id": model_name, "object": "model"}]})
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
            try:
                payload = json.loads(self.rfile.read(length) or b"{}")
                sampling = _sampling_from(payload)
                chat = route.endswith("chat/completions")
                request = payload["messages"] if chat else payload["prompt"]
                with lock:
                    completions = backend.generate([request], sampling)
            except (KeyError, ValueError, TypeError, ValidationError) as exc:
                self._error(400, f"bad request: {exc}")
                return
            make_choice = _chat_choice if chat else _text_choice
            self._send(200, {
                "id": f"cmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion" if chat else "text_completion",
                "created": int(time.time()), "model": model_name,
                "choices": [make_choice(c, tokenizer) for c in completions],
                "usage": {"prompt_tokens": len(completions[0].prompt_token_ids) if completions else 0,
                          "completion_tokens": sum(len(c.token_ids) for c in completions)},
            })

    return ThreadingHTTPServer((host, port), Handler)


def serve(backend: LLMBackend, host: str = "127.0.0.1", port: int = 8000, model_name: str = "skillkit",
          api_key: str | None = None) -> None:
    """Serve until interrupted."""
    server = make_server(backend, host, port, model_name, api_key)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
