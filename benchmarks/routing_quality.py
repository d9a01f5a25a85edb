"""Routing quality with 95% intervals: every ranker and teacher, Margin-MSE students, an app-suite set and
routing Sokoban levels by layout.

Run: ``python benchmarks/routing_quality.py`` (``--quick`` for a smoke run); writes
``benchmarks/results/routing_quality.json``. Sized for a few minutes of 2 busy CPU cores: small
training budgets (``--train-steps`` per cross-encoder, ``--distill-steps`` per student) and 1,000
distractors, so the numbers are what a short CPU run reaches, not what the methods can reach.

1. **Held-out split** (:mod:`retriever.bench_corpus`: 64 labelled skills + distractors; the *test*
   queries, which no model trains on): BM25, dense (MiniLM), dense with skill bodies removed, three
   cross-encoder teachers trained with different seeds and query views (teacher 0 is the listwise
   reranker of ``skillkit router train-reranker``), their ensemble (mean of per-query z-scores),
   the cross-encoder and the bi-encoder distilled from the ensemble with Margin-MSE, and the full
   router (distilled bi-encoder, then the distilled cross-encoder). Hit@1 and MRR@10 with 95%
   bootstrap intervals over queries, the paired difference to dense, and single-query latency p50/p95.
2. **App suite** (``environments/apps``), data none of these models was tuned on: one skill per
   *train* scenario summarised (``heuristic_summary``) from the episodes of its reference solutions
   on variants 1-2 (reference solutions are fine here: this measures retrieval, no student is
   taught with these skills), queried with the agent's first-turn query of variants 3-5 of the same
   scenarios (gold: that scenario's skill). The models of section 1 are used as they are.
3. **Sokoban by layout**: one skill per train level (the summary of the solver's episode on it),
   queried with each test level's first-turn query; gold = the skill of the nearest train level by
   layout (:func:`environments.sokoban.routing.layout_distance`, ties all count). Today's query
   (instruction + observation, skills without routing text) against the environment's routing query
   (the layout as cell tokens, matched against the skills' routing text).
4. **Query-likelihood teacher** (``--sections upr``, the held-out split of section 1): UPR under the
   embedded SmolLM2 (:class:`retriever.rerank.QueryLikelihoodReranker`) reranking the dense top-20
   alone and mixed with the dense prior (the teacher), and the Margin-MSE bi-encoder distilled from
   that teacher, alone and under it. No training on the test queries; ~30 minutes on 2 cores.
5. **Fine-tuned dense stage** (``--sections finetune``): the bi-encoder fine-tuned on the train split's
   labelled queries (``skillkit router train-encoder``), one model per ``--seeds``, on the held-out split,
   on the labelled skills alone (no distractors), skill-disjoint (trained on the queries of half the
   skills, tested on the other half's), under a reranker trained behind it, and on the app-suite set
   (as trained on the held-out split, and trained on the apps' own train variants).
6. **Zero-shot second stages** (``--sections zeroshot``, the held-out split): what the local models give
   with no training at all. Late interaction (ColBERT-style MaxSim over MiniLM's token vectors) reranking
   the dense top-20, alone and mixed with the dense prior; and the query rewritten by SmolLM2 into an
   app action (HyDE-style), routed densely alone and appended to the query (latency counts the rewrite).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from environments.base import run_expert_episode  # noqa: E402
from environments.episodes import episode_start  # noqa: E402
from environments.sokoban.env import SokobanEnv  # noqa: E402
from environments.sokoban.level import Level  # noqa: E402
from environments.sokoban.routing import layout_distance  # noqa: E402
from retriever.bench_corpus import core_docs, distractor_docs, labelled_queries  # noqa: E402
from retriever.docs import RouterDoc  # noqa: E402
from retriever.encoders import get_encoder  # noqa: E402
from retriever.evaluation import rank_of  # noqa: E402
from skillkit.core.fileio import atomic_write_text  # noqa: E402
from skillkit.core.stats import bootstrap_mean, paired_comparison  # noqa: E402

RESULT = ROOT / "benchmarks" / "results" / "routing_quality.json"
SECTIONS = ("heldout", "apps", "sokoban", "upr", "finetune", "zeroshot")
#: where each section's result goes in the JSON
SECTION_KEYS = {"heldout": "heldout", "apps": "apps", "sokoban": "sokoban_layout", "upr": "query_likelihood",
                "finetune": "encoder_finetune", "zeroshot": "zero_shot"}


def percentiles(samples: Sequence[float]) -> dict[str, float]:
    """p50/p95 in milliseconds."""
    arr = np.asarray(samples) * 1e3
    return {"p50_ms": round(float(np.percentile(arr, 50)), 2), "p95_ms": round(float(np.percentile(arr, 95)), 2)}


def evaluate(router: Any, queries: Sequence[str], gold: Sequence[set[str]], method: str, k: int = 20) -> dict:
    """Route each query alone (so latency is per query): per-query hit@1 / reciprocal rank@10 / hit@10,
    their means with 95% bootstrap intervals, and latency p50/p95."""
    hits, rr, r10, lat = [], [], [], []
    for query, good in zip(queries, gold):
        t = time.perf_counter()
        ranking = [r.id for r in router.route(query, k=k, method=method)]
        lat.append(time.perf_counter() - t)
        rank = min((rank_of(ranking, g) or 10**9) for g in good)
        hits.append(float(rank == 1))
        rr.append(1.0 / rank if rank <= 10 else 0.0)
        r10.append(float(rank <= 10))
    return {"per_query_hit@1": hits, "per_query_rr@10": rr,
            "hit@1": bootstrap_mean(hits).as_dict(), "mrr@10": bootstrap_mean(rr).as_dict(),
            "recall@10": bootstrap_mean(r10).as_dict(), "latency": percentiles(lat), "method": router.last_method}


def compare(rows: dict[str, dict], baseline: str) -> None:
    """Add each row's paired Hit@1 difference to ``baseline`` (95% interval) in place."""
    base = rows[baseline]["per_query_hit@1"]
    for name, row in rows.items():
        if name != baseline:
            row[f"hit@1_minus_{baseline}"] = paired_comparison(base, row["per_query_hit@1"]).as_dict()


