"""Can the cross-encoder learn more than its dense prior? Reranker training variants on the held-out split.

``routing_quality.py`` found every cross-encoder teacher tied with the MiniLM dense stage (the same
top-1 on all 64 held-out queries): its training queries are mostly the skills' own descriptions and
names, which the dense prior already ranks right, so the prior explains the labels and the text
head has nothing to learn. This trains the listwise reranker of ``skillkit router train-reranker``
on the same held-out corpus with the prior dropped for a share of the training queries
(``prior_dropout``, ``--prior-dropout`` in the CLI) and with more steps, and reports Hit@1 and MRR@10
with 95% intervals, the paired difference to dense, and the reranker scoring the text alone (prior
weight 0 at inference: what the text head learned).

Run: ``python benchmarks/reranker_training.py`` (``--quick`` for a smoke run); writes
``benchmarks/results/reranker_training.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.routing_quality import compare, evaluate, fmt, print_rows  # noqa: E402
from retriever.bench_corpus import core_docs, distractor_docs, labelled_queries  # noqa: E402
from retriever.encoders import Encoder  # noqa: E402
from retriever.router import Router  # noqa: E402
from retriever.train_reranker import TrainConfig, TrainQuery, train_reranker  # noqa: E402
from skillkit.core.fileio import atomic_write_text  # noqa: E402

RESULT = ROOT / "benchmarks" / "results" / "reranker_training.json"


def run(steps: list[int], dropouts: list[float], distractors: int = 1_000, quick: bool = False,
        out: Path = RESULT) -> dict[str, Any]:
    """Train one reranker per (steps, prior dropout); evaluate each with and without its prior."""
    import torch

    queries = labelled_queries()
    train_q = [TrainQuery(q.query, q.positive, "full") for q in queries if q.split == "train"]
    test_q = [q for q in queries if q.split == "test"][: 8 if quick else None]
    texts, gold = [q.query for q in test_q], [{q.positive} for q in test_q]
    router = Router.from_docs(core_docs() + list(distractor_docs(distractors, seed=1)), encoder=Encoder("minilm"))
    rows: dict[str, dict] = {"dense": evaluate(router, texts, gold, "dense")}
    training: dict[str, Any] = {}
    for n in steps:
        for p in dropouts:
            name = f"reranker {n} steps, prior dropout {p}"
            config = TrainConfig(max_steps=n, time_budget_s=None, labelled_repeat=4, prior_dropout=p)
            t = time.perf_counter()
            reranker, stats = train_reranker(router, train_q, config)
            print(f"{name}: trained in {time.perf_counter() - t:.0f} s, prior weight {stats['prior_weight']}, "
                  f"loss {stats['first_loss']} -> {stats['last_loss']}", flush=True)
            training[name] = stats
            router.reranker = reranker
            rows[name] = evaluate(router, texts, gold, "rerank")
            with torch.no_grad():
                weight = reranker.module.prior_weight.item()
                reranker.module.prior_weight.fill_(0.0)
                rows[f"{name}, text alone (prior weight 0)"] = evaluate(router, texts, gold, "rerank")
                reranker.module.prior_weight.fill_(weight)
    compare(rows, "dense")
    print_rows(f"held-out split: {len(test_q)} test queries, {len(router)} skills", rows, "dense")
    result = {"rows": {k: {m: v for m, v in r.items() if not m.startswith("per_query")} | {
                  "per_query_hit@1": r["per_query_hit@1"]} for k, r in rows.items()},
              "training": training, "steps": steps, "prior_dropouts": dropouts, "distractors": distractors,
              "test_queries": len(test_q), "quick": quick,
              "command": "python benchmarks/reranker_training.py " + " ".join(sys.argv[1:]),
              "machine": {"python": platform.python_version(), "torch_threads": torch.get_num_threads()}}
    atomic_write_text(Path(out), json.dumps(result, indent=1))
    best = max((k for k in rows if k != "dense"), key=lambda k: rows[k]["hit@1"]["mean"])
    print(f"\nbest: {best}: {fmt(rows[best]['hit@1'])} vs dense {fmt(rows['dense']['hit@1'])}; wrote {out}")
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", default="30,150", help="comma-separated optimizer steps per reranker")
    parser.add_argument("--prior-dropouts", default="0,0.5", help="comma-separated prior dropout shares")
    parser.add_argument("--distractors", type=int, default=1_000)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1: leave a core to another job)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check that the benchmark runs")
    parser.add_argument("--out", type=Path, default=RESULT)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    steps = [2] if args.quick else [int(s) for s in args.steps.split(",")]
    run(steps, [float(p) for p in args.prior_dropouts.split(",")], 100 if args.quick else args.distractors,
        args.quick, args.out)


if __name__ == "__main__":
    main()
