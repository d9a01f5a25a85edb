"""The end-of-run report: PNG plots and a ``report.md`` a person can read in a minute."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from skillkit.skills.impact import SkillImpact
from trainer.evaluation import EvalResult


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_success(results: Sequence[EvalResult], path: str | Path) -> Path:
    """Grouped bars: success rate per environment for each evaluated agent (with/without skills,
    student), with the 95% interval as an error bar."""
    plt = _pyplot()
    envs = sorted({r.env for r in results})
    labels = list(dict.fromkeys(r.label for r in results))
    width = 0.8 / max(1, len(labels))
    fig, ax = plt.subplots(figsize=(1.8 + 1.6 * len(envs) * max(1, len(labels)) / 2, 3.6))
    for j, label in enumerate(labels):
        found = [next((r for r in results if r.env == e and r.label == label), None) for e in envs]
        values = [100 * r.success_rate if r else 0.0 for r in found]
        low = [v - 100 * r.intervals.get("success_rate", (r.success_rate, r.success_rate))[0] if r else 0.0
               for v, r in zip(values, found)]
        high = [100 * r.intervals.get("success_rate", (r.success_rate, r.success_rate))[1] - v if r else 0.0
                for v, r in zip(values, found)]
        bars = ax.bar([i + j * width for i in range(len(envs))], values, width, label=label, yerr=[low, high],
                      capsize=3)
        ax.bar_label(bars, fmt="%.0f", fontsize=8)
    ax.set_xticks([i + width * (len(labels) - 1) / 2 for i in range(len(envs))], envs)
    ax.set_ylabel("success (%), 95% interval")
    ax.set_ylim(0, 105)
    ax.set_title("Held-out success")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def plot_tiers(counts: dict[str, int], path: str | Path) -> Path:
    """Bars: number of skills per tier in the library."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    tiers = list(counts)
    bars = ax.bar(tiers, [counts[t] for t in tiers], color="#4c72b0")
    ax.bar_label(bars, fontsize=8)
    ax.set_ylabel("skills")
    ax.set_title("Skills per tier")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _with_interval(result: EvalResult, name: str, scale: float = 100.0, digits: int = 1, unit: str = "%") -> str:
    value = getattr(result, name)
    if value is None:
        return "-"
    text = f"{scale * value:.{digits}f}{unit}"
    if name in result.intervals:
        low, high = result.intervals[name]
        text += f" [{scale * low:.{digits}f}, {scale * high:.{digits}f}]"
    return text


def eval_table(results: Sequence[EvalResult]) -> str:
    """Markdown table of evaluation results (95% intervals in brackets; metric names of
    :mod:`trainer.evaluation`)."""
    lines = ["| agent | env | split | episodes | success_rate | sgc | mean_steps | mean_return | dense_greedy_optimal "
             "| dense_logprob_optimal | dense_teacher_advantage |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        lines.append(f"| {r.label} | {r.env} | {r.split} | {r.episodes} | {_with_interval(r, 'success_rate')} | "
                     f"{_with_interval(r, 'sgc')} | {r.mean_steps:.1f} | {_with_interval(r, 'mean_return', 1, 2, '')} | "
                     f"{_with_interval(r, 'dense_greedy_optimal')} | "
                     f"{_with_interval(r, 'dense_logprob_optimal', 1, 3, '')} | "
                     f"{_with_interval(r, 'dense_teacher_advantage', 1, 3, '')} |")
    return "\n".join(lines)


def impact_table(impacts: Sequence[SkillImpact], limit: int = 15) -> str:
    """Markdown table of skill impact (best first)."""
    lines = ["| skill | episodes | tasks | success with | success without | return with | return without |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for i in impacts[:limit]:
        without = "-" if i.return_without is None else f"{i.return_without:.2f}"
        lines.append(f"| {i.name} | {i.episodes} | {i.tasks} | {_pct(i.success_with)} | {_pct(i.success_without)} | "
                     f"{i.return_with:.2f} | {without} |")
    return "\n".join(lines)


def write_report(path: str | Path, title: str, sections: Sequence[tuple[str, str]]) -> Path:
    """Write ``report.md`` from (heading, markdown body) sections."""
    body = [f"# {title}", ""]
    for heading, text in sections:
        body += [f"## {heading}", "", text.strip(), ""]
    Path(path).write_text("\n".join(body))
    return Path(path)
