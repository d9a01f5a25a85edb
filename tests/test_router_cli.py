"""CLI: `skillkit route` (one query, JSON, batch), `skillkit router train-reranker`, errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from skillkit.cli.main import app

SKILLS = [
    {"id": "w1", "name": "wallet-send-money", "tier": "atomic", "description": "Transfer money to a contact.",
     "body": "wallet.send_money(receiver_email, amount)", "category": "wallet"},
    {"id": "w2", "name": "wallet-show-balance", "tier": "atomic", "description": "Read the wallet balance.",
     "body": "wallet.show_balance()", "category": "wallet"},
    {"id": "m1", "name": "music-play-playlist", "tier": "atomic", "description": "Play one of the user's playlists.",
     "body": "music.play_music(playlist_id)", "category": "music"},
    {"id": "p1", "name": "phone-send-text", "tier": "atomic", "description": "Send an SMS to a contact.",
     "body": "phone.send_text_message(phone_number, message)", "category": "phone"},
    {"id": "p2", "name": "phone-plan-call", "tier": "planning", "description": "Plan a phone call with a friend.",
     "body": "1. find the contact 2. check the call log 3. call", "category": "phone"},
]


@pytest.fixture()
def library(tmp_path):
    path = tmp_path / "skills.jsonl"
    path.write_text("\n".join(json.dumps(s) for s in SKILLS) + "\n")
    return path


@pytest.mark.integration
def test_route_json_batch_and_trained_reranker(library, tmp_path, monkeypatch):
    monkeypatch.setenv("SKILLKIT_CACHE", str(tmp_path / "cache"))
    runner = CliRunner()
    res = runner.invoke(app, ["route", "--library", str(library), "--query", "pay Bob 5 dollars", "--k", "2",
                              "--method", "hybrid", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout.strip().splitlines()[-1])
    assert data[0]["name"] == "wallet-send-money" and len(data) == 2 and {"score", "id", "tier"} <= set(data[0])

    queries = tmp_path / "q.jsonl"
    queries.write_text('{"id": "a", "query": "start my playlist"}\n{"id": "b", "query": "text my sister"}\n')
    out = tmp_path / "routed.jsonl"
    res = runner.invoke(app, ["route", "-l", str(library), "--queries", str(queries), "--out", str(out), "-k", "1"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(x["id"], x["results"][0]["name"]) for x in lines] == [("a", "music-play-playlist"), ("b", "phone-send-text")]

    res = runner.invoke(app, ["router", "train-reranker", "-l", str(library), "--max-steps", "1", "--negatives", "3"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "skills.jsonl.reranker" / "reranker.json").exists()
    res = runner.invoke(app, ["route", "-l", str(library), "-q", "how much money do I have", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout.strip().splitlines()[-1])
    assert "rerank" in data[0]["stage_scores"] and "dense" in data[0]["stage_scores"]
    assert (tmp_path / "cache" / "router-embeddings" / "embeddings.sqlite").exists()


@pytest.mark.integration
def test_train_reranker_with_labelled_queries_compares_with_dense_on_held_out_ones(library, tmp_path, monkeypatch):
    monkeypatch.setenv("SKILLKIT_CACHE", str(tmp_path / "cache"))
    pairs = [("pay my landlord", "w1"), ("wire cash to Ann", "w1"), ("am I broke", "w2"), ("what are my funds", "w2"),
             ("put on some tunes", "m1"), ("start my road trip mix", "m1"), ("ping Joe on his mobile", "p1"),
             ("drop mom a quick line", "p1"), ("schedule a ring with Sam", "p2"), ("arrange to talk to dad", "p2")]
    queries = tmp_path / "labelled.jsonl"
    queries.write_text("".join(json.dumps({"query": q, "skill": s}) + "\n" for q, s in pairs))
    res = CliRunner().invoke(app, ["router", "train-reranker", "-l", str(library), "--queries", str(queries),
                                   "--max-steps", "1", "--negatives", "3", "--validation", "0.2"])
    assert res.exit_code == 0, res.output
    assert "held-out (2 labelled queries): Hit@1 dense" in res.output and "reranked" in res.output
    # the check is kept with the reranker, and `route --method auto` goes by it
    marker = tmp_path / "skills.jsonl.reranker" / "reranker.json"
    meta = json.loads(marker.read_text())
    check = meta["validation"]
    assert check["queries"] == 2 and {"hit@1", "mrr@10"} <= set(check["dense"]) & set(check["reranked"])
    for dense_hit, reranked_hit, method in ((1.0, 0.5, "dense"), (0.5, 1.0, "rerank")):
        check["dense"]["hit@1"], check["reranked"]["hit@1"] = dense_hit, reranked_hit
        marker.write_text(json.dumps(meta))
        res = CliRunner().invoke(app, ["route", "-l", str(library), "-q", "am I broke", "-k", "1", "--json"])
        assert res.exit_code == 0, res.output
        top = json.loads(res.stdout)[0]  # the note goes to stderr, so stdout stays JSON
        assert ("rerank" in top["stage_scores"]) == (method == "rerank")
        assert ("routing densely: on its 2 held-out labelled queries the reranker did not beat"
                in " ".join(res.stderr.split())) == (method == "dense")


def test_route_errors(library, tmp_path):
    runner = CliRunner()
    res = runner.invoke(app, ["route", "--library", str(library)])
    assert res.exit_code == 2 and "exactly one of --query or --queries" in res.output
    res = runner.invoke(app, ["route", "--library", str(tmp_path / "missing.json"), "-q", "x"])
    assert res.exit_code == 2 and "no skill library" in res.output


def test_rerank_without_a_trained_reranker_fails_and_names_the_training_command(library, tmp_path, monkeypatch):
    monkeypatch.setenv("SKILLKIT_CACHE", str(tmp_path / "cache"))
    runner = CliRunner()
    base = ["route", "-l", str(library), "-q", "send money to bob", "--encoder", "hashing", "--json"]
    res = runner.invoke(app, base + ["--method", "rerank"])
    assert res.exit_code == 2, res.output
    message = "".join(res.output.split())  # rich wraps long lines, even inside a path
    assert f"skillkitroutertrain-reranker--library{library}" in message and "Traceback" not in message
    res = runner.invoke(app, base)  # the default (auto) answers densely
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])[0]["name"] == "wallet-send-money"


def test_distill_commands_check_their_input(library, tmp_path, monkeypatch):
    monkeypatch.setenv("SKILLKIT_CACHE", str(tmp_path / "cache"))
    runner = CliRunner()
    scores = tmp_path / "scores.jsonl"
    scores.write_text('{"query": "pay", "view": "desc", "candidates": ["w1", "m1"], "scores": [2.0, -1.0]}\n')
    res = runner.invoke(app, ["router", "distill", "-l", str(library), "--scores", str(scores), "--student", "svm",
                              "--out", str(tmp_path / "s")])
    assert res.exit_code == 2 and "unknown student 'svm'" in res.output
    scores.write_text("not json\n")
    res = runner.invoke(app, ["router", "distill", "-l", str(library), "--scores", str(scores), "--out",
                              str(tmp_path / "s")])
    assert res.exit_code == 2 and "scores.jsonl:1" in "".join(res.output.split())


@pytest.mark.integration
def test_teacher_scores_without_a_teacher_names_the_training_command(library, tmp_path, monkeypatch):
    monkeypatch.setenv("SKILLKIT_CACHE", str(tmp_path / "cache"))
    res = CliRunner().invoke(app, ["router", "teacher-scores", "-l", str(library), "--out", str(tmp_path / "t.jsonl")])
    assert res.exit_code == 2 and "skillkitroutertrain-reranker" in "".join(res.output.split())


@pytest.mark.integration
def test_teacher_scores_with_the_query_likelihood_teacher(library, tmp_path, monkeypatch):
    monkeypatch.setenv("SKILLKIT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "t.jsonl"
    res = CliRunner().invoke(app, ["router", "teacher-scores", "-l", str(library), "--out", str(out),
                                   "--teacher", "upr:tiny-random", "--negatives", "2"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines and all(line["teacher"] == "upr:tiny-random" and len(line["scores"]) == 3 for line in lines)
    # mixed with the z-scored dense prior: each query's scores are a sum of two zero-mean z-scores
    assert all(abs(sum(line["scores"])) < 1e-4 for line in lines)
    bad = CliRunner().invoke(app, ["router", "teacher-scores", "-l", str(library), "--out", str(out),
                                   "--teacher", "openai:big-model"])
    assert bad.exit_code == 2 and "openai:MODEL@http" in "".join(bad.output.split())
    # the scores train a student, checked on held-out queries before and after
    res = CliRunner().invoke(app, ["router", "distill", "-l", str(library), "--scores", str(out), "--student",
                                   "bi-encoder", "--max-steps", "1", "--validation", "0.3", "--out", str(tmp_path / "bi")])
    assert res.exit_code == 0, res.output
    assert "held-out (3 queries): margin MSE" in " ".join(res.output.split()) and (tmp_path / "bi").is_dir()


@pytest.mark.integration
def test_teacher_scores_trains_an_ensemble_of_teachers(library, tmp_path, monkeypatch):
    monkeypatch.setenv("SKILLKIT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "t.jsonl"
    res = CliRunner().invoke(app, ["router", "teacher-scores", "-l", str(library), "--out", str(out),
                                   "--train-teachers", "2", "--time-budget", "5", "--negatives", "2"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "skills.jsonl.teachers").iterdir()) == ["ce-0", "ce-1"]
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines and all(line["teacher"].startswith("ensemble(") and len(line["scores"]) == 3 for line in lines)
    # z-normalised members: each query's ensemble scores average to zero
    assert all(abs(sum(line["scores"])) < 1e-4 for line in lines)
