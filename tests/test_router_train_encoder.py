"""Fine-tuning the dense stage's bi-encoder on labelled queries: it learns them, its errors, the CLI."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
from typer.testing import CliRunner

from retriever.encoders import Encoder, default_encoder_path, get_encoder
from retriever.minibatches import MiniBatches
from retriever.router import Router
from retriever.train_encoder import EncoderTrainConfig, TrainableBiEncoder, train_encoder
from retriever.train_reranker import TrainQuery
from skillkit.cli.main import app

SKILLS = [
    {"id": "n1", "name": "notes-create-note", "description": "Write a new note in the notes app.",
     "body": "notes.create(title, text)", "category": "notes"},
    {"id": "n2", "name": "notes-search", "description": "Find notes whose text contains some words.",
     "body": "notes.search(words)", "category": "notes"},
    {"id": "c1", "name": "calendar-add-event", "description": "Put an event on the calendar at a date and time.",
     "body": "calendar.add_event(title, start, end)", "category": "calendar"},
    {"id": "s1", "name": "shopping-order-item", "description": "Buy a product from the shop and pay for it.",
     "body": "shop.add_to_cart(product_id); shop.checkout()", "category": "shopping"},
    {"id": "s2", "name": "shopping-track-order", "description": "See where a placed order is and when it arrives.",
     "body": "shop.order_status(order_id)", "category": "shopping"},
]
# two paraphrases per skill, in words the skills do not use
LABELLED = [TrainQuery(q, s) for q, s in [
    ("jot this down for later", "n1"), ("keep a memo of the door code", "n1"),
    ("where did I write the wifi password", "n2"), ("look up my recipe memo", "n2"),
    ("block Friday 3pm for the dentist", "c1"), ("remind me of Ann's party on the 5th", "c1"),
    ("get me new running shoes", "s1"), ("purchase a phone charger", "s1"),
    ("when will my parcel come", "s2"), ("has the package shipped yet", "s2")]]


def _margins(model, router) -> np.ndarray:
    """Per labelled query: cosine to its skill minus the best cosine to another skill."""
    encoder = Encoder(model)
    ids = list(router.docs)
    sims = encoder.encode([q.query for q in LABELLED]) @ encoder.encode([router.docs[i].to_text() for i in ids]).T
    pos = np.array([ids.index(q.positive) for q in LABELLED])
    own = sims[np.arange(len(pos)), pos]
    sims[np.arange(len(pos)), pos] = -np.inf
    return own - sims.max(axis=1)


@pytest.mark.integration
def test_fine_tuning_pulls_labelled_queries_to_their_skills():
    router = Router.from_docs(SKILLS)
    base = TrainableBiEncoder().model
    config = EncoderTrainConfig(epochs=6, batch_queries=4, lr=5e-5, validation_share=0.0)
    model, stats = train_encoder(router, LABELLED, config)
    assert stats["steps"] == 18 and stats["queries"] == len(LABELLED) and np.isfinite(stats["last_loss"])
    assert stats["last_loss"] < stats["first_loss"]
    before, after = _margins(base, router), _margins(model, router)
    assert after.mean() > before.mean() + 0.05 and (after > 0).sum() >= (before > 0).sum()

    # two queries of one skill share a batch: the other copy of the positive is masked, not a negative
    same_skill = [TrainQuery(q.query, "n1") for q in LABELLED[:4]]
    _, stats = train_encoder(router, same_skill, EncoderTrainConfig(max_steps=1, batch_queries=4, validation_share=0))
    assert np.isfinite(stats["last_loss"])

    _, stats = train_encoder(router, LABELLED, EncoderTrainConfig(max_steps=1, batch_queries=4, validation_share=0.3,
                                                                  synthetic=True))
    val = stats["validation"]
    assert val["queries"] == 3 and 0.0 <= val["before"] <= 1.0 and 0.0 <= val["after"] <= 1.0
    assert stats["labelled_queries"] == 7 and stats["queries"] > 7  # plus each skill's description and name


def test_fine_tuning_checks_its_input():
    router = Router.from_docs(SKILLS, encoder="hashing")
    with pytest.raises(ValueError, match="lacks, e.g. 'zz'"):
        train_encoder(router, [TrainQuery("x", "zz"), *LABELLED])
    with pytest.raises(ValueError, match="batch_queries must be >= 2"):
        train_encoder(router, LABELLED, EncoderTrainConfig(batch_queries=1))
    with pytest.raises(ValueError, match="at least 2 training queries"):
        train_encoder(router, LABELLED[:1], EncoderTrainConfig(validation_share=0.0))


@pytest.mark.integration
def test_train_encoder_command_saves_where_route_finds_it(tmp_path, monkeypatch):
    monkeypatch.setenv("SKILLKIT_CACHE", str(tmp_path / "cache"))
    library = tmp_path / "skills.jsonl"
    library.write_text("".join(json.dumps(s) + "\n" for s in SKILLS))
    queries = tmp_path / "q.jsonl"
    queries.write_text("".join(json.dumps({"query": q.query, "skill": q.positive}) + "\n" for q in LABELLED))
    runner = CliRunner()
    res = runner.invoke(app, ["router", "train-encoder", "-l", str(library), "--queries", str(queries),
                              "--max-steps", "2", "--validation", "0.2"])
    assert res.exit_code == 0, res.output
    assert "fine-tuned the encoder in 2 steps" in res.output and "Hit@1 over the library" in res.output
    folder = default_encoder_path(library)
    assert (folder / "modules.json").exists()
    assert Router.from_library(library).encoder is get_encoder(str(folder))
    res = runner.invoke(app, ["route", "-l", str(library), "-q", "buy socks", "-k", "1"])
    assert res.exit_code == 0 and f"densestage:{folder}" in "".join(res.output.split())

    queries.write_text('{"query": "buy socks", "skill": "shopping-order-item"}\nnot json\n')
    res = runner.invoke(app, ["router", "train-encoder", "-l", str(library), "--queries", str(queries)])
    assert res.exit_code == 2 and "q.jsonl:2:invalidJSON" in "".join(res.output.split())
    queries.write_text('{"query": "buy socks", "skill": "no-such-skill"}\n')
    res = runner.invoke(app, ["router", "train-encoder", "-l", str(library), "--queries", str(queries)])
    assert res.exit_code == 2 and "noskill'no-such-skill'" in "".join(res.output.split())


def test_minibatch_schedule_counts_steps_drops_short_tails_and_stops_on_time():
    schedule = MiniBatches(10, 4, epochs=3, rng=random.Random(0), min_size=2)
    batches = list(schedule)
    assert schedule.total_steps == schedule.steps == len(batches) == 9  # 4 + 4 + 2 per epoch
    for epoch in range(3):
        assert sorted(i for b in batches[3 * epoch:3 * epoch + 3] for i in b) == list(range(10))
    short = MiniBatches(9, 4, epochs=2, rng=random.Random(0), min_size=2)
    assert [len(b) for b in short] == [4, 4, 4, 4] and short.total_steps == 4  # the tail of 1 is dropped
    assert len(list(MiniBatches(10, 4, epochs=5, rng=random.Random(0), max_steps=2))) == 2
    stopped = MiniBatches(10, 4, epochs=5, rng=random.Random(0), time_budget_s=0.0)
    assert list(stopped) == [] and stopped.stopped_early
    with pytest.raises(ValueError, match="cannot fill a batch of 2"):
        MiniBatches(1, 4, epochs=1, rng=random.Random(0), min_size=2)
