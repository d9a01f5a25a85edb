"""Anchored generations ("Recursive Meta-Distillation"): what is logged per generation, and its plot.

``generations: R`` runs ``iterations`` iterations R times. Generation 0 is an ordinary run; every
later generation restarts the student from the generation-0 weights and is taught by a frozen copy
of the previous generation's final student, anchored to the generation-0 weights with
``teacher.anchor_beta`` (:meth:`trainer.teacher.Teacher.next_generation`); the skill library
carries over, so generation k+1's teacher sees the skills generation k's experience produced. The
paper's claim: anchored (beta > 0), the chain of teachers contracts in KL to a unique fixed point;
unanchored (beta = 0), errors can accumulate.

Per generation boundary the trainer logs, on one fixed set of states (the first iteration's turn
samples, each with the skill its task had then):

* ``gen_kl_successive``: KL(teacher_{k+1} || teacher_k), k3 on those samples' response tokens
  (teacher_k: the teacher at the end of generation k);
* ``gen_kl_anchor``: KL(teacher_{k+1} || p_0), the anchor with the same skill;
* ``gen_eval_success``: the held-out success rate at the end of generation k.

``generations.png`` in the run folder plots the three against the generation (held-out success
from the evaluation at the end of every generation, the last one included).

How the pipeline would use it (not wired yet): a pipeline round is experience -> skills ->
student; with ``generations: R`` the trainer already runs R such rounds in one run folder, the
library of round k feeding round k + 1's teacher, so ``skillkit pipeline`` would pass ``generations``
through to its training step instead of chaining R separate runs (which would lose the anchor).
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from trainer.metrics import read_metrics
from trainer.rollout import TurnSample
from trainer.teacher import Teacher


def k3_mean(logp_p: Sequence[Sequence[float]], logp_q: Sequence[Sequence[float]]) -> float:
    """KL(p || q) by the k3 estimator, ``mean_t exp(-l) - 1 + l`` with ``l = log p - log q``, over all tokens."""
    lt = torch.tensor([a - b for p, q in zip(logp_p, logp_q) for a, b in zip(p, q)], dtype=torch.float64)
    return float((torch.exp(-lt) - 1 + lt).mean()) if lt.numel() else 0.0


class GenerationProbe:
    """The fixed states on which successive teachers are compared (see the module docstring)."""

    def __init__(self, samples: Sequence[TurnSample], skills: dict[str, tuple[str, str]], max_samples: int = 64) -> None:
        self.samples = [copy.copy(s) for s in samples[:max_samples]]
        self.texts = [skills[s.task_id][1] if s.task_id in skills else "" for s in self.samples]

    def state_dict(self) -> dict[str, Any]:
        """The fixed samples and their skill texts (a checkpoint keeps them)."""
        return {"samples": [dataclasses.asdict(s) for s in self.samples], "texts": list(self.texts)}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any]) -> GenerationProbe:
        """Rebuild the probe saved by :meth:`state_dict`."""
        probe = cls([], {})
        probe.samples = [TurnSample(**s) for s in state["samples"]]
        probe.texts = list(state["texts"])
        return probe

    def teacher_logprobs(self, teacher: Teacher) -> list[list[float]]:
        """The teacher's (anchored, when it is) log-probs of the fixed samples' response tokens."""
        return teacher.logprobs(self.samples, self.texts)[0]

    def anchor_logprobs(self, teacher: Teacher) -> list[list[float]]:
        """The anchor's own log-probs (beta = 1) of the same tokens."""
        beta = teacher.beta
        teacher.beta = 1.0
        try:
            return self.teacher_logprobs(teacher)
        finally:
            teacher.beta = beta


def generation_series(run_dir: str | Path) -> dict[str, list[tuple[int, float]]] | None:
    """A run's per-generation metrics as ``(generation, value)`` points: ``kl_successive`` and
    ``kl_anchor`` at each boundary (x = the new generation k+1), ``eval_success`` at the end of each
    generation (x = k, the last one included); None for a run with a single generation."""
    rows = read_metrics(run_dir)
    boundaries = [r for r in rows if "gen_kl_successive" in r]
    if not boundaries:
        return None
    last_eval: dict[int, float] = {}
    for r in rows:
        if isinstance(r.get("eval_success_rate"), (int, float)) and "generation" in r:
            last_eval[int(r["generation"])] = r["eval_success_rate"]
    return {"kl_successive": [(int(r["generation"]), r["gen_kl_successive"]) for r in boundaries],
            "kl_anchor": [(int(r["generation"]), r["gen_kl_anchor"]) for r in boundaries],
            "eval_success": sorted(last_eval.items())}


def plot_generations(runs: str | Path | dict[str, str | Path], out: str | Path | None = None) -> Path | None:
    """Successive-teacher KL, KL to the anchor and held-out success per generation, one line per run.

    ``runs``: a run folder (the plot goes to ``<run>/generations.png``) or ``{label: run folder}``
    (e.g. anchored against unanchored; ``out`` names the file). None when no run has generations.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labelled = {"": runs} if isinstance(runs, (str, Path)) else dict(runs)
    series = {label: s for label, run in labelled.items() if (s := generation_series(run)) is not None}
    if not series:
        return None
    panels = [("kl_successive", "KL(teacher k+1 || teacher k)", "generation k+1", True),
              ("kl_anchor", "KL(teacher k+1 || anchor)", "generation k+1", True),
              ("eval_success", "held-out success at the end of generation k", "generation k", False)]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, (key, title, xlabel, log_y) in zip(axes, panels):
        for label, s in series.items():
            if s[key]:
                ax.plot(*zip(*s[key]), marker="o", label=label or None)
        if log_y and any(v > 0 for s in series.values() for _, v in s[key]):
            ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
        if any(series):
            ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(out) if out is not None else Path(next(iter(labelled.values()))) / "generations.png"
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def generation_record(probe: GenerationProbe, teacher: Teacher, before: list[list[float]], generation: int,
                      eval_success: float | None) -> dict[str, Any]:
    """The metrics line of a generation boundary, after ``teacher`` became generation ``generation``'s;
    ``before`` holds the previous teacher's log-probs on the probe."""
    after = probe.teacher_logprobs(teacher)
    return {"generation": generation, "gen_kl_successive": k3_mean(after, before),
            "gen_kl_anchor": k3_mean(after, probe.anchor_logprobs(teacher)), "gen_eval_success": eval_success,
            "anchor_beta": teacher.beta}
