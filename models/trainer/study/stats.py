"""Intervals of a study: over seeds (Student's t) and over test items (paired bootstrap).

The seed-inclusive intervals of the study's differences are :mod:`.hierarchical`'s; this
module keeps Table 2's t-interval over seeds, the differences' t interval over seeds (a
check on the bootstrap, whose percentile interval is too narrow with a handful of seeds)
and the items-only paired interval.

A score is ``sum(numerators) / sum(denominators)`` over test items (``per_item.json``):
accuracy is a mean of 0/1, PER/WER/DER a ratio of error counts to reference lengths. Two
upstreams evaluated on the same items are compared by resampling the items once and
scoring both on the same resample, so the item-to-item variation they share cancels.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

from ..confidence import LEVEL
from ..superb.tasks.metrics import ratio_of_sums
from .hierarchical import RESAMPLES, Arm, hierarchical_difference


def t_interval(values: Sequence[float], level: float = LEVEL
               ) -> Tuple[float, Optional[float], Optional[float]]:
    """(mean, low, high): Student's t interval of the mean; (mean, None, None) for one
    value."""
    interval = seed_t_interval([(1.0, values)], level)
    return (float(np.mean(np.asarray(values, dtype=np.float64))),
            *(interval if interval is not None else (None, None)))


def seed_t_interval(arms: Sequence[Tuple[float, Sequence[float]]], level: float = LEVEL
                    ) -> Optional[Tuple[float, float]]:
    """Student's t interval of ``sum(weight * mean(differences))`` over independent arms,
    each a weight and its per-seed differences (one arm: the one-sample t interval; two:
    Welch's, with the Welch-Satterthwaite degrees of freedom); None unless every arm has 2
    seeds or more. The seeds are the only sampling counted: each seed's difference is
    taken on the whole test set, so the test-item draw every seed shares is left out."""
    from scipy import stats

    groups = [(float(weight), np.asarray(values, dtype=np.float64)) for weight, values in arms]
    if not groups or any(values.size < 2 for _, values in groups):
        return None
    value = sum(weight * values.mean() for weight, values in groups)
    parts = [weight ** 2 * values.var(ddof=1) / values.size for weight, values in groups]
    variance = sum(parts)
    if variance <= 0.0:
        return float(value), float(value)
    freedom = variance ** 2 / sum(part ** 2 / (values.size - 1)
                                  for part, (_, values) in zip(parts, groups) if part > 0)
    half = float(stats.t.ppf((1 + level) / 2, freedom)) * float(np.sqrt(variance))
    return float(value - half), float(value + half)


def ratio(parts: Tuple[np.ndarray, np.ndarray]) -> float:
    return ratio_of_sums(*parts)


def paired_difference(before: Sequence[Tuple[np.ndarray, np.ndarray]],
                      after: Sequence[Tuple[np.ndarray, np.ndarray]], *, seed: int = 0,
                      resamples: int = RESAMPLES, level: float = LEVEL
                      ) -> Tuple[float, float, float]:
    """Mean over pairs (e.g. seeds) of score(after) - score(before), and its paired
    bootstrap interval over the test items alone (every pair scores the same items, in the
    same order; each resample draws the items once for all pairs)."""
    estimate = hierarchical_difference([Arm(before, after)], seed=seed, resamples=resamples,
                                       level=level, resample_seeds=False)
    return (estimate.value, *estimate.interval_items)


def contains_zero(low: Optional[float], high: Optional[float]) -> bool:
    return low is None or high is None or low <= 0.0 <= high
