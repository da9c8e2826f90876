"""Seed-inclusive intervals of a study's differences: a two-stage (hierarchical) bootstrap.

A seed is the unit of replication (each seed pre-trains, distills and evaluates anew); the
test items are a second source of sampling error. A difference is built from *arms*: one
arm is one model's runs paired by seed (e.g. its FP run and the BQ run distilled from it),
each seed's two runs scored on the same test items; its value is the mean over seeds of
``score(after) - score(before)``, a score being ``sum(numerators) / sum(denominators)``
over the items (``per_item.json``). A contrast of two encoders is a weighted sum of arms
(weights +1 and -1).

Each resample

1. draws the test items with replacement, once, and scores every run of every seed on
   that draw (the seeds and the arms are all scored on the same test set: items are
   crossed with seeds, not nested in them, so one draw is shared; independent draws per
   seed would shrink the item variance by the number of seeds);
2. draws each arm's seeds with replacement, independently per arm (two encoders' seed k
   are unrelated networks), keeping a seed's two runs together.

The 95 % interval is the percentile interval of the resampled statistic; its two-sided p
value is ``min(1, 2 min(#{T* <= 0} + 1, #{T* >= 0} + 1) / (R + 1))`` over the R resamples
(the percentile bootstrap's test of 0: p < 0.05 exactly when 0 lies outside a percentile
interval of those resamples, up to the +1 correction that keeps p above 0). The same item
draws without step 2 give ``interval_items``, the interval over test items alone (seeds
fixed). Everything is vectorized: an item draw is a row of multinomial counts ``w``, and a
run's score on it ``w @ numerators / w @ denominators``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np

from ..confidence import LEVEL
from ..superb.tasks.metrics import RATIO_FLOOR, percentile_interval

RESAMPLES = 2000
METHOD = ("hierarchical percentile bootstrap: seeds resampled with replacement (each arm "
          "apart, a seed's paired runs together), then the test items with replacement "
          "(one draw shared by every seed and arm); two-sided bootstrap p")
# Appended to METHOD for a row with one seed (in an encoder, for a contrast): its interval
# is then its items-only one, which the method must say.
ONE_SEED_NOTE = ("; one seed here (in one encoder at least), whose test items alone "
                 "are resampled: no seed variance, so the row takes no part in a verdict")

Parts = Tuple[np.ndarray, np.ndarray]          # (numerators, denominators) per test item


@dataclass(frozen=True)
class Arm:
    """One model's runs paired by seed: ``before[k]`` and ``after[k]`` are seed k's two
    runs on the same test items; the arm adds ``weight * (after - before)``."""

    before: Sequence[Parts]
    after: Sequence[Parts]
    weight: float = 1.0


@dataclass(frozen=True)
class Estimate:
    value: float
    interval: Tuple[float, float]          # seeds and items resampled (primary)
    interval_items: Tuple[float, float]    # items only
    p: float                               # two-sided, from the seed-inclusive resamples
    resamples: int


def _stack(parts: Sequence[Parts]) -> Tuple[np.ndarray, np.ndarray]:
    return (np.stack([np.asarray(p[0], dtype=np.float64) for p in parts]),
            np.stack([np.asarray(p[1], dtype=np.float64) for p in parts]))


def _scores(weights: np.ndarray, parts: Tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """(resamples, seeds): each seed's score on each item draw."""
    numerators, denominators = parts
    # einsum's own loops, not BLAS: a multithreaded matrix product sums in an order that
    # depends on the thread count, so a report rebuilt with OMP_NUM_THREADS=1 differed from
    # one made on two threads in the last digits of summary.json.
    return (np.einsum("ri,si->rs", weights, numerators)
            / np.maximum(np.einsum("ri,si->rs", weights, denominators), RATIO_FLOOR))


def p_floor(resamples: int) -> float:
    """The smallest p :func:`bootstrap_p` gives from ``resamples`` values: no resample on
    the far side of 0."""
    return 2.0 / (resamples + 1)


def bootstrap_p(values: np.ndarray) -> float:
    """Two-sided p of 0 from resampled values of a statistic (see the module docstring)."""
    count = values.size
    below = (np.count_nonzero(values <= 0.0) + 1) / (count + 1)
    above = (np.count_nonzero(values >= 0.0) + 1) / (count + 1)
    return float(min(1.0, 2.0 * min(below, above)))


def hierarchical_difference(arms: Sequence[Arm], *, seed: int = 0,
                            resamples: int = RESAMPLES, level: float = LEVEL,
                            resample_seeds: bool = True) -> Estimate:
    """The weighted sum over ``arms`` of the mean over seeds of ``after - before``, with
    its hierarchical interval, p value and items-only interval (module docstring)."""
    if not arms or any(not arm.before or len(arm.before) != len(arm.after) for arm in arms):
        raise ValueError("every arm needs the same number (>= 1) of before and after runs")
    stacked = [(_stack(arm.before), _stack(arm.after)) for arm in arms]
    items = stacked[0][0][0].shape[1]
    if items < 1 or any(part[0].shape[1] != items for pair in stacked for part in pair):
        raise ValueError("every run of a difference must score the same test items")
    full = np.ones((1, items))
    value = float(sum(arm.weight * (_scores(full, after) - _scores(full, before)).mean()
                      for arm, (before, after) in zip(arms, stacked)))
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(items, np.full(items, 1.0 / items), size=resamples).astype(
        np.float64)
    by_items = np.zeros(resamples)
    by_both = np.zeros(resamples)
    for arm, (before, after) in zip(arms, stacked):
        change = _scores(draws, after) - _scores(draws, before)        # (resamples, seeds)
        by_items += arm.weight * change.mean(axis=1)
        if resample_seeds:
            chosen = rng.integers(0, change.shape[1], size=change.shape)
            change = np.take_along_axis(change, chosen, axis=1)
        by_both += arm.weight * change.mean(axis=1)
    return Estimate(value, percentile_interval(by_both, level),
                    percentile_interval(by_items, level), bootstrap_p(by_both), resamples)


def holm(p_values: Sequence[float]) -> List[float]:
    """Holm's step-down adjusted p values, in the given order: the k-th smallest of m is
    multiplied by m - k + 1, made non-decreasing along that order, capped at 1."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted
