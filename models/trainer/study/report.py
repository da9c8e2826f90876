"""``profile-encoder study --report``: reports/study/ from a study's run folders.

``README.md`` holds, in order: Table 1 (our cost columns beside measured ASR WER and SD
DER, and the paper's), Table 2 (every task: mean and 95 % t-interval over seeds), the
FP -> BQ degradation per encoder and task with paired-bootstrap intervals over test items
and the verdict they support, the distilled student against the from-scratch BQ control
and each module-type ablation against FP (when the study has them), and the
error-propagation summary; ``cost_accuracy.png``
and ``propagation.png`` are its figures, ``summary.json`` its numbers. Missing cells are
'-'. Costs are the full-size zoo models' (10 s input, the paper's convention and runtime
model on an A100); the measured columns are small-scale synthetic speech.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from ..fileio import write_text_atomic
from .charts import cost_accuracy_figure, propagation_figure
from .collect import Study, load_study, paired_seeds
from .plan import BINARIZED_PREFIX, SCRATCH_VARIANT
from .stats import (
    RESAMPLES,
    bootstrap_interval,
    contains_zero,
    paired_difference,
    ratio,
    t_interval,
)

SCALE_NOTE = ("**Small-scale synthetic.** Measured columns come from models pre-trained for "
              "minutes on speech synthesized with espeak-ng and evaluated on small synthetic "
              "SUPERB-style sets; they test the pipeline and the direction of effects, not "
              "the paper's LibriSpeech/SUPERB numbers.")


def percent(value: Optional[float]) -> str:
    return "-" if value is None else f"{round(100 * value, 1) + 0.0:.1f}"


def seed_cell(values: List[float]) -> str:
    """'12.3 [10.1, 14.5]' (t-interval over seeds), '12.3 (1 seed)' or '-'."""
    if not values:
        return "-"
    mean, low, high = t_interval(values)
    if low is None:
        return f"{percent(mean)} (1 seed)"
    return f"{percent(mean)} [{percent(low)}, {percent(high)}]"


def zoo_name(model: str, variant: str) -> str:
    return model if variant == "fp" else BINARIZED_PREFIX + model


def variant_overrides(variant: str) -> Dict[str, Any]:
    kind = variant[len(BINARIZED_PREFIX):]
    return {"quantize_modules": kind} if kind in ("attention", "convolution",
                                                  "feed_forward") else {}


def cost_rows(study: Study) -> Dict[tuple, Dict[str, Any]]:
    """Table 1's cost columns per (model, variant), the paper's convention and estimate."""
    from profiler.catalog import load_catalog
    from profiler.conventions import get_convention
    from profiler.reference import PAPER_SECONDS
    from profiler.table import build_rows

    convention, catalog = get_convention("paper"), load_catalog("a100")
    rows = {}
    for model in study.models:
        for variant in study.variants:
            if variant == SCRATCH_VARIANT:
                continue
            rows[(model, variant)] = build_rows(
                [zoo_name(model, variant)], seconds=PAPER_SECONDS, convention=convention,
                catalog=catalog, estimate="paper", overrides=variant_overrides(variant))[0]
    return rows


def paper_row(name: str) -> Dict[str, Any]:
    from profiler.reference import table1

    return table1().get(name, {})


def table1_lines(study: Study, costs) -> List[str]:
    from profiler.columns import COSTS

    headers = ["Model", "Precision", *(cost.header for cost in COSTS), "ASR WER % (ours)",
               "SD DER % (ours)", "ASR WER % (paper)", "SD DER % (paper)"]
    lines = ["## Table 1: cost beside accuracy", "", SCALE_NOTE, "",
             "| " + " | ".join(headers) + " |", "| --- | --- |" + " ---: |" * (len(headers) - 2)]
    for variant in ("fp", "bq"):
        for model in study.models:
            row, name = costs.get((model, variant)), zoo_name(model, variant)
            paper = paper_row(name)
            if row is None:
                continue
            cells = [cost.text(row[cost.key]) for cost in COSTS]  # FP rows: BOP_BQ '-'
            lines.append(
                f"| {name} | {row['precision']} | {' | '.join(cells)} | "
                f"{seed_cell(study.values((model, variant, 'asr')))} | "
                f"{seed_cell(study.values((model, variant, 'sd')))} | "
                f"{paper.get('asr_wer') or '-'} | {paper.get('sd_der') or '-'} |")
    lines += ["", "Ours: mean over seeds [95 % t-interval]. Costs: the full-size zoo model on "
              "one 10 s utterance (paper convention, paper runtime model, A100).", ""]
    return lines


def table2_lines(study: Study) -> List[str]:
    tasks = study.tasks
    header = " | ".join(f"{t} {(study.task_info(t) or {}).get('metric', '')} %" for t in tasks)
    lines = ["## Table 2: every task, mean and 95 % interval over seeds", "", SCALE_NOTE, "",
             f"| Model | {header} |", "| --- |" + " ---: |" * len(tasks)]
    for model in study.models:
        for variant in study.variants:
            cells = [seed_cell(study.values((model, variant, t))) for t in tasks]
            if any(c != "-" for c in cells) or variant in ("fp", "bq"):
                lines.append(f"| {zoo_name(model, variant)} ({variant}) | "
                             + " | ".join(cells) + " |")
    chance = [percent((study.task_info(t) or {}).get("chance")) for t in tasks]
    lines += [f"| *chance* | {' | '.join(chance)} |", "",
              "Cells: mean over seeds [95 % Student-t interval]; with one seed there is no "
              "interval over seeds (each results.json holds its own bootstrap interval over "
              "test items). Values in percent of the task's metric.", ""]
    return lines


def paired_change(study: Study, model: str, task: str, reference: str,
                  variant: str) -> Optional[Dict]:
    """``variant`` against ``reference`` on one task, oriented so that positive means
    ``variant`` is worse, with its paired bootstrap interval over test items (seeds paired:
    the same seed's runs of both)."""
    first, second = (model, reference, task), (model, variant, task)
    seeds = paired_seeds(study, first, second)
    info = study.task_info(task)
    if not seeds or info is None:
        return None
    before = [study.items[first][s][1:] for s in seeds]
    after = [study.items[second][s][1:] for s in seeds]
    change, low, high = paired_difference(before, after)
    sign = -1.0 if info["higher_is_better"] else 1.0
    low, high = sorted((sign * low, sign * high))
    return {"model": model, "task": task, "reference": reference, "variant": variant,
            "seeds": seeds, "items": len(before[0][0]), "degradation": sign * change,
            "low": low, "high": high,
            "reference_value": float(np.mean([ratio(p) for p in before])),
            "variant_value": float(np.mean([ratio(p) for p in after]))}


def degradation(study: Study, model: str, task: str, variant: str = "bq") -> Optional[Dict]:
    """BQ minus FP, oriented so that positive means BQ is worse (each BQ run is distilled
    from that seed's FP)."""
    row = paired_change(study, model, task, "fp", variant)
    return None if row is None else {**row, "fp": row["reference_value"],
                                     "bq": row["variant_value"]}


def contrast(study: Study, first: str, second: str, task: str) -> Optional[Dict]:
    """Degradation of ``first`` minus that of ``second`` (positive: ``second`` loses less),
    one bootstrap over the test items both were scored on."""
    info = study.task_info(task)
    pairs = {m: paired_seeds(study, (m, "fp", task), (m, "bq", task)) for m in (first, second)}
    if info is None or not all(pairs.values()):
        return None
    ids = {study.items[(m, "fp", task)][pairs[m][0]][0] == study.items[(first, "fp", task)][
        pairs[first][0]][0] for m in (first, second)}
    if ids != {True}:
        return None
    sign = -1.0 if info["higher_is_better"] else 1.0

    def loss(model: str, index) -> float:
        return float(np.mean([sign * (ratio(study.items[(model, "bq", task)][s][1:], index)
                                      - ratio(study.items[(model, "fp", task)][s][1:], index))
                              for s in pairs[model]]))

    items = len(study.items[(first, "fp", task)][pairs[first][0]][0])
    low, high = bootstrap_interval(lambda i: loss(first, i) - loss(second, i), items)
    return {"task": task, "difference": loss(first, None) - loss(second, None), "low": low,
            "high": high, "items": items,
            "seeds": min(len(pairs[first]), len(pairs[second]))}


def compared_pair(names: List[str]) -> tuple:
    """The paper's comparison: an encoder with convolution modules first, an attention-only
    one second (else the first two models)."""
    import models

    mixed = [n for n in names if models.config(n).family.has_convolution]
    plain = [n for n in names if n not in mixed]
    return (mixed[0], plain[0]) if mixed and plain else (names[0], names[1])


def verdict(difference: Dict, first: str, second: str) -> str:
    if contains_zero(difference["low"], difference["high"]):
        return "no difference at this scale (the interval contains 0)"
    return (f"{second} loses less than {first}" if difference["low"] > 0
            else f"{second} loses more than {first}")


def points(value: float) -> str:
    return f"{round(100 * value, 1) + 0.0:+.1f}"      # + 0.0: no "-0.0"


def degradation_lines(study: Study, summary: Dict) -> List[str]:
    lines = ["## FP -> BQ degradation (paired bootstrap over test items)", "",
             "Positive: BQ is worse, in points of the task's metric (BQ minus FP for error "
             f"rates, FP minus BQ for accuracies). 95 % percentile bootstrap, {RESAMPLES} "
             "resamples of the test items, each resample scoring every seed's FP and BQ "
             "runs on the same items; the mean over seeds.", "",
             "| Model | Task | FP % | BQ % | degradation (points) | 95 % interval | seeds |",
             "| --- | --- | ---: | ---: | ---: | --- | ---: |"]
    rows = []
    for model in study.models:
        for task in study.tasks:
            row = degradation(study, model, task)
            if row is None:
                lines.append(f"| {model} | {task} | - | - | - | - | 0 |")
                continue
            rows.append(row)
            lines.append(f"| {model} | {task} | {percent(row['fp'])} | {percent(row['bq'])} | "
                         f"{points(row['degradation'])} | [{points(row['low'])}, "
                         f"{points(row['high'])}] | {len(row['seeds'])} |")
    summary["degradation"] = rows
    lines += [""]
    if len(study.models) < 2:
        lines += ["One model only: no comparison between encoders.", ""]
        return lines
    first, second = compared_pair(study.models)
    contrasts = [c for t in study.tasks if (c := contrast(study, first, second, t))]
    summary["contrast"] = {"first": first, "second": second, "tasks": contrasts}
    lines += [f"### Does binarization hurt {second} less than {first}?", "",
              f"Difference of degradations, {first} minus {second} (positive: {second} "
              "loses less), same bootstrap:", "",
              "| Task | difference (points) | 95 % interval | verdict |",
              "| --- | ---: | --- | --- |"]
    for c in contrasts:
        lines.append(f"| {c['task']} | {points(c['difference'])} | [{points(c['low'])}, "
                     f"{points(c['high'])}] | {verdict(c, first, second)} |")
    lines += ["", verdict_paragraph(study, contrasts, first, second), ""]
    return lines


def variant_lines(study: Study, summary: Dict) -> List[str]:
    """The from-scratch control against the distilled student (BiT's third ingredient), and
    each module-type ablation against full precision."""
    lines: List[str] = []
    if SCRATCH_VARIANT in study.variants:
        lines += ["## Distilled against from-scratch BQ", "",
                  "Positive: the BQ model trained from scratch (HuBERT's loss, same budget) is "
                  "worse than the BQ student distilled from the FP run, in points; paired "
                  "bootstrap over test items as above, the same seeds of both.", "",
                  "| Model | Task | distilled % | from scratch % | scratch worse by (points) | "
                  "95 % interval | verdict | seeds |",
                  "| --- | --- | ---: | ---: | ---: | --- | --- | ---: |"]
        rows = [r for m in study.models for t in study.tasks
                if (r := paired_change(study, m, t, "bq", SCRATCH_VARIANT))]
        for r in rows:
            found = ("no difference" if contains_zero(r["low"], r["high"]) else
                     "distillation helps" if r["low"] > 0 else "from scratch is better")
            lines.append(f"| {r['model']} | {r['task']} | {percent(r['reference_value'])} | "
                         f"{percent(r['variant_value'])} | {points(r['degradation'])} | "
                         f"[{points(r['low'])}, {points(r['high'])}] | {found} | "
                         f"{len(r['seeds'])} |")
        summary["distilled_against_scratch"] = rows
        lines.append("")
    ablations = [v for v in study.variants if v not in ("fp", "bq", SCRATCH_VARIANT)]
    if ablations:
        lines += ["## Module-type ablations against full precision", "",
                  "Each row binarizes one module type only (the rest full precision), "
                  "distilled from the FP run with the same budget; positive: worse than FP, "
                  "paired bootstrap over test items.", "",
                  "| Model | Binarized | Task | FP % | ablation % | degradation (points) | "
                  "95 % interval | seeds |",
                  "| --- | --- | --- | ---: | ---: | ---: | --- | ---: |"]
        rows = [r for m in study.models for v in ablations for t in study.tasks
                if (r := paired_change(study, m, t, "fp", v))]
        for r in rows:
            lines.append(f"| {r['model']} | {r['variant'][len(BINARIZED_PREFIX):]} | "
                         f"{r['task']} | {percent(r['reference_value'])} | "
                         f"{percent(r['variant_value'])} | {points(r['degradation'])} | "
                         f"[{points(r['low'])}, {points(r['high'])}] | {len(r['seeds'])} |")
        summary["ablations"] = rows
        lines.append("")
    return lines


def verdict_paragraph(study: Study, contrasts: List[Dict], first: str, second: str) -> str:
    if not contrasts:
        return ("**Verdict:** no task has per-item scores of both encoders yet, so the "
                "claim is not tested.")
    less = [c["task"] for c in contrasts if verdict(c, first, second).endswith(
        f"less than {first}")]
    more = [c["task"] for c in contrasts if verdict(c, first, second).endswith(
        f"more than {first}")]
    none = [c["task"] for c in contrasts if c["task"] not in less + more]
    seeds = min(c["seeds"] for c in contrasts)   # seeds with both encoders' FP and BQ runs
    parts = [f"**Verdict (small-scale synthetic, {seeds} seed(s), "
             f"{', '.join(c['task'] for c in contrasts)}):** the paper's claim that "
             f"binarization hurts {second} less than {first}"]
    if less and not more:
        parts.append(f"is supported on {', '.join(less)}")
    elif more and not less:
        parts.append(f"is contradicted on {', '.join(more)}")
    elif less and more:
        parts.append(f"is supported on {', '.join(less)} and contradicted on "
                     f"{', '.join(more)}")
    else:
        parts.append("finds no support at this scale: every interval contains 0 (a null "
                     "result, not evidence of equal robustness)")
    if none and (less or more):
        parts.append(f"; on {', '.join(none)} the difference cannot be told from 0")
    return " ".join(parts[:2]) + "".join(parts[2:]) + (
        ". The intervals cover test-item sampling only, averaged over the seeds; training "
        "at full scale could change the ranking.")


def propagation_lines(study: Study, summary: Dict) -> List[str]:
    lines = ["## Error propagation", "",
             "Relative error ||h_BQ - h_FP|| / ||h_FP|| of each hidden state (0: encoder "
             "input, k: output of layer k) of a distilled student against its FP teacher "
             "on the same validation utterances; mean over seeds. Figure: "
             "`propagation.png`.", "",
             "| Model | Student | first layer | last layer | last / first | last-layer "
             "cosine | seeds |", "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
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
                         "curve": errors.mean(axis=0).tolist()})
            span = "" if low is None else f" [{low:.3f}, {high:.3f}]"
            lines.append(f"| {model} | {variant} | {first.mean():.3f} | {mean:.3f}{span} | "
                         f"{np.mean(last / np.maximum(first, 1e-12)):.2f} | "
                         f"{cosine[:, -1].mean():.3f} | {len(runs)} |")
    summary["propagation"] = rows
    bq = [r for r in rows if r["variant"] == "bq"]
    lines += ["", propagation_paragraph(bq, rows), ""]
    return lines


