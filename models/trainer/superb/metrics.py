"""Scores of the SUPERB tasks: edit distance and error rates, greedy CTC decoding, chance."""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch

from ..data.datasets import Vocabulary


def edit_distance(reference: Sequence[int], hypothesis: Sequence[int]) -> int:
    """Levenshtein distance (substitutions, insertions, deletions all cost 1)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, start=1):
        current = [i] + [0] * len(hypothesis)
        for j, hyp in enumerate(hypothesis, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp))
        previous = current
    return previous[-1]


def error_rate(references: Sequence[Sequence[int]], hypotheses: Sequence[Sequence[int]]) -> float:
    """Total edit distance over total reference length (PER for phoneme sequences)."""
    errors = sum(edit_distance(r, h) for r, h in zip(references, hypotheses))
    return errors / max(1, sum(len(r) for r in references))


def greedy_ctc_decode(log_probs: torch.Tensor, lengths: torch.Tensor,
                      blank: int = 0) -> List[List[int]]:
    """Best path: argmax per frame, merge repeats, drop blanks. (B, T, C) -> label lists."""
    best = log_probs.argmax(dim=-1).cpu()
    out = []
    for row, length in zip(best, lengths.tolist()):
        path = row[:length].tolist()
        out.append([p for k, p in enumerate(path) if p != blank and (k == 0 or p != path[k - 1])])
    return out


def chance_level(task: str, vocabulary: Vocabulary, train_labels,
                 test_labels) -> Tuple[float, str, Dict]:
    """The task's chance level, how it is defined, and related reference rates."""
    if task in ("ks", "sid"):
        classes = len(vocabulary)
        counts = np.bincount(np.asarray(test_labels), minlength=classes)
        majority = float(counts.max() / max(1, counts.sum()))
        what = "classes" if task == "ks" else "speakers"
        return (1.0 / classes,
                f"1 / {classes} {what}: accuracy of uniform random guessing",
                {"majority_class_rate_test": round(majority, 5)})
    counts = np.bincount(np.concatenate([np.asarray(t) for t in train_labels]),
                         minlength=len(vocabulary))
    frequent = int(counts.argmax())
    constant = error_rate(test_labels, [[frequent]] * len(test_labels))
    return (constant,
            f"PER of answering every test utterance with the single most frequent training "
            f"phoneme ({vocabulary.symbols[frequent]!r}); an empty answer scores 1.0",
            {"empty_output_per": 1.0})


