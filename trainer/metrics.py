"""Metrics: one JSON line per iteration (``metrics.jsonl``), TensorBoard scalars, PNG curves at the end."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

#: Keys that measure wall-clock speed; they differ between otherwise identical runs.
TIMING_KEYS = ("time_", "_per_s", "seconds")

PLOT_KEYS = [
    ("reward_mean", "eval_success_rate"), ("success_rate", "eval_success_rate"), ("loss", "loss_grpo"),
    ("loss_sdl", "kl_student_teacher"), ("entropy", "approx_kl_old"), ("grad_norm", "clip_frac"),
    ("rho_mean", "rho_clip_frac"), ("tokens_per_s", "episodes_per_s"),
]


def is_timing_key(key: str) -> bool:
    """Whether a metric is a wall-clock measurement (ignored when comparing runs)."""
    return any(part in key for part in TIMING_KEYS)


class MetricsLogger:
    """Appends metric dicts to ``metrics.jsonl`` and mirrors the numeric ones to TensorBoard."""

    def __init__(self, run_dir: str | Path, tensorboard: bool = True) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / "metrics.jsonl"
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(self.run_dir / "tensorboard"))
            except ImportError:  # pragma: no cover - tensorboard is a core dependency
                self.writer = None

    def log(self, record: dict[str, Any]) -> None:
        clean = {k: _jsonable(v) for k, v in record.items()}
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(clean) + "\n")
        if self.writer is not None:
            step = int(record.get("iteration", 0))
            for key, value in clean.items():
                if key != "iteration" and isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.writer.add_scalar(key, value, step)
            self.writer.flush()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """All lines of a ``metrics.jsonl`` file."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def plot_metrics(run_dir: str | Path) -> Path | None:
    """Draw the training curves of a run into ``<run>/curves.png``; None when there is nothing to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_metrics(run_dir)
    if not rows:
        return None
    fig, axes = plt.subplots(2, 4, figsize=(18, 7))
    for ax, keys in zip(axes.flat, PLOT_KEYS):
        for key in keys:
            pts = [(r["iteration"], r[key]) for r in rows if isinstance(r.get(key), (int, float))]
            if pts:
                ax.plot(*zip(*pts), marker="." if len(pts) < 30 else None, label=key)
        ax.set_xlabel("iteration")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    out = Path(run_dir) / "curves.png"
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out
