"""JSON-schema constrained decoding in the HF backend (llguidance masks in the decode loop)."""

from __future__ import annotations

from typing import Literal

import pytest
import torch
from pydantic import BaseModel, Field, constr

from skillkit.core.llm.base import SamplingParams, SchemaRequest


class Cell(BaseModel):
    """A nested model: pydantic puts it under ``$defs`` and refers to it."""

    x: int = Field(ge=0, le=9)
    y: int = Field(ge=0, le=9)


class Move(BaseModel):
    """Bounded fields, so even random weights finish the object well inside the token budget."""

    action: Literal["up", "down", "left", "right"]
    target: Cell
    reason: str = Field(max_length=30)
    tags: list[constr(max_length=8)] = Field(max_length=3)
    count: int = Field(ge=0, le=500)
    done: bool


SCHEMA = Move.model_json_schema()
CHAT = [{"role": "user", "content": "Which way should the box go? Answer in JSON."}]
FREE = "A plain prompt without a chat template"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_model_answers_valid_json_next_to_a_free_request(tiny_backend, seed):
    sampling = SamplingParams(temperature=1.0, max_new_tokens=120, seed=seed)
    out = tiny_backend.generate([SchemaRequest(request=CHAT, json_schema=SCHEMA), FREE], sampling)
    constrained, free = out
    assert constrained.finish_reason == "stop"
    assert constrained.token_ids[-1] in tiny_backend.eos_ids
    Move.model_validate_json(constrained.text)
    with pytest.raises(ValueError):  # the random model on its own writes no JSON at all
        Move.model_validate_json(free.text)


def test_free_rows_are_untouched_by_a_constrained_neighbour(tiny_backend):
    sampling = SamplingParams(temperature=0, max_new_tokens=12)
    alone = tiny_backend.generate([FREE, CHAT], sampling)
    mixed = tiny_backend.generate([FREE, SchemaRequest(request=CHAT, json_schema=SCHEMA), CHAT], sampling)
    assert mixed[0].token_ids == alone[0].token_ids
    assert mixed[2].token_ids == alone[1].token_ids
    assert mixed[1].token_ids != alone[1].token_ids


def test_sampling_schema_applies_to_every_request_and_sample(tiny_backend):
    sampling = SamplingParams(temperature=1.0, max_new_tokens=120, seed=3, n=2, json_schema=SCHEMA)
    out = tiny_backend.generate([CHAT, FREE], sampling)
    assert len(out) == 4
    for completion in out:
        Move.model_validate_json(completion.text)


def test_constrained_logprobs_are_the_unmasked_model_logprobs(tiny_backend):
    completion = tiny_backend.generate(
        [SchemaRequest(request=CHAT, json_schema=SCHEMA)], SamplingParams(temperature=0, max_new_tokens=120))[0]
    ids = torch.tensor([completion.prompt_token_ids + completion.token_ids])
    with torch.no_grad():
        logits = tiny_backend.model(input_ids=ids).logits[0].float()
    start = len(completion.prompt_token_ids)
    expected = torch.log_softmax(logits[start - 1:-1], dim=-1).gather(-1, ids[0, start:, None]).squeeze(-1)
    assert torch.allclose(torch.tensor(completion.logprobs), expected, atol=1e-4)


def test_unsupported_schema_is_a_clear_error(tiny_backend):
    with pytest.raises(ValueError, match="schema"):
        tiny_backend.generate(["x"], SamplingParams(max_new_tokens=2, json_schema={"type": "no-such-type"}))


@pytest.mark.integration
def test_smollm2_answers_the_schema(smollm2_backend):
    class Plan(BaseModel):
        goal: str = Field(max_length=60)
        steps: list[constr(max_length=40)] = Field(min_length=1, max_length=3)

    chat = [{"role": "user", "content": "Plan how to push a box onto a target. Reply in JSON."}]
    out = smollm2_backend.generate(
        [SchemaRequest(request=chat, json_schema=Plan.model_json_schema())],
        SamplingParams(temperature=0, max_new_tokens=120))[0]
    plan = Plan.model_validate_json(out.text)
    assert out.finish_reason == "stop" and plan.steps
