"""Router commands: ``route``, ``router train-reranker|train-encoder|teacher-scores|distill``, ``serve`` and ``bench routing``."""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from retriever.distill import DistillConfig, distill, load_teacher_scores, save_teacher_scores, score_triples
from retriever.encoders import default_encoder_path
from retriever.rerank import default_reranker_path, measured_shortfall
from retriever.router import RerankerMissingError, Router
from retriever.teachers import EnsembleTeacher, NoTrainedReranker, default_teachers_path, resolve_teacher
from retriever.teachers import train_teachers as train_teacher_models
from retriever.train_encoder import EncoderTrainConfig, train_encoder
from retriever.train_reranker import (
    NegativeConfig,
    TrainConfig,
    TrainQuery,
    held_out_check,
    hold_out,
    train_reranker,
)
from skillkit.cli.common import console, err_console, fail, friendly_errors, progress, quiet_libraries
from skillkit.core.config import atomic_write_text
from skillkit.core.models import cache_root
from skillkit.skills.bundle import SkillFiles
from skillkit.skills.library import open_skill_source

router_app = typer.Typer(help="Skill routing: train the reranker, score with a teacher, distill.",
                         no_args_is_help=True)
bench_app = typer.Typer(help="Benchmarks that write a JSON result and print a table.", no_args_is_help=True)

METHOD_HELP = ("auto (default: rerank when a trained reranker is available and its held-out check did not find "
               "it falling short of dense, else dense), rerank (an error "
               "without a trained reranker), dense, bm25 or hybrid")
RERANKER_HELP = ("auto (the trained reranker saved next to the library, if any), none, llm (SmolLM2 yes/no), "
                 "upr[:MODEL] (query likelihood under SmolLM2 or another causal LM), openai:MODEL@URL (the "
                 "yes/no judge on an OpenAI-compatible server; key from OPENAI_API_KEY), or the folder of a "
                 "trained reranker")


def _reranker_spec(value: str) -> Any:
    return None if value.lower() == "none" else value


def _load_router(library: Path, reranker: str, index_kind: str, encoder: str) -> Any:
    quiet_libraries()
    # A library folder brings its stored vectors (reused when --encoder is its model); a JSON/JSONL file
    # is embedded through a content-hash cache, so routing the same file again skips the encoding.
    with console.status(f"loading {library} and embedding its skills"):
        return Router.from_library(open_skill_source(library), encoder=encoder, reranker=_reranker_spec(reranker),
                                   index_kind=index_kind, cache_dir=cache_root() / "router-embeddings")


