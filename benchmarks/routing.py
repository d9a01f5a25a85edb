"""Routing benchmark: quality of every routing method, reranker ablations, and speed at scale.

Run: ``python benchmarks/routing.py`` or ``skillkit bench routing`` (``--quick`` for a smoke run).

* Quality: the labelled corpus of :mod:`retriever.bench_corpus` (Sokoban, phone/wallet/music/
  calendar/email/notes/shopping app skills, agent routines) mixed with real-text distractors.
  The reranker trains on label-free synthetic queries from every skill plus the *train* query
  split; all quality numbers are on the held-out *test* split, which no reranker ever sees.
* Speed: index search (FAISS via :class:`retriever.index.VectorIndex`) against numpy brute force
  at 1K, 10K and 100K skills, plus the 1M-vector comparison, on vectors with the structure of
  real embeddings (each is a real MiniLM skill embedding plus noise, so they form clusters around
  real skills); query encoding, BM25 and reranking are timed separately.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from retriever.bench_corpus import core_docs, distractor_docs, labelled_queries  # noqa: E402
from retriever.bm25 import BM25Index  # noqa: E402
from retriever.encoders import normalize  # noqa: E402
from retriever.evaluation import ranking_metrics  # noqa: E402
from retriever.index import VectorIndex, exact_search  # noqa: E402

METRIC_COLS = ["hit@1", "mrr@10", "ndcg@1", "ndcg@3", "ndcg@10", "recall@10", "recall@20", "recall@50"]


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p95 in milliseconds."""
    arr = np.asarray(samples) * 1e3
    return {"p50_ms": round(float(np.percentile(arr, 50)), 3), "p95_ms": round(float(np.percentile(arr, 95)), 3)}


