"""Peak memory of one policy-loss step: chunked sampled-token log-probs vs the naive full log-softmax.

A step is: forward pass, GRPO loss over the response tokens, backward pass - on the embedded
SmolLM2-135M (vocabulary 49,152) at sequence length 1024. ``naive`` builds the ``[B, T, V]`` fp32
logits and log-softmax; ``chunked`` (trainer/logprobs.py) runs the body, then the head +
log-softmax on ``--chunk`` positions at a time under activation checkpointing. Both variants get
the same batch; their losses and gradient norms must agree.

Measured: the peak memory *above* the training steady state (weights, gradient buffers and the
batch already allocated, one short warm-up step done), i.e. what the step itself adds. The chunked
step keeps a floor of about 3 x V x H x 4 bytes (~340 MB here) whatever the batch: the gradients
of the tied embedding / output matrix (head, then input embedding) before autograd sums them.
The naive step grows with batch x length x vocabulary. On CPU each variant runs in a fresh
subprocess; the kernel's peak-RSS counter (VmHWM) is reset right before the step (Linux
``/proc/self/clear_refs``), glibc is told to return freed memory (fixed mmap threshold), so the
peak is the step's own. On CUDA ``torch.cuda.max_memory_allocated`` is used.

Body activation checkpointing (``--grad-checkpointing``, on by default as in RL trainers) keeps
the transformer body's activations small, so the comparison isolates the logits.

    python benchmarks/loss_memory.py                          # CPU, B=4 x 1024, writes benchmarks/results/loss_memory.json
    python benchmarks/loss_memory.py --device cuda --batch 8
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

# the repository root on sys.path, so the script also runs from a checkout that is not installed
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RESULTS = Path(__file__).resolve().parent / "results" / "loss_memory.json"


def _rss_mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"{field} not found in /proc/self/status")


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _trim() -> None:
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:  # pragma: no cover - not glibc
        pass


def worker(args: argparse.Namespace) -> dict:
    """Run one variant in this process and return its measurements."""
    import torch

    from skillkit.core.models import load_causal_lm
    from trainer.logprobs import token_logprobs
    from trainer.losses import grpo_loss
    from trainer.train import enable_activation_checkpointing

    torch.manual_seed(0)
    device = args.device
    model, _ = load_causal_lm(args.model, dtype="float32", device=device)
    if args.grad_checkpointing:
        enable_activation_checkpointing(model)
    model.train()
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(1)
    ids = torch.randint(0, vocab, (args.batch, args.seq_len), generator=g).to(device)
    attn = torch.ones_like(ids)
    mask = torch.zeros(args.batch, args.seq_len, device=device)
    mask[:, args.seq_len - args.response_len:] = 1.0
    old = (-torch.rand(args.batch, args.seq_len, generator=g) * 5 - 8).to(device)
    adv = torch.randn(args.batch, generator=g).to(device)
    for p in model.parameters():          # steady state of a training loop: gradient buffers exist
        p.grad = torch.zeros_like(p)
    chunk = None if args.variant == "naive" else args.chunk

    # Warm-up on a short batch: the first step allocates thread pools and kernel workspaces once.
    warm = torch.ones(1, 64, dtype=torch.long, device=device)
    grpo_loss(token_logprobs(model, warm, warm, warm.float(), chunk_size=chunk), warm.float() * -5,
              adv[:1], warm.float()).backward()

    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    else:
        _trim()
        base = _rss_mb("VmRSS")
        if not _reset_peak_rss():
            raise RuntimeError("cannot reset the peak RSS counter (/proc/self/clear_refs); run on Linux")
    start = time.perf_counter()
    logp = token_logprobs(model, ids, attn, mask, chunk_size=chunk)
    loss = grpo_loss(logp, old, adv, mask)
    loss.backward()
    if cuda:
        torch.cuda.synchronize()
        peak_mb = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        peak_mb = _rss_mb("VmHWM") - base
    seconds = time.perf_counter() - start
    grad_norm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in model.parameters())).item()
    return {"variant": args.variant, "peak_mb_above_steady_state": round(peak_mb, 1), "loss": loss.item(),
            "grad_norm": grad_norm, "seconds": round(seconds, 2),
            "full_logits_fp32_mb": round(args.batch * args.seq_len * vocab * 4 / 2**20, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--seq-len", type=int, default=1024)
    parser.add_argument("--response-len", type=int, default=1023, help="scored positions (default: all)")
    parser.add_argument("--chunk", type=int, default=128)
    parser.add_argument("--grad-checkpointing", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--variant", choices=["naive", "chunked"], help=argparse.SUPPRESS)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args)))
        return

    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "MALLOC_TRIM_THRESHOLD_": "0",
           "TOKENIZERS_PARALLELISM": "false"}
    runs = {}
    for variant in ("naive", "chunked"):
        cmd = [sys.executable, __file__, "--worker", "--variant", variant, "--model", args.model, "--device",
               args.device, "--batch", str(args.batch), "--seq-len", str(args.seq_len), "--response-len",
               str(args.response_len), "--chunk", str(args.chunk),
               "--grad-checkpointing" if args.grad_checkpointing else "--no-grad-checkpointing"]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
        if out.returncode != 0 or line is None:
            raise SystemExit(f"{variant} failed:\n{out.stderr[-3000:]}")
        runs[variant] = json.loads(line[len("RESULT "):])
        print(f"{variant:8s} peak +{runs[variant]['peak_mb_above_steady_state']:8.1f} MB  loss "
              f"{runs[variant]['loss']:.6f}  |grad| {runs[variant]['grad_norm']:.6f}  {runs[variant]['seconds']} s")
    naive, chunked = runs["naive"], runs["chunked"]
    ratio = chunked["peak_mb_above_steady_state"] / max(naive["peak_mb_above_steady_state"], 1e-9)
    same_loss = abs(naive["loss"] - chunked["loss"]) <= 1e-4 * max(1.0, abs(naive["loss"]))
    same_grad = abs(naive["grad_norm"] - chunked["grad_norm"]) <= 1e-3 * max(1.0, naive["grad_norm"])
    result = {
        "benchmark": "loss_memory",
        "command": "python benchmarks/loss_memory.py " + " ".join(sys.argv[1:]),
        "model": args.model, "device": args.device, "batch": args.batch, "seq_len": args.seq_len,
        "scored_positions": args.response_len, "chunk": args.chunk, "grad_checkpointing": args.grad_checkpointing,
        "measure": "peak memory above the training steady state during forward + GRPO loss + backward",
        "naive": naive, "chunked": chunked, "ratio_chunked_over_naive": round(ratio, 3),
        "target_ratio": 0.25, "meets_target": ratio <= 0.25, "same_loss": same_loss, "same_grad_norm": same_grad,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"ratio chunked/naive = {ratio:.3f} (target <= 0.25); same loss: {same_loss}; same grads: {same_grad}")
    print(f"wrote {args.out}")
    if not (same_loss and same_grad):
        raise SystemExit("chunked and naive disagree")


if __name__ == "__main__":
    main()