def fmt(est: dict) -> str:
    """``0.531 [0.406, 0.656]``."""
    return f"{est['mean']:.3f} [{est['low']:.3f}, {est['high']:.3f}]"


def print_rows(title: str, rows: dict[str, dict]) -> None:
    """One line per method: Hit@1, MRR@10, the paired difference to its baseline (see :func:`compare`), latency."""
    print(f"\n{title}")
    for name, row in rows.items():
        diff = next((v for k, v in row.items() if k.startswith("hit@1_minus_")), None)
        d = f"  diff {fmt(diff['diff'])}" if diff else ""
        print(f"  {name:40s} hit@1 {fmt(row['hit@1'])}  mrr@10 {fmt(row['mrr@10'])}{d}  "
              f"p50 {row['latency']['p50_ms']} ms p95 {row['latency']['p95_ms']} ms", flush=True)


def without_body(docs: Sequence[RouterDoc]) -> list[RouterDoc]:
    """The body-removed ablation: name and description only."""
    return [RouterDoc(id=d.id, name=d.name, description=d.description, tier=d.tier, category=d.category)
            for d in docs]


# ---- 1. held-out split ---------------------------------------------------------------------------
def heldout_split(distractors: int, quick: bool) -> tuple[list[RouterDoc], Any, list[str], list[set[str]], list, dict]:
    """The held-out split: (docs, dense router over them, test queries, their gold ids, the train split's
    labelled queries as reranker training queries, corpus info)."""
    from retriever.encoders import Encoder
    from retriever.router import Router
    from retriever.train_reranker import TrainQuery

    docs = core_docs() + list(distractor_docs(distractors, seed=1))
    queries = labelled_queries()
    labelled = [TrainQuery(q.query, q.positive, "full") for q in queries if q.split == "train"]
    test_q = [q for q in queries if q.split == "test"][: 8 if quick else None]
    t = time.perf_counter()
    router = Router.from_docs(docs, encoder=Encoder("minilm"))
    info: dict[str, Any] = {"skills": len(router), "labelled_skills": len(core_docs()), "distractors": distractors,
                            "test_queries": len(test_q), "embed_seconds": round(time.perf_counter() - t, 1)}
    print(f"held-out: {len(router)} skills embedded in {info['embed_seconds']} s", flush=True)
    return docs, router, [q.query for q in test_q], [{q.positive} for q in test_q], labelled, info


def teacher_sample(router: Any, labelled: Sequence[Any], teacher_queries: int) -> list[Any]:
    """The queries a teacher scores for Margin-MSE: the synthetic queries of every labelled skill, a random
    ``teacher_queries`` of the distractors' and the train split's labelled queries."""
    from retriever.train_reranker import synthesize_queries

    rng = random.Random(0)
    core_ids = {d.id for d in core_docs()}
    synth = synthesize_queries(list(router.docs.values()))
    pool = [q for q in synth if q.positive not in core_ids]
    return ([q for q in synth if q.positive in core_ids] + rng.sample(pool, min(len(pool), teacher_queries))
            + list(labelled))


