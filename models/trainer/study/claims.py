"""The study's differences and what they let it claim.

Every difference (a degradation FP -> BQ, a student against a control, a teacher against a
random-init upstream, the contrast of two encoders' degradations) is estimated with
:func:`.hierarchical.hierarchical_difference`: ``interval`` resamples seeds, then test
items (primary); ``interval_items`` resamples the items alone. A task is *informative*
for a model when its FP teacher beats the random-init upstream of the same shape
(``teacher_vs_random``'s seed-inclusive interval above 0); the others are "uninformative at
this scale" and take no part in a verdict. Holm's correction runs over the informative
tasks of one claim (one model's degradations, one variant's changes, the contrast).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from .collect import Study, paired_seeds, shared_item_count
from .hierarchical import METHOD, ONE_SEED_NOTE, Arm, Estimate, hierarchical_difference, holm
from .settings import BQ_VARIANT, FP_VARIANT
from .stats import ratio, seed_t_interval

UNINFORMATIVE = "uninformative at this scale"
NO_ANCHOR = "no random-init anchor"
GATED = "gated: the teacher does not beat chance"
NOT_EVALUATED = "not evaluated yet"
TEACHER_BETTER = "teacher better than random-init"
TEACHER_BETTER_UNSEEDED = "teacher better than random-init on one seed: seed variance unmeasured"
# A finding's interval must include seed variance: with one seed per encoder the
# hierarchical bootstrap has nothing to draw but test items, so it cannot tell a recipe's
# effect from one network's luck; such a row takes no part in a Holm family either, whose
# other members' p values resample seeds.
MIN_VERDICT_SEEDS = 2


def seed_count(seeds) -> int:
    """The seeds behind a row: the fewer of two encoders' for a contrast."""
    return min(len(s) for s in seeds.values()) if isinstance(seeds, dict) else len(seeds)


def sign_of(study: Study, task: str) -> Optional[float]:
    """+1 for error rates, -1 for accuracies: ``sign * (after - before)`` is positive when
    ``after`` is worse."""
    info = study.task_info(task)
    return None if info is None else (-1.0 if info["higher_is_better"] else 1.0)


def estimate_fields(estimate: Estimate, seeds, arms: List[Arm]) -> Dict[str, Any]:
    seed_t = seed_t_interval([(arm.weight, [ratio(after) - ratio(before) for before, after
                                            in zip(arm.before, arm.after)]) for arm in arms])
    return {"interval": list(estimate.interval), "interval_items": list(estimate.interval_items),
            "interval_seeds_t": None if seed_t is None else list(seed_t),
            "p": estimate.p, "holm_adjusted": None,
            "method": METHOD + (ONE_SEED_NOTE if seed_count(seeds) < MIN_VERDICT_SEEDS else ""),
            "seeds": seeds,
            "resamples": estimate.resamples}


def parts(study: Study, cell, seeds: List[int]) -> list:
    return [study.items[cell][seed][1:] for seed in seeds]


def paired_change(study: Study, model: str, task: str, reference: str,
                  variant: str, only: Optional[Sequence[int]] = None) -> Optional[Dict]:
    """``variant`` against ``reference`` on one task, positive when ``variant`` is worse,
    a seed's two runs kept together (a student and its own teacher, a teacher and the
    random-init upstream of its seed); ``only``: those seeds alone."""
    first, second = (model, reference, task), (model, variant, task)
    seeds = within(paired_seeds(study, first, second), only)
    sign = sign_of(study, task)
    if not seeds or sign is None:
        return None
    items = shared_item_count(study, [(cell, seed) for cell in (first, second)
                                      for seed in seeds])
    before, after = parts(study, first, seeds), parts(study, second, seeds)
    arms = [Arm(before, after, sign)]
    estimate = hierarchical_difference(arms)
    return {"model": model, "task": task, "reference": reference, "variant": variant,
            "items": items, "degradation": estimate.value,
            **estimate_fields(estimate, seeds, arms),
            "reference_value": float(np.mean([ratio(p) for p in before])),
            "variant_value": float(np.mean([ratio(p) for p in after]))}


def within(seeds: List[int], only: Optional[Sequence[int]]) -> List[int]:
    return seeds if only is None else [seed for seed in seeds if seed in only]


def degradation(study: Study, model: str, task: str, variant: str = BQ_VARIANT,
                reference: str = FP_VARIANT, only: Optional[Sequence[int]] = None
                ) -> Optional[Dict]:
    """BQ minus FP, positive when BQ is worse (each BQ run is distilled from its seed's FP);
    a sensitivity names other variants in place of ``bq`` and ``fp``; ``only``: those
    seeds alone."""
    row = paired_change(study, model, task, reference, variant, only)
    return None if row is None else {**row, "fp": row["reference_value"],
                                     "bq": row["variant_value"]}


def against_anchor(row: Dict[str, Any], anchor: str, trained: str) -> Dict[str, Any]:
    """A :func:`paired_change` row of a trained run (its reference) against the random-init
    ``anchor`` of its shape, as the anchor tables read it: ``value`` positive when the
    trained run is better (paired_change is positive when the anchor is worse), its score
    under the key ``trained``."""
    return {key: row[key] for key in ("interval", "interval_items", "interval_seeds_t", "p",
                                      "method", "seeds", "resamples")} | {
        "value": row["degradation"], trained: row["reference_value"],
        "random": row["variant_value"], "random_variant": anchor}


