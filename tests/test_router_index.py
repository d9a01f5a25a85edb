"""Vector index (add/remove/save/load, every kind, shards), exact search, BM25 and RRF."""

from __future__ import annotations

import numpy as np
import pytest

from retriever.bm25 import BM25Index, tokenize
from retriever.encoders import normalize
from retriever.fusion import reciprocal_rank_fusion
from retriever.index import VectorIndex, exact_search


def clustered(n: int, dim: int = 32, centers: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    c = rng.normal(size=(centers, dim))
    return normalize(c[rng.integers(0, centers, n)] + 0.3 * rng.normal(size=(n, dim)))


def ids_of(n: int, prefix: str = "s") -> list[str]:
    return [f"{prefix}{i}" for i in range(n)]


def test_exact_search_matches_sorted_dot_products():
    vecs = clustered(200)
    q = clustered(5, seed=1)
    scores, rows = exact_search(vecs, q, 7)
    full = q @ vecs.T
    for i in range(5):
        assert rows[i].tolist() == np.argsort(-full[i])[:7].tolist()
        assert np.allclose(scores[i], np.sort(full[i])[::-1][:7], atol=1e-6)


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf", "ivfpq"])
def test_every_kind_finds_the_vectors_themselves(kind):
    vecs = clustered(2000)
    index = VectorIndex(32, kind=kind, nprobe=16 if kind != "flat" and kind != "hnsw" else None)
    index.add(ids_of(2000), vecs)
    _, ids = index.search(vecs[:50], k=1)
    hits = sum(row[0] == f"s{i}" for i, row in enumerate(ids))
    assert hits >= (40 if kind == "ivfpq" else 49)
    assert index.kinds == [kind]


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivf"])
def test_remove_then_search_never_returns_removed_ids(kind):
    vecs = clustered(500)
    index = VectorIndex(32, kind=kind)
    index.add(ids_of(500), vecs)
    index.search(vecs[:1], 5)  # build first, so removal goes through the built index
    removed = {f"s{i}" for i in range(0, 500, 2)}
    assert index.remove(sorted(removed) + ["unknown"]) == 250
    assert len(index) == 250
    _, ids = index.search(vecs[:40], k=10)
    assert all(i not in removed for row in ids for i in row)
    _, ids = index.search(vecs[1:2], k=1)
    assert ids[0] == ["s1"]


def test_add_replaces_existing_id_and_validates_shapes():
    index = VectorIndex(4, kind="flat")
    index.add(["a", "b"], normalize(np.eye(4)[:2]))
    index.add(["a"], normalize(np.eye(4)[2:3]))
    assert len(index) == 2
    _, ids = index.search(np.eye(4)[2], k=1)
    assert ids == [["a"]]
    assert np.allclose(index.get_vectors(["a"])[0], np.eye(4)[2])
    with pytest.raises(ValueError, match="dim 4"):
        index.add(["c"], np.ones((1, 5)))
    with pytest.raises(ValueError, match="2 ids but 1"):
        index.add(["c", "d"], np.ones((1, 4)))
    with pytest.raises(ValueError, match="unknown index kind"):
        VectorIndex(4, kind="annoy")


@pytest.mark.parametrize("kind,shards", [("flat", 1), ("ivf", 1), ("hnsw", 1), ("flat", 3)])
def test_save_load_roundtrip_gives_identical_results(tmp_path, kind, shards):
    vecs = clustered(1500)
    index = VectorIndex(32, kind=kind, shards=shards)
    index.add(ids_of(1500), vecs)
    index.remove(["s3", "s4"])
    before = index.search(vecs[:20], k=10)
    index.save(tmp_path / "idx")
    blob = index.to_bytes()
    for loaded in (VectorIndex.load(tmp_path / "idx"), VectorIndex.from_bytes(blob)):
        after = loaded.search(vecs[:20], k=10)
        assert before[1] == after[1]
        assert np.allclose(before[0], after[0], atol=1e-5)
        assert len(loaded) == 1498 and sorted(loaded.ids()) == sorted(index.ids())
        np.testing.assert_array_equal(loaded.get_vectors(["s7", "s1200"]), vecs[[7, 1200]])
        if kind != "flat":  # the trained HNSW/IVF index is read back, not rebuilt
            assert all(k == kind for k in loaded.kinds)
        loaded.add(["new"], vecs[3:4])  # still mutable after loading
        assert loaded.search(vecs[3:4], k=1)[1] == [["new"]]


def test_from_bytes_rejects_what_is_not_an_index():
    with pytest.raises(ValueError, match="not a serialised vector index"):
        VectorIndex.from_bytes(b"garbage")
    index = VectorIndex(4, kind="flat")
    index.add(["a", "b"], np.eye(4, dtype=np.float32)[:2])
    blob = bytearray(index.to_bytes())
    blob[len(blob) // 2] ^= 0xFF  # a flipped byte: a zip CRC error or a bad array, never a silent load
    with pytest.raises(ValueError):
        VectorIndex.from_bytes(bytes(blob))


def test_sharded_search_equals_single_index():
    vecs = clustered(900)
    single, sharded = VectorIndex(32, kind="flat"), VectorIndex(32, kind="flat", shards=4)
    for idx in (single, sharded):
        idx.add(ids_of(900), vecs)
    q = clustered(10, seed=3)
    assert single.search(q, 15)[1] == sharded.search(q, 15)[1]
    assert sharded.search(q, 5, allowed={"s1", "s2", "s700"})[1][0][0] in {"s1", "s2", "s700"}


def test_subset_search_is_exact():
    vecs = clustered(300)
    index = VectorIndex(32, kind="ivf")
    index.add(ids_of(300), vecs)
    allowed = {f"s{i}" for i in range(100, 130)}
    scores, ids = index.search(vecs[:3], 5, allowed=allowed)
    sub = vecs[100:130]
    want = [[f"s{100 + j}" for j in np.argsort(-(q @ sub.T))[:5]] for q in vecs[:3]]
    assert ids == want


def test_ivf_recall_on_clustered_vectors():
    vecs = clustered(20000, dim=64, centers=200)
    q = clustered(100, dim=64, centers=200, seed=9)
    index = VectorIndex(64, kind="ivf")
    index.add(ids_of(20000), vecs)
    _, ids = index.search(q, 10)
    _, truth = exact_search(vecs, q, 10)
    recall = np.mean([len(set(r) & {f"s{j}" for j in t}) / 10 for r, t in zip(ids, truth)])
    assert recall >= 0.95


def test_set_nprobe_trades_recall_and_probing_every_list_is_exact():
    vecs = clustered(4000, dim=32, centers=100)
    q = clustered(50, dim=32, centers=100, seed=3)
    index = VectorIndex(32, kind="ivf", nlist=64)
    index.add(ids_of(4000), vecs)
    _, truth = exact_search(vecs, q, 10)

    def recall() -> float:
        _, ids = index.search(q, 10)
        return float(np.mean([len(set(r) & {f"s{j}" for j in t}) / 10 for r, t in zip(ids, truth)]))

    index.set_nprobe(1)
    low = recall()
    index.set_nprobe(64)
    assert recall() == 1.0 and low < 1.0
    with pytest.raises(ValueError, match="nprobe"):
        index.set_nprobe(0)


def test_rrf_math():
    fused = reciprocal_rank_fusion([["a", "b", "c"], ["c", "a"]], k=60)
    scores = dict(fused)
    assert scores["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert scores["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert scores["b"] == pytest.approx(1 / 62)
    assert [i for i, _ in fused] == ["a", "c", "b"]
    weighted = dict(reciprocal_rank_fusion([["a"], ["b"]], k=0, weights=[1.0, 3.0]))
    assert weighted == {"a": 1.0, "b": 3.0}
    with pytest.raises(ValueError):
        reciprocal_rank_fusion([["a"]], weights=[1.0, 2.0])


def test_bm25_tokenizer_and_search():
    assert tokenize("showPlaylist of the_songs") == ["show", "playlist", "song"]
    bm25 = BM25Index()
    bm25.add(["p", "w", "s"], ["music.show_playlist(id): list songs", "wallet.send_money(to)", "push box to target"])
    assert bm25.search(["show my playlists"], k=2)[0][0][0] == "p"
    assert bm25.search(["quantum chromodynamics"], k=2) == [[]]
    assert bm25.search(["playlist"], k=2, allowed={"w", "s"}) == [[]]
    bm25.remove(["p"])
    assert all(i != "p" for i, _ in bm25.search(["playlist songs"], k=3)[0])


@pytest.mark.gpu
def test_gpu_index_matches_cpu():
    from retriever.index import gpu_available

    if not gpu_available():
        pytest.skip("FAISS has no GPU support here (install faiss-gpu)")
    vecs = clustered(3000)
    cpu, gpu = VectorIndex(32, kind="flat", use_gpu=False), VectorIndex(32, kind="flat", use_gpu=True)
    for idx in (cpu, gpu):
        idx.add(ids_of(3000), vecs)
    assert cpu.search(vecs[:20], 5)[1] == gpu.search(vecs[:20], 5)[1]


def test_use_gpu_without_gpu_is_a_clear_error():
    from retriever.index import gpu_available

    if gpu_available():
        pytest.skip("a GPU is available")
    index = VectorIndex(32, kind="flat", use_gpu=True)
    index.add(ids_of(10), clustered(10))
    with pytest.raises(ValueError, match="use_gpu=True"):
        index.search(clustered(1), 1)
