"""The real HTTP server on localhost: auth, limits, routing, skill lookup, and the Python client."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from retriever.client import SkillRouterClient, SkillServerError
from retriever.encoders import Encoder, HashingEncoder
from retriever.router import Router
from retriever.server import create_app

SKILLS = [
    {"id": "w1", "name": "wallet-send-money", "tier": "atomic", "description": "Transfer money to a contact.",
     "body": "wallet.send_money(receiver_email, amount)"},
    {"id": "m1", "name": "music-play-playlist", "tier": "atomic", "description": "Play one of the user's playlists.",
     "body": "music.play_music(playlist_id)"},
    {"id": "p1", "name": "phone-send-text", "tier": "atomic", "description": "Send an SMS to a contact.",
     "body": "phone.send_text_message(phone_number, message)"},
]
TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def server_url(minilm, serve_app):
    router = Router.from_docs(SKILLS, encoder=Encoder(minilm))
    with serve_app(create_app(router, token=TOKEN, max_k=10, max_body_bytes=2048)) as url:
        yield url


@pytest.mark.integration
def test_auth_limits_and_routes(server_url):
    health = httpx.get(server_url + "/health").json()
    assert health["status"] == "ok" and health["skills"] == 3 and health["auth"] is True
    body = {"query": "pay my friend 10 dollars", "k": 2}
    assert httpx.post(server_url + "/route", json=body).status_code == 401
    wrong = httpx.post(server_url + "/route", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    ok = httpx.post(server_url + "/route", json=body, headers=auth)
    assert ok.status_code == 200
    data = ok.json()
    assert data["results"][0]["name"] == "wallet-send-money" and len(data["results"]) == 2
    assert data["method"] == "dense" and "search" in data["timings"]
    assert httpx.post(server_url + "/route", json={**body, "k": 11}, headers=auth).status_code == 422
    big = {"query": "x" * 5000}
    assert httpx.post(server_url + "/route", json=big, headers=auth).status_code == 413
    assert httpx.post(server_url + "/route", json={"k": 2}, headers=auth).status_code == 422
    assert httpx.get(server_url + "/skills/music-play-playlist").status_code == 401
    skill = httpx.get(server_url + "/skills/music-play-playlist", headers=auth).json()
    assert skill["body"] == "music.play_music(playlist_id)"
    assert httpx.get(server_url + "/skills/nope", headers=auth).status_code == 404


@pytest.mark.integration
def test_python_client(server_url):
    with SkillRouterClient(server_url, token=TOKEN) as client:
        assert client.health()["skills"] == 3
        assert client.route("text my brother", k=1)[0]["name"] == "phone-send-text"
        batch = client.route_batch(["play some songs", "send cash"], k=1, method="hybrid")
        assert [b[0]["id"] for b in batch] == ["m1", "w1"]
        assert client.get_skill("w1")["name"] == "wallet-send-money"
        with pytest.raises(SkillServerError) as err:
            client.route("x", k=50)
        assert err.value.status == 422
    with SkillRouterClient(server_url) as anonymous, pytest.raises(SkillServerError) as err:
        anonymous.route("send cash")
    assert err.value.status == 401


def _fire(app, bodies):
    async def go():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            responses = await asyncio.gather(*[client.post("/route", json=b) for b in bodies])
        return [(r.status_code, r.json()) for r in responses]

    return asyncio.run(go())


def test_concurrent_requests_are_batched_and_answer_as_unbatched():
    router = Router.from_docs(SKILLS, encoder=HashingEncoder(64))
    queries = ["send money to my friend", "play my playlist music", "send a text message",
               "wallet transfer", "music please", "sms to mom"] * 3
    bodies = [{"query": q, "k": 1 + i % 3} for i, q in enumerate(queries)]  # mixed k: routed as separate groups
    bodies.append({"queries": ["send money", "play music"], "k": 2})
    batched = _fire(create_app(router, batch_window_ms=50), bodies)
    alone = _fire(create_app(router, batch_window_ms=0), bodies)
    assert all(status == 200 for status, _ in batched + alone)
    for (_, b), (_, a), body in zip(batched, alone, bodies):
        key = "results" if "query" in body else "batch"
        assert b[key] == a[key]
        assert len(b[key] if key == "results" else b[key][0]) == min(body["k"], 3)
    sizes = [b["timings"]["batched_queries"] for _, b in batched]
    assert max(sizes) > 2  # concurrent requests shared one route_batch call
    assert all("batched_queries" not in a["timings"] for _, a in alone)


def test_rerank_without_a_reranker_is_refused_with_the_training_command():
    router = Router.from_docs(SKILLS, encoder=HashingEncoder(64))
    for window in (0, 5):
        [(status, data)] = _fire(create_app(router, batch_window_ms=window), [{"query": "x", "method": "rerank"}])
        assert status == 422 and "skillkit router train-reranker" in data["detail"]
        [(status, data)] = _fire(create_app(router, batch_window_ms=window), [{"query": "send money"}])
        assert status == 200 and data["method"] == "dense"