def embedding_like(base: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` unit vectors clustered around real embeddings: a random base row plus noise of varied size."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, base.shape[1]), np.float32)
    step = 100_000
    for start in range(0, n, step):
        m = min(step, n - start)
        rows = base[rng.integers(0, len(base), m)]
        scale = rng.uniform(0.02, 0.06, size=(m, 1)).astype(np.float32)  # per-dim noise: cos to base ~0.55-0.95
        out[start:start + m] = normalize(rows + scale * rng.standard_normal((m, base.shape[1]), dtype=np.float32))
    return out


def recall_at(found: list[list[str]], truth: np.ndarray, ids: list[str], k: int = 10) -> float:
    """Mean overlap of the index's top-k with the exact top-k."""
    return float(np.mean([len(set(f[:k]) & {ids[j] for j in t[:k]}) / k for f, t in zip(found, truth)]))


def time_index(vecs: np.ndarray, queries: np.ndarray, kind: str, single: int = 200, **params: Any) -> dict:
    """Build a VectorIndex over ``vecs`` and measure batched/single-query speed and recall@10 vs exact."""
    ids = [f"v{i}" for i in range(len(vecs))]
    index = VectorIndex(vecs.shape[1], kind=kind, use_gpu=False, **params)
    t = time.perf_counter()
    index.add(ids, vecs)
    index.build()
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    _, found = index.search(queries, 10)
    batched_qps = len(queries) / (time.perf_counter() - t)
    lat = []
    for q in queries[:single]:
        t = time.perf_counter()
        index.search(q, 10)
        lat.append(time.perf_counter() - t)
    _, truth = exact_search(vecs, queries, 10)
    return {"kind": index.kinds[0], "build_s": round(build_s, 2), "batched_qps": round(batched_qps, 1),
            "single_qps": round(1 / float(np.mean(lat)), 1), **percentiles(lat),
            "recall@10_vs_exact": round(recall_at(found, truth, ids), 4)}


def time_exact(vecs: np.ndarray, queries: np.ndarray, single: int = 50) -> dict:
    """numpy brute force: batched and one-at-a-time queries/s."""
    t = time.perf_counter()
    for start in range(0, len(queries), 256):
        exact_search(vecs, queries[start:start + 256], 10)
    batched = len(queries) / (time.perf_counter() - t)
    lat = []
    for q in queries[:single]:
        t = time.perf_counter()
        exact_search(vecs, q, 10)
        lat.append(time.perf_counter() - t)
    return {"batched_qps": round(batched, 1), "single_qps": round(1 / float(np.mean(lat)), 1), **percentiles(lat)}


def scale_1m_sweep(real: np.ndarray, queries: np.ndarray, n: int = 1_000_000, nlist: int = 2048,
                   nprobes: tuple[int, ...] = (8, 16, 32, 64), min_recall: float = 0.95) -> dict:
    """1M embedding-like vectors: numpy exact search vs one IVF index probed with several ``nprobe``;
    the headline is the fastest setting whose recall@10 against exact search is >= ``min_recall``."""
    vecs = embedding_like(real, n, seed=n)
    ids = [f"v{i}" for i in range(n)]
    exact = time_exact(vecs, queries, single=10)
    _, truth = exact_search(vecs, queries, 10)
    index = VectorIndex(vecs.shape[1], kind="ivf", use_gpu=False, nlist=nlist)
    t = time.perf_counter()
    index.add(ids, vecs)
    index.build()
    build_s = round(time.perf_counter() - t, 1)
    sweep = []
    for nprobe in nprobes:
        index.set_nprobe(nprobe)
        t = time.perf_counter()
        _, found = index.search(queries, 10)
        batched = len(queries) / (time.perf_counter() - t)
        lat = []
        for q in queries[:100]:
            t = time.perf_counter()
            index.search(q, 10)
            lat.append(time.perf_counter() - t)
        row = {"nprobe": nprobe, "batched_qps": round(batched, 1), "single_qps": round(1 / float(np.mean(lat)), 1),
               **percentiles(lat), "recall@10_vs_exact": round(recall_at(found, truth, ids), 4)}
        row["speedup_batched_vs_exact"] = round(row["batched_qps"] / exact["batched_qps"], 1)
        row["speedup_single_vs_exact"] = round(row["single_qps"] / exact["single_qps"], 1)
        sweep.append(row)
        print(f"1M IVF nprobe {nprobe}: {row}", flush=True)
    good = [r for r in sweep if r["recall@10_vs_exact"] >= min_recall]
    best = max(good, key=lambda r: r["batched_qps"]) if good else None
    return {"vectors": n, "queries": len(queries), "exact_numpy": exact, "ivf_nlist": nlist, "ivf_build_s": build_s,
            "ivf_sweep": sweep, "ivf_best_at_min_recall": best, "min_recall": min_recall}


def only_1m(out: Path | str, distractors: int = 3_000) -> dict:
    """Re-measure just the 1M section (same corpus vectors as a full run) into an existing result JSON."""
    from retriever.encoders import Encoder

    texts = [d.to_text() for d in core_docs() + list(distractor_docs(distractors, seed=1))]
    encoder = Encoder("minilm")
    real = encoder.encode(texts)
    queries = [q.query for q in labelled_queries()]
    query_vecs = np.concatenate([encoder.encode(queries), embedding_like(real, 1000 - len(queries), seed=7)])
    out = Path(out)
    result = json.loads(out.read_text()) if out.exists() else {}
    result["scale_1m"] = scale_1m_sweep(real, query_vecs[:300])
    result["scale_1m"]["command"] = "python benchmarks/routing.py --only-1m"
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, out)
    return result


def quality(router: Any, queries: list, method: str, k: int = 50) -> dict:
    """Metrics of one method on labelled queries, plus its mean per-query time."""
    t = time.perf_counter()
    results = []
    for start in range(0, len(queries), 16):
        results += router.route_batch([q.query for q in queries[start:start + 16]], k=k, method=method)
    seconds = time.perf_counter() - t
    metrics = ranking_metrics([[r.id for r in row] for row in results], [q.positive for q in queries])
    row = {**metrics, "ms_per_query": round(1e3 * seconds / len(queries), 2), "method_used": router.last_method}
    print(f"  {method} ({router.last_method}): hit@1 {row['hit@1']}, {seconds:.0f} s", flush=True)
    return row


def print_table(title: str, rows: dict[str, dict], cols: list[str]) -> None:
    """A plain-text table (rich when available)."""
    try:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title)
        table.add_column("")
        for c in cols:
            table.add_column(c)
        for name, row in rows.items():
            table.add_row(name, *[str(row.get(c, "")) for c in cols])
        Console().print(table)
    except ImportError:  # pragma: no cover
        print(title)
        for name, row in rows.items():
            print(name, *[row.get(c, "") for c in cols])


def run(quick: bool = False, distractors: int = 3_000, scale_1m: bool = True, train_steps: int = 40,
        out: Path | str = ROOT / "benchmarks" / "results" / "routing.json", llm_queries: int = 4) -> dict:
    """Run the whole benchmark and write the JSON result."""
    import torch

    from retriever.encoders import Encoder
    from retriever.rerank import CrossEncoderReranker, LLMReranker
    from retriever.router import Router
    from retriever.train_reranker import TrainConfig, TrainQuery, train_reranker

    torch.manual_seed(0)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    started = time.perf_counter()
    if quick:
        distractors, scale_1m, train_steps, llm_queries = min(distractors, 300), False, 3, min(llm_queries, 2)
    sizes = [1_000, 10_000] if quick else [1_000, 10_000, 100_000]
    result: dict[str, Any] = {
        "command": "python benchmarks/routing.py" + (" --quick" if quick else "")
        + ("" if distractors == 3_000 or quick else f" --distractors {distractors}")
        + ("" if train_steps == 40 or quick else f" --train-steps {train_steps}")
        + ("" if scale_1m or quick else " --no-scale-1m"),
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
                    "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]},
    }

    # ---- quality ---------------------------------------------------------------------------
    docs = core_docs() + list(distractor_docs(distractors, seed=1))
    queries = labelled_queries()
    train_q = [q for q in queries if q.split == "train"]
    test_q = [q for q in queries if q.split == "test"]
    if quick:
        test_q = test_q[:8]
    encoder = Encoder("minilm")
    t = time.perf_counter()
    router = Router.from_docs(docs, encoder=encoder)
    embed_s = time.perf_counter() - t
    result["corpus"] = {"labelled_skills": len(core_docs()), "distractors": distractors, "total_skills": len(router),
                        "train_queries": len(train_q), "test_queries": len(test_q),
                        "embed_seconds": round(embed_s, 1), "docs_per_second": round(len(router) / embed_s, 1)}
    print(f"corpus: {len(router)} skills embedded in {embed_s:.0f} s", flush=True)
    rows: dict[str, dict] = {}
    for method in ("bm25", "dense", "hybrid"):
        rows[method] = quality(router, test_q, method)
    router.reranker = CrossEncoderReranker.from_base("minilm", seed=0)
    rows["rerank (untrained head)"] = quality(router, test_q, "rerank")
    labelled = [TrainQuery(q.query, q.positive, "full") for q in train_q]
    training = {}
    for loss in ("listwise", "pointwise"):
        config = TrainConfig(loss=loss, time_budget_s=None, max_steps=train_steps, seed=0, labelled_repeat=4)
        print(f"training the {loss} reranker ({train_steps} steps)", flush=True)
        reranker, stats = train_reranker(router, labelled, config)
        training[loss] = {k: v for k, v in stats.items() if k != "config"}
        router.reranker = reranker
        rows[f"rerank ({loss}, trained)"] = quality(router, test_q, "rerank")
        print(f"{loss}: {stats['steps']} steps in {stats['seconds']} s -> {rows[f'rerank ({loss}, trained)']}",
              flush=True)
        if loss == "listwise":
            listwise = reranker
    result["reranker_training"] = training
    result["reranker_training"]["config"] = stats["config"]
    if llm_queries:
        # the LLM judge is slow on CPU: scored on the first test queries, next to dense on the same ones
        sub = test_q[:llm_queries]
        router.reranker = LLMReranker("smollm2-135m")
        result["llm_reranker_subset"] = {"queries": len(sub), "dense": quality(router, sub, "dense"),
                                         "rerank (LLM yes/no, SmolLM2)": quality(router, sub, "rerank")}
    result["quality_test_split"] = rows
    router.reranker = listwise
    print_table("routing quality, held-out test queries", rows, METRIC_COLS + ["ms_per_query"])

    # ---- stage speed -------------------------------------------------------------------------
    stage: dict[str, Any] = {}
    texts = [q.query for q in queries]
    encoder.encode(texts[:8], use_cache=False)
    t = time.perf_counter()
    encoder.encode(texts, use_cache=False)
    stage["encode_batched_qps"] = round(len(texts) / (time.perf_counter() - t), 1)
    lat = []
    for text in texts[:64]:
        t = time.perf_counter()
        encoder.encode([text], use_cache=False)
        lat.append(time.perf_counter() - t)
    stage["encode_single"] = {"qps": round(1 / float(np.mean(lat)), 1), **percentiles(lat)}
    lat = []
    for q in test_q[:16]:
        router.route(q.query, k=5, method="rerank")
        lat.append(router.last_timings["rerank"])
    stage["rerank_top20"] = {"qps": round(1 / float(np.mean(lat)), 2), **percentiles(lat)}
    result["stage_speed"] = stage

    real = router.index.get_vectors(list(router.docs))
    query_vecs = np.concatenate([encoder.encode(texts), embedding_like(real, 1000 - len(texts), seed=7)])
    scale: dict[str, Any] = {}
    all_distractor_texts = [d.to_text() for d in distractor_docs(max(sizes), seed=2)]
    for n in sizes:
        vecs = embedding_like(real, n, seed=n)
        row = {"index": time_index(vecs, query_vecs, "auto"), "exact_numpy": time_exact(vecs, query_vecs)}
        bm25 = BM25Index()
        bm25.add([f"d{i}" for i in range(n)], all_distractor_texts[:n])
        t = time.perf_counter()
        bm25.search(texts, 10)
        bm25_batch = time.perf_counter() - t
        lat = []
        for text in texts[:32]:
            t = time.perf_counter()
            bm25.search([text], 10)
            lat.append(time.perf_counter() - t)
        row["bm25"] = {"batched_qps": round(len(texts) / bm25_batch, 1), **percentiles(lat)}
        scale[f"{n}"] = row
        print(f"{n}: {row}", flush=True)
    result["scale"] = scale

    if scale_1m:
        result["scale_1m"] = scale_1m_sweep(real, query_vecs[:300])
        del real

    result["total_seconds"] = round(time.perf_counter() - started, 1)
    result["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, out)
    speed_rows = {f"{n} skills": {"index kind": r["index"]["kind"], "index q/s (batched)": r["index"]["batched_qps"],
                                   "index q/s (single)": r["index"]["single_qps"],
                                   "recall@10": r["index"]["recall@10_vs_exact"],
                                   "exact q/s (batched)": r["exact_numpy"]["batched_qps"],
                                   "bm25 q/s": r["bm25"]["batched_qps"]} for n, r in scale.items()}
    print_table("index stage speed", speed_rows, list(next(iter(speed_rows.values()))))
    print(f"wrote {out} in {result['total_seconds']} s")
    return result


def main(argv: list[str] | None = None) -> None:
    """Command-line entry."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check that the benchmark runs")
    parser.add_argument("--distractors", type=int, default=3_000, help="real-text distractor skills for quality")
    parser.add_argument("--no-scale-1m", dest="scale_1m", action="store_false")
    parser.add_argument("--llm-queries", type=int, default=4, help="test queries for the LLM judge (0: skip)")
    parser.add_argument("--train-steps", type=int, default=40, help="optimizer steps per trained reranker")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "routing.json"))
    parser.add_argument("--only-1m", action="store_true", help="re-measure only the 1M section into --out")
    args = parser.parse_args(argv)
    if args.only_1m:
        only_1m(args.out, args.distractors)
        return
    run(quick=args.quick, distractors=args.distractors, scale_1m=args.scale_1m, train_steps=args.train_steps,
        out=args.out, llm_queries=args.llm_queries)


if __name__ == "__main__":
    main()
