"""The end-of-run report: PNG plots and a ``report.md`` a person can read in a minute."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from skillkit.core.stats import bootstrap_mean, paired_comparison
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


class ReportComparison(BaseModel):
    """One paired comparison of a run, in words: ``b - a`` on the same units with its 95% interval."""

    name: str
    metric: str
    units: int
    diff: float
    low: float
    high: float
    unit: str = ""
    mde: float | None = None     # the minimum detectable effect at this size (80% power, 5% level)

    @property
    def significant(self) -> bool:
        """Whether the 95% interval excludes zero."""
        return self.low > 0 or self.high < 0

    def text(self) -> str:
        """``"name (metric, n units): +d [low, high]: verdict"``."""
        scale, digits = (100.0, 1) if self.unit == "points" else (1.0, 3)
        verdict = ("significant: the interval excludes 0" if self.significant
                   else "not significant at this scale" + (f" (smallest detectable: {scale * self.mde:.{digits}f})"
                                                           if self.mde else ""))
        return (f"{self.name} ({self.metric}, {self.units} paired units): {scale * self.diff:+.{digits}f} {self.unit} "
                f"[{scale * self.low:+.{digits}f}, {scale * self.high:+.{digits}f}]: {verdict}").replace("  ", " ")


def _paired(name: str, metric: str, a: dict[str, float], b: dict[str, float], unit: str) -> ReportComparison | None:
    units = sorted(set(a) & set(b))
    if not units:
        return None
    paired = paired_comparison([a[u] for u in units], [b[u] for u in units])
    return ReportComparison(name=name, metric=metric, units=len(units), diff=paired.diff.mean, low=paired.diff.low,
                            high=paired.diff.high, unit=unit, mde=paired.mde)


def _dense(result: EvalResult, metric: str) -> dict[str, float]:
    return {task: m[metric] for task, m in result.dense_outcomes.items() if metric in m}


def comparisons(results: Sequence[EvalResult]) -> list[ReportComparison]:
    """The run's comparisons about skills and training, each paired on the same held-out units
    (tasks; the dense metrics per level) with a 95% bootstrap interval:

    * with skills vs no skills, same weights: success, and the teacher advantage (the log-prob of
      the oracle's optimal moves with the routed skill in the prompt minus without, per level);
    * the trained student vs the model it started from (no skills): success and the dense log-prob.
    """
    out: list[ReportComparison | None] = []
    for env in dict.fromkeys(r.env for r in results):
        by_label = {r.label: r for r in results if r.env == env}
        plain, skilled, student = (by_label.get(k) for k in ("no skills", "with skills", "Skill-SD student"))
        if plain is not None and skilled is not None:
            out.append(_paired(f"{env}: with skills vs no skills, same weights", "success", plain.outcomes,
                               skilled.outcomes, "points"))
            gains = _dense(plain, "dense_teacher_advantage")
            if gains:
                units = sorted(gains)
                est = bootstrap_mean([gains[u] for u in units])
                out.append(ReportComparison(name=f"{env}: routed skill in the prompt vs not, same weights",
                                      metric="log-prob of the optimal moves", units=len(units), diff=est.mean,
                                      low=est.low, high=est.high, unit="nats"))
        if plain is not None and student is not None:
            out.append(_paired(f"{env}: Skill-SD student vs its starting model", "success", plain.outcomes,
                               student.outcomes, "points"))
            out.append(_paired(f"{env}: Skill-SD student vs its starting model", "log-prob of the optimal moves",
                               _dense(plain, "dense_logprob_optimal"), _dense(student, "dense_logprob_optimal"), "nats"))
    return [c for c in out if c is not None]


def comparisons_text(items: Sequence[ReportComparison]) -> str:
    """The comparisons as a markdown list (or a line saying there are none)."""
    return "\n".join(f"- {c.text()}" for c in items) or "(no paired comparisons in this run)"