def heldout(distractors: int, train_steps: int, distill_steps: int, teacher_queries: int, quick: bool,
            out_dir: Path) -> tuple[dict, dict[str, Any]]:
    """Section 1; returns its result and the trained models (for the other sections)."""
    from retriever.distill import DistillConfig, distill, score_triples
    from retriever.encoders import Encoder
    from retriever.router import Router
    from retriever.teachers import EnsembleTeacher, train_teachers
    from retriever.train_reranker import TrainConfig

    docs, router, texts, gold, labelled, info = heldout_split(distractors, quick)
    rows: dict[str, dict] = {}
    for method in ("bm25", "dense"):
        rows[method] = evaluate(router, texts, gold, method)
    bodiless = Router.from_docs(without_body(docs), encoder=router.encoder)
    rows["dense, body removed"] = evaluate(bodiless, texts, gold, "dense")

    config = TrainConfig(max_steps=train_steps, time_budget_s=None, labelled_repeat=4)
    timings: dict[str, float] = {}
    t = time.perf_counter()
    teachers = train_teachers(router, 3, labelled, config)
    timings["train_3_teachers_s"] = round(time.perf_counter() - t, 1)
    print(f"held-out: 3 cross-encoder teachers trained in {timings['train_3_teachers_s']} s", flush=True)
    names = [f"cross-encoder teacher {i} (seed {m.meta['teacher']['seed']}, views {'+'.join(m.meta['teacher']['views'])})"
             for i, m in enumerate(teachers)]
    names[0] += " = the listwise reranker"
    for name, teacher in zip(names, teachers):
        router.reranker = teacher
        rows[name] = evaluate(router, texts, gold, "rerank")
    ensemble = EnsembleTeacher(teachers, names)
    router.reranker = ensemble
    rows["ensemble teacher (mean z-score of 3)"] = evaluate(router, texts, gold, "rerank")
    router.reranker = teachers[0]
    bodiless.reranker = teachers[0]
    rows["listwise reranker, body removed"] = evaluate(bodiless, texts, gold, "rerank")

    t = time.perf_counter()
    scored = score_triples(router, ensemble, teacher_sample(router, labelled, teacher_queries))
    timings["teacher_scoring_s"] = round(time.perf_counter() - t, 1)
    print(f"held-out: ensemble teacher scored {len(scored)} queries in {timings['teacher_scoring_s']} s", flush=True)
    students: dict[str, Any] = {}
    distill_stats = {}
    for student in ("cross-encoder", "bi-encoder"):
        t = time.perf_counter()
        # every scored query trains (validation_share 0), as when the committed results were measured
        model, stats = distill(router, scored, DistillConfig(student=student, max_steps=distill_steps,
                                                             time_budget_s=None, epochs=50, validation_share=0.0))
        timings[f"distill_{student}_s"] = round(time.perf_counter() - t, 1)
        print(f"held-out: Margin-MSE {student} distilled in {timings[f'distill_{student}_s']} s", flush=True)
        distill_stats[student] = {k: v for k, v in stats.items() if k != "config"}
        students[student] = model
    students["bi-encoder"].save(str(out_dir / "bi-encoder"))
    router.reranker = students["cross-encoder"]
    rows["cross-encoder, Margin-MSE from the ensemble"] = evaluate(router, texts, gold, "rerank")
    t = time.perf_counter()
    dense_mm = Router.from_docs(docs, encoder=Encoder(str(out_dir / "bi-encoder")))
    timings["re_embed_s"] = round(time.perf_counter() - t, 1)
    rows["dense after Margin-MSE (bi-encoder student)"] = evaluate(dense_mm, texts, gold, "dense")
    dense_mm.reranker = students["cross-encoder"]
    rows["full router: Margin-MSE bi-encoder + Margin-MSE cross-encoder"] = evaluate(dense_mm, texts, gold, "rerank")
    dense_mm.reranker = ensemble
    rows["Margin-MSE bi-encoder + ensemble teacher"] = evaluate(dense_mm, texts, gold, "rerank")
    compare(rows, "dense")
    print_rows("held-out test split", rows)
    result = {"corpus": info, "rows": rows, "timings": timings, "distillation": distill_stats,
              "teacher_scored_queries": len(scored),
              "budgets": {"teacher_train_steps": train_steps, "distill_steps": distill_steps,
                          "batch_queries": config.batch_queries, "candidates_reranked": router.candidates}}
    models = {"teachers": teachers, "ensemble": ensemble, "students": students, "encoder": router.encoder,
              "bi_encoder_path": out_dir / "bi-encoder"}
    return result, models


# ---- 2. app suite --------------------------------------------------------------------------------
def apps_routing_set(quick: bool) -> tuple[list[Any], list[str], list[set[str]], list[Any]]:
    """The app-suite routing set: (one skill per train scenario, summarised from the reference-solution
    episodes of its variants 1-2; the first-turn queries of variants 3-5; their gold skill ids; the
    first-turn queries of variants 1-2 as labelled training queries)."""
    from environments.apps.env import AppsEnv
    from retriever.train_reranker import TrainQuery
    from skillkit.skills.summarize import heuristic_summary

    env = AppsEnv()
    by_scenario: dict[str, list[str]] = {}
    for task_id in env.task_ids("train"):
        by_scenario.setdefault(task_id.rsplit("_", 1)[0], []).append(task_id)
    skills, queries, gold, train = [], [], [], []
    for scenario in sorted(by_scenario)[: 6 if quick else None]:
        variants = sorted(by_scenario[scenario], key=lambda x: int(x.rsplit("_", 1)[1]))
        episodes = [e for e in (run_expert_episode(env, v) for v in variants[:2]) if e is not None]
        skill = heuristic_summary(episodes)
        skills.append(skill)
        train += [TrainQuery(episode_start(env, env.reset(v)).query, skill.id) for v in variants[:2]]
        for variant in variants[2:]:
            queries.append(episode_start(env, env.reset(variant)).query)
            gold.append({skill.id})
    env.close()
    return skills, queries, gold, train


