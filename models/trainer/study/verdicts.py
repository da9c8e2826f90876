"""The report's sections on the study's claims: each teacher against random-init, the FP ->
BQ degradations, the contrast of two encoders and its verdict, the from-scratch control and
the module-type ablations: markdown lines from ``summary.json``'s entries.

The numbers are computed in :mod:`.summary` (with :mod:`.claims`); this module words them,
and says what a contrast's row finds (:func:`verdict`).
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence

from ...constants import float_name
from ..confidence import ALPHA, LEVEL_TEXT
from .claims import (
    MIN_VERDICT_SEEDS,
    UNINFORMATIVE,
    seed_count,
)
from .collect import Study
from .gate import gate_paragraph, gate_shortfall
from .hierarchical import METHOD, RESAMPLES, p_floor
from .presets import module_ablation
from .stats import contains_zero

METHOD_NOTE = (f"Intervals: {LEVEL_TEXT}, {RESAMPLES} resamples of a hierarchical bootstrap ("
               f"{METHOD}); 'items only' keeps the seeds fixed and resamples the test items. "
               f"Holm: p adjusted over the informative tasks of one claim; a finding needs "
               f"Holm p < {ALPHA}.")


def method_lines() -> List[str]:
    """The report's method part: how every interval, p value and verdict is made."""
    return ["## Method", "",
            "- **Unit of replication: the seed.** Each seed pre-trains, distills and evaluates "
            "anew; the test items are a second source of sampling error.",
            f"- **`interval` (primary):** {LEVEL_TEXT} percentile interval of {RESAMPLES} "
            "resamples "
            "of a hierarchical bootstrap: each resample draws the test items with "
            "replacement once (every seed and encoder is scored on the same test set, so "
            "the draw is shared), then each encoder's seeds with replacement (a seed's "
            "paired runs, e.g. FP and the BQ distilled from it, together); the statistic is "
            "the mean over drawn seeds of the per-seed score difference.",
            "- **`interval_items`:** the same item draws, the seeds fixed (test-item "
            "sampling only).",
            "- **`interval_seeds_t` (t over seeds), a check:** Student's t interval of the "
            "mean of the per-seed differences (Welch's for a contrast of two encoders), each "
            "seed's difference taken on the whole test set. With 4 or 5 seeds a percentile "
            "bootstrap over seeds is narrower than this (it uses normal-like quantiles and "
            "the seeds' spread without the n - 1 correction), so a finding whose t interval "
            "contains 0 rests on the bootstrap alone; the report's decisions use `interval`, "
            "chosen before the run.",
            "- **p:** two-sided, from the same resamples: min(1, 2 min(#{T* <= 0} + 1, "
            "#{T* >= 0} + 1) / (R + 1)); at its floor 2 / (R + 1) (no resample on the far "
            "side of 0) it is a bound and prints as '<= ', its Holm p too.",
            f"- **Informative tasks:** a task is {UNINFORMATIVE} for a model when its FP "
            "teacher does not beat the random-init upstream of the same shape "
            "(`teacher_vs_random`'s interval not above 0); such tasks are reported and take "
            f"no part in a verdict. So does a task whose teacher wins on fewer than "
            f"{MIN_VERDICT_SEEDS} seeds: that interval resamples test items only.",
            f"- **Holm:** p adjusted over the informative tasks of one claim (one model's "
            f"degradations, one variant's changes, the contrast over the tasks informative "
            f"for both encoders), leaving out a row with fewer than {MIN_VERDICT_SEEDS} "
            f"seeds (its p resamples test items only); a finding needs Holm p < {ALPHA}. "
            "A finding whose t interval over seeds contains 0 says 'bootstrap only'.",
            "- **Recomputable:** `runs/` here holds every evaluation's `results.json` and "
            "`per_item.json` (the study folder's layout); `profile-encoder study --report` "
            "rebuilds every table from them alone.", ""]


def percent(value: Optional[float]) -> str:
    return "-" if value is None else f"{round(100 * value, 1) + 0.0:.1f}"


def points(value: float) -> str:
    return f"{round(100 * value, 1) + 0.0:+.1f}"      # + 0.0: no "-0.0"


def bound(value: float) -> str:
    """An interval's end in points. One that rounds to 0.0 gets a second decimal: which
    side of 0 it lies on decides whether the interval excludes 0."""
    if value != 0 and round(100 * value, 1) == 0:
        return f"{100 * value:+.2f}"
    return points(value)


def span(interval: Optional[List[float]]) -> str:
    return "-" if interval is None else f"[{bound(interval[0])}, {bound(interval[1])}]"


