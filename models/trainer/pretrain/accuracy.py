"""Masked-prediction accuracy against the unit prior, with an utterance-level bootstrap.

Span masking makes the masked frames of one utterance strongly correlated (ten frames of
one span share a unit and a context), so the binomial standard error sqrt(p (1 - p) / n)
over frames is too small. The unit of resampling here is the utterance: replicates draw
utterances with replacement and recompute the ratio estimates from their frame counts.
The margin over the prior compares, on the same masked frames, the model's hits with
those of always answering the training split's most frequent unit.
"""
from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

REPLICATES = 2000


def utterance_bootstrap_se(hits: Sequence[float], frames: Sequence[float], *,
                           replicates: int = REPLICATES, seed: int = 0) -> float:
    """Standard error of ``sum(hits) / sum(frames)`` by resampling utterances (entries)."""
    hits, frames = np.asarray(hits, np.float64), np.asarray(frames, np.float64)
    if hits.shape != frames.shape or hits.ndim != 1 or hits.size < 2:
        raise ValueError("hits and frames must be equal-length 1-D sequences of >= 2 entries")
    draws = np.random.default_rng(seed).integers(0, hits.size, size=(replicates, hits.size))
    totals = frames[draws].sum(axis=1)
    ratios = hits[draws].sum(axis=1) / np.maximum(totals, 1.0)
    return float(ratios.std(ddof=1))


def accuracy_over_prior(correct: Sequence[int], prior_correct: Sequence[int],
                        masked: Sequence[int], *, seed: int = 0) -> Dict[str, float]:
    """Per-utterance masked counts -> accuracy, the prior's accuracy on the same frames,
    their difference, and utterance-bootstrap standard errors of accuracy and difference."""
    correct, prior = np.asarray(correct, np.float64), np.asarray(prior_correct, np.float64)
    masked = np.asarray(masked, np.float64)
    total = max(float(masked.sum()), 1.0)
    result = {"acc_masked_prior": float(prior.sum() / total),
              "acc_over_prior": float((correct.sum() - prior.sum()) / total),
              "bootstrap_utterances": int(masked.size)}
    if masked.size >= 2:
        result["acc_masked_se"] = utterance_bootstrap_se(correct, masked, seed=seed)
        result["acc_over_prior_se"] = utterance_bootstrap_se(correct - prior, masked, seed=seed)
    return result
