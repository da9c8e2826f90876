"""Bootstrap intervals for the built-in tasks of :mod:`..runner` (KS, SID, PR)."""
from __future__ import annotations

from typing import Sequence

from .metrics import BOOTSTRAP_RESAMPLES, bootstrap_interval, ratio_statistic, rounded_interval


def builtin_interval(numerators: Sequence[float], denominators: Sequence[float], *,
                     seed: int) -> dict:
    """``interval`` (95 % percentile bootstrap over test utterances) and how it was made,
    from each test item's share of the score (:func:`..heads.test_item_parts`):
    KS/SID resample per-utterance correctness over 1 (accuracy), PR per-utterance edit
    counts over reference lengths (PER = total edits / total length)."""
    items = len(numerators)
    statistic = ratio_statistic(numerators, denominators)
    return {"interval": rounded_interval(bootstrap_interval(statistic, items, seed=seed)),
            "interval_method": f"95 % percentile bootstrap over the {items} test items, "
                               f"{BOOTSTRAP_RESAMPLES} resamples, seed {seed}"}