def apps_set(models: dict[str, Any], quick: bool) -> dict:
    """Section 2: skills from train scenarios' reference episodes, queried with held-out variants."""
    from retriever.encoders import Encoder
    from retriever.router import Router

    t = time.perf_counter()
    skills, queries, gold, _ = apps_routing_set(quick)
    build_s = round(time.perf_counter() - t, 1)
    print(f"apps: {len(skills)} scenario skills, {len(queries)} held-out variant queries ({build_s} s)", flush=True)
    router = Router.from_docs(skills, encoder=models["encoder"])
    rows: dict[str, dict] = {}
    for method in ("bm25", "dense"):
        rows[method] = evaluate(router, queries, gold, method)
    rows["dense, body removed"] = evaluate(Router.from_docs(without_body(router.docs.values()),
                                                            encoder=models["encoder"]), queries, gold, "dense")
    router.reranker = models["teachers"][0]
    rows["listwise reranker (teacher 0)"] = evaluate(router, queries, gold, "rerank")
    router.reranker = models["ensemble"]
    rows["ensemble teacher"] = evaluate(router, queries, gold, "rerank")
    router.reranker = models["students"]["cross-encoder"]
    rows["cross-encoder, Margin-MSE"] = evaluate(router, queries, gold, "rerank")
    dense_mm = Router.from_docs(skills, encoder=Encoder(str(models["bi_encoder_path"])))
    rows["dense after Margin-MSE"] = evaluate(dense_mm, queries, gold, "dense")
    dense_mm.reranker = models["students"]["cross-encoder"]
    rows["full router: Margin-MSE bi-encoder + Margin-MSE cross-encoder"] = evaluate(dense_mm, queries, gold, "rerank")
    compare(rows, "dense")
    print_rows("app suite: held-out variants of train scenarios", rows)
    return {"skills": len(skills), "queries": len(queries), "build_seconds": build_s,
            "skill_source": "heuristic_summary of the reference-solution episodes of variants 1-2 of each train "
                            "scenario", "query": "the agent's first-turn routing query of variants 3-5",
            "rows": rows}


# ---- 1b. query likelihood (UPR) teacher ----------------------------------------------------------
def query_likelihood(distractors: int, distill_steps: int, teacher_queries: int, quick: bool, out_dir: Path) -> dict:
    """Section ``upr``: the zero-shot query-likelihood teacher (SmolLM2) on the held-out split, alone and
    with the dense prior, and the Margin-MSE bi-encoder distilled from it (alone and under the teacher)."""
    from retriever.distill import DistillConfig, distill, score_triples
    from retriever.encoders import Encoder
    from retriever.rerank import QueryLikelihoodReranker
    from retriever.router import Router

    docs, router, texts, gold, labelled, info = heldout_split(distractors, quick)
    rows = {"dense": evaluate(router, texts, gold, "dense")}
    upr = QueryLikelihoodReranker("smollm2-135m")
    upr.prior_weight = 0.0
    router.reranker = upr
    rows["query likelihood (SmolLM2-135M) alone"] = evaluate(router, texts, gold, "rerank")
    upr.prior_weight = 1.0
    rows["query likelihood + dense prior (mean z-score) = the teacher"] = evaluate(router, texts, gold, "rerank")
    timings: dict[str, float] = {}
    t = time.perf_counter()
    scored = score_triples(router, upr, teacher_sample(router, labelled, teacher_queries)[: 16 if quick else None])
    timings["teacher_scoring_s"] = round(time.perf_counter() - t, 1)
    print(f"upr: teacher scored {len(scored)} queries in {timings['teacher_scoring_s']} s", flush=True)
    t = time.perf_counter()
    student, stats = distill(router, scored, DistillConfig(student="bi-encoder", max_steps=distill_steps,
                                                           time_budget_s=None, epochs=50))
    timings["distill_bi-encoder_s"] = round(time.perf_counter() - t, 1)
    student.save(str(out_dir / "upr-bi-encoder"))
    dense_mm = Router.from_docs(docs, encoder=Encoder(str(out_dir / "upr-bi-encoder")))
    rows["dense after Margin-MSE from the query-likelihood teacher"] = evaluate(dense_mm, texts, gold, "dense")
    dense_mm.reranker = upr
    rows["full router: that bi-encoder + the query-likelihood teacher"] = evaluate(dense_mm, texts, gold, "rerank")
    compare(rows, "dense")
    print_rows("held-out test split, query-likelihood teacher", rows)
    return {"corpus": info, "rows": rows, "timings": timings, "teacher_scored_queries": len(scored),
            "distillation": {k: v for k, v in stats.items() if k != "config"},
            "budgets": {"distill_steps": distill_steps, "candidates_reranked": router.candidates}}


# ---- 1c. the dense stage fine-tuned on labelled queries ------------------------------------------
def merge_seeds(runs: Sequence[dict]) -> dict:
    """One row from the same evaluation under several seeds: per-query outcomes as (seeds, queries)
    matrices, means with intervals over queries and seeds, each seed's Hit@1, pooled latency."""
    hits = [r["per_query_hit@1"] for r in runs]
    rr = [r["per_query_rr@10"] for r in runs]
    return {"per_query_hit@1": hits, "per_query_rr@10": rr, "hit@1": bootstrap_mean(hits).as_dict(),
            "mrr@10": bootstrap_mean(rr).as_dict(), "per_seed_hit@1": [round(float(np.mean(h)), 4) for h in hits],
            "latency": {k: round(float(np.mean([r["latency"][k] for r in runs])), 2) for k in ("p50_ms", "p95_ms")},
            "method": runs[0]["method"]}


