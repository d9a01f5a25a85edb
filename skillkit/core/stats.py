"""Intervals and paired tests for learning claims (docs/design.md section 10).

Outcomes are per evaluation unit (a level, or a scenario for the app suite, whose variants are not
independent) and per seed. Intervals come from a percentile bootstrap that resamples units and,
when there are several, seeds; a method comparison pairs the two arms on the same units.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

#: Bootstrap resamples: enough for a stable 95% percentile interval on a few hundred units.
DEFAULT_RESAMPLES = 4000


@dataclass(frozen=True)
class Estimate:
    """A mean with its 95% interval (``low``, ``high``) and the sizes it came from."""

    mean: float
    low: float
    high: float
    n_units: int
    n_seeds: int

    def as_dict(self) -> dict[str, float | int]:
        """JSON-ready fields."""
        return asdict(self)

    def text(self, scale: float = 1.0, digits: int = 1, unit: str = "") -> str:
        """``"62.5% [50.0, 75.0]"``-style text (``scale=100, unit="%"`` for rates)."""
        f = f"{{:.{digits}f}}"
        return f"{f.format(self.mean * scale)}{unit} [{f.format(self.low * scale)}, {f.format(self.high * scale)}]"

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval lies entirely on one side of zero."""
        return self.low > 0 or self.high < 0


@dataclass(frozen=True)
class Comparison:
    """Arm B minus arm A on the same units: mean difference with its 95% interval, a two-sided
    bootstrap p-value, and the minimum detectable effect (80% power, 5% level) at this size."""

    diff: Estimate
    p_value: float
    mde: float

    def as_dict(self) -> dict[str, object]:
        """JSON-ready fields."""
        return {"diff": self.diff.as_dict(), "p_value": self.p_value, "mde": self.mde}

    @property
    def significant(self) -> bool:
        """Whether the 95% interval of the difference excludes zero."""
        return self.diff.excludes_zero


def _as_matrix(outcomes: Sequence[Sequence[float]] | Sequence[float]) -> np.ndarray:
    """Outcomes as a (seeds, units) float matrix; a flat sequence is one seed."""
    arr = np.asarray(outcomes, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise ValueError(f"outcomes must be (seeds, units) with at least one unit, got shape {arr.shape}")
    return arr


def _resample_means(matrix: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    seeds, units = matrix.shape
    u = rng.integers(0, units, size=(resamples, units))
    s = rng.integers(0, seeds, size=(resamples, seeds)) if seeds > 1 else np.zeros((resamples, 1), dtype=int)
    # mean over resampled seeds of the mean over resampled units
    per_seed = matrix[:, u].mean(axis=2)  # (seeds, resamples)
    return np.take_along_axis(per_seed.T, s, axis=1).mean(axis=1)


def bootstrap_mean(outcomes: Sequence[Sequence[float]] | Sequence[float], resamples: int = DEFAULT_RESAMPLES,
                   seed: int = 0) -> Estimate:
    """Mean of ``outcomes`` ((seeds, units) or one seed's units) with a 95% bootstrap interval
    over units and seeds."""
    matrix = _as_matrix(outcomes)
    means = _resample_means(matrix, resamples, np.random.default_rng(seed))
    low, high = np.percentile(means, [2.5, 97.5])
    return Estimate(float(matrix.mean()), float(low), float(high), matrix.shape[1], matrix.shape[0])


def paired_comparison(a: Sequence[Sequence[float]] | Sequence[float], b: Sequence[Sequence[float]] | Sequence[float],
                      resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> Comparison:
    """``b - a`` on the same units (columns line up; seeds may differ in number between arms).

    The per-unit difference of the arms' seed means is bootstrapped over units (and each arm's
    seeds), so pairing removes the variance between units. The MDE is
    ``2.8 * standard error`` (two-sided 5% level, 80% power).
    """
    ma, mb = _as_matrix(a), _as_matrix(b)
    if ma.shape[1] != mb.shape[1]:
        raise ValueError(f"paired arms need the same units: {ma.shape[1]} vs {mb.shape[1]}")
    rng = np.random.default_rng(seed)
    units = ma.shape[1]
    u = rng.integers(0, units, size=(resamples, units))

    def arm(matrix: np.ndarray) -> np.ndarray:
        seeds = matrix.shape[0]
        s = rng.integers(0, seeds, size=(resamples, seeds)) if seeds > 1 else np.zeros((resamples, 1), dtype=int)
        seed_mean = matrix[s].mean(axis=1)  # (resamples, units): each resample's seed mean per unit
        return np.take_along_axis(seed_mean, u, axis=1).mean(axis=1)

    diffs = arm(mb) - arm(ma)
    observed = float(mb.mean() - ma.mean())
    low, high = np.percentile(diffs, [2.5, 97.5])
    se = float(diffs.std(ddof=1))
    # two-sided p-value: how often the centred bootstrap distribution is as extreme as observed
    centred = diffs - diffs.mean()
    p = float((np.abs(centred) >= abs(observed)).mean()) if se > 0 else (1.0 if observed == 0 else 0.0)
    estimate = Estimate(observed, float(low), float(high), units, max(ma.shape[0], mb.shape[0]))
    return Comparison(estimate, p, 2.8 * se)


def grouped_means(values: Sequence[float], groups: Sequence[str]) -> tuple[list[str], list[float]]:
    """Mean of ``values`` per group (e.g. the variants of one app scenario), groups in first-seen order."""
    totals: dict[str, list[float]] = {}
    for value, group in zip(values, groups, strict=True):
        totals.setdefault(group, []).append(float(value))
    return list(totals), [sum(v) / len(v) for v in totals.values()]


def seed_unit_matrix(per_seed: Mapping[int, Mapping[str, float]]) -> tuple[list[str], np.ndarray]:
    """A (seeds, units) matrix from ``{seed: {unit: outcome}}`` over the units every seed has."""
    if not per_seed:
        raise ValueError("no outcomes")
    common = set.intersection(*(set(v) for v in per_seed.values()))
    units = sorted(common)
    if not units:
        raise ValueError("the seeds share no evaluation unit")
    return units, np.array([[per_seed[s][u] for u in units] for s in sorted(per_seed)], dtype=np.float64)


def normal_mde(p: float, n: int) -> float:
    """Minimum detectable difference of two success rates near ``p`` with ``n`` paired units each
    (80% power, 5% two-sided, no pairing gain): a quick planning number."""
    if n <= 0:
        raise ValueError("n must be positive")
    return 2.8 * math.sqrt(2 * p * (1 - p) / n)
