"""What the study's report states, as plain data: ``summary.json``.

Every number a section of ``reports/study/README.md`` shows is computed here, once, from
the collected study (:mod:`.collect`); the sections (:mod:`.verdicts`,
:mod:`.sensitivity`, :mod:`.report`) only word and lay out this mapping. Its keys, in the
order they are written: ``study`` (the record with the recipe), ``model_tasks`` (each
teacher against random-init), ``teacher_gate``, ``masked_prediction``, ``degradation``,
``students_vs_random`` (each BQ student against the random-init BQ upstream of its shape),
``contrast`` (two models or more), ``sensitivity``, ``distilled_against_scratch``,
``ablations`` (each where the study has such runs), ``propagation``, ``gated``,
``job_seconds`` and, where jobs logged it, ``job_cpu_seconds``.
"""
from __future__ import annotations

from typing import Any, Dict, List

import numpy as np

from .claims import (
    GATED,
    NOT_EVALUATED,
    UNINFORMATIVE,
    adjust,
    adjust_by_claim,
    contrast,
    degradation,
    informative,
    paired_change,
    student_vs_random,
    teacher_vs_random,
)
from .collect import Study, chain_of
from .gate import teacher_gate
from .presets import SCRATCH_VARIANT, is_binarized_variant
from .sensitivity import sensitivity_entries
from .settings import BQ_VARIANT, FP_VARIANT, LAYERS_ONLY_SUFFIX
from .stats import t_interval

Anchors = Dict[tuple, Dict[str, Any]]          # (model, task) -> teacher_vs_random


def summarize(study: Study, record: Dict[str, Any]) -> Dict[str, Any]:
    """summary.json's mapping of ``study``; ``record`` is its study record with the recipe
    the report states (chains and head budgets)."""
    anchors = anchors_of(study)
    summary: Dict[str, Any] = {"study": record}
    summary["model_tasks"] = [{"model": m, "task": t, "teacher_vs_random": anchors[(m, t)]}
                              for m in study.models for t in study.tasks]
    summary["teacher_gate"] = teacher_gate(study, anchors)
    summary["masked_prediction"] = masked_prediction_rows(study)
    summary["degradation"] = degradation_rows(study, anchors)
    summary["students_vs_random"] = [row for m in study.models for t in study.tasks
                                     if (row := student_vs_random(study, m, t))]
    if len(study.models) >= 2:
        first, second = compared_pair(study)
        rows = contrast_rows(study, first, second, anchors)
        summary["contrast"] = {"first": first, "second": second, "tasks": rows,
                               "pending": pending_tasks(study, first, second, rows,
                                                          anchors)}
    entries = sensitivity_entries(study, summary.get("contrast"), anchors)
    if entries:
        summary["sensitivity"] = entries
    if SCRATCH_VARIANT in study.variants:
        summary["distilled_against_scratch"] = variant_rows(study, anchors, BQ_VARIANT,
                                                            [SCRATCH_VARIANT])
    others = other_students(study)
    if others:
        summary["ablations"] = variant_rows(study, anchors, FP_VARIANT, others)
    summary["propagation"] = propagation_rows(study)
    summary["gated"] = gated_entries(study)
    summary["job_seconds"] = study.job_seconds
    if study.job_cpu_seconds:       # logged since the study log kept CPU time
        summary["job_cpu_seconds"] = study.job_cpu_seconds
    threads = {job: entry["threads"] for job, entry in study.job_log.items()
               if "threads" in entry}
    if threads:                     # logged since the study log kept the thread count
        summary["job_threads"] = threads
    return summary


def anchors_of(study: Study) -> Anchors:
    return {(m, t): teacher_vs_random(study, m, t) for m in study.models for t in study.tasks}


def masked_prediction_rows(study: Study) -> List[Dict[str, Any]]:
    """Each trained run's masked prediction on validation against the unit prior (always
    answering the training split's most frequent unit), mean over seeds."""
    rows = []
    for (model, variant), by_seed in study.pretraining.items():
        seeds = sorted(by_seed)
        over = [by_seed[seed]["acc_over_prior"] for seed in seeds]
        mean, low, high = t_interval(over)
        rows.append({"model": model, "variant": variant, "seeds": seeds,
                     "targets": sorted({by_seed[seed]["targets"] for seed in seeds}),
                     "acc_masked": float(sum(by_seed[s]["acc_masked"] for s in seeds)
                                         / len(seeds)),
                     "prior": float(sum(by_seed[s]["acc_masked_prior"] for s in seeds)
                                    / len(seeds)),
                     "over_prior": mean, "interval": None if low is None else [low, high],
                     "per_seed": [{"seed": seed, "over_prior": by_seed[seed]["acc_over_prior"],
                                   "se": by_seed[seed].get("acc_over_prior_se")}
                                  for seed in seeds]})
    return rows


