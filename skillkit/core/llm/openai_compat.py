"""Talk to any OpenAI-compatible HTTP server (hosted summarizers, `skillkit serve-llm`, vLLM's server)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from skillkit.core.llm.base import (
    Completion,
    LLMBackend,
    Request,
    SamplingParams,
    normalize_request,
    request_schema,
)


class OpenAIHTTPError(RuntimeError):
    """The server answered with an error status or an unreadable body."""


class OpenAICompatibleBackend(LLMBackend):
    """Chat requests go to ``/chat/completions``, prompt strings to ``/completions``.

    Token log-probs are requested (``logprobs``) and returned when the server provides them;
    ``token_ids`` are filled when the server returns them (skillkit's own server does).
    Transient failures (connection errors, HTTP 429/5xx) are retried with backoff. A request's
    JSON schema is sent as ``response_format`` (``json_schema``, strict).
    """

    name = "openai"

    def __init__(self, model: str, base_url: str = "http://127.0.0.1:8000/v1", api_key: str | None = None,
                 timeout: float = 120.0, max_retries: int = 3) -> None:
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        last_error: Exception | None = None
        for attempt in range(self.max_retries + 1):
            request = urllib.request.Request(self.base_url + path, data=body, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:
                    return json.loads(response.read())
            except urllib.error.HTTPError as exc:
                detail = exc.read().decode(errors="replace")[:500]
                last_error = OpenAIHTTPError(f"{self.base_url}{path}: HTTP {exc.code}: {detail}")
                if exc.code != 429 and exc.code < 500:
                    raise last_error from None
            except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError) as exc:
                last_error = OpenAIHTTPError(f"{self.base_url}{path}: {exc}")
            time.sleep(min(2 ** attempt * 0.5, 8.0))
        raise last_error  # type: ignore[misc]

    def generate(self, requests: list[Request], sampling: SamplingParams | None = None) -> list[Completion]:
        """Send one HTTP request per prompt (``n`` samples each); request-major order."""
        sampling = sampling or SamplingParams()
        completions: list[Completion] = []
        for request_index, request in enumerate(requests):
            normalized = normalize_request(request)
            payload: dict[str, Any] = {
                "model": self.model, "temperature": sampling.temperature, "top_p": sampling.top_p,
                "max_tokens": sampling.max_new_tokens, "n": sampling.n, "logprobs": True,
            }
            if sampling.stop:
                payload["stop"] = sampling.stop
            if sampling.seed is not None:
                payload["seed"] = sampling.seed
            schema = request_schema(request, sampling)
            if schema is not None:
                payload["response_format"] = {"type": "json_schema", "json_schema": {
                    "name": str(schema.get("title") or "answer"), "schema": schema, "strict": True}}
            if isinstance(normalized, str):
                payload["prompt"] = normalized
                payload["logprobs"] = 1
                data = self._post("/completions", payload)
            else:
                payload["messages"] = [m.model_dump() for m in normalized]
                data = self._post("/chat/completions", payload)
            choices = data.get("choices")
            if not isinstance(choices, list):
                raise OpenAIHTTPError(f"{self.base_url}: response has no 'choices': {str(data)[:300]}")
            for sample_index, choice in enumerate(choices):
                completions.append(_parse_choice(choice, request_index, sample_index))
        return completions


def _parse_choice(choice: dict[str, Any], request_index: int, sample_index: int) -> Completion:
    if "message" in choice:
        text = choice["message"].get("content") or ""
        entries = (choice.get("logprobs") or {}).get("content") or []
        logprobs = [float(e["logprob"]) for e in entries]
    else:
        text = choice.get("text", "")
        logprobs = [float(x) for x in ((choice.get("logprobs") or {}).get("token_logprobs") or [])]
    return Completion(
        text=text, token_ids=list(choice.get("token_ids") or []), logprobs=logprobs,
        finish_reason="stop" if choice.get("finish_reason") == "stop" else "length",
        request_index=request_index, sample_index=sample_index,
    )