def finetuned_encoder(distractors: int, train_steps: int, seeds: Sequence[int], quick: bool) -> dict:
    """Section ``finetune``: the bi-encoder fine-tuned on the train split's labelled queries
    (:func:`retriever.train_encoder.train_encoder`, the CLI's defaults), one model per seed, on the held-out
    split; on the labelled skills alone (no distractors, which never have labelled queries, so a model
    cannot win by learning that labelled skills are the answers); skill-disjoint (2 folds: trained on
    half the skills' queries, tested on the other half's; with and without distractors); under a listwise reranker trained behind it
    (the full router); and on the app-suite set, as trained on the held-out split (not tuned on the
    apps) and trained on the apps' own train variants."""
    from retriever.encoders import Encoder
    from retriever.router import Router
    from retriever.train_encoder import EncoderTrainConfig, train_encoder
    from retriever.train_reranker import TrainConfig, train_reranker

    docs, router, texts, gold, labelled, info = heldout_split(distractors, quick)
    core = core_docs()
    core_router = Router.from_docs(core, encoder=router.encoder)
    t = time.perf_counter()
    app_skills, app_queries, app_gold, app_train = apps_routing_set(quick)
    app_router = Router.from_docs(app_skills, encoder=router.encoder)
    print(f"finetune: app set built in {time.perf_counter() - t:.1f} s", flush=True)
    runs: dict[str, list[dict]] = {}
    stats: dict[str, list[dict]] = {"held-out split": [], "app suite": []}

    def add(name: str, row: dict) -> None:
        runs.setdefault(name, []).append(row)

    def tuned(on: Any, queries: Sequence[Any], seed: int, key: str | None = None) -> Encoder:
        model, st = train_encoder(on, queries, EncoderTrainConfig(seed=seed, max_steps=2 if quick else None))
        if key is not None:
            stats[key].append({k: v for k, v in st.items() if k != "config"})
        return Encoder(model)

    # the untuned routers are deterministic: evaluated once, their rows stand for every seed (and, query by
    # query, for the skill-disjoint baselines: each test query is in exactly one fold's test half)
    baselines = {"dense": evaluate(router, texts, gold, "dense"),
                 "labelled skills only: dense": evaluate(core_router, texts, gold, "dense"),
                 "apps: dense": evaluate(app_router, app_queries, app_gold, "dense")}
    baselines["skill-disjoint: dense"] = baselines["dense"]
    baselines["skill-disjoint, labelled skills only: dense"] = baselines["labelled skills only: dense"]
    for seed in seeds:
        t = time.perf_counter()
        for name, row in baselines.items():
            add(name, row)
        encoder = tuned(router, labelled, seed, "held-out split")
        ft = Router.from_docs(docs, encoder=encoder)
        add("dense, fine-tuned", evaluate(ft, texts, gold, "dense"))
        add("labelled skills only: dense, fine-tuned", evaluate(Router.from_docs(core, encoder=encoder), texts, gold,
                                                                "dense"))
        ft.reranker, _ = train_reranker(ft, labelled, TrainConfig(max_steps=train_steps, time_budget_s=None,
                                                                  labelled_repeat=4, seed=seed))
        add("full router: fine-tuned dense + listwise reranker trained behind it", evaluate(ft, texts, gold, "rerank"))
        add("apps: dense, fine-tuned on the held-out split (not on the apps)",
            evaluate(Router.from_docs(app_skills, encoder=encoder), app_queries, app_gold, "dense"))
        app_encoder = tuned(app_router, app_train, seed, "app suite")
        add("apps: dense, fine-tuned on the apps' train variants",
            evaluate(Router.from_docs(app_skills, encoder=app_encoder), app_queries, app_gold, "dense"))
        # skill-disjoint: the test queries of skills whose labelled queries were not trained on
        ids = sorted(set().union(*gold))
        random.Random(seed).shuffle(ids)
        folds = [set(ids[::2]), set(ids[1::2])]
        # each test query is answered by the model of the fold that did not train on its skill; outcomes are
        # kept in query order so the seeds' columns line up
        disjoint: dict[str, dict[str, list[float]]] = {}
        latency: dict[str, list[dict[str, float]]] = {}
        for fold in range(2):
            train_skills, test_skills = folds[fold], folds[1 - fold]
            encoder = tuned(router, [q for q in labelled if q.positive in train_skills], seed)
            pick = [i for i, g in enumerate(gold) if g & test_skills]
            q_texts, q_gold = [texts[i] for i in pick], [gold[i] for i in pick]
            for name, on in (("skill-disjoint: dense, fine-tuned", Router.from_docs(docs, encoder=encoder)),
                             ("skill-disjoint, labelled skills only: dense, fine-tuned",
                              Router.from_docs(core, encoder=encoder))):
                row = evaluate(on, q_texts, q_gold, "dense")
                out = disjoint.setdefault(name, {"per_query_hit@1": [0.0] * len(texts), "per_query_rr@10": [0.0] * len(texts)})
                for key in out:
                    for i, value in zip(pick, row[key]):
                        out[key][i] = value
                latency.setdefault(name, []).append(row["latency"])
        for name, row in disjoint.items():
            # the folds route half the queries each: their latency percentiles are averaged
            lat = {k: round(float(np.mean([f[k] for f in latency[name]])), 2) for k in ("p50_ms", "p95_ms")}
            add(name, {**row, "latency": lat, "method": "dense"})
        print(f"finetune: seed {seed} done in {time.perf_counter() - t:.1f} s", flush=True)
    rows = {name: merge_seeds(r) for name, r in runs.items()}
    for prefix in ("labelled skills only: ", "skill-disjoint: ", "skill-disjoint, labelled skills only: ", "apps: "):
        group = {name: row for name, row in rows.items() if name.startswith(prefix)}
        compare(group, prefix + "dense")
    compare({name: row for name, row in rows.items() if ":" not in name or name.startswith("full")}, "dense")
    print_rows(f"held-out split and app suite, encoder fine-tuned on labelled queries (seeds {list(seeds)})", rows)
    return {"corpus": info, "seeds": list(seeds), "rows": rows, "training": stats,
            "app_set": {"skills": len(app_skills), "queries": len(app_queries), "train_queries": len(app_train)},
            "budgets": {"reranker_train_steps": train_steps, "candidates_reranked": router.candidates}}