def degradation_rows(study: Study, anchors: Anchors) -> List[Dict[str, Any]]:
    """BQ against FP per (model, task), Holm within each model's informative tasks."""
    rows = [row for m in study.models for t in study.tasks if (row := degradation(study, m, t))]
    adjust_by_claim(rows, anchors)
    return rows


def contrast_rows(study: Study, first: str, second: str,
                  anchors: Anchors) -> List[Dict[str, Any]]:
    """The two encoders' difference of degradations per task, Holm over the tasks
    informative for both."""
    rows = [c for t in study.tasks if (c := contrast(study, first, second, t))]
    adjust(rows, lambda c: informative([first, second], c["task"], anchors))
    return rows


def pending_tasks(study: Study, first: str, second: str, rows: List[Dict[str, Any]],
                  anchors: Anchors) -> List[Dict[str, str]]:
    """The study's tasks without a contrast row, each with why: a teacher that does not
    beat its random-init twin (whose students a study need not evaluate), a gate that left
    runs out, or runs not all evaluated yet. A verdict lists them, so that a partial
    study's verdict does not read as if it had tested every task."""
    done = {row["task"] for row in rows}
    pending = []
    for task in (t for t in study.tasks if t not in done):
        statuses = [anchors[(m, task)]["status"] for m in (first, second)]
        gated = any(study.gated.get((m, v, task)) for m in (first, second)
                    for v in (FP_VARIANT, BQ_VARIANT))
        status = (UNINFORMATIVE if UNINFORMATIVE in statuses else GATED if gated
                  else NOT_EVALUATED)
        pending.append({"task": task, "status": status})
    return pending


def compared_pair(study: Study) -> tuple:
    """The paper's comparison: an encoder with convolution modules first, an attention-only
    one second (else the first two models)."""
    names = study.models
    mixed = [n for n in names if study.has_convolution(n)]
    plain = [n for n in names if n not in mixed]
    return (mixed[0], plain[0]) if mixed and plain else (names[0], names[1])


def variant_rows(study: Study, anchors: Anchors, reference: str,
                 variants: List[str]) -> List[Dict[str, Any]]:
    """Each of ``variants`` against ``reference`` per (model, task) (positive: the variant
    is worse), Holm within each claim."""
    rows = [r for m in study.models for v in variants for t in study.tasks
            if (r := paired_change(study, m, t, reference, v))]
    adjust_by_claim(rows, anchors)
    return rows


def distilled_variants(study: Study) -> List[str]:
    """``bq`` and every other student variant (not the from-scratch control, not an
    anchor)."""
    return [v for v in study.variants if is_binarized_variant(v)
            and v != SCRATCH_VARIANT and not study.is_random_init(v)]


def other_students(study: Study) -> List[str]:
    """The student variants besides ``bq`` compared with FP on their own (heads on layers
    1..L, ``bq-1L``, are compared with ``fp-1L`` in the sensitivity section)."""
    return [v for v in distilled_variants(study)
            if v != BQ_VARIANT and not v.endswith(LAYERS_ONLY_SUFFIX)]


def chains(study: Study) -> Dict[str, Any]:
    """The precision chain each distilled BQ variant ran ('not recorded' when no record of
    the study says it)."""
    return {variant: chain_of(study, variant) or "not recorded"
            for variant in distilled_variants(study)}


def propagation_rows(study: Study) -> List[Dict[str, Any]]:
    """Per (model, student variant): the relative error of each hidden state against the
    teacher's, mean over seeds (``curve``), its first and last layer, the last layer's
    t-interval over seeds, the mean last / first ratio and last-layer cosine."""
    rows = []
    for model in study.models:
        for variant in study.variants:
            runs = [p["students"][variant] for _, p in sorted(study.propagation.get(
                model, {}).items()) if variant in p["students"]]
            if not runs:
                continue
            errors = np.array([r["relative_error"] for r in runs])
            cosine = np.array([r["cosine"] for r in runs])
            first, last = errors[:, 1], errors[:, -1]
            mean, low, high = t_interval(last)
            rows.append({"model": model, "variant": variant, "last": mean, "low": low,
                         "high": high, "first": float(first.mean()),
                         "curve": errors.mean(axis=0).tolist(),
                         "last_over_first": float(np.mean(last / np.maximum(first, 1e-12))),
                         "last_cosine": float(cosine[:, -1].mean()), "seeds": len(runs)})
    return rows


def gated_entries(study: Study) -> List[Dict[str, Any]]:
    """Evaluations their gate left out (not missing ones)."""
    return [{"model": model, "variant": variant, "task": task, "seeds": sorted(by_seed),
             "reason": by_seed[min(by_seed)]}
            for (model, variant, task), by_seed in sorted(study.gated.items())]
