"""Router over the real MiniLM: every method, tiers, batch routing, timings, add/remove, loading."""

from __future__ import annotations

import json

import numpy as np
import pytest

from retriever.docs import RouterDoc, load_docs_file
from retriever.encoders import Encoder, HashingEncoder
from retriever.router import RerankerMissingError, Router, load_library_docs
from skillkit.skills.library import SkillLibrary

SKILLS = [
    {"id": "s1", "name": "push-box-onto-target", "tier": "functional", "category": "sokoban",
     "description": "Push a box onto a goal square in Sokoban without trapping it.",
     "body": "Walk to the cell behind the box, opposite the target, then push toward the target."},
    {"id": "s2", "name": "wallet-send-money", "tier": "atomic", "category": "wallet",
     "description": "Transfer money to a contact with the wallet app.",
     "body": "Call wallet.send(recipient, amount); check wallet.balance() first."},
    {"id": "s3", "name": "music-play-playlist", "tier": "atomic", "category": "music",
     "description": "Start playing one of the user's playlists.",
     "body": "Find it with music.list_playlists(), then music.play(playlist_id)."},
    {"id": "s4", "name": "phone-send-text", "tier": "atomic", "category": "phone",
     "description": "Send an SMS text message to a phone contact.",
     "body": "phone.search_contacts(name) -> contact; phone.send_message(contact.phone, text)."},
    {"id": "s5", "name": "plan-monthly-budget", "tier": "planning", "category": "wallet",
     "description": "Plan: review last month's spending and set category budgets.",
     "body": "1. wallet.transactions(month) 2. group by category 3. wallet.set_budget(category, limit)"},
]


@pytest.fixture(scope="module")
def router(minilm):
    return Router.from_docs(SKILLS, encoder=Encoder(minilm))


@pytest.mark.integration
def test_every_method_routes_paraphrases(router):
    queries = {"transfer 20 dollars to Alice": "s2", "put on some songs from my saved list": "s3",
               "text my mom that I am late": "s4", "get the crate onto the goal tile": "s1"}
    for method in ("dense", "hybrid"):
        for query, want in queries.items():
            top = router.route(query, k=3, method=method)
            assert top[0].id == want, (method, query, [t.name for t in top])
            assert [t.rank for t in top] == [1, 2, 3]
            assert top[0].score >= top[1].score
    assert router.route("wallet send money", k=1, method="bm25")[0].id == "s2"
    result = router.route("transfer money", k=2)  # auto, and no reranker: answers densely
    assert router.last_method == "dense" and result[0].id == "s2"
    with pytest.raises(RerankerMissingError, match="skillkit router train-reranker"):
        router.route("transfer money", k=2, method="rerank")  # asked for explicitly: no silent fallback
    assert {"encode", "search", "total"} <= set(router.last_timings)


@pytest.mark.integration
def test_tier_filter_batch_and_mutation(router):
    only_planning = router.route("transfer money", k=5, tier="planning")
    assert [r.id for r in only_planning] == ["s5"]
    assert router.route("anything", tier="trajectory") == []
    batch = router.route_batch(["send an sms", "play music"], k=2, method="hybrid")
    assert [b[0].id for b in batch] == ["s4", "s3"]
    router.add([{"id": "s6", "name": "music-shuffle", "description": "Shuffle the songs of a playlist",
                 "body": "music.shuffle(playlist_id)", "tier": "atomic"}])
    assert router.route("shuffle my playlist", k=1)[0].id == "s6"
    assert router.remove(["s6"]) == 1
    assert all(r.id != "s6" for r in router.route("shuffle my playlist", k=5, method="hybrid"))
    assert router.get("wallet-send-money").id == "s2"
    with pytest.raises(KeyError):
        router.get("nope")
    with pytest.raises(ValueError, match="unknown routing method"):
        router.route("x", method="magic")
    with pytest.raises(ValueError, match="non-empty"):
        router.route("   ")


@pytest.mark.integration
def test_encoder_cache_is_keyed_by_content(minilm, tmp_path):
    enc = Encoder(minilm, cache_dir=tmp_path)
    a = enc.encode(["hello world", "other text", "hello world"])
    assert a.shape == (3, enc.dim) and a.dtype == np.float32
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.allclose(a[0], a[2])
    again = Encoder(minilm, cache_dir=tmp_path)  # a new process would read the SQLite cache
    assert len(again.cache.get_many([again._key("hello world")])) == 1
    assert np.allclose(again.encode(["hello world"])[0], a[0])


def test_docs_from_objects_dicts_and_files(tmp_path):
    class Skill:
        id, name, description, tier, tags, env = "x1", "my-skill", "does things", "atomic", ["t"], "phone"

        def body_text(self):
            return "step one"

    doc = RouterDoc.from_skill(Skill())
    assert doc.to_text() == "my-skill | does things | step one"
    assert doc.category == "phone" and doc.tier == "atomic"
    path = tmp_path / "skills.jsonl"
    path.write_text("\n".join(json.dumps(s) for s in SKILLS))
    assert [d.id for d in load_docs_file(path)] == ["s1", "s2", "s3", "s4", "s5"]
    assert len(load_library_docs(path)) == 5
    (tmp_path / "bad.json").write_text('[{"name": "a"}, {"name": "a"}]')
    with pytest.raises(ValueError, match="duplicate skill id"):
        load_docs_file(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="without a 'name'"):
        RouterDoc.from_dict({"description": "x"})


