"""``profile-encoder study --report``: reports/study/ from a study's run folders.

``README.md`` holds, in order: the method (:mod:`.verdicts`), Table 1 (our cost columns
beside measured ASR WER and SD DER, and the paper's), Table 2 (every task: mean and 95 %
t-interval over seeds, with the random-init anchors), each teacher against random-init, the
FP -> BQ degradations with seed-inclusive intervals and Holm-adjusted p, the contrast of two
encoders and its verdict (:mod:`.verdicts`), how each sensitivity variant moves the verdict
(:mod:`.sensitivity`), the from-scratch control and the other student variants
(:mod:`.verdicts`), the error-propagation summary and cost against accuracy;
``cost_accuracy.png`` and ``propagation.png`` are its figures, ``summary.json`` its numbers.
Missing cells are '-'. Costs are the full-size zoo models' (10 s input, the paper's
convention and runtime model on an A100); the measured columns are small-scale synthetic
speech.
"""
from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Callable, Dict, List

from ...constants import BINARIZED_PREFIX
from ..confidence import LEVEL_TEXT
from ..fileio import write_json, write_text_atomic
from ..pretrain.settings import STUDENT_SCALES_DATA
from ..superb.task_table import SUPERB_TASKS
from .anchors import REUSED_FROM
from .archive import archive_study
from .budget import CORE_SHARE, PLANNING_CORES, had_the_cores, job_class
from .charts import cost_accuracy_figure, propagation_figure
from .collect import Study, load_study
from .presets import SCRATCH_VARIANT, is_binarized_variant, module_ablation, trained_variant
from .sensitivity import sensitivity_lines
from .settings import BQ_VARIANT, FP_VARIANT
from .stats import t_interval
from .summary import chains, summarize
from .verdicts import degradation_lines, method_lines, percent, teacher_lines, variant_lines

SCALE_NOTE = ("**Small-scale synthetic.** Measured columns come from models pre-trained for "
              "minutes on speech synthesized with espeak-ng and evaluated on small synthetic "
              "SUPERB-style sets; they test the pipeline and the direction of effects, not "
              "the paper's LibriSpeech/SUPERB numbers.")


def seed_cell(values: List[float], gated: bool = False, column_seeds: int = 0) -> str:
    """'12.3 [10.1, 14.5]' (t-interval over seeds), '12.3 (1 seed)', 'gated' (its gate
    left every seed out) or '-'; a cell over fewer seeds than ``column_seeds`` (its
    column's fullest) says how many: '12.3 [10.1, 14.5] (2 seeds)'."""
    if not values:
        return "gated" if gated else "-"
    mean, low, high = t_interval(values)
    if low is None:
        return f"{percent(mean)} (1 seed)"
    fewer = f" ({len(values)} seeds)" if len(values) < column_seeds else ""
    return f"{percent(mean)} [{percent(low)}, {percent(high)}]{fewer}"


def zoo_name(model: str, variant: str) -> str:
    """The zoo model a variant's upstream is: bq-M for bq and the bq- variants, else M."""
    return BINARIZED_PREFIX + model if is_binarized_variant(variant) else model


def variant_overrides(variant: str) -> Dict[str, Any]:
    """The overrides its upstream was trained with (none for an evaluation variant, which
    reads another's upstream), so that its cost row is the model it evaluated."""
    trained = trained_variant(variant)
    return trained.model_overrides if trained else {}


def cost_rows(study: Study) -> Dict[tuple, Dict[str, Any]]:
    """Table 1's cost columns per (model, variant), the paper's convention and estimate."""
    from profiler.table import paper_rows

    rows = {}
    for model in study.models:
        for variant in study.variants:
            if variant == SCRATCH_VARIANT or study.is_random_init(variant):
                continue
            rows[(model, variant)] = paper_rows([zoo_name(model, variant)],
                                                overrides=variant_overrides(variant))[0]
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
    for variant in (FP_VARIANT, BQ_VARIANT):
        for model in study.models:
            row, name = costs.get((model, variant)), zoo_name(model, variant)
            paper = paper_row(name)
            if row is None:
                continue
            cells = [cost.text(row[cost.key]) for cost in COSTS]  # FP rows: BOP_BQ '-'
            lines.append(
                f"| {name} | {row['precision']} | {' | '.join(cells)} | "
                f"{cell_text(study, (model, variant, 'asr'))} | "
                f"{cell_text(study, (model, variant, 'sd'))} | "
                f"{paper.get('asr_wer') or '-'} | {paper.get('sd_der') or '-'} |")
    lines += ["", f"Ours: mean over seeds [{LEVEL_TEXT} t-interval]. Costs: the full-size zoo "
              "model on one 10 s utterance (paper convention, paper runtime model, A100).", ""]
    return lines


