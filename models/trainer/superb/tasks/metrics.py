"""The SUPERB metrics of every task, and a bootstrap interval for all of them.

Each metric is computed by the tool the field uses where there is one:

* accuracy (KS, SID, IC, ER): the mean of per-item correctness;
* phoneme error rate: total edit distance over total reference length
  (:func:`edit_distance`, :func:`error_rate`);
* word error rate: ``jiwer`` (total word edits over total reference words);
* diarization error rate: ``pyannote.metrics`` (``DiarizationErrorRate``, no collar, overlap
  scored), which also finds the optimal speaker mapping;
* equal error rate: scikit-learn's ROC curve, read where miss and false-alarm rates cross;
* maximum term-weighted value: NIST's Spoken Term Detection 2006 evaluation plan, with the
  cost/value ratio 0.1 and prior 1e-4 that give ``beta = 999.9`` (as QUESST 2014 and SUPERB's
  QbE use); written out in :func:`term_weighted_values`;
* slot-type F1 and slot-value CER: the definitions of SUPERB's slot filling (s3prl's
  ``slot_type_f1`` and ``slot_value_cer``).

Every metric can also be written as a statistic of per-item parts (a test utterance, a
trial, a query), which is what :func:`bootstrap_interval` resamples: the percentile
bootstrap over test items, seeded.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from ...confidence import LEVEL

# NIST STD 2006: beta = C/V * (1/P_target - 1) with C/V = 0.1 and P_target = 1e-4.
TWV_BETA = 0.1 * (1.0 / 1e-4 - 1.0)
BOOTSTRAP_RESAMPLES = 1000


# --------------------------------------------------------------------------- bootstrap
def bootstrap_interval(statistic: Callable[[np.ndarray], float], items: int, *,
                       seed: int = 0, resamples: int = BOOTSTRAP_RESAMPLES,
                       level: float = LEVEL) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over ``items`` test items.

    ``statistic(indices)`` computes the metric on the items at ``indices`` (with repeats);
    each resample draws ``items`` indices with replacement from a generator seeded with
    ``seed``. Returns the (1-level)/2 and (1+level)/2 quantiles of the resampled values.
    """
    if items < 1:
        raise ValueError("a bootstrap needs at least one item")
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, items, size=items))
                       for _ in range(resamples)], dtype=np.float64)
    return percentile_interval(values, level)


def percentile_interval(values, level: float = LEVEL) -> tuple[float, float]:
    """The (1 - level) / 2 and (1 + level) / 2 quantiles of resampled ``values``."""
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high)


# The smallest denominator of a ratio of sums: a resample whose items have none (no words,
# no speech) scores 0 instead of NaN.
RATIO_FLOOR = 1e-12


def ratio_of_sums(numerators, denominators) -> float:
    """sum(numerators) / sum(denominators), the denominator at least :data:`RATIO_FLOOR`."""
    return float(np.sum(numerators) / max(float(np.sum(denominators)), RATIO_FLOOR))


def ratio_statistic(numerators: Sequence[float], denominators: Sequence[float]):
    """The statistic sum(numerator) / sum(denominator) over chosen items (WER, PER, DER...)."""
    top = np.asarray(numerators, dtype=np.float64)
    bottom = np.asarray(denominators, dtype=np.float64)
    return lambda index: ratio_of_sums(top[index], bottom[index])


def mean_statistic(values: Sequence[float]):
    """The statistic mean(value) over chosen items (accuracy from 0/1 correctness, F1...)."""
    array = np.asarray(values, dtype=np.float64)
    return lambda index: float(array[index].mean())


def rounded_interval(interval: tuple[float, float], digits: int = 6) -> list[float]:
    return [round(interval[0], digits), round(interval[1], digits)]


# ------------------------------------------------------------------------------- PER
def edit_distance(reference: Sequence, hypothesis: Sequence) -> int:
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