def p_cell(value: Optional[float], bound: bool = False) -> str:
    """A p value; ``bound``: an upper bound, not a value (``<=``)."""
    return "-" if value is None else f"{'<= ' if bound else ''}{value:.3f}"


def at_floor(row: Dict) -> bool:
    """Whether the row's p is the smallest its resamples can give, 2 / (R + 1) (no resample
    on the far side of 0): the true p may be smaller, so the value is a bound. Its Holm p
    is then a bound too: every p ranked before it is at the floor as well."""
    resamples = row.get("resamples")
    return bool(resamples) and row["p"] is not None and row["p"] <= p_floor(resamples) + 1e-12


def change_cells(row: Dict) -> str:
    """'interval | items-only interval | t over seeds | p | Holm p | seeds' of one
    difference."""
    bound = at_floor(row)
    return (f"{span(row['interval'])} | {span(row['interval_items'])} | "
            f"{span(row.get('interval_seeds_t'))} | {p_cell(row['p'], bound)} | "
            f"{p_cell(row['holm_adjusted'], bound)} | {seed_count(row['seeds'])}")


CHANGE_HEADER = f"{LEVEL_TEXT} interval | items only | t over seeds | p | Holm p | seeds"
CHANGE_RULE = " --- | --- | --- | ---: | ---: | ---: |"


def teacher_lines(study: Study, summary: Dict) -> List[str]:
    """Each (model, task): does the FP teacher beat the random-init upstream of its shape."""
    lines = ["## Teachers against random-init upstreams", "",
             "Teacher minus the random-init upstream of the same shape (positive: the FP "
             "teacher is better), in points of the task's metric, paired by seed. A task "
             f"whose interval does not lie above 0 is {UNINFORMATIVE}: its degradations are "
             "measured from a teacher that learned nothing the task uses, and it takes no "
             f"part in a verdict; one with fewer than {MIN_VERDICT_SEEDS} seeds takes no part "
             "either (its interval resamples test items only).", "",
             f"| Model | Task | teacher % | random-init % | teacher - random (points) | "
             f"{CHANGE_HEADER} | status |",
             "| --- | --- | ---: | ---: | ---: |" + CHANGE_RULE + " --- |"]
    for entry in summary["model_tasks"]:
        model, task, row = entry["model"], entry["task"], entry["teacher_vs_random"]
        if row["value"] is None:
            lines.append(f"| {model} | {task} | - | - | - | - | - | - | - | - | 0 | "
                         f"{row['status']} |")
            continue
        lines.append(f"| {model} | {task} | {percent(row['teacher'])} | "
                     f"{percent(row['random'])} | {points(row['value'])} | "
                     f"{span(row['interval'])} | {span(row['interval_items'])} | "
                     f"{span(row.get('interval_seeds_t'))} | "
                     f"{p_cell(row['p'], at_floor(row))} | - | "
                     f"{len(row['seeds'])} | {row['status']}"
                     f"{PHONE_MARK if model in study.phone_supervised(task) else ''} |")
    if any(study.phone_supervised(task) for task in study.tasks):
        lines += ["", f"{PHONE_MARK.strip()} the teacher was pre-trained on phone labels: "
                      f"this task's labels, so its margin is not a self-supervised one."]
    lines += ["", gate_paragraph(summary["teacher_gate"]), ""]
    return lines + masked_prediction_lines(summary)


PHONE_MARK = " (phone-supervised)"

def masked_prediction_lines(summary: Dict) -> List[str]:
    """Each trained run's masked prediction on validation against the unit prior, mean over
    seeds (``summary``'s ``masked_prediction``)."""
    rows = summary["masked_prediction"]
    if not rows:
        return []
    lines = ["### Masked prediction against the unit prior", "",
             "Each pre-trained run's accuracy on the masked frames of its validation "
             "utterances, and the same frames' accuracy of the unit prior (always "
             "answering the training split's most frequent unit); 'over prior' is their "
             f"difference, mean over seeds [{LEVEL_TEXT} t-interval over seeds]; each seed's own "
             "standard error is an "
             "utterance-level bootstrap (span-masked frames are correlated).", "",
             "| Model | Variant | targets | masked accuracy % | prior % | over prior (points) | "
             "seeds | per seed: over prior +- SE (points) |",
             "| --- | --- | --- | ---: | ---: | --- | ---: | --- |"]
    for row in rows:
        spread = "" if row["interval"] is None else f" {span(row['interval'])}"
        per_seed = "; ".join(
            f"{points(item['over_prior'])}"
            + ("" if item["se"] is None else f" +- {100 * item['se']:.1f}")
            for item in row["per_seed"])
        lines.append(f"| {row['model']} | {row['variant']} | {', '.join(row['targets'])} | "
                     f"{percent(row['acc_masked'])} | {percent(row['prior'])} | "
                     f"{points(row['over_prior'])}{spread} | {len(row['seeds'])} | "
                     f"{per_seed} |")
    return lines + [""]


def degradation_lines(summary: Dict) -> List[str]:
    lines = ["## FP -> BQ degradation", "",
             "Positive: BQ is worse, in points of the task's metric (BQ minus FP for error "
             "rates, FP minus BQ for accuracies), the mean over seeds. " + METHOD_NOTE, "",
             f"| Model | Task | FP % | BQ % | degradation (points) | {CHANGE_HEADER} |",
             "| --- | --- | ---: | ---: | ---: |" + CHANGE_RULE]
    for row in summary["degradation"]:
        lines.append(f"| {row['model']} | {row['task']} | {percent(row['fp'])} | "
                     f"{percent(row['bq'])} | {points(row['degradation'])} | "
                     f"{change_cells(row)} |")
    lines += [""] + student_lines(summary)
    compared = summary.get("contrast")
    if compared is None:
        return lines + ["One model only: no comparison between encoders.", ""]
    first, second, contrasts = compared["first"], compared["second"], compared["tasks"]
    lines += [f"### Does binarization hurt {second} less than {first}?", "",
              f"Difference of degradations, {first} minus {second} (positive: {second} "
              "loses less); each encoder's seeds resampled apart, the test items once for "
              "both. Holm over the tasks informative for both encoders.", "",
              f"| Task | difference (points) | {CHANGE_HEADER} | verdict |",
              "| --- | ---: |" + CHANGE_RULE + " --- |"]
    for c in contrasts:
        lines.append(f"| {c['task']} | {points(c['difference'])} | {change_cells(c)} | "
                     f"{verdict_cell(c, first, second)} |")
    lines += ["", verdict_paragraph(contrasts, first, second, summary.get("teacher_gate"),
                                    compared.get("pending", [])), ""]
    return lines


def student_lines(summary: Dict) -> List[str]:
    """Each (model, task): does the BQ student beat the random-init BQ upstream of its
    shape; nothing for a study without such anchors."""
    rows = summary.get("students_vs_random") or []
    if not rows:
        return []
    lines = ["### BQ students against random-init BQ upstreams", "",
             "BQ student minus the random-init binarized upstream of the same shape "
             "(positive: the student is better), in points, paired by seed. Where the "
             "student is no better, distillation kept nothing the task uses beyond what a "
             "random binarized network of that shape gives; where it is worse, it lost some "
             "of that too. Descriptive: no verdict rests on it (no Holm family).", "",
             f"| Model | Task | BQ % | BQ random-init % | student - random (points) | "
             f"{CHANGE_HEADER} | status |",
             "| --- | --- | ---: | ---: | ---: |" + CHANGE_RULE + " --- |"]
    for row in rows:
        lines.append(f"| {row['model']} | {row['task']} | {percent(row['student'])} | "
                     f"{percent(row['random'])} | {points(row['value'])} | "
                     f"{change_cells(row)} | {row['status']} |")
    return lines + [""]


# Why a task takes no part in a verdict.
LEFT_OUT = (f"{UNINFORMATIVE}, a teacher win on one seed, gated or no random-init pair "
            f"yet")


# What a contrast's row finds (verdict_kind); verdict() words each.
NOT_TESTED, UNSEEDED, NO_DIFFERENCE, NOT_SIGNIFICANT, LESS, MORE = (
    "not tested", "unseeded", "no difference", "not significant", "less", "more")
NULL_KINDS = (NO_DIFFERENCE, NOT_SIGNIFICANT)


def verdict_kind(row: Dict, value: str = "difference") -> str:
    """What a row finds: :data:`LESS` or :data:`MORE` (its ``value`` above or below 0:
    for the contrast, the second encoder loses less or more), a null
    (:data:`NULL_KINDS`), or no test (:data:`NOT_TESTED`, :data:`UNSEEDED`)."""
    if not row.get("informative", row["holm_adjusted"] is not None):
        return NOT_TESTED
    if seed_count(row["seeds"]) < MIN_VERDICT_SEEDS:
        return UNSEEDED
    if row["holm_adjusted"] >= ALPHA:
        return NO_DIFFERENCE if contains_zero(*row["interval"]) else NOT_SIGNIFICANT
    return LESS if row[value] > 0 else MORE