def metric_name(study: Study, task: str) -> str:
    """The metric of ``task``'s evaluations, else (none evaluated yet) the task table's."""
    info = study.task_info(task)
    return info["metric"] if info else getattr(SUPERB_TASKS.get(task), "metric", "")


def table2_lines(study: Study) -> List[str]:
    tasks = study.tasks
    header = " | ".join(f"{t} {metric_name(study, t)} %" for t in tasks)
    lines = [f"## Table 2: every task, mean and {LEVEL_TEXT} interval over seeds", "",
             SCALE_NOTE, "", f"| Model | {header} |", "| --- |" + " ---: |" * len(tasks)]
    for model in study.models:
        for variant in study.variants:
            cells = [cell_text(study, (model, variant, t)) for t in tasks]
            name = (f"{anchor_model(study, model, variant)} (random-init, anchor)"
                    if study.is_random_init(variant) else f"{zoo_name(model, variant)} "
                                                          f"({variant})")
            if any(c != "-" for c in cells) or variant in (FP_VARIANT, BQ_VARIANT):
                lines.append(f"| {name} | " + " | ".join(cells) + " |")
    chance = [percent((study.task_info(t) or {}).get("chance")) for t in tasks]
    lines += [f"| *chance* | {' | '.join(chance)} |", ""]
    lines += [phone_note(study, task) for task in tasks if study.phone_supervised(task)]
    lines += [
              f"Cells: mean over seeds [{LEVEL_TEXT} Student-t interval]; with one seed there "
              "is no interval over seeds (each results.json holds its own bootstrap interval over "
              "test items); a cell over fewer seeds than its column's fullest says how many. "
              "Values in percent of the task's metric. Anchors: upstreams of "
              "the same shape with random weights (FP and BQ), heads trained as for the "
              "others. 'gated': not evaluated, the task's FP teacher did not beat chance "
              "(`gated.json` says why).", ""]
    return lines


def phone_note(study: Study, task: str) -> str:
    """The warning beside phoneme recognition when a teacher learned phone labels."""
    models = ", ".join(study.phone_supervised(task))
    return (f"**{task}: not self-supervised.** The FP teachers of {models} were pre-trained "
            f"to predict the synthesizer's frame phone labels (`train --targets phones`), so "
            f"these upstreams have seen phoneme labels; their {task} values (and the BQ "
            f"students', distilled from them) measure a phone-supervised encoder.\n")


def cell_text(study: Study, cell: tuple) -> str:
    """A cell of Table 1 or 2, marked when it averages fewer seeds than its column's
    fullest cell (the copied anchors of a rebuild can hold more seeds than its teachers)."""
    task = cell[2]
    column_seeds = max(len(study.values((m, v, task)))
                       for m in study.models for v in study.variants)
    return seed_cell(study.values(cell), bool(study.gated.get(cell)), column_seeds)


def anchor_model(study: Study, model: str, variant: str) -> str:
    """The zoo name a random-init anchor built (its results say; else the variant's)."""
    for (name, found, _), by_seed in study.results.items():
        if (name, found) == (model, variant):
            for result in by_seed.values():
                return str(result.get("upstream", {}).get("model", zoo_name(model, variant)))
    return zoo_name(model, variant)