# ---- 1d. zero-shot second stages -----------------------------------------------------------------
class MaxSimReranker:
    """Late interaction with no training: mean over query tokens of the best cosine to a skill token
    (MiniLM's token vectors), z-scored over the candidates, plus ``prior_weight`` x the z-scored dense score.
    A skill's token vectors are kept once computed, as a late-interaction index would hold them."""

    def __init__(self, model: Any, prior_weight: float) -> None:
        self.model = model
        self.prior_weight = prior_weight
        self.doc_tokens: dict[str, Any] = {}

    def _tokens(self, texts: Sequence[str]) -> list[Any]:
        import torch

        out = self.model.encode(list(texts), output_value="token_embeddings", convert_to_numpy=False)
        return [torch.nn.functional.normalize(t[1:-1] if len(t) > 2 else t, dim=-1) for t in out]  # no [CLS]/[SEP]

    def score(self, query: str, docs: Sequence[RouterDoc], prior: np.ndarray | None = None) -> np.ndarray:
        from retriever.rerank import zscore

        q = self._tokens([query])[0]
        new = [d for d in docs if d.id not in self.doc_tokens]
        if new:
            self.doc_tokens.update(zip([d.id for d in new], self._tokens([d.to_text() for d in new])))
        maxsim = np.array([float((q @ self.doc_tokens[d.id].T).max(dim=1).values.mean()) for d in docs])
        return zscore(maxsim) + (self.prior_weight * zscore(prior) if prior is not None else 0.0)


REWRITE_PROMPT = ("Request: {query}\nWrite one short sentence describing the app action (which app, which "
                  "operation) that does this.")


class RewrittenQueryRouter:
    """Routes the query as SmolLM2 rewrites it into an app action (HyDE-style), or the query with the rewrite
    appended; the rewrite is part of each query's routing time."""

    def __init__(self, router: Any, llm: Any, append: bool) -> None:
        self.router, self.llm, self.append = router, llm, append
        self.last_method: str | None = None

    def route(self, query: str, k: int, method: str) -> list[Any]:
        from skillkit.core.llm.base import SamplingParams

        request = [{"role": "system", "content": "You name the phone or computer app action a request needs."},
                   {"role": "user", "content": REWRITE_PROMPT.format(query=query)}]
        text = self.llm.generate([request], SamplingParams(max_new_tokens=32, temperature=0.0))[0].text
        rewrite = (text.strip().splitlines() or [""])[0].strip() or query
        results = self.router.route(f"{query} {rewrite}" if self.append else rewrite, k=k, method=method)
        self.last_method = f"{method} of the SmolLM2 rewrite"
        return results


def zero_shot(distractors: int, quick: bool) -> dict:
    """Section ``zeroshot``: untrained second stages from the local models on the held-out split."""
    from skillkit.core.llm.factory import make_backend

    docs, router, texts, gold, labelled, info = heldout_split(distractors, quick)
    rows = {"dense": evaluate(router, texts, gold, "dense")}
    for weight, name in ((0.0, "late interaction (MiniLM token MaxSim) alone"),
                         (1.0, "late interaction + dense prior (mean z-score)")):
        router.reranker = MaxSimReranker(router.encoder.model, weight)
        rows[name] = evaluate(router, texts, gold, "rerank")
    llm = make_backend("hf", "smollm2-135m")
    rows["SmolLM2 rewrite of the query (HyDE-style), dense"] = evaluate(
        RewrittenQueryRouter(router, llm, append=False), texts, gold, "dense")
    rows["query + its SmolLM2 rewrite, dense"] = evaluate(RewrittenQueryRouter(router, llm, append=True), texts, gold,
                                                           "dense")
    compare(rows, "dense")
    print_rows("held-out test split, zero-shot second stages", rows)
    return {"corpus": info, "rows": rows, "budgets": {"candidates_reranked": router.candidates,
                                                      "rewrite_max_new_tokens": 32}}


