"""Generation throughput: skillkit's batched HFBackend vs plain ``model.generate``.

Same prompts, same run, greedy decoding. Three ways on the CPU (or GPU with --device cuda):
``naive`` = one prompt at a time through ``model.generate``; ``plain-batched`` = one left-padded
batch through ``model.generate``; ``hf-backend`` = ``HFBackend.generate`` (which also returns
token ids and per-token log-probs). Tokens/s counts only real generated tokens (no padding).
``--json-schema`` adds ``HFBackend + JSON schema``: the same prompts with every answer held to
``STORY_SCHEMA`` by llguidance masks (the string field is unbounded, so rows still use the budget
and the difference is the per-step cost of computing and applying the masks). ``--static-cache``
adds ``plain batched generate`` with transformers' built-in static KV cache
(``cache_implementation="static"``), and ``--compile`` also ``torch.compile``s the forward for it
(its warm-up, compilation included, is timed apart as ``static_warmup_seconds``): use whichever is
faster on the machine at hand.

    python benchmarks/generation.py                       # 16 prompts x 64 tokens, CPU
    python benchmarks/generation.py --device cuda --dtype bfloat16 --batch 256 --skip-naive
    python benchmarks/generation.py --batch 4 --max-new-tokens 48 --skip-naive --json-schema
    python benchmarks/generation.py --device cuda --dtype bfloat16 --batch 256 --skip-naive --static-cache --compile
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from skillkit.core.llm.base import SamplingParams
from skillkit.core.llm.hf import HFBackend
from skillkit.core.models import load_causal_lm

TOPICS = ["a lighthouse keeper", "a robot learning to cook", "the history of bridges", "a chess tournament",
          "a city under the sea", "how rain forms", "a lost cat finding home", "the first day at school",
          "a dragon who collects books", "why the sky is blue", "a trip to Mars", "an old clock shop",
          "a garden in winter", "a musician on tour", "the invention of paper", "a mountain village"]


#: A title and a free-length story: JSON the model can keep writing for the whole token budget.
STORY_SCHEMA = {"type": "object", "properties": {"title": {"type": "string", "maxLength": 80},
                                                 "story": {"type": "string"}}, "required": ["title", "story"]}


def make_prompts(n: int) -> list[list[dict]]:
    """n chat prompts that ask for long answers, so every row generates the full budget."""
    return [[{"role": "user", "content": f"Write a long, detailed story about {TOPICS[i % len(TOPICS)]}."}]
            for i in range(n)]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def plain_generate(model, tokenizer, prompts: list[str], max_new_tokens: int, device: str,
                   cache_implementation: str | None = None) -> tuple[int, float]:
    """One left-padded batch through ``model.generate`` (``cache_implementation="static"``: transformers'
    static KV cache); returns (real new tokens, seconds)."""
    options = {"cache_implementation": cache_implementation} if cache_implementation else {}
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
    _sync(device)
    start = time.perf_counter()
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id, **options)
    _sync(device)
    seconds = time.perf_counter() - start
    new = out[:, enc["input_ids"].shape[1]:]
    eos = tokenizer.eos_token_id
    real = 0
    for row in new.tolist():
        real += next((i + 1 for i, t in enumerate(row) if t == eos), len(row))
    return real, seconds


def random_init_model(folder: str, dtype: str, device: str):
    """The architecture in ``folder`` (config.json + tokenizer) with random weights: the same speed
    as the trained model, without shipping its weights (used on machines that lack them)."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from skillkit.core.models import _resolve_dtype, load_tokenizer

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder))
    return model.to(device=device, dtype=_resolve_dtype(dtype)).eval(), load_tokenizer(folder)


def timed_schema_generate(backend: HFBackend, chats: list[list[dict]], sampling: SamplingParams,
                          device: str) -> dict:
    """``HFBackend.generate`` with every answer held to ``STORY_SCHEMA``; checks each finished answer parses."""
    constrained = sampling.model_copy(update={"json_schema": STORY_SCHEMA})
    _sync(device)
    start = time.perf_counter()
    completions = backend.generate(chats, constrained)
    _sync(device)
    seconds = time.perf_counter() - start
    for c in completions:
        if c.finish_reason == "stop":
            json.loads(c.text)
    return {"method": "HFBackend + JSON schema", "tokens": sum(len(c.token_ids) for c in completions),
            "seconds": seconds, "finished_json": sum(c.finish_reason == "stop" for c in completions)}


