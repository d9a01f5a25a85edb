"""Intervals and paired tests on hand-made outcomes."""

from __future__ import annotations

import numpy as np
import pytest

from skillkit.core.stats import bootstrap_mean, grouped_means, normal_mde, paired_comparison, seed_unit_matrix


def test_bootstrap_interval_contains_mean_and_shrinks_with_units():
    rng = np.random.default_rng(1)
    small = bootstrap_mean(rng.integers(0, 2, 32))
    large = bootstrap_mean(rng.integers(0, 2, 512))
    assert small.low <= small.mean <= small.high
    assert (large.high - large.low) < (small.high - small.low)
    assert bootstrap_mean([1.0, 1.0, 1.0]).as_dict() == {"mean": 1.0, "low": 1.0, "high": 1.0, "n_units": 3,
                                                         "n_seeds": 1}
    assert bootstrap_mean([[0, 1], [1, 1]]).n_seeds == 2


def test_paired_comparison_detects_a_real_gap_and_not_noise():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 2, (3, 200)).astype(float)
    better = np.maximum(base, rng.random((3, 200)) < 0.3)  # ~ +15 points on the same levels
    gap = paired_comparison(base, better)
    assert gap.significant and gap.diff.low > 0 and gap.p_value < 0.01
    same = paired_comparison(base, base[::-1])  # same levels, seeds shuffled: no effect
    assert not same.significant and abs(same.diff.mean) < 1e-12
    assert 0 < gap.mde < 0.2
    with pytest.raises(ValueError, match="same units"):
        paired_comparison([1, 0], [1, 0, 1])


def test_grouping_and_matrix_helpers():
    assert grouped_means([1, 0, 1, 1], ["a", "a", "b", "b"]) == (["a", "b"], [0.5, 1.0])
    units, matrix = seed_unit_matrix({0: {"x": 1.0, "y": 0.0}, 1: {"y": 1.0, "x": 0.0, "z": 1.0}})
    assert units == ["x", "y"] and matrix.tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert normal_mde(0.5, 64) == pytest.approx(2.8 * (0.5 / 64) ** 0.5)
