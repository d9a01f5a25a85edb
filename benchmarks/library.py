"""Skill library speed and memory at 1K, 10K and 100K skills: add, save, load, search, small updates.

Every size runs in a fresh subprocess (so memory numbers are that size's alone) on synthetic skills
of all four tiers with realistic text lengths. Embeddings are precomputed random-but-clustered
384-d vectors (200 clusters, like MiniLM's dimension) handed to ``add_embeddings``, so the add /
save / search numbers measure the library and not the encoder; encoding with the embedded MiniLM
is measured separately on 1K skill texts and reported as skills/s (100K skills would take
100000 / that rate on the same machine).

Measured per size:
* add: ``add_embeddings`` of all skills into an empty library (validation, bookkeeping);
* save: the first save (index + keys + skills.jsonl + manifest, atomically, with fsync);
* load: ``SkillLibrary.load`` in a fresh process (parse every skill, read the index, check every
  content hash);
* search: ``search_vector`` top-10 after that load, unfiltered and filtered by tier (p50/p95 ms,
  queries/s);
* update+save: one ``update`` then ``save`` (a whole-library rewrite: the crash-safe layout);
* usage: ``record_usage`` (saves), the UCB path;
* memory: RSS growth while building (skills + vectors + index) and when opening it in a fresh
  process, and the peak RSS of each process;
* disk: bytes of the library folder.

    python benchmarks/library.py                      # 1K, 10K, 100K (a few minutes on 2 cores)
    python benchmarks/library.py --sizes 1000 10000 --no-encode
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would hide the package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import numpy as np  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "library.json"
DIM = 384
WORDS = ("push box target wall player corner plan route login token search contact message send wallet "
         "money request playlist song album page limit error retry check answer supervisor phone music "
         "step move left right up down goal state verify complete task api call argument").split()


def rss_mb() -> float:
    """Current resident set size in MiB (Linux /proc; falls back to the peak elsewhere)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:  # pragma: no cover
        return peak_mb()


def peak_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


def make_skills(n: int, seed: int = 0) -> list:
    from skillkit.core.schemas import AtomicSkill, FunctionalSkill, PlanningSkill, TrajectorySkill

    rng = np.random.default_rng(seed)

    def words(k: int) -> str:
        return " ".join(rng.choice(WORDS, size=k))

    out = []
    for i in range(n):
        kind = i % 4
        env = "sokoban" if i % 2 else "apps"
        common = {"name": f"skill-{i:06d}", "description": f"{words(12)} ({i})", "env": env,
                  "tags": [env, f"group-{i % 50}"], "source_tasks": [f"task-{i % 5000}"]}
        if kind == 0:
            out.append(TrajectorySkill(task_id=f"task-{i % 5000}", success_analysis=words(40),
                                       mistake_analysis=words(30), golden_workflow=[words(6) for _ in range(5)],
                                       source_trajectory_ids=[f"ep-{i}-{j}" for j in range(4)],
                                       reward_stats={"n": 4.0, "success_rate": 0.5}, **common))
        elif kind == 1:
            out.append(PlanningSkill(task=words(10), plan=[f"{words(5)}; {words(3)}" for _ in range(6)], **common))
        elif kind == 2:
            out.append(FunctionalSkill(body="\n".join(f"{k}. {words(8)}" for k in range(1, 6)),
                                       tools=[f"app.api_{k}" for k in range(3)], **common))
        else:
            out.append(AtomicSkill(action=f"app.api_{i % 300}", usage=words(20), constraints=[words(8)],
                                   pitfalls=[words(8), words(8)], examples=[words(10)], **common))
    return out


def clustered_vectors(n: int, dim: int = DIM, clusters: int = 200, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(clusters, dim)).astype(np.float32)
    vecs = centers[rng.integers(0, clusters, size=n)] + 0.35 * rng.normal(size=(n, dim)).astype(np.float32)
    return vecs / np.linalg.norm(vecs, axis=1, keepdims=True)


def _lat(fn, queries: np.ndarray) -> dict[str, float]:
    times = []
    start = time.perf_counter()
    for q in queries:
        t0 = time.perf_counter()
        fn(q)
        times.append(time.perf_counter() - t0)
    total = time.perf_counter() - start
    ms = np.array(times) * 1000
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p95_ms": round(float(np.percentile(ms, 95)), 3),
            "qps": round(len(queries) / total, 1)}


def build_phase(n: int, folder: Path) -> dict:
    """Build, save and modify a library of ``n`` skills in ``folder`` (a fresh process)."""
    import faiss  # noqa: F401 - imported up front so that no timing includes the import
    import filelock  # noqa: F401

    from skillkit.skills.library import SkillLibrary

    base_rss = rss_mb()
    t0 = time.perf_counter()
    skills = make_skills(n)
    vecs = clustered_vectors(n)
    make_s = time.perf_counter() - t0
    lib = SkillLibrary.create(folder, embedder="precomputed")
    t0 = time.perf_counter()
    lib.add_embeddings(skills, vecs)
    add_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    lib.save()
    save_s = time.perf_counter() - t0
    built_rss = rss_mb()
    victim = lib.get("skill-000003")
    t0 = time.perf_counter()
    lib.update(victim.model_copy(update={"usage": "changed usage text"}), embedding=vecs[3])
    lib.save()
    update_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    lib.record_usage("skill-000001", 1.0, task_id="task-1")
    usage_s = time.perf_counter() - t0
    return {"n": n, "make_skills_s": round(make_s, 2), "add_s": round(add_s, 3), "add_per_s": round(n / add_s, 1),
            "save_s": round(save_s, 3), "update_save_s": round(update_s, 3), "record_usage_s": round(usage_s, 3),
            "rss_built_mb": round(built_rss - base_rss, 1), "peak_rss_build_mb": round(peak_mb(), 1)}


