"""Serving benchmark: `skillkit serve` with and without request batching, 8 concurrent clients.

Run: ``python benchmarks/serving.py`` (about 2 minutes; ``--seconds`` per round).

Two real servers (``python -m skillkit.cli.main serve``, the embedded MiniLM, dense routing over
the routing benchmark's labelled skills plus distractors) run side by side on localhost, one with
``--batch-window-ms 0`` (each request encoded on its own) and one with the batching window. The
two are measured in alternating rounds, so a change in the machine's load hits both alike. In
each round ``--clients`` threads send ``POST /route`` requests back to back (a closed loop, one
query per request, real user-style queries) for ``--seconds``; the first ``--warmup`` seconds are
not counted. Reported per mode: requests/s and p50/p95 latency over all rounds, the mean number
of queries encoded per batch, and the same per round. JSON goes to ``benchmarks/results/serving.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from retriever.bench_corpus import core_docs, distractor_docs, labelled_queries  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "serving.json"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(library: Path, port: int, window_ms: float, cache: Path, log: Path) -> subprocess.Popen:
    """``skillkit serve`` in a subprocess (this checkout's code first on the path), output to ``log``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
               SKILLKIT_CACHE=str(cache))
    cmd = [sys.executable, "-m", "skillkit.cli.main", "serve", "-l", str(library), "--port", str(port),
           "--batch-window-ms", str(window_ms), "--reranker", "none"]
    with open(log, "wb") as out:  # a file, not a pipe nobody drains
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_ready(url: str, proc: subprocess.Popen, log: Path, timeout: float = 300.0) -> None:
    """Poll ``/health`` until the server answers (or fail with its stderr)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.25)
    raise TimeoutError(f"{url} did not start in {timeout} s")


def load_round(url: str, queries: list[str], clients: int, seconds: float, warmup: float) -> dict:
    """``clients`` closed-loop threads for ``warmup + seconds``; stats of the requests after the warm-up."""
    start = time.perf_counter()
    measure_from, stop_at = start + warmup, start + warmup + seconds
    latencies: list[list[float]] = [[] for _ in range(clients)]
    batch_sizes: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []

    def client(n: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as http:
            i = n
            while True:
                t0 = time.perf_counter()
                if t0 >= stop_at:
                    return
                resp = http.post("/route", json={"query": queries[i % len(queries)], "k": 5, "method": "dense"})
                t1 = time.perf_counter()
                if resp.status_code != 200:
                    errors.append(f"{resp.status_code}: {resp.text[:200]}")
                    return
                if t0 >= measure_from and t1 <= stop_at:
                    latencies[n].append(t1 - t0)
                    batch_sizes[n].append(resp.json()["timings"].get("batched_queries", 1.0))
                i += clients

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"requests failed: {errors[:3]}")
    lat = [x for row in latencies for x in row]
    return {"requests": len(lat), "seconds": seconds, "latencies": lat,
            "batch_sizes": [x for row in batch_sizes for x in row]}


def summarize(rounds: list[dict]) -> dict:
    """requests/s, p50/p95 ms and mean batch size over rounds (plus requests/s of each round)."""
    lat = np.asarray([x for r in rounds for x in r["latencies"]]) * 1e3
    total = sum(r["requests"] for r in rounds)
    return {"requests": total, "requests_per_s": round(total / sum(r["seconds"] for r in rounds), 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 2), "p95_ms": round(float(np.percentile(lat, 95)), 2),
            "mean_queries_per_batch": round(float(np.mean([x for r in rounds for x in r["batch_sizes"]])), 2),
            "requests_per_s_by_round": [round(r["requests"] / r["seconds"], 1) for r in rounds]}


def run(clients: int = 8, seconds: float = 10.0, warmup: float = 2.0, rounds: int = 2, window_ms: float = 4.0,
        distractors: int = 300, out: Path = RESULTS) -> dict:
    """Run the benchmark, print a table and write the JSON result."""
    started = time.perf_counter()
    docs = core_docs() + list(distractor_docs(distractors, seed=0))
    queries = [q.query for q in labelled_queries()]
    load_start = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        library = Path(tmp) / "skills.jsonl"
        library.write_text("".join(json.dumps(d.to_dict()) + "\n" for d in docs))
        modes = {"unbatched": 0.0, "batched": window_ms}
        servers = {}
        try:
            for mode, window in modes.items():  # one after the other: the second reads the first's embedding cache
                port, log = free_port(), Path(tmp) / f"{mode}.log"
                proc = start_server(library, port, window, Path(tmp) / "cache", log)
                servers[mode] = (f"http://127.0.0.1:{port}", proc)
                wait_ready(servers[mode][0], proc, log)
            print(f"servers up after {time.perf_counter() - started:.0f} s; {clients} clients, {rounds} rounds of "
                  f"{seconds:g} s per mode", flush=True)
            measured: dict[str, list[dict]] = {mode: [] for mode in modes}
            for r in range(rounds):
                for mode in modes:
                    res = load_round(servers[mode][0], queries, clients, seconds, warmup)
                    if not res["requests"]:
                        raise RuntimeError(f"no {mode} request finished in the round; server log:\n"
                                           + (Path(tmp) / f"{mode}.log").read_text(errors="replace")[-3000:])
                    measured[mode].append(res)
                    print(f"  round {r + 1} {mode}: {res['requests'] / seconds:.1f} req/s", flush=True)
        finally:
            for _, proc in servers.values():
                proc.terminate()
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
    summary = {mode: summarize(rs) for mode, rs in measured.items()}
    speedup = summary["batched"]["requests_per_s"] / summary["unbatched"]["requests_per_s"]
    import torch

    result = {
        "benchmark": "skillkit serve, POST /route (dense, k=5, one query per request), closed-loop clients",
        "clients": clients, "seconds_per_round": seconds, "warmup_s": warmup, "rounds": rounds,
        "batch_window_ms": window_ms, "skills": len(docs), "encoder": "minilm (CPU)",
        "results": summary, "speedup_requests_per_s": round(speedup, 2),
        "p95_ratio_batched_over_unbatched": round(summary["batched"]["p95_ms"] / summary["unbatched"]["p95_ms"], 3),
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "python": platform.python_version(), "load_avg_at_start": load_start,
                    "load_avg_at_end": [round(x, 2) for x in os.getloadavg()]},
        "command": "python benchmarks/serving.py " + " ".join(sys.argv[1:]),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    print()
    print(f"| mode ({clients} clients) | requests/s | p50 ms | p95 ms | queries per encode |")
    print("|---|---|---|---|---|")
    for mode, row in summary.items():
        print(f"| {mode} | {row['requests_per_s']} | {row['p50_ms']} | {row['p95_ms']} | "
              f"{row['mean_queries_per_batch']} |")
    print(f"\nbatched / unbatched requests/s: {speedup:.2f}x; p95 ratio {result['p95_ratio_batched_over_unbatched']}")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_suffix(".json.tmp")
    tmp_out.write_text(json.dumps(result, indent=2) + "\n")
    os.replace(tmp_out, out)
    print(f"wrote {out} in {result['total_seconds']} s")
    return result


def main(argv: list[str] | None = None) -> None:
    """Command-line entry."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per round and mode")
    parser.add_argument("--warmup", type=float, default=2.0, help="uncounted seconds at the start of each round")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per mode")
    parser.add_argument("--window-ms", type=float, default=4.0, help="the batched server's collection window")
    parser.add_argument("--distractors", type=int, default=300, help="distractor skills besides the labelled ones")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    run(clients=args.clients, seconds=args.seconds, warmup=args.warmup, rounds=args.rounds,
        window_ms=args.window_ms, distractors=args.distractors, out=args.out)


if __name__ == "__main__":
    main()