def propagation_paragraph(bq: List[Dict], rows: List[Dict]) -> str:
    if len(bq) < 2:
        return "**Compounding:** needs the BQ students of two encoders."
    ranked = sorted(bq, key=lambda r: r["last"])
    low, high = ranked[0], ranked[-1]
    apart = (low["high"] is not None and high["low"] is not None
             and low["high"] < high["low"])
    text = (f"**Compounding:** at the last layer the BQ student of {high['model']} is "
            f"{high['last']:.3f} away from its teacher (relative error), that of "
            f"{low['model']} {low['last']:.3f}; "
            + ("the seed intervals do not overlap." if apart else
               "the seed intervals overlap or are missing, so the encoders cannot be told "
               "apart at this scale."))
    ablations = [r for r in rows if r["variant"] not in ("bq", SCRATCH_VARIANT)]
    for model in dict.fromkeys(r["model"] for r in ablations):
        mine = sorted((r for r in ablations if r["model"] == model), key=lambda r: -r["last"])
        text += (f" In {model}, binarizing only {mine[0]['variant'][3:]} leaves the largest "
                 f"last-layer error ({mine[0]['last']:.3f})")
        others = ", ".join(f"{r['variant'][3:]} {r['last']:.3f}" for r in mine[1:])
        text += f"; {others}." if others else "."
    return text