def propagation_lines(study: Study, summary: Dict) -> List[str]:
    lines = ["## Error propagation", "",
             "Relative error ||h_BQ - h_FP|| / ||h_FP|| of each hidden state (0: encoder "
             "input, k: output of layer k) of a distilled student against its FP teacher "
             "on the same validation utterances; mean over seeds"
             + ("; the students ran deployed on packed 1-bit kernels, as the heads read them"
                if study.record.get("recipe", {}).get("deployed") else "")
             + ". Figure: `propagation.png`.", "",
             "| Model | Student | first layer | last layer | last / first | last-layer "
             "cosine | seeds |", "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    rows = summary["propagation"]
    for row in rows:
        span = "" if row["low"] is None else f" [{row['low']:.3f}, {row['high']:.3f}]"
        lines.append(f"| {row['model']} | {row['variant']} | {row['first']:.3f} | "
                     f"{row['last']:.3f}{span} | {row['last_over_first']:.2f} | "
                     f"{row['last_cosine']:.3f} | {row['seeds']} |")
    bq = [r for r in rows if r["variant"] == BQ_VARIANT]
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
    ablations = [r for r in rows if module_ablation(r["variant"])]
    for model in dict.fromkeys(r["model"] for r in ablations):
        mine = sorted((r for r in ablations if r["model"] == model), key=lambda r: -r["last"])
        text += (f" Among the module-type ablations of {model}, binarizing only "
                 f"{module_ablation(mine[0]['variant'])} leaves the largest last-layer error "
                 f"({mine[0]['last']:.3f})")
        others = ", ".join(f"{module_ablation(r['variant'])} {r['last']:.3f}"
                           for r in mine[1:])
        text += f"; {others}." if others else "."
    return text


def head_budget_line(heads: Dict[str, List[Dict[str, Any]]]) -> str:
    """Each task's head budget in words; a task whose evaluations ran more than one budget
    is flagged, since its rows then compare heads as well as upstreams."""
    def budget(b: Dict[str, Any]) -> str:
        lr = f"{b['lr']:g}" if isinstance(b["lr"], (int, float)) else b["lr"]
        return f"{b['steps']} steps of {b['batch_size']} at lr {lr}"

    parts = [f"{task}: {budget(found[0])}" if len(found) == 1 else
             f"{task}: **mixed budgets** ({'; '.join(budget(b) for b in found)})"
             for task, found in heads.items()]
    return ("Heads (Adam, best step on valid tested): " + "; ".join(parts) + "."
            if parts else "Heads: no evaluation yet.")


def cpu_time_note(study) -> str:
    """The CPU time of the jobs that logged it, as hours of the study's 2 cores beside the
    wall time of the same jobs; empty for a study that logged none."""
    cpu = study.job_cpu_seconds
    if not cpu:
        return ""
    wall = sum(study.job_seconds[job] for job in cpu) / 3600
    return (f"{len(cpu)} of its jobs also logged their CPU time: {sum(cpu.values()) / 3600:.2f} "
            f"h, {sum(cpu.values()) / 7200:.2f} h of 2 cores, in {wall:.2f} h of wall time. ")


# A log entry from before the log named the machine's CPU.
CPU_NOT_LOGGED = "not logged"


def job_time_lines(study: Study) -> List[str]:
    """Each kind of job in the log: how many ran, how many had the cores to themselves
    (:func:`.budget.had_the_cores`), and those ones' wall times, which are what such a job
    costs; a row per CPU where the log names more than one (a study resumed on another
    machine); none for a study whose log kept no CPU time."""
    kinds: Dict[tuple, List[Dict[str, Any]]] = {}
    for job, entry in study.job_log.items():
        if REUSED_FROM not in entry:
            key = (job_class(job), entry.get("cpu", CPU_NOT_LOGGED))
            kinds.setdefault(key, []).append(entry)
    if not any(had_the_cores(entry) is not None for found in kinds.values() for entry in found):
        return []
    split = len({cpu for _, cpu in kinds}) > 1
    if split:          # each kind's rows together, kinds in the log's order
        order = list(dict.fromkeys(kind for kind, _ in kinds))
        kinds = dict(sorted(kinds.items(), key=lambda item: order.index(item[0][0])))
    rows = []
    for (kind, cpu), found in kinds.items():
        alone = sorted(float(entry["seconds"]) for entry in found if had_the_cores(entry))
        with_cpu = sum(had_the_cores(entry) is not None for entry in found)
        timed = (f"{statistics.median(alone):.0f} | {alone[0]:.0f}-{alone[-1]:.0f}" if alone
                 else "- | -")
        machine = f" {cpu} |" if split else ""
        rows.append(f"| `{kind}` |{machine} {len(found)} | {with_cpu} | {len(alone)} | "
                    f"{timed} |")
    machines = (f" The jobs ran on more than one CPU: a row per kind and CPU (the model name "
                f"its log entries give; '{CPU_NOT_LOGGED}' before the log kept it), as the "
                f"same job's time differs between machines." if split else "")
    return ["## Job times", "",
            f"Each kind of job in `study.log.jsonl` (seeds as `*`; copied anchors left out): "
            f"how many ran, how many logged their CPU time, how many of those had the cores "
            f"to themselves (CPU time at least {CORE_SHARE * 100:.0f} % of their threads x "
            f"the wall time; {PLANNING_CORES} threads where the log predates their count), "
            f"and the wall time of those, which is what the job costs. A job beside other "
            f"work, or paused, is counted but not timed: its wall time overstates it. "
            f"`study --dry-run` prices each kind by these jobs where it has any, those on "
            f"its own CPU first.{machines}", "",
            "| job |" + (" CPU |" if split else "")
            + " ran | CPU time logged | alone | median wall (s) | range (s) |",
            "| --- |" + (" --- |" if split else "") + " ---: | ---: | ---: | ---: | ---: |",
            *rows, ""]


def write_report(out: Path, reports: Path, echo: Callable[[str], None] = print) -> Path:
    """Copy study ``out``'s small files into ``reports`` (:mod:`.archive`), then regenerate
    ``reports``/README.md, its figures and summary.json from that copy alone; without a
    study in ``out``, from the copy already committed there."""
    reports = Path(reports)
    study = load_study(archive_study(Path(out), reports, echo))
    heads = study.head_budgets()
    record = {**study.record, "recipe": {**study.record.get("recipe", {}),
                                         "chains": chains(study), "heads": heads}}
    copied = [results[REUSED_FROM] for by_seed in study.results.values()
              for results in by_seed.values() if results.get(REUSED_FROM)]
    if copied:
        record["anchors_copied"] = len(copied)
    summary = summarize(study, record)
    costs = cost_rows(study)
    hours = sum(study.job_seconds.values()) / 3600
    lines = ["# Study: full precision against binarized (BQ) encoders", "",
             "Generated by `profile-encoder study --report`; do not edit by hand. Models: "
             f"{', '.join(study.models)}; variants: {', '.join(study.variants)}; seeds: "
             f"{study.record.get('seeds')} planned, evaluated so far (FP teacher): "
             + ", ".join(f"{model} {len(study.evaluated_seeds(model, 'fp'))}"
                         for model in study.models)
             + f"; tasks: {', '.join(study.tasks)}; preset "
             f"{study.record['recipe']['preset']}. Job time logged so far: {hours:.2f} h"
             + (f" ({len(copied)} random-init anchor evaluations copied from an earlier study, "
                f"each checked to be the evaluation this study would run, as `--anchors-from` "
                f"checks; their results.json names the source)" if copied else "") + ". "
             + cpu_time_note(study)
             + "Every table is rebuilt from the files under `runs/` here alone (each "
             "evaluation's `results.json` and `per_item.json`).", "",
             "Chains: " + "; ".join(f"{v}: " + (" -> ".join(c) if isinstance(c, list) else c)
                                    for v, c in record["recipe"]["chains"].items()) + "."
             + (" BQ upstreams scored deployed on packed 1-bit kernels (`--deployed`)."
                if record["recipe"].get("deployed") else "")
             + (f" Training under mixed precision (`--autocast "
                f"{record['recipe']['autocast']}`); extraction and heads in float32."
                if record["recipe"].get("autocast") else "")
             + (" Each chain stage's activation scales start from data where its teacher's "
                "levels differ (`--student-scales data`); BiT's code keeps the teacher's."
                if record["recipe"].get("student_scales") == STUDENT_SCALES_DATA else ""),
             "", head_budget_line(heads), ""]
    lines += method_lines() + table1_lines(study, costs) + table2_lines(study)
    lines += teacher_lines(study, summary)
    lines += degradation_lines(summary)
    lines += sensitivity_lines(summary)
    lines += variant_lines(summary)
    lines += propagation_lines(study, summary)
    figure = cost_accuracy_figure(study, costs, reports / "cost_accuracy.png")
    lines += ["## Cost against accuracy", "",
              f"![cost vs accuracy](cost_accuracy.png) {figure}" if figure else
              "No evaluation yet: no figure.", ""]
    lines += job_time_lines(study)
    if summary.get("propagation"):
        propagation_figure(summary["propagation"], reports / "propagation.png")
    write_json(reports / "summary.json", summary, sort_keys=False)
    write_text_atomic(reports / "README.md", "\n".join(lines))
    return reports / "README.md"
