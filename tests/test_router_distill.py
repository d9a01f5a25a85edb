"""Margin-MSE distillation: the loss on hand values, teacher-score files, and both students."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from retriever.distill import (
    DistillConfig,
    ScoredQuery,
    _agreement,
    distill,
    load_teacher_scores,
    margin_mse_loss,
    save_teacher_scores,
    score_triples,
)
from retriever.encoders import HashingEncoder, default_encoder_path, get_encoder
from retriever.rerank import CrossEncoderReranker, LLMReranker, default_reranker_path
from retriever.router import Router
from retriever.train_reranker import NegativeConfig, hold_out

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


def test_margin_mse_on_hand_values():
    s_pos, s_neg = torch.tensor([2.0, 1.0]), torch.tensor([1.0, 1.0])
    t_pos, t_neg = torch.tensor([3.0, 0.0]), torch.tensor([1.0, 1.0])
    # student margins (1, 0), teacher margins (2, -1): squared errors 1 and 1
    assert margin_mse_loss(s_pos, s_neg, t_pos, t_neg).item() == pytest.approx(1.0)
    # raw scores on another scale but the same margins: no loss
    assert margin_mse_loss(s_pos + 10, s_neg + 10, torch.tensor([2.0, 1.0]), torch.tensor([1.0, 1.0])).item() == 0.0
    # two negatives per query, the second one padding: (0.5 - 2)^2 = 2.25 and (-1 - 1)^2 = 4 -> mean 3.125
    s_neg2, t_neg2 = torch.tensor([[1.5, 9.0], [2.0, 9.0]]), torch.tensor([[1.0, 0.0], [-1.0, 0.0]])
    mask = torch.tensor([[True, False], [True, False]])
    assert margin_mse_loss(s_pos, s_neg2, t_pos, t_neg2, mask).item() == pytest.approx(3.125)


def test_teacher_score_file_round_trip_and_errors(tmp_path):
    scored = [ScoredQuery("pay bob", "desc", ("w1", "w2", "m1"), (3.0, 1.0, -2.0))]
    path = tmp_path / "scores.jsonl"
    save_teacher_scores(path, scored, teacher="hand")
    assert json.loads(path.read_text())["teacher"] == "hand"
    assert load_teacher_scores(path) == scored
    path.write_text('{"query": "x", "view": "desc", "candidates": ["a"], "scores": [1.0]}\n')
    with pytest.raises(ValueError, match="scores.jsonl:1"):
        load_teacher_scores(path)


@pytest.mark.integration
def test_teacher_scores_then_both_students(tiny_lm, tmp_path):
    router = Router.from_docs(SKILLS, encoder=HashingEncoder(64))
    teacher = LLMReranker(*tiny_lm)
    scored = score_triples(router, teacher, negatives=NegativeConfig(n_dense=1, n_bm25=1, n_category=0, n_random=1))
    assert scored and all(s.candidates[0] != c for s in scored for c in s.candidates[1:])
    assert all(len(s.scores) == len(s.candidates) and np.isfinite(s.scores).all() for s in scored)
    path = tmp_path / "scores.jsonl"
    save_teacher_scores(path, scored, teacher="tiny-random")
    scored = load_teacher_scores(path)

    student, stats = distill(router, scored, DistillConfig(student="cross-encoder", max_steps=2, batch_queries=2,
                                                           validation_share=0.2))
    assert stats["steps"] == 2 and np.isfinite(stats["last_loss"])
    val = stats["validation"]
    assert val["queries"] == round(len(scored) * 0.2) >= 2 and stats["queries"] == len(scored) - val["queries"]
    assert set(val["before"]) == set(val["after"]) == {"margin_mse", "teacher_top1"}
    student.save(tmp_path / "student")
    loaded = CrossEncoderReranker.load(tmp_path / "student")
    assert loaded.meta["distilled"]["student"] == "cross-encoder"
    assert Router.from_docs(SKILLS, encoder=HashingEncoder(64), reranker=loaded).route("pay bob", k=2,
                                                                                       method="rerank")

    bi, stats = distill(router, scored, DistillConfig(student="bi-encoder", max_steps=1, batch_queries=2))
    assert stats["steps"] == 1 and np.isfinite(stats["last_loss"])
    bi.save(str(tmp_path / "bi"))
    assert Router.from_docs(SKILLS, encoder=str(tmp_path / "bi")).route("send an sms", k=1)

    # saved next to a library, both are found without flags (what `skillkit router distill` does by default)
    library = tmp_path / "skills.jsonl"
    library.write_text("".join(json.dumps(s) + "\n" for s in SKILLS))
    student.save(default_reranker_path(library))
    bi.save(str(default_encoder_path(library)))
    routed = Router.from_library(library)
    assert routed.encoder is get_encoder(str(default_encoder_path(library)))
    assert isinstance(routed.reranker, CrossEncoderReranker)
    assert routed.route("send an sms", k=1) and routed.last_method == "rerank"

    with pytest.raises(ValueError, match="lacks"):
        distill(Router.from_docs(SKILLS[:2], encoder=HashingEncoder(64)), scored, DistillConfig(max_steps=1))


def test_validation_split_and_agreement_by_hand():
    scored = [ScoredQuery(f"q{i}", "full", ("p", "n1", "n2"), (3.0, 1.0, 0.0)) for i in range(20)]
    train, held = hold_out(scored, 0.1, random.Random(0))
    assert len(held) == 2 and len(train) == 18 and not {s.query for s in held} & {s.query for s in train}
    assert hold_out(scored[:5], 0.1, random.Random(0)) == (scored[:5], [])  # too few to hold any out
    # student (1, 0, 2) vs teacher (3, 1, 0): margins (1, -1) vs (2, 3) -> MSE (1 + 16) / 2; tops differ
    def forward(batch):
        return (torch.tensor([[1.0, 0.0, 2.0]] * len(batch)), torch.tensor([[3.0, 1.0, 0.0]] * len(batch)),
                torch.ones(len(batch), 2, dtype=torch.bool))

    assert _agreement(forward, held, 4) == {"margin_mse": 8.5, "teacher_top1": 0.0}
    assert _agreement(forward, [], 4) is None
    with pytest.raises(ValueError, match="validation_share"):
        DistillConfig(validation_share=1.0).validate()