def run(args: argparse.Namespace) -> dict:
    """Measure every method and return the result record."""
    if args.random_init:
        model, tokenizer = random_init_model(args.model, args.dtype, args.device)
    else:
        model, tokenizer = load_causal_lm(args.model, dtype=args.dtype, device=args.device)
    backend = HFBackend(model, tokenizer, batch_size=args.batch)
    chats = make_prompts(args.batch)
    prompts = [backend.render(c) for c in chats]
    sampling = SamplingParams(temperature=0, max_new_tokens=args.max_new_tokens)
    backend.generate(chats[:2], SamplingParams(temperature=0, max_new_tokens=4))  # warm-up
    if args.json_schema:  # builds the llguidance tokenizer (once per backend) outside the timing
        backend.generate(chats[:1], SamplingParams(temperature=0, max_new_tokens=2, json_schema=STORY_SCHEMA))
    rows = []
    static_warmup = None
    if args.static_cache:
        if args.compile:
            model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=True)
        _, static_warmup = plain_generate(model, tokenizer, prompts, args.max_new_tokens, args.device, "static")
    if not args.skip_naive:
        tokens, seconds = 0, 0.0
        for prompt in prompts:
            t, s = plain_generate(model, tokenizer, [prompt], args.max_new_tokens, args.device)
            tokens, seconds = tokens + t, seconds + s
        rows.append({"method": "naive (one at a time)", "tokens": tokens, "seconds": seconds})
    # Batched methods alternate for --repeats rounds and keep their best time (the machine is shared).
    plain_best = backend_best = schema_best = static_best = None
    for _ in range(args.repeats):
        if args.static_cache:
            tokens, seconds = plain_generate(model, tokenizer, prompts, args.max_new_tokens, args.device, "static")
            if static_best is None or seconds < static_best["seconds"]:
                static_best = {"method": "plain generate, static cache" + (" + compile" if args.compile else ""),
                               "tokens": tokens, "seconds": seconds}
        tokens, seconds = plain_generate(model, tokenizer, prompts, args.max_new_tokens, args.device)
        if plain_best is None or seconds < plain_best["seconds"]:
            plain_best = {"method": "plain batched generate", "tokens": tokens, "seconds": seconds}
        _sync(args.device)
        start = time.perf_counter()
        completions = backend.generate(chats, sampling)
        _sync(args.device)
        seconds = time.perf_counter() - start
        assert all(len(c.logprobs) == len(c.token_ids) for c in completions)
        if backend_best is None or seconds < backend_best["seconds"]:
            backend_best = {"method": "HFBackend (ids + logprobs)",
                            "tokens": sum(len(c.token_ids) for c in completions), "seconds": seconds}
        if args.json_schema:
            schema_row = timed_schema_generate(backend, chats, sampling, args.device)
            if schema_best is None or schema_row["seconds"] < schema_best["seconds"]:
                schema_best = schema_row
    rows += [plain_best, backend_best] + [r for r in (schema_best, static_best) if r]
    for row in rows:
        row["tokens_per_s"] = row["tokens"] / row["seconds"]
    base = rows[0]["tokens_per_s"]
    plain = next(r for r in rows if r["method"].startswith("plain"))["tokens_per_s"]
    for row in rows:
        row["vs_first"] = row["tokens_per_s"] / base
        row["vs_plain_batched"] = row["tokens_per_s"] / plain
    return {
        "benchmark": "generation", "model": args.model, "random_init": args.random_init, "device": args.device, "dtype": args.dtype,
        "batch": args.batch, "repeats": args.repeats, "static_warmup_seconds": static_warmup, "json_schema": STORY_SCHEMA if args.json_schema else None, "max_new_tokens": args.max_new_tokens, "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(), "platform": platform.platform(),
        "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None, "rows": rows,
    }


def print_table(result: dict) -> None:
    """Print the result as a plain table."""
    print(f"\ngeneration: {result['model']} on {result['gpu'] or result['device']} ({result['dtype']}), "
          f"{result['batch']} prompts x {result['max_new_tokens']} new tokens, greedy")
    print(f"{'method':<30}{'tokens':>8}{'seconds':>10}{'tok/s':>10}{'x first':>9}{'x plain':>9}")
    for r in result["rows"]:
        print(f"{r['method']:<30}{r['tokens']:>8}{r['seconds']:>10.2f}{r['tokens_per_s']:>10.1f}"
              f"{r['vs_first']:>9.2f}{r['vs_plain_batched']:>9.2f}")


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--random-init", action="store_true",
                        help="--model is a folder with config.json + tokenizer: random weights, same speed")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of the batched methods (best kept)")
    parser.add_argument("--skip-naive", action="store_true", help="skip one-at-a-time (slow at large batches)")
    parser.add_argument("--json-schema", action="store_true", help="also time answers held to STORY_SCHEMA")
    parser.add_argument("--static-cache", action="store_true", help="also time generate with the static KV cache")
    parser.add_argument("--compile", action="store_true", help="with --static-cache: torch.compile the forward")
    parser.add_argument("--out", default="benchmarks/results/generation.json")
    args = parser.parse_args()
    result = run(args)
    print_table(result)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