def verdict(row: Dict, first: str, second: str) -> str:
    """The contrast's finding on one task, in words."""
    kind = verdict_kind(row)
    if kind == NOT_TESTED:
        return f"not tested ({LEFT_OUT})"
    if kind == UNSEEDED:
        return (f"no verdict: {seed_count(row['seeds'])} seed per encoder (fewer than "
                f"{MIN_VERDICT_SEEDS}: seed variance unmeasured)")
    if kind == NO_DIFFERENCE:
        return "no difference shown (the interval contains 0)"
    if kind == NOT_SIGNIFICANT:
        if not holm_raised(row):
            return (f"not significant (p >= {ALPHA}, though the interval excludes 0: the two "
                    f"disagree at the margin)")
        return f"not significant after Holm's correction (Holm p >= {ALPHA})"
    return f"{second} loses {kind} than {first}"


def holm_raised(row: Dict) -> bool:
    """Whether Holm's correction raised the row's p (not so in a family of one)."""
    return (row.get("p") is not None and row.get("holm_adjusted") is not None
            and row["holm_adjusted"] > row["p"])


def finding(row: Dict) -> str:
    """What :func:`verdict_kind` finds, its two nulls as one ('null'): whether a
    sensitivity moved the verdict compares these."""
    kind = verdict_kind(row)
    return "null" if kind in NULL_KINDS else kind


def rests_on_bootstrap(row: Dict) -> bool:
    """A finding whose t interval over seeds contains 0: only the bootstrap carries it."""
    check = row.get("interval_seeds_t")
    return bool(check) and contains_zero(*check)


def verdict_cell(row: Dict, first: str, second: str) -> str:
    """:func:`verdict`, flagged where the finding rests on the bootstrap alone."""
    return flagged(verdict(row, first, second), verdict_kind(row),
                   rests_on_bootstrap(row))


def flagged(text: str, kind: str, bootstrap_only: bool) -> str:
    """A verdict's words, flagged when it is a finding (``kind`` :data:`LESS` or
    :data:`MORE`) that only the bootstrap carries."""
    if kind in (LESS, MORE) and bootstrap_only:
        text += " (bootstrap only: t over seeds contains 0)"
    return text


def verdict_paragraph(contrasts: List[Dict], first: str, second: str,
                      gate: Optional[Dict[str, Any]] = None,
                      pending: Sequence[Dict[str, str]] = ()) -> str:
    """The contrast's verdict in words; ``pending``: the study's tasks without a contrast
    row (``summary.pending_tasks``), named so a partial study's verdict says what it has
    not tested."""
    shortfall = gate_shortfall(gate)
    caveat = f" {shortfall}" if shortfall else ""
    if pending:
        caveat += " Not in this verdict: " + "; ".join(
            f"{row['task']} ({row['status']})" for row in pending) + "."
    tested = [c for c in contrasts if c.get("informative", c["holm_adjusted"] is not None)]
    if not tested:
        return ("**Verdict:** no task has per-item scores of both encoders and a teacher of "
                "each that beats its random-init upstream, so the claim is not tested."
                + caveat)
    kinds = {c["task"]: verdict_kind(c) for c in tested}
    unseeded = [task for task, kind in kinds.items() if kind == UNSEEDED]
    if len(unseeded) == len(tested):
        return (f"**Verdict:** none yet: every informative task has fewer than "
                f"{MIN_VERDICT_SEEDS} seeds per encoder, so its interval holds test-item "
                "sampling only; the differences above describe these networks, not the "
                "recipe." + caveat)
    by_task = {c["task"]: c for c in tested}
    less = [task for task, kind in kinds.items() if kind == LESS]
    more = [task for task, kind in kinds.items() if kind == MORE]
    shown = [task for task, kind in kinds.items() if kind == NO_DIFFERENCE]
    holm = [task for task, kind in kinds.items() if kind == NOT_SIGNIFICANT]
    left_out = [c["task"] for c in contrasts if c not in tested]
    seeds = min(seed_count(c["seeds"]) for c in tested if c["task"] not in unseeded)
    text = (f"**Verdict (small-scale synthetic, at least {seeds} seed(s) per encoder, "
            f"informative tasks {', '.join(c['task'] for c in tested)}):** the paper's claim "
            f"that binarization hurts {second} less than {first} ")
    # "In this run", not "supported": one small synthetic study shows a direction, it
    # does not confirm the paper's setting.
    if less:
        text += f"holds in this run on {', '.join(less)}"
    if more:
        text += (" and is reversed on " if less else "is reversed in this run on ") + (
            f"{', '.join(more)} ({second} loses more)")
    if not less and not more:
        text += (f"finds no support at this scale: no Holm-adjusted p is below {ALPHA} (a "
                 "null result, not evidence of equal robustness)")
    if shown and (less or more):
        text += f"; on {', '.join(shown)} the difference cannot be told from 0"
    raised = [task for task in holm if holm_raised(by_task[task])]
    if raised:
        text += (f"; on {', '.join(raised)} the interval excludes 0 but the difference is not "
                 f"significant after Holm's correction")
    margin = [task for task in holm if task not in raised]
    if margin:
        text += (f"; on {', '.join(margin)} the interval excludes 0 but p >= {ALPHA} (the two "
                 f"disagree at the margin)")
    fragile = [task for task in less + more if rests_on_bootstrap(by_task[task])]
    if fragile:
        text += (f"; on {', '.join(fragile)} the finding rests on the bootstrap alone (the t "
                 f"interval over seeds contains 0)")
    if unseeded:
        text += (f"; {', '.join(unseeded)} has fewer than {MIN_VERDICT_SEEDS} seeds per "
                 "encoder yet (no verdict)")
    if left_out:
        text += f"; {', '.join(left_out)} took no part ({LEFT_OUT})"
    if shortfall:
        caveat += " Read the verdict as what these teachers show, not as the paper's setting."
    return text + (". Intervals and p values resample seeds and test items; training at "
                   "full scale could change the ranking." + caveat)