def teacher_vs_random(study: Study, model: str, task: str) -> Dict[str, Any]:
    """The FP teacher minus the random-init upstream of its shape (positive: the teacher
    is better), paired by seed; ``informative`` when the seed-inclusive interval is above
    0, None when there is no pair yet: the study has no random-init variant (status
    ``NO_ANCHOR``), the task's gate left the anchor out (``GATED``) or its runs have not
    been evaluated (``NOT_EVALUATED``)."""
    anchor = study.random_variant(model)
    row = None if anchor is None else paired_change(study, model, task, FP_VARIANT, anchor)
    if row is None:
        status = (NO_ANCHOR if anchor is None else GATED if study.gated.get((model, anchor, task))
                  else NOT_EVALUATED)
        return {"value": None, "interval": None, "informative": None, "status": status}
    row = against_anchor(row, anchor, "teacher")
    low = row["interval"][0]
    seeded = len(row["seeds"]) >= MIN_VERDICT_SEEDS
    # One seed's interval resamples test items only: it cannot make a task informative.
    row["informative"] = seeded and low > 0
    row["status"] = (UNINFORMATIVE if low <= 0 else TEACHER_BETTER if seeded
                     else TEACHER_BETTER_UNSEEDED)
    return row


STUDENT_BETTER = "student better than random-init"
STUDENT_NOT_BETTER = "student no better than random-init"
STUDENT_WORSE = "student worse than random-init"
STUDENT_BETTER_UNSEEDED = "student better than random-init on one seed: seed variance unmeasured"


def student_vs_random(study: Study, model: str, task: str) -> Optional[Dict[str, Any]]:
    """The BQ student minus the random-init binarized upstream of its shape (positive: the
    student is better), paired by seed: whether distillation kept anything the task uses
    beyond what a random binarized network of the same shape gives. Descriptive (no Holm
    family, no verdict rests on it); None without both runs at a common seed."""
    anchor = study.random_variant(model, binarized=True)
    row = None if anchor is None else paired_change(study, model, task, BQ_VARIANT, anchor)
    if row is None:
        return None
    (low, high), seeded = row["interval"], len(row["seeds"]) >= MIN_VERDICT_SEEDS
    if low > 0:
        status = STUDENT_BETTER if seeded else STUDENT_BETTER_UNSEEDED
    else:          # one seed's interval resamples test items only: no "worse" from it
        status = STUDENT_WORSE if seeded and high < 0 else STUDENT_NOT_BETTER
    # no Holm family: the report's shared columns print its Holm p as '-'
    return {"model": model, "task": task, "holm_adjusted": None,
            **against_anchor(row, anchor, "student"), "status": status}


def contrast(study: Study, first: str, second: str, task: str,
             pairs: Optional[Dict[str, tuple]] = None,
             only: Optional[Dict[str, Sequence[int]]] = None) -> Optional[Dict]:
    """Degradation of ``first`` minus that of ``second`` (positive: ``second`` loses less);
    each encoder's seeds are resampled apart, the test items once for both. ``pairs``:
    model -> its (fp, bq) variants, ``(FP_VARIANT, BQ_VARIANT)`` where not given (a sensitivity);
    ``only``: model -> its seeds to use, all where not given."""
    sign = sign_of(study, task)
    chosen = {m: (pairs or {}).get(m, (FP_VARIANT, BQ_VARIANT)) for m in (first, second)}
    cells = {m: ((m, chosen[m][0], task), (m, chosen[m][1], task)) for m in (first, second)}
    seeds = {m: within(paired_seeds(study, *cells[m]), (only or {}).get(m))
             for m in (first, second)}
    if sign is None or not all(seeds.values()):
        return None
    items = shared_item_count(study, [(cell, seed) for m in (first, second)
                                      for cell in cells[m] for seed in seeds[m]])
    arms = [Arm(parts(study, cells[m][0], seeds[m]), parts(study, cells[m][1], seeds[m]),
                weight) for m, weight in ((first, sign), (second, -sign))]
    estimate = hierarchical_difference(arms)
    return {"task": task, "difference": estimate.value,
            **estimate_fields(estimate, {first: seeds[first], second: seeds[second]}, arms),
            "items": items}


def informative(models: List[str], task: str, anchors: Dict[tuple, Dict[str, Any]]) -> bool:
    return all(anchors.get((model, task), {}).get("informative") for model in models)


def adjust(rows: List[Dict], keep) -> None:
    """Holm over the rows ``keep(row)`` admits (one claim's informative tasks, marked
    ``informative``) that have :data:`MIN_VERDICT_SEEDS` seeds, in place; the others keep
    ``holm_adjusted`` None."""
    for row in rows:
        row["informative"] = bool(keep(row))
    chosen = [row for row in rows
              if row["informative"] and seed_count(row["seeds"]) >= MIN_VERDICT_SEEDS]
    for row, adjusted in zip(chosen, holm([row["p"] for row in chosen])):
        row["holm_adjusted"] = adjusted


def adjust_by_claim(rows: List[Dict], anchors: Dict[tuple, Dict[str, Any]]) -> None:
    """One claim per (model, variant): its informative tasks, Holm-adjusted together."""
    for claim in dict.fromkeys((row["model"], row["variant"]) for row in rows):
        adjust([row for row in rows if (row["model"], row["variant"]) == claim],
               lambda row: anchors.get((row["model"], row["task"]), {}).get("informative"))
