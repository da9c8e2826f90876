"""How each sensitivity variant moves the verdict: the FP -> BQ degradations and the contrast
of two encoders recomputed with a sensitivity's variants in place of the defaults they
replace (``bq-single``, ``bq-dw-channel`` or ``bq-scales`` for ``bq``; ``fp-1L`` and
``bq-1L`` together for ``fp`` and ``bq``), beside the default's value and verdict on the
same seeds: a section of the report and ``summary.json``'s ``sensitivity``.

Which tasks are informative is the default's (the random-init anchors read every hidden
state, so the teacher-against-random test is not redone per sensitivity); Holm runs over
the same families as for the default.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from .claims import adjust, adjust_by_claim, contrast, degradation, informative
from .collect import Study
from .presets import CONVOLUTION_VARIANTS
from .settings import BQ_VARIANT, FP_VARIANT, SENSITIVITY_SWAPS
from .verdicts import (
    CHANGE_HEADER,
    CHANGE_RULE,
    change_cells,
    finding,
    flagged,
    points,
    rests_on_bootstrap,
    verdict,
    verdict_cell,
    verdict_kind,
)

Swap = Dict[str, str]          # default variant -> the sensitivity variant in its place


def swaps_in(study: Study) -> List[Tuple[str, Swap]]:
    """(sensitivity name, its swap) of each sensitivity the study has evaluations of."""
    return [(name, swap) for name, swap in SENSITIVITY_SWAPS.items()
            if any((model, variant, task) in study.results for variant in swap.values()
                   for model in study.models for task in study.tasks)]


def pair_for(study: Study, model: str, swap: Swap) -> Tuple[str, str]:
    """``model``'s (fp, bq) variants under ``swap``; a variant that exists only for
    encoders with convolutions is ``bq`` itself for one without (nothing else to bin)."""
    fp, bq = swap.get(FP_VARIANT, FP_VARIANT), swap.get(BQ_VARIANT, BQ_VARIANT)
    if bq in CONVOLUTION_VARIANTS and not study.has_convolution(model):
        bq = BQ_VARIANT
    return fp, bq


def label(swap: Swap) -> str:
    return ", ".join(f"{variant} for {default}" for default, variant in swap.items())


def sensitivity_entries(study: Study, compared: Optional[Dict[str, Any]],
                        anchors: Dict[tuple, Dict[str, Any]]) -> List[Dict[str, Any]]:
    """summary.json's ``sensitivity``: per sensitivity, its degradations and (``compared``:
    the default contrast's pair) its contrast, each beside the default's on the same
    seeds, and whether the verdict moved."""
    entries: List[Dict[str, Any]] = []
    for name, swap in swaps_in(study):
        # A model the swap leaves as it is (bq-dw-channel on an encoder without
        # convolutions) has the default's degradations: not repeated, nor a Holm family.
        rows = [row for m in study.models
                if pair_for(study, m, swap) != (FP_VARIANT, BQ_VARIANT) for t in study.tasks
                if (row := degradation(study, m, t, *reversed(pair_for(study, m, swap))))]
        adjust_by_claim(rows, anchors)
        for row in rows:
            default = degradation(study, row["model"], row["task"], only=row["seeds"])
            row["default_degradation"] = None if default is None else default["degradation"]
            # the default's own seeds: fewer than the row's where it lacks one of them
            row["default_seeds"] = None if default is None else default["seeds"]
        entry = {"sensitivity": name, "variants": swap, "degradation": rows}
        if compared:
            first, second = compared["first"], compared["second"]
            pairs = {m: pair_for(study, m, swap) for m in (first, second)}
            contrasts = [c for t in study.tasks
                         if (c := contrast(study, first, second, t, pairs))]
            adjust(contrasts, lambda c: informative([first, second], c["task"], anchors))
            defaults = {c["task"]: default for c in contrasts
                        if (default := contrast(study, first, second, c["task"],
                                                only=c["seeds"]))}
            adjust(list(defaults.values()),
                   lambda c: informative([first, second], c["task"], anchors))
            for c in contrasts:
                default = defaults.get(c["task"])
                c["verdict"] = verdict(c, first, second)
                c["default_difference"] = None if default is None else default["difference"]
                c["default_seeds"] = None if default is None else default["seeds"]
                c["default_verdict"] = (None if default is None
                                        else verdict(default, first, second))
                c["default_bootstrap_only"] = (default is not None
                                               and rests_on_bootstrap(default))
                c["default_kind"] = None if default is None else verdict_kind(default)
                # None: no default to have moved from
                c["verdict_moved"] = None if default is None else finding(c) != finding(default)
            entry["contrast"] = {"first": first, "second": second, "pairs": pairs,
                                 "tasks": contrasts}
        entries.append(entry)
    return entries


def sensitivity_lines(summary: Dict[str, Any]) -> List[str]:
    """The report's section: per sensitivity, its degradations and contrast beside the
    default's (``summary``'s ``sensitivity``, :func:`sensitivity_entries`)."""
    entries = summary.get("sensitivity")
    if not entries:
        return []
    degradation_table, contrast_table = [], []
    for entry in entries:
        swap = entry["variants"]
        for row in entry["degradation"]:
            degradation_table.append(
                f"| {label(swap)} | {row['model']} | {row['task']} | "
                f"{default_points(row, 'default_degradation')} | "
                f"{points(row['degradation'])} | {change_cells(row)} |")
        compared = entry.get("contrast")
        for c in compared["tasks"] if compared else ():
            first, second = compared["first"], compared["second"]
            contrast_table.append(
                f"| {label(swap)} | {c['task']} | "
                f"{default_points(c, 'default_difference')} | "
                f"{default_cell(c)} | "
                f"{points(c['difference'])} | "
                f"{change_cells(c)} | {verdict_cell(c, first, second)} | "
                f"{MOVED_CELLS[c['verdict_moved']]} |")
    lines = ["## Sensitivity: how each variant moves the verdict", "",
             "Each sensitivity's variants in place of the defaults they replace (bq-single: "
             "W32A32 -> W1A1 in one stage; bq-dw-channel: per-channel scales of the binarized "
             "depthwise convolutions, bq itself for an encoder without them, whose degradations "
             "are then the default's and are not repeated below; fp-1L and bq-1L: "
             "heads on layers 1..L, without the float hidden state 0"
             + ("; bq-scales: bq's chain with each stage's activation scales from data where "
                "its teacher's levels differ" if any(e["sensitivity"] == "scales"
                                                     for e in entries) else "")
             + "), the default's "
             "informative tasks and Holm families; hierarchical bootstrap as above. "
             "'default' is the default variants' value and verdict on the same seeds as "
             "the sensitivity's row (a partial study has fewer seeds of a sensitivity), "
             "so 'moved' compares like with like; where the default lacks some of those "
             "seeds, its cell names the seeds it has. 'moved': the finding changes between "
             "'loses less', 'loses more' and none (either null wording); a p value that "
             "only crosses Holm's threshold moves it too, so read the two estimates beside "
             "it. Points of the task's metric, positive: BQ worse.", ""]
    if contrast_table:
        compared = summary["contrast"]
        first, second = compared["first"], compared["second"]
        lines += [f"Contrast ({first} minus {second}; positive: {second} loses less):", "",
                  "| Sensitivity | Task | default (points) | default verdict | with the "
                  f"variant (points) | {CHANGE_HEADER} | verdict | moved |",
                  "| --- | --- | ---: | --- | ---: |" + CHANGE_RULE + " --- | --- |",
                  *contrast_table, ""]
    lines += ["Degradation FP -> BQ:", "",
              "| Sensitivity | Model | Task | default (points) | with the variant (points) | "
              f"{CHANGE_HEADER} |",
              "| --- | --- | --- | ---: | ---: |" + CHANGE_RULE, *degradation_table, ""]
    return lines


def default_cell(row: Dict[str, Any]) -> str:
    """The default's verdict beside a sensitivity's row, flagged as :func:`verdict_cell`
    flags a verdict."""
    if row["default_verdict"] is None:
        return "-"
    return flagged(row["default_verdict"], row["default_kind"], row["default_bootstrap_only"])


MOVED_CELLS = {True: "yes", False: "no", None: "-"}


def default_points(row: Dict[str, Any], key: str) -> str:
    """The default's points beside a sensitivity's row, with the seeds it has where they
    are fewer than the row's."""
    text = optional_points(row[key])
    seeds = row.get("default_seeds")
    if seeds is None or seeds == row["seeds"]:
        return text
    named = ("; ".join(f"{model} {', '.join(map(str, found))}" for model, found in seeds.items())
             if isinstance(seeds, dict) else ", ".join(map(str, seeds)))
    return f"{text} (seeds {named} only)"


def optional_points(value: Optional[float]) -> str:
    return "-" if value is None else points(value)