def scratch_finding(row: Dict) -> str:
    """The from-scratch control's finding on one task, in words, as :func:`verdict_kind`
    reads its row ('degradation' positive: the from-scratch student is worse)."""
    kind = verdict_kind(row, "degradation")
    holm_words = "after Holm's correction" if holm_raised(row) else f"(p >= {ALPHA})"
    words = {NOT_TESTED: "not tested",
             UNSEEDED: f"no verdict: fewer than {MIN_VERDICT_SEEDS} seeds",
             NO_DIFFERENCE: "no difference", NOT_SIGNIFICANT: f"not significant {holm_words}",
             LESS: "distillation helps", MORE: "from scratch is better"}[kind]
    return flagged(words, kind, rests_on_bootstrap(row))


def variant_lines(summary: Dict) -> List[str]:
    """The from-scratch control against the distilled student (BiT's third ingredient), and
    every other student variant against full precision."""
    lines: List[str] = []
    if "distilled_against_scratch" in summary:
        lines += ["## Distilled against from-scratch BQ", "",
                  "Positive: the BQ model trained from scratch (HuBERT's loss, same budget) is "
                  "worse than the BQ student distilled from the FP run, in points; the same "
                  "seeds of both, hierarchical bootstrap as above.", "",
                  f"| Model | Task | distilled % | from scratch % | scratch worse by (points) "
                  f"| {CHANGE_HEADER} | finding |",
                  "| --- | --- | ---: | ---: | ---: |" + CHANGE_RULE + " --- |"]
        for r in summary["distilled_against_scratch"]:
            lines.append(f"| {r['model']} | {r['task']} | {percent(r['reference_value'])} | "
                         f"{percent(r['variant_value'])} | {points(r['degradation'])} | "
                         f"{change_cells(r)} | {scratch_finding(r)} |")
        lines.append("")
    if "ablations" in summary:
        others = list(dict.fromkeys(r["variant"] for r in summary["ablations"]))
        kinds = [("module-type ablations, each binarizing that type only: " if module
                  else "sensitivity variants, described above: ")
                 + ", ".join(float_name(v) for v in others
                             if bool(module_ablation(v)) == module)
                 for module in (True, False)
                 if any(bool(module_ablation(v)) == module for v in others)]
        lines += ["## Student variants against full precision", "",
                  f"Each row is one student variant distilled from the FP run "
                  f"({'; '.join(kinds)}); positive: worse than FP, hierarchical bootstrap as "
                  "above.", "",
                  f"| Model | Variant | Task | FP % | variant % | degradation (points) | "
                  f"{CHANGE_HEADER} |",
                  "| --- | --- | --- | ---: | ---: | ---: |" + CHANGE_RULE]
        for r in summary["ablations"]:
            lines.append(f"| {r['model']} | {float_name(r['variant'])} | "
                         f"{r['task']} | {percent(r['reference_value'])} | "
                         f"{percent(r['variant_value'])} | {points(r['degradation'])} | "
                         f"{change_cells(r)} |")
        lines.append("")
    return lines