def _jsonl_objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of each non-empty line of a JSONL file; ValueError naming a bad line."""
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{lineno}: invalid JSON ({exc.msg})") from exc
        if not isinstance(data, dict):
            raise ValueError(f"{path}:{lineno}: expected a JSON object")
        yield lineno, data


def _read_query_file(path: Path) -> list[tuple[str, str]]:
    rows = []
    for lineno, data in _jsonl_objects(path):
        if not isinstance(data.get("query"), str) or not data["query"].strip():
            raise ValueError(f"{path}:{lineno}: expected an object with a non-empty 'query'")
        rows.append((str(data.get("id", lineno)), data["query"]))
    if not rows:
        raise ValueError(f"{path}: no queries")
    return rows


def _read_labelled(path: Path, router: Any) -> list[TrainQuery]:
    """Labelled queries from a JSONL of ``{"query", "skill"}`` (skill = id or name), naming a bad line."""
    labels = []
    for lineno, data in _jsonl_objects(path):
        if not isinstance(data.get("query"), str) or "skill" not in data:
            raise ValueError(f"{path}:{lineno}: expected {{\"query\", \"skill\"}}")
        try:
            skill = router.get(str(data["skill"]))
        except KeyError as exc:
            raise ValueError(f"{path}:{lineno}: no skill {data['skill']!r} in the library") from exc
        labels.append(TrainQuery(data["query"], skill.id, "full"))
    if not labels:
        raise ValueError(f"{path}: no labelled queries")
    return labels


@contextmanager
def _step_progress(label: str, verb: str) -> Iterator[Callable[[int, int, float], None]]:
    """A progress bar for a training loop; yields the ``on_step(step, total, loss)`` callback."""
    with progress() as bar:
        task = bar.add_task(label, total=None)

        def on_step(step: int, total: int, loss_value: float) -> None:
            bar.update(task, completed=step, total=total, description=f"{verb} (loss {loss_value:.3f})")

        yield on_step


@friendly_errors
def route_cmd(
    library: Path = typer.Option(..., "--library", "-l", help="Skill library (folder or JSON/JSONL file)."),
    query: str | None = typer.Option(None, "--query", "-q", help="One query to route."),
    queries: Path | None = typer.Option(None, "--queries", help="JSONL of {\"id\", \"query\"} lines."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Where batch results go (default stdout)."),
    k: int = typer.Option(5, "--k", "-k", min=1, help="How many skills to return."),
    method: str = typer.Option("auto", "--method", "-m", help=METHOD_HELP),
    tier: str | None = typer.Option(None, "--tier", help="Only skills of this tier."),
    reranker: str = typer.Option("auto", "--reranker", help=RERANKER_HELP),
    index_kind: str = typer.Option("auto", "--index", help="auto, flat, hnsw, ivf or ivfpq."),
    encoder: str = typer.Option("auto", "--encoder", help="Bi-encoder name or path; auto: the one `skillkit router "
                                "train-encoder` or `distill --student bi-encoder` saved next to the library, "
                                "else the library's own (minilm)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON (a list of {name, score, ...}, best first)."),
) -> None:
    """Route a query (or a JSONL file of queries, with one model load) to the best skills."""
    if (query is None) == (queries is None):
        fail("give exactly one of --query or --queries")
    router = _load_router(library, reranker, index_kind, encoder)
    try:
        router.resolve_method(method)
    except RerankerMissingError:
        fail(f"--method rerank needs a trained reranker and there is none for {library}: train one with "
             f"`skillkit router train-reranker --library {library}` (or use --method auto or dense)")
    if method == "auto" and router.reranker_shortfall is not None:  # on stderr: stdout may carry JSON
        err_console.print(f"[yellow]routing densely: {router.reranker_shortfall}; `--method rerank` uses it "
                      "anyway[/yellow]")
    if query is not None:
        results = router.route(query, k=k, tier=tier, method=method)
        if as_json:
            sys.stdout.write(json.dumps([r.to_dict() for r in results], ensure_ascii=False) + "\n")
            return
        from rich.table import Table

        table = Table(title=f"{query!r} ({router.last_method}, {router.last_timings.get('total', 0) * 1e3:.0f} ms)",
                      caption=f"dense stage: {router.encoder.name}")
        for col in ("rank", "name", "tier", "score", "description"):
            table.add_column(col)
        for r in results:
            table.add_row(str(r.rank), r.name, r.tier or "", f"{r.score:.3f}", r.doc.description[:80])
        console.print(table)
        return
    rows = _read_query_file(queries)
    batch_size = 64
    lines = []
    with progress(transient=True) as bar:
        task = bar.add_task("routing", total=len(rows))
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            results = router.route_batch([q for _, q in chunk], k=k, tier=tier, method=method)
            for (qid, _), res in zip(chunk, results):
                lines.append(json.dumps({"id": qid, "results": [r.to_dict() for r in res]}, ensure_ascii=False))
            bar.advance(task, len(chunk))
    text = "\n".join(lines) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        atomic_write_text(out, text)
        console.print(f"routed {len(rows)} queries with {router.last_method} -> {out}")


@friendly_errors
def train_reranker_cmd(
    library: Path = typer.Option(..., "--library", "-l", help="Skill library (folder or JSON/JSONL file)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (default: next to the library, "
                                    "where `route --reranker auto` finds it)."),
    labelled: Path | None = typer.Option(None, "--queries", help="Optional JSONL of {\"query\", \"skill\"} "
                                         "(skill = id or name) labelled queries."),
    loss: str = typer.Option("listwise", "--loss", help="listwise (softmax CE) or pointwise (BCE ablation)."),
    time_budget: float = typer.Option(240.0, "--time-budget", help="Stop training after this many seconds."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Stop after this many optimizer steps."),
    epochs: int = typer.Option(2, "--epochs", min=1),
    negatives: int = typer.Option(8, "--negatives", min=1, help="Hard negatives per query."),
    prior_dropout: float = typer.Option(0.0, "--prior-dropout", min=0.0, max=1.0,
                                        help="Share of training queries trained without the first-stage "
                                             "prior, so the reranker learns to rank from the text."),
    validation: float = typer.Option(0.1, "--validation", min=0.0, max=0.9,
                                     help="With --queries: share of them held out to compare the reranker's "
                                          "Hit@1 with the dense stage's (0: none)."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Train the cross-encoder reranker on a library (queries synthesised from the skills themselves), behind
    the dense stage routing will use (the library's trained encoder when there is one)."""
    quiet_libraries()
    import torch

    router = _load_router(library, "none", "auto", "auto")
    labels: list[TrainQuery] = []
    held_out: list[TrainQuery] = []
    if labelled is not None:
        labels, held_out = hold_out(_read_labelled(labelled, router), validation, random.Random(seed))
    config = TrainConfig(loss=loss, time_budget_s=time_budget, max_steps=max_steps, epochs=epochs, seed=seed,
                         prior_dropout=prior_dropout, negatives=_negative_config(negatives))
    torch.set_num_threads(max(1, torch.get_num_threads()))
    with _step_progress("training the reranker", "training") as on_step:
        reranker, stats = train_reranker(router, labels, config, on_step=on_step)
    target = out or default_reranker_path(library)
    if held_out:
        # kept with the reranker: `--method auto` routes without it when it did not beat the dense stage here
        reranker.meta["validation"] = check = held_out_check(router, reranker, held_out)
    reranker.save(target)
    console.print(f"trained {stats['steps']} steps on {stats['queries']} queries in {stats['seconds']} s "
                  f"(loss {stats['first_loss']} -> {stats['last_loss']}); saved to {target}")
    if held_out:
        dense, reranked = check["dense"], check["reranked"]
        console.print(f"held-out ({len(held_out)} labelled queries): Hit@1 dense {dense['hit@1']:.0%}, reranked "
                      f"{reranked['hit@1']:.0%}; MRR@10 {dense['mrr@10']:.3f} -> {reranked['mrr@10']:.3f}")
        if measured_shortfall(reranker, router.encoder.name) is not None:
            console.print("[yellow]warning: on held-out labelled queries the reranker does not beat the dense stage: "
                          "`route --method auto` (the default) keeps routing densely, `--method rerank` uses it "
                          "anyway[/yellow]")