def load_phase(n: int, folder: Path, queries: int) -> dict:
    """Open the library in a fresh process, then search it."""
    import faiss  # noqa: F401 - imported up front so that no timing includes the import
    import filelock  # noqa: F401

    from skillkit.skills.library import SkillLibrary

    base_rss = rss_mb()
    t0 = time.perf_counter()
    lib = SkillLibrary.load(folder)
    load_s = time.perf_counter() - t0
    loaded_rss = rss_mb()
    assert len(lib) == n and not lib._stale, "the reload lost or re-encoded skills"
    vecs = clustered_vectors(n)
    assert lib.search_vector(vecs[5], k=1)[0][0].name == "skill-000005", "search after reload is wrong"
    rng = np.random.default_rng(1)
    qs = clustered_vectors(queries, seed=2) + 0.05 * rng.normal(size=(queries, DIM)).astype(np.float32)
    search = _lat(lambda q: lib.search_vector(q, k=10), qs)
    filtered = _lat(lambda q: lib.search_vector(q, k=10, tier="atomic"), qs[: max(10, queries // 4)])
    disk = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
    return {"load_s": round(load_s, 3), "search_top10": search, "search_top10_tier_filter": filtered,
            "rss_loaded_mb": round(loaded_rss - base_rss, 1), "peak_rss_load_mb": round(peak_mb(), 1),
            "disk_mb": round(disk / 2**20, 2)}


def encode_rate(n: int = 1000) -> dict:
    """MiniLM encoding of ``n`` skill texts (the cost the synthetic vectors leave out)."""
    from retriever.encoders import get_encoder

    texts = [s.to_text() for s in make_skills(n)]
    t0 = time.perf_counter()
    emb = get_encoder("minilm")  # what a library named "minilm" encodes with (loads the model)
    load_s = time.perf_counter() - t0
    emb.encode(texts[:32], use_cache=False)  # warm-up
    t0 = time.perf_counter()
    emb.encode(texts, use_cache=False)
    enc_s = time.perf_counter() - t0
    return {"n": n, "load_s": round(load_s, 2), "encode_s": round(enc_s, 2), "skills_per_s": round(n / enc_s, 1),
            "estimated_100k_s": round(100_000 / (n / enc_s), 0), "device": str(emb.model.device)}


def table(rows: list[dict], enc: dict | None) -> str:
    head = ("| skills | add (s) | save (s) | load (s) | update+save (s) | record_usage (s) | search p50/p95 ms | "
            "qps | tier-filtered p50 ms | RSS built / loaded (MiB) | disk (MiB) |")
    lines = [head, "|" + "---|" * 11]
    for r in rows:
        s, f = r["search_top10"], r["search_top10_tier_filter"]
        lines.append(f"| {r['n']:,} | {r['add_s']} | {r['save_s']} | {r['load_s']} | {r['update_save_s']} | "
                     f"{r['record_usage_s']} | {s['p50_ms']} / {s['p95_ms']} | {s['qps']} | {f['p50_ms']} | "
                     f"{r['rss_built_mb']} / {r['rss_loaded_mb']} | {r['disk_mb']} |")
    if enc:
        lines.append("")
        lines.append(f"MiniLM encoding ({enc['device']}): {enc['skills_per_s']} skills/s on {enc['n']} skill texts "
                     f"(model load {enc['load_s']} s); 100K skills would take ~{enc['estimated_100k_s']:.0f} s "
                     "(not included above: vectors were precomputed).")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--queries", type=int, default=400, help="search queries per size")
    parser.add_argument("--no-encode", action="store_true", help="skip the MiniLM encoding measurement")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--phase", choices=("build", "load"), help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        result = (build_phase(args.worker, args.dir) if args.phase == "build"
                  else load_phase(args.worker, args.dir, args.queries))
        print(json.dumps(result))
        return

    rows = []
    for n in args.sizes:
        t0 = time.perf_counter()
        folder = Path(tempfile.mkdtemp(prefix=f"skillkit-bench-{n}-")) / "lib"
        row: dict = {}
        try:
            for phase in ("build", "load"):
                proc = subprocess.run([sys.executable, __file__, "--worker", str(n), "--phase", phase, "--dir",
                                       str(folder), "--queries", str(args.queries)],
                                      capture_output=True, text=True, check=False)
                if proc.returncode != 0:
                    raise SystemExit(f"size {n} ({phase}) failed:\n{proc.stderr[-3000:]}")
                row.update(json.loads(proc.stdout.strip().splitlines()[-1]))
        finally:
            shutil.rmtree(folder.parent, ignore_errors=True)
        row["wall_s"] = round(time.perf_counter() - t0, 1)
        rows.append(row)
        print(f"{n:>7,} skills: add {row['add_s']} s, save {row['save_s']} s, load {row['load_s']} s, "
              f"search p50 {row['search_top10']['p50_ms']} ms", flush=True)
    enc = None if args.no_encode else encode_rate()
    result = {
        "benchmark": "skill library (skillkit.skills.library.SkillLibrary)",
        "machine": {"python": platform.python_version(), "platform": platform.platform(),
                    "cpus": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)},
        "index": "faiss IndexIDMap2(IndexFlatIP), exact cosine over L2-normalised vectors",
        "embeddings": f"precomputed clustered random vectors, dim {DIM} (encoding measured separately)",
        "results": rows,
        "minilm_encoding": enc,
        "table": table(rows, enc),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(result["table"])
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
