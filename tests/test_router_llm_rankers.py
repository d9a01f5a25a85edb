"""LLM rankers beyond the yes/no judge: query likelihood (UPR) and the judge on an OpenAI-compatible server."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest
import torch

from retriever.docs import RouterDoc
from retriever.rerank import (
    UPR_PROMPT,
    EndpointJudgeReranker,
    QueryLikelihoodReranker,
    _p_yes,
    resolve_reranker,
    zscore,
)
from skillkit.core.llm.base import Completion, LLMBackend, SamplingParams
from skillkit.core.llm.server import make_server

DOCS = [RouterDoc(id="a", name="play-music", description="Play a song or a playlist", body="music.play(id)"),
        RouterDoc(id="b", name="send-money", description="Send money to a contact", body="wallet.send(...)"),
        RouterDoc(id="c", name="cancel-event", description="Remove a meeting from the calendar")]


def _direct_likelihood(model, tokenizer, query: str, doc: RouterDoc) -> float:
    prompt = tokenizer.encode(UPR_PROMPT.format(doc=doc.to_text()), add_special_tokens=False)
    q = tokenizer.encode(" " + query, add_special_tokens=False)
    ids = torch.tensor([prompt + q])
    with torch.inference_mode():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), -1)
    return float(np.mean([logp[len(prompt) - 1 + i, t].item() for i, t in enumerate(q)]))


def test_query_likelihood_is_the_mean_token_log_prob(tiny_lm):
    model, tokenizer = tiny_lm
    # batch 2 over 3 docs of different lengths: padding must not change any score
    upr = QueryLikelihoodReranker(model, tokenizer, batch_size=2)
    scores = upr.score("play my road trip songs", DOCS)
    want = [_direct_likelihood(model, tokenizer, "play my road trip songs", d) for d in DOCS]
    assert scores == pytest.approx(want, abs=1e-4)
    prior = np.array([0.5, 0.1, 0.3], np.float32)
    assert upr.score("play my road trip songs", DOCS, prior=prior) == pytest.approx(
        zscore(np.array(want)) + zscore(prior), abs=1e-4)
    alone = QueryLikelihoodReranker(model, tokenizer, prior_weight=0.0)
    assert alone.score("play my road trip songs", DOCS, prior=prior) == pytest.approx(want, abs=1e-4)
    assert upr.score("x", []).shape == (0,)


@pytest.mark.integration
def test_query_likelihood_with_smollm2_prefers_the_matching_skill(smollm2):
    upr = QueryLikelihoodReranker(*smollm2, prior_weight=0.0)
    for query, gold in (("play my favourite playlist", 0), ("pay Sam back the money I owe", 1),
                        ("delete tomorrow's meeting from my calendar", 2)):
        assert int(np.argmax(upr.score(query, DOCS))) == gold, query


def test_p_yes_from_the_first_answer_token():
    assert _p_yes("Yes", [math.log(0.8)]) == pytest.approx(0.8)
    assert _p_yes(" no.", [math.log(0.7)]) == pytest.approx(0.3)
    assert _p_yes("yes", []) == 1.0 and _p_yes("No", []) == 0.0
    assert _p_yes("maybe", [math.log(0.9)]) == 0.5


class KeywordJudge(LLMBackend):
    """A local model stand-in behind a real HTTP server: "yes" (p 0.9) when the request's skill
    mentions the query's first word, else "no" (p 0.6). It records the prompts it was sent."""

    def __init__(self) -> None:
        self.prompts: list[str] = []

    def generate(self, requests, sampling=None):
        sampling = sampling or SamplingParams()
        out = []
        for i, request in enumerate(requests):
            text = request[-1]["content"] if isinstance(request[-1], dict) else request[-1].content
            self.prompts.append(text)
            query = text.split("Request: ")[1].split("\n")[0]
            skill = text.split("Skill: ")[1].lower()
            yes = query.split()[0].lower() in skill
            out.append(Completion(text="yes" if yes else "no", token_ids=[7], request_index=i,
                                  logprobs=[math.log(0.9 if yes else 0.6)], finish_reason="length"))
        return out


@pytest.fixture()
def judge_server():
    backend = KeywordJudge()
    server = make_server(backend, port=0, model_name="judge", api_key="sekret")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield backend, f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_endpoint_judge_scores_p_yes_over_http(judge_server, monkeypatch):
    backend, url = judge_server
    monkeypatch.setenv("OPENAI_API_KEY", "sekret")
    judge = resolve_reranker(f"openai:judge@{url}")
    assert isinstance(judge, EndpointJudgeReranker)
    scores = judge.score("send 20 dollars to Ana", DOCS)
    assert scores == pytest.approx([0.4, 0.9, 0.4])
    assert len(backend.prompts) == 3 and "send 20 dollars to Ana" in backend.prompts[1]
    assert "Send money to a contact" in backend.prompts[1]
    monkeypatch.setenv("OPENAI_API_KEY", "wrong")
    with pytest.raises(RuntimeError, match="401"):
        resolve_reranker(f"openai:judge@{url}").score("send", DOCS[:1])


@pytest.mark.parametrize("spec", ["openai:judge", "openai:@http://h/v1", "openai:m@localhost:8000"])
def test_endpoint_spec_errors_name_the_format(spec):
    with pytest.raises(ValueError, match="openai:MODEL@http"):
        resolve_reranker(spec)