# ------------------------------------------------------------------------------- WER
def word_errors(references: Sequence[str],
                hypotheses: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per utterance: word edits (jiwer's alignment) and reference word counts."""
    import jiwer

    errors, lengths = [], []
    for reference, hypothesis in zip(references, hypotheses):
        words = reference.split()
        if not words:
            raise ValueError("an empty reference transcript has no word error rate")
        if hypothesis.strip():
            out = jiwer.process_words(reference, hypothesis)
            errors.append(out.substitutions + out.deletions + out.insertions)
        else:   # jiwer refuses an empty hypothesis; every reference word is deleted
            errors.append(len(words))
        lengths.append(len(words))
    return np.asarray(errors, dtype=np.float64), np.asarray(lengths, dtype=np.float64)


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    errors, lengths = word_errors(references, hypotheses)
    return float(errors.sum() / lengths.sum())


# ------------------------------------------------------------------------------- DER
def frames_to_annotation(activity: np.ndarray, frame_seconds: float, uri: str = "file"):
    """A pyannote ``Annotation`` from (frames, speakers) 0/1 activity: one label per column,
    each on its own track, so that two speakers active over the same segment stay two (one
    track per segment kept only the last: both outputs on over a whole file scored as one
    speaker, with no false alarm)."""
    from pyannote.core import Annotation, Segment

    annotation = Annotation(uri=uri)
    activity = np.asarray(activity, dtype=bool)
    for speaker in range(activity.shape[1]):
        column = np.concatenate([[False], activity[:, speaker], [False]])
        edges = np.flatnonzero(np.diff(column.astype(np.int8)))
        for start, end in zip(edges[::2], edges[1::2]):
            annotation[Segment(start * frame_seconds, end * frame_seconds),
                       speaker] = f"spk{speaker}"
    return annotation


def diarization_components(references, hypotheses,
                           durations: Sequence[float]) -> dict[str, np.ndarray]:
    """pyannote's DER parts per file: missed, false alarm, confusion and total speech (s).

    ``references``/``hypotheses`` are pyannote Annotations; each file is scored over
    [0, duration] (its UEM), with no collar and overlapping speech included.
    """
    from pyannote.core import Segment, Timeline
    from pyannote.metrics.diarization import DiarizationErrorRate

    metric = DiarizationErrorRate(collar=0.0, skip_overlap=False)
    parts = {"missed": [], "false_alarm": [], "confusion": [], "total": []}
    for reference, hypothesis, duration in zip(references, hypotheses, durations):
        detail = metric.compute_components(reference, hypothesis,
                                           uem=Timeline([Segment(0.0, float(duration))]))
        parts["missed"].append(detail["missed detection"])
        parts["false_alarm"].append(detail["false alarm"])
        parts["confusion"].append(detail["confusion"])
        parts["total"].append(detail["total"])
    return {key: np.asarray(value, dtype=np.float64) for key, value in parts.items()}


def diarization_error_rate(components: Mapping[str, np.ndarray]) -> float:
    errors = components["missed"] + components["false_alarm"] + components["confusion"]
    return ratio_of_sums(errors, components["total"])


# ------------------------------------------------------------------------------- EER
def equal_error_rate(labels: Sequence[int], scores: Sequence[float]) -> float:
    """EER of verification trials (label 1 = same speaker; higher score = more alike).

    Where the ROC curve has no point with miss rate = false-alarm rate, the rate is
    interpolated linearly between the two points around the crossing.
    """
    from sklearn.metrics import roc_curve

    labels = np.asarray(labels)
    if labels.min() == labels.max():
        raise ValueError("an equal error rate needs target and non-target trials")
    false_alarm, hit, _ = roc_curve(labels, np.asarray(scores, dtype=np.float64))
    miss = 1.0 - hit
    gap = false_alarm - miss                    # rises from -1 to +1 along the curve
    after = int(np.flatnonzero(gap >= 0)[0])
    if after == 0 or gap[after] == 0:
        return float(false_alarm[after])
    before = after - 1
    t = -gap[before] / (gap[after] - gap[before])
    return float(false_alarm[before] + t * (false_alarm[after] - false_alarm[before]))


# ------------------------------------------------------------------------------ MTWV
def term_weighted_values(scores: np.ndarray, truth: np.ndarray, thresholds: np.ndarray,
                         beta: float = TWV_BETA) -> np.ndarray:
    """TWV of each term at each threshold: a (terms, thresholds) array.

    ``scores`` and ``truth`` are (terms, trials): one detection score per query and
    document, and whether the document holds the term. A trial is detected when its
    score is >= the threshold. For term t (NIST STD 2006, with trials = documents as in
    QUESST)::

        P_miss(t) = 1 - N_correct(t) / N_true(t)
        P_fa(t)   = N_spurious(t) / (N_trials - N_true(t))
        TWV(t)    = 1 - (P_miss(t) + beta * P_fa(t))

    Terms with no true occurrence have no TWV (NaN rows); the caller leaves them out.
    """
    scores = np.asarray(scores, dtype=np.float64)
    truth = np.asarray(truth, dtype=bool)
    detected = scores[:, :, None] >= np.asarray(thresholds)[None, None, :]
    true = truth.sum(axis=1, keepdims=True).astype(np.float64)
    nontarget = truth.shape[1] - true
    correct = (detected & truth[:, :, None]).sum(axis=1)
    spurious = (detected & ~truth[:, :, None]).sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_miss = 1.0 - correct / true
        p_fa = np.where(nontarget > 0, spurious / np.maximum(nontarget, 1), 0.0)
        values = 1.0 - (p_miss + beta * p_fa)
    values[true[:, 0] == 0] = np.nan
    return values


def twv_thresholds(scores: np.ndarray) -> np.ndarray:
    """Every distinct score, plus one above the largest (nothing detected: TWV = 0)."""
    distinct = np.unique(np.asarray(scores, dtype=np.float64))
    return np.concatenate([distinct, [np.inf]])


def maximum_term_weighted_value(scores: np.ndarray, truth: np.ndarray,
                                beta: float = TWV_BETA) -> tuple[float, float]:
    """MTWV and its threshold: the best over thresholds of the mean TWV over terms."""
    thresholds = twv_thresholds(scores)
    values = term_weighted_values(scores, truth, thresholds, beta)
    scored = values[~np.isnan(values[:, 0])]
    if scored.size == 0:
        raise ValueError("no query has a true occurrence; MTWV is undefined")
    mean = scored.mean(axis=0)
    best = int(np.argmax(mean))
    return float(mean[best]), float(thresholds[best])


def mtwv_statistic(scores: np.ndarray, truth: np.ndarray, beta: float = TWV_BETA):
    """MTWV over chosen terms (for the bootstrap); terms without occurrences are dropped
    beforehand, so ``index`` counts scored terms only. Returns (statistic, number of terms)."""
    values = term_weighted_values(scores, truth, twv_thresholds(scores), beta)
    values = values[~np.isnan(values[:, 0])]
    return (lambda index: float(values[index].mean(axis=0).max())), len(values)


# ----------------------------------------------------------------------- slot filling
SlotDict = dict[str, list[str]]


def slot_type_f1_per_item(references: Sequence[SlotDict],
                          hypotheses: Sequence[SlotDict]) -> np.ndarray:
    """SUPERB's slot-type F1 of each utterance: precision and recall over the *set* of slot
    types; 1 when both are empty, 0 when only one is."""
    scores = []
    for reference, hypothesis in zip(references, hypotheses):
        if not reference and not hypothesis:
            scores.append(1.0)
            continue
        if not reference or not hypothesis:
            scores.append(0.0)
            continue
        recall = sum(slot in hypothesis for slot in reference) / len(reference)
        precision = sum(slot in reference for slot in hypothesis) / len(hypothesis)
        total = precision + recall
        scores.append(2 * precision * recall / total if total > 0 else 0.0)
    return np.asarray(scores, dtype=np.float64)


def slot_value_errors(references: Sequence[SlotDict], hypotheses: Sequence[SlotDict]):
    """Per utterance: character edits and reference characters of the slot values.

    As SUPERB: each reference value is compared with the hypothesis value of the same slot
    type that has the lowest CER (the empty string when the type is missing); extra
    hypothesis slots add nothing. Slot-value CER = total edits / total reference chars.
    """
    edits, lengths = [], []
    for reference, hypothesis in zip(references, hypotheses):
        item_edits = item_length = 0
        for slot, values in reference.items():
            for value in values:
                candidates = hypothesis.get(slot) or [""]
                item_edits += min(edit_distance(value, c) for c in candidates)
                item_length += len(value)
        edits.append(item_edits)
        lengths.append(item_length)
    return np.asarray(edits, dtype=np.float64), np.asarray(lengths, dtype=np.float64)
