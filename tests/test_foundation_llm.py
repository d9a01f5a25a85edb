"""HF backend: batching, seeding, log-probs, stop strings; the HTTP backend against a local server."""

from __future__ import annotations

import threading

import pytest
import torch

from skillkit.core.llm.base import SamplingParams
from skillkit.core.llm.hf import HFBackend, render_prompt, top_p_filter
from skillkit.core.llm.openai_compat import OpenAICompatibleBackend, OpenAIHTTPError
from skillkit.core.llm.server import make_server

PROMPTS = [
    [{"role": "user", "content": "Push the box to the target."}],
    [{"role": "system", "content": "You play Sokoban."}, {"role": "user", "content": "Move left."}],
    "A plain prompt without a chat template",
    [{"role": "user", "content": "hi"}],
]


def test_greedy_batch_equals_one_by_one(tiny_backend):
    sampling = SamplingParams(temperature=0, max_new_tokens=12)
    batched = tiny_backend.generate(PROMPTS, sampling)
    single = [tiny_backend.generate([p], sampling)[0] for p in PROMPTS]
    assert [c.token_ids for c in batched] == [c.token_ids for c in single]
    assert [c.request_index for c in batched] == [0, 1, 2, 3]


def test_seeded_sampling_is_reproducible_and_n_samples(tiny_backend):
    sampling = SamplingParams(temperature=1.0, top_p=0.9, max_new_tokens=8, seed=7, n=3)
    first = tiny_backend.generate(PROMPTS[:2], sampling)
    second = tiny_backend.generate(PROMPTS[:2], sampling)
    assert [c.token_ids for c in first] == [c.token_ids for c in second]
    assert [(c.request_index, c.sample_index) for c in first] == [(i, s) for i in range(2) for s in range(3)]
    other = tiny_backend.generate(PROMPTS[:2], sampling.model_copy(update={"seed": 8}))
    assert [c.token_ids for c in other] != [c.token_ids for c in first]


def test_logprobs_match_a_separate_forward_pass(tiny_backend):
    model = tiny_backend.model
    completions = tiny_backend.generate(PROMPTS, SamplingParams(temperature=1.0, max_new_tokens=10, seed=1))
    for c in completions:
        assert len(c.logprobs) == len(c.token_ids) > 0
        ids = torch.tensor([c.prompt_token_ids + c.token_ids])
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0].float()
        start = len(c.prompt_token_ids)
        expected = torch.log_softmax(logits[start - 1:-1], dim=-1).gather(-1, ids[0, start:, None]).squeeze(-1)
        assert torch.allclose(torch.tensor(c.logprobs), expected, atol=1e-4)


def test_stop_strings_cut_the_text(tiny_backend):
    free = tiny_backend.generate([PROMPTS[0]], SamplingParams(temperature=0, max_new_tokens=16))[0]
    assert len(free.text) > 3
    stop = free.text[2:4]
    cut = tiny_backend.generate([PROMPTS[0]], SamplingParams(temperature=0, max_new_tokens=16, stop=[stop]))[0]
    assert cut.finish_reason == "stop"
    assert stop not in cut.text and free.text.startswith(cut.text)


def test_top_p_keeps_the_smallest_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    kept = torch.isfinite(top_p_filter(logits, 0.7))
    assert kept.tolist() == [[True, True, False, False]]
    assert torch.isfinite(top_p_filter(logits, 1.0)).all()


def test_sampling_params_validation():
    with pytest.raises(ValueError):
        SamplingParams(temperature=-1)
    with pytest.raises(ValueError):
        SamplingParams(bogus=1)
    assert SamplingParams(stop="###").stop == ["###"]


@pytest.fixture()
def local_server(tiny_backend):
    server = make_server(tiny_backend, port=0, model_name="tiny", api_key="sekret")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_http_backend_matches_local_backend(tiny_backend, local_server):
    remote = OpenAICompatibleBackend(model="tiny", base_url=local_server, api_key="sekret")
    sampling = SamplingParams(temperature=0, max_new_tokens=8, n=2)
    got = remote.generate(PROMPTS, sampling)
    want = tiny_backend.generate(PROMPTS, sampling)
    assert [c.text for c in got] == [c.text for c in want]
    assert [c.token_ids for c in got] == [c.token_ids for c in want]
    assert all(len(c.logprobs) == len(c.token_ids) for c in got)


def test_http_backend_auth_error_is_clear(local_server):
    remote = OpenAICompatibleBackend(model="tiny", base_url=local_server, api_key="wrong", max_retries=0)
    with pytest.raises(OpenAIHTTPError, match="401"):
        remote.generate(["hi"], SamplingParams(max_new_tokens=2))


def test_backend_from_pretrained_tiny():
    """complete() is greedy generation: the same tokens as a plain greedy decode of the prompt's ids."""
    import torch

    backend = HFBackend.from_pretrained("tiny-random", device="cpu")
    text = backend.complete("hello", temperature=0, max_new_tokens=3)
    (completion,) = backend.generate(["hello"], SamplingParams(temperature=0, max_new_tokens=3))
    assert isinstance(text, str) and text == completion.text and len(completion.token_ids) == 3
    ids = backend.tokenizer(render_prompt(backend.tokenizer, "hello"), add_special_tokens=False,
                            return_tensors="pt")["input_ids"]
    with torch.no_grad():
        for token in completion.token_ids:
            assert int(backend.model(ids).logits[0, -1].argmax()) == token
            ids = torch.cat([ids, torch.tensor([[token]])], dim=1)


def test_stream_grows_step_by_step_to_the_generated_completions(tiny_backend):
    sampling = SamplingParams(temperature=1.0, max_new_tokens=10, seed=4, n=3)
    updates = list(tiny_backend.stream(PROMPTS[1], sampling))
    final = updates[-1].completions
    assert final is not None and all(u.completions is None for u in updates[:-1])
    want = tiny_backend.generate([PROMPTS[1]], sampling)
    assert [c.token_ids for c in final] == [c.token_ids for c in want]
    assert [c.sample_index for c in final] == [0, 1, 2]
    assert [len(t) for t in updates[0].token_ids] == [1, 1, 1] and len(updates) > 5
    for before, after in zip(updates, updates[1:]):
        assert all(a[:len(b)] == b for b, a in zip(before.token_ids, after.token_ids))
