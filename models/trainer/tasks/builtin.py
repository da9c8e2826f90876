"""Bootstrap intervals for the built-in tasks of :mod:`models.trainer.superb` (KS, SID, PR)."""
from __future__ import annotations

import torch

from ..superb_heads import ctc_decode
from ..superb_metrics import edit_distance
from .metrics import (
    BOOTSTRAP_RESAMPLES,
    bootstrap_interval,
    mean_statistic,
    ratio_statistic,
    rounded_interval,
)


def builtin_interval(task: str, head, test_features, test_labels, *, batch_size: int,
                     seed: int) -> dict:
    """``interval`` (95 % percentile bootstrap over test utterances) and how it was made.

    KS/SID resample per-utterance correctness (accuracy = mean); PR resamples per-utterance
    edit counts and reference lengths (PER = total edits / total length).
    """
    head.eval()
    if task == "pr":
        hypotheses = ctc_decode(head, test_features, batch_size)
        errors = [edit_distance(r, h) for r, h in zip(test_labels, hypotheses)]
        statistic = ratio_statistic(errors, [len(r) for r in test_labels])
    else:
        with torch.no_grad():
            predicted = head(torch.stack(test_features)).argmax(dim=-1)
        statistic = mean_statistic((predicted == torch.tensor(list(test_labels))).float().numpy())
    items = len(test_labels)
    return {"interval": rounded_interval(bootstrap_interval(statistic, items, seed=seed)),
            "interval_method": f"95 % percentile bootstrap over the {items} test items, "
                               f"{BOOTSTRAP_RESAMPLES} resamples, seed {seed}"}
