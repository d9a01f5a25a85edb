"""`skillkit serve-llm` on tiny-random, driven by the official `openai` client over localhost."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time

import pytest
from pydantic import BaseModel, Field

from skillkit.core.llm.base import SamplingParams, SchemaRequest
from skillkit.core.llm.openai_compat import OpenAICompatibleBackend

openai = pytest.importorskip("openai")

CHAT = [{"role": "user", "content": "Push the box to the target."}]
PROMPT = "A plain prompt without a chat template"


@pytest.fixture(scope="module")
def server_url():
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "skillkit.cli.main", "serve-llm", "--model", "tiny-random", "--port", "0",
         "--api-key", "sekret"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    url, seen, deadline = None, [], time.monotonic() + 240
    while url is None and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        match = re.search(r"http://127\.0\.0\.1:\d+/v1", line)
        url = match.group(0) if match else None
    if url is None:
        proc.kill()
        pytest.fail("serve-llm did not start:\n" + "".join(seen[-20:]))
    yield url
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def client(server_url):
    return openai.OpenAI(base_url=server_url, api_key="sekret", max_retries=0)


def _streamed_text(stream) -> tuple[dict[int, str], dict[int, str], list]:
    texts: dict[int, str] = {}
    finish: dict[int, str] = {}
    chunks = list(stream)
    for chunk in chunks:
        for choice in chunk.choices:
            piece = choice.delta.content if hasattr(choice, "delta") else choice.text
            texts[choice.index] = texts.get(choice.index, "") + (piece or "")
            if choice.finish_reason:
                finish[choice.index] = choice.finish_reason
    return texts, finish, chunks


def test_models_list(client):
    assert [m.id for m in client.models.list()] == ["tiny-random"]


def test_wrong_key_is_refused(server_url):
    bad = openai.OpenAI(base_url=server_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_chat_answer_has_usage_and_logprobs(client):
    answer = client.chat.completions.create(model="tiny-random", messages=CHAT, temperature=0, max_tokens=12,
                                            logprobs=True)
    choice = answer.choices[0]
    assert choice.message.role == "assistant" and choice.message.content
    usage = answer.usage
    assert usage.completion_tokens == len(choice.logprobs.content) == 12
    assert usage.prompt_tokens > 5 and usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert all(entry.logprob <= 0 for entry in choice.logprobs.content)


def test_completion_with_logprobs(client):
    answer = client.completions.create(model="tiny-random", prompt=PROMPT, temperature=0, max_tokens=10, logprobs=1)
    choice = answer.choices[0]
    assert choice.text and answer.usage.completion_tokens == 10
    assert len(choice.logprobs.token_logprobs) == len(choice.logprobs.tokens) == 10
    assert "".join(choice.logprobs.tokens) == choice.text
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + 10


def test_streamed_chat_equals_the_whole_answer(client):
    args = {"model": "tiny-random", "messages": CHAT, "temperature": 0, "max_tokens": 24}
    whole = client.chat.completions.create(**args)
    texts, finish, chunks = _streamed_text(client.chat.completions.create(
        **args, stream=True, stream_options={"include_usage": True}))
    assert texts == {0: whole.choices[0].message.content}
    assert finish == {0: whole.choices[0].finish_reason}
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) > 3  # really incremental
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices == [] and chunks[-1].usage.model_dump() == whole.usage.model_dump()
    assert all(c.usage is None for c in chunks[:-1])


def test_streamed_completion_equals_the_whole_answer(client):
    args = {"model": "tiny-random", "prompt": PROMPT, "temperature": 0, "max_tokens": 24}
    whole = client.completions.create(**args)
    texts, finish, chunks = _streamed_text(client.completions.create(**args, stream=True))
    assert texts == {0: whole.choices[0].text} and finish == {0: whole.choices[0].finish_reason}
    assert all(c.usage is None for c in chunks)


def test_streamed_text_stops_where_the_whole_answer_stops(client):
    args = {"model": "tiny-random", "prompt": PROMPT, "temperature": 0, "max_tokens": 24}
    free = client.completions.create(**args).choices[0].text
    stop = free[len(free) // 2:len(free) // 2 + 3]
    whole = client.completions.create(**args, stop=[stop])
    assert whole.choices[0].finish_reason == "stop" and stop not in whole.choices[0].text
    texts, finish, _ = _streamed_text(client.completions.create(**args, stop=[stop], stream=True))
    assert texts == {0: whole.choices[0].text} and finish == {0: "stop"}


def test_streamed_samples_equal_the_whole_samples(client):
    args = {"model": "tiny-random", "messages": CHAT, "temperature": 1.0, "max_tokens": 16, "n": 3, "seed": 5}
    whole = client.chat.completions.create(**args)
    texts, _, _ = _streamed_text(client.chat.completions.create(**args, stream=True))
    assert texts == {c.index: c.message.content for c in whole.choices}
    assert len(set(texts.values())) > 1


class Move(BaseModel):
    """The answer shape asked for through response_format."""

    direction: str = Field(max_length=10)
    steps: int = Field(ge=0, le=9)


def test_response_format_json_schema(client, server_url):
    answer = client.chat.completions.create(
        model="tiny-random", messages=CHAT, temperature=1.0, seed=2, max_tokens=60,
        response_format={"type": "json_schema", "json_schema": {"name": "Move", "schema": Move.model_json_schema()}})
    Move.model_validate_json(answer.choices[0].message.content)
    remote = OpenAICompatibleBackend(model="tiny-random", base_url=server_url, api_key="sekret")
    got = remote.generate([SchemaRequest(request=PROMPT, json_schema=Move.model_json_schema())],
                          SamplingParams(temperature=1.0, seed=3, max_new_tokens=60))
    Move.model_validate_json(got[0].text)
