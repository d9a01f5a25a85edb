"""Reranker losses, hard-negative mining and its false-negative filter, training, save/load, LLM judge."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from retriever.docs import RouterDoc
from retriever.rerank import (
    CrossEncoderReranker,
    LLMReranker,
    listwise_loss,
    pointwise_loss,
    resolve_reranker,
)
from retriever.train_reranker import (
    NegativeConfig,
    TrainConfig,
    TrainQuery,
    filter_false_negatives,
    name_to_words,
    render,
    synthesize_queries,
)


def test_listwise_loss_hand_computed():
    scores = torch.tensor([[2.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    want = (-(2.0 - math.log(math.exp(2) + math.exp(1) + 1)) + math.log(3)) / 2
    assert listwise_loss(scores).item() == pytest.approx(want, rel=1e-6)
    masked = listwise_loss(torch.tensor([[1.0, 5.0, 0.0]]), torch.tensor([[True, False, True]]))
    assert masked.item() == pytest.approx(-(1.0 - math.log(math.exp(1) + 1)), rel=1e-6)
    # the gradient pushes the positive up and the negatives down
    s = torch.zeros(1, 3, requires_grad=True)
    listwise_loss(s).backward()
    assert s.grad[0, 0] < 0 and (s.grad[0, 1:] > 0).all()


def test_pointwise_loss_hand_computed():
    scores = torch.tensor([[0.0, 0.0]])
    assert pointwise_loss(scores).item() == pytest.approx(math.log(2))
    masked = pointwise_loss(torch.tensor([[3.0, -2.0, 9.0]]), torch.tensor([[True, True, False]]))
    want = (math.log(1 + math.exp(-3)) + math.log(1 + math.exp(-2))) / 2
    assert masked.item() == pytest.approx(want, rel=1e-5)


def _doc(i, name, desc="d", body="b", cat=None):
    return RouterDoc(id=i, name=name, description=desc, body=body, category=cat)


def test_false_negative_filter():
    docs = {"p": _doc("p", "send-money", "send money"), "dup": _doc("dup", "send-money-2", "send money"),
            "same-name": _doc("sn", "send-money", "other"), "far": _doc("far", "play-music"),
            "copy": _doc("copy", "x-copy", "send money")}
    docs["copy"] = RouterDoc(id="copy", name="send-money", description="send money", body="b")
    vecs = {"p": np.array([1.0, 0.0]), "dup": np.array([0.95, math.sqrt(1 - 0.95**2)]),
            "same-name": np.array([0.0, 1.0]), "far": np.array([0.0, 1.0]), "copy": np.array([0.0, 1.0])}
    kept = filter_false_negatives("p", ["p", "dup", "same-name", "far", "copy", "far"], vecs, docs, 0.92)
    assert kept == ["far"]
    assert filter_false_negatives("p", ["dup"], vecs, docs, 0.96) == ["dup"]


def test_query_synthesis_and_views():
    doc = _doc("a", "wallet-sendMoney", "Send money to a friend", "wallet.send(x)")
    assert name_to_words(doc.name) == "wallet send money"
    queries = synthesize_queries([doc, _doc("b", "x", "too short", "")])
    assert queries == [TrainQuery("Send money to a friend", "a", "desc"), TrainQuery("wallet send money", "a", "name")]
    assert "Send money" not in render(doc, "desc") and "wallet-sendMoney" not in render(doc, "name")
    assert render(doc, "full") == doc.to_text()
    with pytest.raises(ValueError, match="unknown loss"):
        TrainConfig(loss="hinge").validate()


@pytest.mark.integration
def test_mining_training_and_save_load(minilm, tmp_path):
    from retriever.encoders import Encoder
    from retriever.router import Router
    from retriever.train_reranker import mine_negatives, train_reranker

    docs = [_doc(f"s{i}", f"{app}-{verb}", f"{verb} things in the {app} app", f"{app}.{verb}(id)", app)
            for i, (app, verb) in enumerate([(a, v) for a in ("wallet", "music", "phone") for v in ("list", "add", "remove")])]
    router = Router.from_docs(docs, encoder=Encoder(minilm))
    queries = [TrainQuery("add a song", "s4", "full")]
    neg = mine_negatives(queries, router, NegativeConfig(n_dense=2, n_bm25=1, n_category=1, n_random=1))[0]
    assert len(neg) == 5 and "s4" not in neg and len(set(neg)) == 5
    assert any(router.docs[n].category == "music" for n in neg)
    config = TrainConfig(max_steps=2, time_budget_s=None, batch_queries=2, max_length=48,
                         negatives=NegativeConfig(n_dense=2, n_bm25=1, n_category=1, n_random=1))
    reranker, stats = train_reranker(router, queries, config)
    assert stats["steps"] == 2 and stats["queries"] == 19 and stats["loss"] == "listwise"
    router.reranker = reranker
    top = router.route("add a song", k=3, method="rerank")
    assert router.last_method == "rerank" and "rerank" in router.last_timings and len(top) == 3
    reranker.save(tmp_path / "rr")
    loaded = resolve_reranker(str(tmp_path / "rr"))
    cands = list(router.docs.values())[:4]
    prior = np.linspace(0.1, 0.4, 4).astype(np.float32)
    assert np.allclose(reranker.score("add a song", cands, prior), loaded.score("add a song", cands, prior), atol=1e-5)
    assert loaded.meta["trained"] is True
    fresh = CrossEncoderReranker.from_base("minilm")
    assert not np.allclose(fresh.score("add a song", cands, prior), loaded.score("add a song", cands, prior))
    # a query longer than the pair budget (an app screen as the routing query) is cut, not an error
    screen = " ".join(f"line {i}: wallet balance and recent payments" for i in range(60))
    assert np.isfinite(loaded.score(screen, cands, prior)).all()
    # the prior is z-scored per query: any first stage's scale and shift give the same scores
    assert loaded.prior_norm == "zscore"
    assert np.allclose(loaded.score("add a song", cands, prior), loaded.score("add a song", cands, 20 * prior - 3),
                       atol=1e-4)
    # a reranker saved before the prior was normalised keeps the raw cosine it was trained on
    meta = json.loads((tmp_path / "rr" / "reranker.json").read_text())
    del meta["prior_norm"]
    (tmp_path / "rr" / "reranker.json").write_text(json.dumps(meta))
    old = resolve_reranker(str(tmp_path / "rr"))
    assert old.prior_norm == "none" and np.allclose(old.prepare_prior(prior), prior)
    with pytest.raises(ValueError, match="prior_norm"):
        CrossEncoderReranker(fresh.module, fresh.tokenizer, prior_norm="minmax")
    # prior dropout 1: every training row's prior is zero, so the prior's weight gets no gradient (it
    # moves by weight decay alone, lr * 0.01 per step); trained with the prior it moves by ~lr per step
    _, dstats = train_reranker(router, queries, replace(config, prior_dropout=1.0))
    assert abs(dstats["prior_weight"] - 1.0) < 1e-4 < 1e-3 < abs(stats["prior_weight"] - 1.0)
    with pytest.raises(ValueError, match="prior_dropout"):
        train_reranker(router, queries, replace(config, prior_dropout=1.5))


def test_llm_reranker_is_yes_minus_no(tiny_lm):
    model, tokenizer = tiny_lm
    judge = LLMReranker(model, tokenizer, batch_size=2)
    docs = [_doc("a", "play-music", "Play a song"), _doc("b", "send-money", "Send money"), _doc("c", "x-y")]
    scores = judge.score("play a song", docs)
    assert scores.shape == (3,) and np.isfinite(scores).all()
    batch = tokenizer([judge._prompt("play a song", docs[0])], return_tensors="pt")
    with torch.inference_mode():
        logits = model(**batch).logits[0, -1]
    want = torch.logsumexp(logits[judge.yes_ids], 0) - torch.logsumexp(logits[judge.no_ids], 0)
    assert scores[0] == pytest.approx(want.item(), abs=1e-3)
    with pytest.raises(ValueError, match="unknown reranker"):
        resolve_reranker("/no/such/folder")