@pytest.mark.integration
def test_routes_a_skill_library_folder(minilm, tmp_path):
    lib = SkillLibrary.create(tmp_path / "lib", embedder="hashing")
    lib.add({"name": "wallet-send-money", "tier": "atomic", "description": "Transfer money to a contact.",
             "action": "wallet.send_money(receiver_email, amount)", "env": "wallet"})
    lib.add({"name": "music-play-playlist", "tier": "functional", "description": "Play one of the user's playlists.",
             "body": "Find the playlist with music.show_playlist_library(), then music.play_music(playlist_id).",
             "tags": ["music"]})
    lib.save()
    with pytest.raises(ValueError, match="SkillLibrary.load"):  # the retriever does not open library folders
        Router.from_library(tmp_path / "lib", encoder=Encoder(minilm))
    router = Router.from_library(SkillLibrary.load(tmp_path / "lib"), encoder=Encoder(minilm))
    assert router.reranker is None  # nothing trained next to the library: dense routing
    top = router.route("pay my friend ten dollars", k=2)
    assert top[0].name == "wallet-send-money" and top[0].tier == "atomic"
    assert top[0].skill.__class__.__name__ == "AtomicSkill" and top[0].doc.category == "wallet"
    assert "wallet.send_money" in top[0].doc.body
    assert router.route("play music", k=1, tier="functional")[0].name == "music-play-playlist"


class CountingEncoder(HashingEncoder):
    """A real hashing encoder that counts the texts it encodes."""

    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.texts = 0

    def encode(self, texts, **kwargs):
        self.texts += 1 if isinstance(texts, str) else len(texts)
        return super().encode(texts, **kwargs)


def test_from_library_reuses_stored_vectors_and_encodes_only_for_another_encoder(tmp_path):
    enc = CountingEncoder(64)
    lib = SkillLibrary.create(tmp_path / "lib", embedder=enc)
    for s in SKILLS:
        lib.add({k: v for k, v in s.items() if k not in ("id", "body", "category")} | {"tier": "atomic"})
    lib.save()
    assert enc.texts == len(SKILLS)
    router = Router.from_library(lib)  # the library's own encoder: its stored vectors, no re-embedding
    assert enc.texts == len(SKILLS) and router.encoder is enc
    ids = [s.id for s in lib.list()]
    np.testing.assert_array_equal(router.index.get_vectors(ids), lib.embeddings())
    assert router.route("wallet send money transfer", k=1)[0].name == "wallet-send-money"
    assert enc.texts == len(SKILLS) + 1  # only the query was encoded

    other = CountingEncoder(32)
    router = Router.from_library(lib, encoder=other)  # another model: every skill is encoded with it
    assert other.texts == len(SKILLS) and router.index.config.dim == 32
    assert router.route("wallet send money transfer", k=1)[0].name == "wallet-send-money"


class ReversingReranker:
    """A second stage that ranks the dense stage's candidates upside down (so it can only do worse)."""

    def __init__(self, meta: dict | None = None) -> None:
        self.meta = meta or {}

    def score(self, query, docs, prior=None):
        return -np.asarray(prior, np.float32)


def test_auto_skips_a_reranker_whose_held_out_check_found_no_gain():
    from retriever.train_reranker import TrainQuery, held_out_check

    router = Router.from_docs(SKILLS, encoder=HashingEncoder(256))
    held = [TrainQuery("wallet send money transfer contact", "s2"), TrainQuery("music play playlist start", "s3")]
    check = held_out_check(router, ReversingReranker(), held)
    assert router.reranker is None  # the check leaves the router as it found it
    assert check["queries"] == 2 and check["encoder"] == router.encoder.name
    assert check["dense"]["hit@1"] == 1.0 and check["reranked"]["hit@1"] == 0.0

    router.reranker = ReversingReranker({"validation": check})
    assert "did not beat the dense stage (Hit@1 0% vs 100%" in router.reranker_shortfall
    top = router.route("wallet send money", k=1)
    assert router.last_method == "dense" and top[0].id == "s2"
    router.route("wallet send money", k=1, method="rerank")  # asked for explicitly, it is still used
    assert router.last_method == "rerank"

    def record(dense: tuple[float, float], reranked: tuple[float, float], encoder: str = router.encoder.name) -> dict:
        return {"validation": {"queries": 4, "encoder": encoder,
                               "dense": {"hit@1": dense[0], "mrr@10": dense[1]},
                               "reranked": {"hit@1": reranked[0], "mrr@10": reranked[1]}}}

    for meta, used in ((record((0.5, 0.6), (0.5, 0.6)), False),  # a tie does not earn the latency
                       (record((0.5, 0.6), (0.5, 0.7)), False),  # same Hit@1: a better MRR alone does not either
                       (record((0.5, 0.6), (0.75, 0.5)), True),
                       (record((0.5, 0.6), (0.25, 0.6), encoder="another-encoder"), True),  # checked behind another stage
                       ({}, True)):  # no check recorded: nothing to go by
        router.reranker = ReversingReranker(meta)
        router.route("wallet send money", k=1)
        assert router.last_method == ("rerank" if used else "dense"), meta