# ---- 3. Sokoban by layout ------------------------------------------------------------------------
def sokoban_layout(encoder: Any, quick: bool) -> dict:
    """Section 3: the share of test levels routed to the skill of their nearest train level by layout."""
    from retriever.router import Router
    from skillkit.skills.routing_text import attach_routing_text
    from skillkit.skills.summarize import heuristic_summary

    env = SokobanEnv(variant="2box")
    train_ids = env.task_ids("train")[: 24 if quick else None]
    test_ids = env.task_ids("test")[: 8 if quick else None]
    t = time.perf_counter()
    episodes = [e for e in (run_expert_episode(env, task) for task in train_ids) if e is not None]
    skills = [heuristic_summary(e) for e in episodes]
    plain = [s.model_copy() for s in skills]
    attached = attach_routing_text(skills, episodes)
    build_s = round(time.perf_counter() - t, 1)
    levels = {task: Level.from_text(env.level_grid(task)) for task in train_ids}
    skill_of = {s.task_id: s.id for s in skills}
    gold, today_q, layout_q, gold_sizes = [], [], [], []
    for task in test_ids:
        level = Level.from_text(env.level_grid(task))
        dist = {tr: layout_distance(level, lv) for tr, lv in levels.items() if tr in skill_of}
        best = min(dist.values())
        nearest = {skill_of[tr] for tr, d in dist.items() if d == best}
        gold.append(nearest)
        gold_sizes.append(len(nearest))
        start = episode_start(env, env.reset(task))
        today_q.append(f"{start.task_instruction}\n{start.observation}")
        layout_q.append(start.query)
    today = Router.from_docs(plain, encoder=encoder)
    routed = Router.from_docs(skills, encoder=encoder)
    rows = {"today: instruction + observation, dense (the agent's default)": evaluate(today, today_q, gold, "dense"),
            "today: instruction + observation, bm25": evaluate(today, today_q, gold, "bm25"),
            "routing query (layout tokens), dense": evaluate(routed, layout_q, gold, "dense"),
            "routing query (layout tokens), bm25": evaluate(routed, layout_q, gold, "bm25"),
            "routing query (layout tokens), hybrid": evaluate(routed, layout_q, gold, "hybrid")}
    baseline = "today: instruction + observation, dense (the agent's default)"
    compare(rows, baseline)
    print_rows("Sokoban test levels -> skill of the nearest train level", rows)
    distinct_today = len({r for r in (today.route(q, k=1, method="dense")[0].id for q in today_q)})
    return {"train_level_skills": len(skills), "skills_with_routing_text": attached, "test_levels": len(test_ids),
            "mean_nearest_levels_per_test_level": round(float(np.mean(gold_sizes)), 2),
            "chance_hit@1": round(float(np.mean(gold_sizes)) / len(skills), 4),
            "distinct_skills_routed_at_rank_1_today_dense": distinct_today, "build_seconds": build_s,
            "skill_source": "heuristic_summary of the solver's episode on each train level", "rows": rows}


PLOT_SECTIONS = (("heldout", "held-out split: teachers and Margin-MSE students"),
                 ("query_likelihood", "held-out split: query-likelihood teacher"),
                 ("encoder_finetune", "dense stage fine-tuned on labelled queries (3 seeds)"),
                 ("apps", "app suite (not tuned on)"),
                 ("zero_shot", "held-out split: zero-shot second stages (MaxSim, SmolLM2 rewrite)"))