def write_report(out: Path, reports: Path) -> Path:
    """Regenerate ``reports``/README.md, its figures and summary.json from study ``out``."""
    study = load_study(out)
    reports.mkdir(parents=True, exist_ok=True)
    summary: Dict[str, Any] = {"study": study.record}
    costs = cost_rows(study)
    hours = sum(study.job_seconds.values()) / 3600
    lines = ["# Study: full precision against binarized (BQ) encoders", "",
             "Generated by `profile-encoder study --report`; do not edit by hand. Models: "
             f"{', '.join(study.models)}; variants: {', '.join(study.variants)}; seeds: "
             f"{study.record.get('seeds')}; tasks: {', '.join(study.tasks)}; preset "
             f"{study.record['recipe']['preset']}. Job time logged so far: {hours:.2f} h.",
             ""]
    lines += table1_lines(study, costs) + table2_lines(study)
    lines += degradation_lines(study, summary) + variant_lines(study, summary)
    lines += propagation_lines(study, summary)
    figure = cost_accuracy_figure(study, costs, reports / "cost_accuracy.png")
    lines += ["## Cost against accuracy", "",
              f"![cost vs accuracy](cost_accuracy.png) {figure}" if figure else
              "No evaluation yet: no figure.", ""]
    if summary.get("propagation"):
        propagation_figure(summary["propagation"], reports / "propagation.png")
    summary["job_seconds"] = study.job_seconds
    write_text_atomic(reports / "summary.json", json.dumps(summary, indent=2, default=str)
                      + "\n")
    write_text_atomic(reports / "README.md", "\n".join(lines))
    return reports / "README.md"
