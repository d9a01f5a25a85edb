"""Fine-tuning the dense stage's bi-encoder on labelled queries: it learns them, its errors, the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from retriever.encoders import Encoder, default_encoder_path, get_encoder
from retriever.router import Router
from retriever.train_encoder import EncoderTrainConfig, TrainableBiEncoder, train_encoder
from retriever.train_reranker import TrainQuery
from skillkit.cli.main import app

SKILLS = [
    {"id": "w1", "name": "wallet-send-money", "description": "Transfer money to a contact with the wallet app.",
     "body": "wallet.send_money(receiver_email, amount)", "category": "wallet"},
    {"id": "w2", "name": "wallet-show-balance", "description": "Read how much money is in the wallet.",
     "body": "wallet.show_balance()", "category": "wallet"},
    {"id": "m1", "name": "music-play-playlist", "description": "Play one of the user's saved playlists.",
     "body": "music.play_music(playlist_id)", "category": "music"},
    {"id": "p1", "name": "phone-send-text", "description": "Send an SMS text message to a contact.",
     "body": "phone.send_text_message(phone_number, message)", "category": "phone"},
    {"id": "p2", "name": "phone-plan-call", "description": "Plan a phone call with a friend this week.",
     "body": "1. find the contact 2. check the call log 3. call", "category": "phone"},
]
# two paraphrases per skill, in words the skills do not use
LABELLED = [TrainQuery(q, s) for q, s in [
    ("pay my landlord", "w1"), ("wire cash to Ann", "w1"), ("am I broke", "w2"), ("what are my funds", "w2"),
    ("put on some tunes", "m1"), ("start my road trip mix", "m1"), ("ping Joe on his mobile", "p1"),
    ("drop mom a quick line", "p1"), ("schedule a ring with Sam", "p2"), ("arrange to talk to dad", "p2")]]


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
    same_skill = [TrainQuery(q.query, "w1") for q in LABELLED[:4]]
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

    queries.write_text('{"query": "pay rent", "skill": "wallet-send-money"}\nnot json\n')
    res = runner.invoke(app, ["router", "train-encoder", "-l", str(library), "--queries", str(queries)])
    assert res.exit_code == 2 and "q.jsonl:2:invalidJSON" in "".join(res.output.split())
    queries.write_text('{"query": "pay rent", "skill": "no-such-skill"}\n')
    res = runner.invoke(app, ["router", "train-encoder", "-l", str(library), "--queries", str(queries)])
    assert res.exit_code == 2 and "noskill'no-such-skill'" in "".join(res.output.split())