def plot_differences(result: dict, path: Path) -> Path:
    """One panel per section: every row's paired Hit@1 difference to its baseline with its 95% interval,
    the zero line and the issue's +10-point target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = []
    for key, title in PLOT_SECTIONS:
        rows = result.get(key, {}).get("rows", {})
        diffs = [(name, next(v["diff"] for k, v in row.items() if k.startswith("hit@1_minus_")))
                 for name, row in rows.items() if any(k.startswith("hit@1_minus_") for k in row)]
        if diffs:
            panels.append((title, diffs))
    if not panels:
        raise ValueError("no section with paired differences to plot")
    heights = [max(2.0, 0.32 * len(d) + 0.9) for _, d in panels]
    extent = [100 * d[k] for _, diffs in panels for _, d in diffs for k in ("low", "high")]
    xlim = (min(-15.0, min(extent)) - 2, max(25.0, max(extent)) + 2)
    fig, axes = plt.subplots(len(panels), 1, figsize=(10, sum(heights)), squeeze=False,
                             gridspec_kw={"height_ratios": heights})
    for ax, (title, diffs) in zip(axes[:, 0], panels):
        names = [n if len(n) <= 70 else n[:67] + "..." for n, _ in diffs]
        means = np.array([d["mean"] for _, d in diffs]) * 100
        low = np.maximum(0, means - np.array([d["low"] for _, d in diffs]) * 100)
        high = np.maximum(0, np.array([d["high"] for _, d in diffs]) * 100 - means)
        y = np.arange(len(diffs))[::-1]
        ax.errorbar(means, y, xerr=[low, high], fmt="o", color="#2b6a99", capsize=3)
        ax.axvline(0, color="black", lw=0.8)
        ax.axvline(10, color="#c0392b", lw=0.8, ls="--", label="target +10")
        ax.set_yticks(y, names, fontsize=8)
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_xlim(*xlim)
    axes[-1, 0].set_xlabel("Hit@1 minus the section's baseline, points (paired, 95% bootstrap interval)")
    axes[0, 0].legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def run(quick: bool = False, distractors: int = 1_000, train_steps: int = 30, distill_steps: int = 60,
        teacher_queries: int = 200, out: Path | str = RESULT, sections: Sequence[str] = SECTIONS,
        work_dir: Path | None = None, threads: int = 2, seeds: Sequence[int] = (0, 1, 2)) -> dict:
    """Run the sections and write the JSON result."""
    import tempfile

    import torch

    torch.manual_seed(0)
    torch.set_num_threads(min(threads, os.cpu_count() or 1))
    if quick:
        distractors, train_steps, distill_steps, teacher_queries, seeds = 100, 2, 2, 10, (0,)
    started = time.perf_counter()
    result: dict[str, Any] = {
        "command": "python benchmarks/routing_quality.py" + (" --quick" if quick else "")
        + ("" if tuple(sections) == SECTIONS else " --sections " + " ".join(sections))
        + "".join(f" --{k} {v}" for k, v in (("distractors", distractors), ("train-steps", train_steps),
                                             ("distill-steps", distill_steps), ("teacher-queries", teacher_queries),
                                             ("threads", threads)) if not quick)
        + (" --seeds " + " ".join(map(str, seeds)) if "finetune" in sections and not quick else ""),
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "python": platform.python_version(), "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]},
        "intervals": "95% bootstrap over queries (skillkit.core.stats.bootstrap_mean / paired_comparison)",
    }
    if "apps" in sections and "heldout" not in sections:
        raise ValueError("the apps section uses the models trained in the heldout section: run both")
    out = Path(out)
    if out.exists():  # sections not run this time keep their earlier results
        result = {**json.loads(out.read_text()), **result}
    result["sections_run"] = []

    def save(section: str) -> None:
        """Written after every section, so a later failure keeps what was measured; each section keeps the
        command that measured it (a later run of other sections replaces the top-level one)."""
        result[SECTION_KEYS[section]]["command"] = result["command"]
        result["sections_run"].append(section)
        result["total_seconds"] = round(time.perf_counter() - started, 1)
        result["machine"]["load_avg_at_end"] = [round(x, 2) for x in os.getloadavg()]
        atomic_write_text(out, json.dumps(result, indent=1))
        plot_differences(result, out.with_suffix(".png"))
        print(f"wrote {out} and its plot ({section}) at {result['total_seconds']} s", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(work_dir or tmp)
        models: dict[str, Any] = {"encoder": get_encoder("minilm")}
        if "heldout" in sections:
            result["heldout"], models = heldout(distractors, train_steps, distill_steps, teacher_queries, quick, work)
            save("heldout")
        if "apps" in sections:
            result["apps"] = apps_set(models, quick)
            save("apps")
        if "upr" in sections:
            result["query_likelihood"] = query_likelihood(distractors, distill_steps, teacher_queries, quick, work)
            save("upr")
        if "finetune" in sections:
            result["encoder_finetune"] = finetuned_encoder(distractors, train_steps, seeds, quick)
            save("finetune")
        if "zeroshot" in sections:
            result["zero_shot"] = zero_shot(distractors, quick)
            save("zeroshot")
        if "sokoban" in sections:
            result["sokoban_layout"] = sokoban_layout(models["encoder"], quick)
            save("sokoban")
    return result


def main(argv: list[str] | None = None) -> None:
    """Command-line entry."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, to check that the benchmark runs")
    parser.add_argument("--distractors", type=int, default=1_000)
    parser.add_argument("--train-steps", type=int, default=30, help="optimizer steps per cross-encoder teacher")
    parser.add_argument("--distill-steps", type=int, default=60, help="optimizer steps per Margin-MSE student")
    parser.add_argument("--teacher-queries", type=int, default=200,
                        help="synthetic distractor queries scored by the teacher (plus all labelled skills')")
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS)
    parser.add_argument("--out", default=str(RESULT))
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1: leave a core to another job)")
    parser.add_argument("--plot", action="store_true", help="only redraw the plot (.png next to --out) from the JSON")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="fine-tuning seeds of the finetune section (one model per seed)")
    args = parser.parse_args(argv)
    if args.plot:
        print(f"wrote {plot_differences(json.loads(Path(args.out).read_text()), Path(args.out).with_suffix('.png'))}")
        return
    run(quick=args.quick, distractors=args.distractors, train_steps=args.train_steps,
        distill_steps=args.distill_steps, teacher_queries=args.teacher_queries, out=args.out, sections=args.sections,
        threads=args.threads, seeds=args.seeds)


if __name__ == "__main__":
    main()