@friendly_errors
def train_encoder_cmd(
    library: Path = typer.Option(..., "--library", "-l", help="Skill library (folder or JSON/JSONL file)."),
    labelled: Path = typer.Option(..., "--queries", help="JSONL of {\"query\", \"skill\"} (skill = id or name): "
                                  "queries as users ask them, e.g. from routing logs."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (default: next to the library, "
                                    "LIB/encoder, where `skillkit route` and the agent load the dense stage)."),
    synthetic: bool = typer.Option(False, "--synthetic/--no-synthetic",
                                   help="Also train on each skill's description and name as queries."),
    epochs: int = typer.Option(3, "--epochs", min=1),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Stop after this many optimizer steps."),
    time_budget: float = typer.Option(600.0, "--time-budget", help="Stop training after this many seconds."),
    validation: float = typer.Option(0.1, "--validation", min=0.0, max=0.9,
                                     help="Share of the labelled queries held out to report Hit@1 before and "
                                          "after training (0: none)."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Fine-tune the dense stage's bi-encoder on labelled queries (in-batch softmax, one hard negative each)."""
    config = EncoderTrainConfig(epochs=epochs, max_steps=max_steps, time_budget_s=time_budget, synthetic=synthetic,
                                validation_share=validation, seed=seed)
    config.validate()
    router = _load_router(library, "none", "auto", "minilm")
    labels = _read_labelled(labelled, router)
    with _step_progress("fine-tuning the encoder", "fine-tuning") as on_step:
        model, stats = train_encoder(router, labels, config, on_step=on_step)
    target = out or default_encoder_path(library)
    model.save(str(target))
    console.print(f"fine-tuned the encoder in {stats['steps']} steps on {stats['queries']} queries "
                  f"({stats['seconds']} s, loss {stats['first_loss']} -> {stats['last_loss']}); saved to {target}")
    val = stats["validation"]
    if val["before"] is not None:
        console.print(f"held-out ({val['queries']} labelled queries): Hit@1 over the library "
                      f"{val['before']:.0%} -> {val['after']:.0%}")
        if val["after"] < val["before"]:
            console.print(f"[yellow]warning: fine-tuning lowered held-out Hit@1; delete {target} to route with "
                          "the base encoder again[/yellow]")


def _negative_config(negatives: int) -> Any:
    """Split ``negatives`` hard negatives over the sources: half dense, the rest BM25 / category / random."""
    n_dense = max(1, negatives // 2)
    rest = negatives - n_dense
    return NegativeConfig(n_dense=n_dense, n_bm25=(rest + 1) // 2, n_category=rest // 4,
                          n_random=rest - (rest + 1) // 2 - rest // 4)


@friendly_errors
def teacher_scores_cmd(
    library: Path = typer.Option(..., "--library", "-l", help="Skill library (folder or JSON/JSONL file)."),
    out: Path = typer.Option(..., "--out", "-o", help="JSONL file of teacher scores to write."),
    teacher: list[str] = typer.Option(["auto"], "--teacher", help="auto (the trained reranker next to the library), "
                                      "llm (SmolLM2 yes/no), upr[:MODEL] (query likelihood, mixed with the dense "
                                      "prior), openai:MODEL@URL (a larger model's yes/no on an OpenAI-compatible "
                                      "server), or the folder of a trained reranker; repeat it for an ensemble "
                                      "(mean of per-query normalised scores)."),
    train_teachers: int = typer.Option(0, "--train-teachers", min=0,
                                       help="First train this many cross-encoder teachers (seeds 0.., query views "
                                            "cycled) and ensemble them with the --teacher ones."),
    teachers_dir: Path | None = typer.Option(None, "--teachers-dir", help="Where trained teachers are saved "
                                             "(default: LIB/teachers or LIB.teachers)."),
    time_budget: float = typer.Option(240.0, "--time-budget", help="Seconds of training per trained teacher."),
    negatives: int = typer.Option(8, "--negatives", min=1, help="Hard negatives per query."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Score the mined (query, positive, hard negatives) triples with a teacher, for `router distill`."""
    router = _load_router(library, "none", "auto", "minilm")
    specs = [t for t in teacher if t != "auto"] if train_teachers else list(teacher)
    if train_teachers:
        folder = teachers_dir or default_teachers_path(library)
        config = TrainConfig(time_budget_s=time_budget, seed=seed, negatives=_negative_config(negatives))
        with progress() as bar:
            task = bar.add_task("training teachers", total=train_teachers)
            trained = train_teacher_models(router, train_teachers, config=config, on_teacher=lambda i, _s: bar.advance(task))
        for i, model in enumerate(trained):
            model.save(folder / f"ce-{seed + i}")
            specs.append(str(folder / f"ce-{seed + i}"))
        console.print(f"trained {train_teachers} cross-encoder teachers -> {folder}")
    try:
        scorer, name = resolve_teacher(specs, library)
    except NoTrainedReranker:
        fail(f"no trained reranker next to {library} to act as teacher: train one with "
             f"`skillkit router train-reranker --library {library}`, or pass --teacher upr, llm, "
             "openai:MODEL@URL, a folder, or --train-teachers N")
    with progress() as bar:
        task = bar.add_task("teacher scoring", total=None)
        scored = score_triples(router, scorer, negatives=_negative_config(negatives), seed=seed,
                               on_query=lambda n, total: bar.update(task, completed=n, total=total))
    save_teacher_scores(out, scored, teacher=name)
    kind = f"an ensemble of {len(scorer.members)}" if isinstance(scorer, EnsembleTeacher) else name
    console.print(f"scored {len(scored)} queries x {1 + negatives} candidates with {kind} -> {out}")


@friendly_errors
def distill_cmd(
    library: Path = typer.Option(..., "--library", "-l", help="Skill library (folder or JSON/JSONL file)."),
    scores: Path = typer.Option(..., "--scores", help="Teacher scores from `skillkit router teacher-scores`."),
    student: str = typer.Option("cross-encoder", "--student", help="cross-encoder (a reranker) or bi-encoder "
                                "(the dense stage's encoder)."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Output folder (default: next to the library, "
                                    "LIB/reranker for a cross-encoder, LIB/encoder for a bi-encoder, where "
                                    "`skillkit route` and `skillkit evaluate` find them)."),
    time_budget: float = typer.Option(240.0, "--time-budget", help="Stop training after this many seconds."),
    max_steps: int | None = typer.Option(None, "--max-steps", help="Stop after this many optimizer steps."),
    epochs: int = typer.Option(2, "--epochs", min=1),
    validation: float = typer.Option(0.1, "--validation", min=0.0, max=0.9,
                                     help="Share of the scored queries held out to check that the student "
                                          "follows the teacher better after training than before (0: none)."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Margin-MSE distillation: train a student on the teacher's score margins."""
    config = DistillConfig(student=student, time_budget_s=time_budget, max_steps=max_steps, epochs=epochs, seed=seed,
                           validation_share=validation)
    config.validate()
    scored = load_teacher_scores(scores)
    router = _load_router(library, "none", "auto", "minilm")
    with _step_progress("distilling", "distilling") as on_step:
        model, stats = distill(router, scored, config, on_step=on_step)
    out = out or (default_reranker_path(library) if student == "cross-encoder" else default_encoder_path(library))
    model.save(str(out))
    console.print(f"distilled a {student} in {stats['steps']} steps on {stats['queries']} queries "
                  f"(margin MSE {stats['first_loss']} -> {stats['last_loss']}); saved to {out}")
    val = stats["validation"]
    if val["before"] is not None:
        before, after = val["before"], val["after"]
        console.print(f"held-out ({val['queries']} queries): margin MSE {before['margin_mse']} -> {after['margin_mse']}, "
                      f"same top candidate as the teacher {before['teacher_top1']:.0%} -> {after['teacher_top1']:.0%}")
        if after["margin_mse"] > before["margin_mse"] or after["teacher_top1"] < before["teacher_top1"]:
            console.print("[yellow]warning: on held-out queries the student follows the teacher less than before "
                          "training; check it (`python benchmarks/routing_quality.py`) before relying on it, or "
                          "delete " + str(out) + "[/yellow]")


def _reranker_state(router: Any) -> str:
    if router.reranker is None:
        return "no, dense"
    if router.reranker_shortfall is not None:
        return "yes, but method auto routes densely: it did not beat dense on its held-out queries"
    return "yes"


@friendly_errors
def serve_cmd(
    library: Path = typer.Option(..., "--library", "-l", help="Skill library (folder or JSON/JSONL file)."),
    host: str = typer.Option("127.0.0.1", "--host"),
    port: int = typer.Option(8765, "--port"),
    token: str | None = typer.Option(None, "--token", envvar="SKILLKIT_SERVER_TOKEN",
                                     help="Require this bearer token (or set SKILLKIT_SERVER_TOKEN)."),
    reranker: str = typer.Option("auto", "--reranker", help=RERANKER_HELP),
    max_k: int = typer.Option(50, "--max-k", help="Largest k a request may ask for."),
    max_body: int = typer.Option(16_384, "--max-body-bytes", help="Largest request body accepted."),
    batch_window_ms: float = typer.Option(4.0, "--batch-window-ms", min=0.0,
                                          help="Collect concurrent /route requests this long and encode them "
                                               "as one batch (0: route each request on its own)."),
    encoder: str = typer.Option("auto", "--encoder", help="Bi-encoder name or path; auto: the one `skillkit router "
                                "train-encoder` or `distill --student bi-encoder` saved next to the library, "
                                "else the library's own (minilm)."),
) -> None:
    """Serve the library over HTTP: POST /route, GET /skills/{name} (and its bundled files), GET /health."""
    try:  # fastapi (the 'server' extra) loads only when a command serves
        from retriever.server import serve
    except ImportError as exc:  # pragma: no cover - depends on the optional extra
        fail(f"the server needs the 'server' extra (pip install 'skillkit[server]'): {exc}")
    router = _load_router(library, reranker, "auto", encoder)
    batching = f"{batch_window_ms:g} ms window" if batch_window_ms > 0 else "off"
    console.print(f"serving {len(router)} skills on http://{host}:{port} "
                  f"(reranker: {_reranker_state(router)}; auth: {'on' if token else 'off'}; "
                  f"batching: {batching})")
    serve(router, host=host, port=port, token=token, max_k=max_k, max_body_bytes=max_body,
          batch_window_ms=batch_window_ms, files=SkillFiles.of(library) if library.is_dir() else None)


@friendly_errors
def bench_routing_cmd(
    quick: bool = typer.Option(False, "--quick", help="Tiny sizes, to check that the benchmark runs."),
    distractors: int = typer.Option(3_000, "--distractors", help="Real-text distractor skills for quality."),
    scale_1m: bool = typer.Option(True, "--scale-1m/--no-scale-1m", help="Also measure FAISS vs numpy at 1M."),
    train_steps: int = typer.Option(40, "--train-steps", help="Optimizer steps per trained reranker."),
    llm_queries: int = typer.Option(4, "--llm-queries", help="Test queries for the LLM judge (0: skip)."),
    out: Path = typer.Option(Path("benchmarks/results/routing.json"), "--out"),
) -> None:
    """Routing benchmark: quality of every method, reranker ablations, speed at 1K/10K/100K (and 1M)."""
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "routing.py"
    if not script.exists():
        fail(f"the routing benchmark lives in the source tree ({script} not found); run it from a checkout")
    import importlib.util

    spec = importlib.util.spec_from_file_location("skillkit_bench_routing", script)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    module.run(quick=quick, distractors=distractors, scale_1m=scale_1m, train_steps=train_steps, out=out,
               llm_queries=llm_queries)


def _group(app: typer.Typer, name: str, group: typer.Typer) -> typer.Typer:
    """Reuse a sub-app another stage already registered under ``name`` (e.g. ``bench``), else add ours."""
    for info in app.registered_groups:
        if info.name == name and info.typer_instance is not None:
            return info.typer_instance
    app.add_typer(group, name=name)
    return group


def register(app: typer.Typer) -> None:
    """Add ``route``, ``serve``, the ``router`` commands and ``bench routing`` to the main app."""
    app.command("route")(route_cmd)
    app.command("serve")(serve_cmd)
    router_app.command("train-reranker")(train_reranker_cmd)
    router_app.command("train-encoder")(train_encoder_cmd)
    router_app.command("teacher-scores")(teacher_scores_cmd)
    router_app.command("distill")(distill_cmd)
    _group(app, "router", router_app)
    _group(app, "bench", bench_app).command("routing")(bench_routing_cmd)
