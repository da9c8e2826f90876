"""Are teachers pre-trained under ``--autocast bf16`` another draw of the float32 ones?

    python benchmarks/autocast_pilot.py --bf16 reports/study_autocast \
        --fp32 reports/study reports/study_sensitivity --out reports/training/autocast_pilot.md

Reads only committed study folders (their ``runs/``: each training run's ``metadata.json``
and each evaluation's ``results.json``). For each model and quantity (masked prediction
over the unit prior of both HuBERT iterations; each task's teacher minus its random-init
twin, positive: the teacher is better, and the teacher's own score) the float32 teachers
of every seed of every run given are the reference sample; each bfloat16 seed is judged
against the 95 % prediction interval of one more float32 draw, mean +- t(n-1) s
sqrt(1 + 1/n). Inside it: no difference this pilot can see (which is not equivalence);
outside: a difference worth the seeds to test it. The random-init anchors do not depend on
the precision of training, so the same seed's anchor should score the same in every study:
the report checks it, which says the corpus and the heads are the same too. Only up to the
rounding of the machine's kernels, though: on another CPU an anchor's features differ in
their last bits, its head's training follows, and where two checkpoints nearly tie on the
validation set the one chosen can change. A differing anchor's line gives each head's
chosen step and validation score.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models.trainer.pretrain.checkpoint import METADATA  # noqa: E402
from models.trainer.study.layout import RUNS, evaluation_folder, seed_folder, seed_folders  # noqa: E402
from models.trainer.superb.settings import RESULTS  # noqa: E402
from profiler.option_values import split_list  # noqa: E402

METRICS = {"ks": "accuracy", "pr": "PER", "sd": "DER", "asr": "WER"}
ITERATIONS = {"fp-it1": "iteration 1 (MFCC units)", "fp": "iteration 2 (the teacher)"}


def read_json(path: Path) -> Optional[dict]:
    return json.loads(path.read_text()) if path.is_file() else None


def seeds_of(study: Path, model: str) -> List[Path]:
    return [folder for _, folder in seed_folders(study / RUNS / model)]


def task_value(seed: Path, variant: str, task: str, oriented: bool = True) -> Optional[float]:
    """The test metric of one evaluation; ``oriented``: its sign flipped where lower is
    better, so that a difference is positive when the first is better."""
    record = read_json(evaluation_folder(seed, variant, task) / RESULTS)
    if record is None:
        return None
    value = float(record["value"])
    return -value if oriented and not record.get("higher_is_better", True) else value


def quantities(seed: Path, tasks: List[str]) -> Dict[str, float]:
    """Every compared quantity of one (study, model, seed), in percent points."""
    out: Dict[str, float] = {}
    for variant in ITERATIONS:
        metadata = read_json(seed / variant / METADATA)
        valid = (metadata or {}).get("final_valid") or {}
        if "acc_over_prior" in valid:
            out[f"masked over prior, {variant}"] = 100 * valid["acc_over_prior"]
    for task in tasks:
        teacher, random = task_value(seed, "fp", task), task_value(seed, "random", task)
        if teacher is not None and random is not None:
            out[f"{task}: teacher - random-init"] = 100 * (teacher - random)
            out[f"{task}: teacher's {METRICS.get(task, 'score')} %"] = \
                100 * task_value(seed, "fp", task, oriented=False)
    return out


def anchors(seed: Path, tasks: List[str]) -> Dict[str, float]:
    return {task: value for task in tasks
            if (value := task_value(seed, "random", task)) is not None}


def chosen_step(seed: Path, task: str) -> str:
    """Which checkpoint an anchor's head kept: its best validation step and score."""
    record = read_json(evaluation_folder(seed, "random", task) / RESULTS) or {}
    return f"step {record.get('best_step')}, valid {record.get('valid_value')}"


def prediction_interval(values: List[float]) -> tuple:
    from scipy.stats import t

    n = len(values)
    mean, spread = statistics.fmean(values), statistics.stdev(values)
    half = t.ppf(0.975, n - 1) * spread * math.sqrt(1 + 1 / n)
    return mean, spread, mean - half, mean + half


def number(key: str, value: float) -> str:
    """A difference carries its sign; a score does not."""
    return f"{value:.1f}" if key.endswith("%") else f"{value:+.1f}"


def compare(candidate: Path, references: List[Path], tasks: List[str]):
    """Table rows judging ``candidate``'s seeds against the float32 draws of ``references``,
    the per-quantity counts (inside, seeds) and the anchor checks."""
    rows, counts, checks = [], [], []
    models = sorted(p.name for p in (candidate / RUNS).iterdir() if p.is_dir())
    for model in models:
        reference: Dict[str, List[float]] = {}
        for study in references:
            for seed in seeds_of(study, model):
                for key, value in quantities(seed, tasks).items():
                    reference.setdefault(key, []).append(value)
        drawn_by_seed = {seed: quantities(folder, tasks)
                         for seed, folder in seed_folders(candidate / RUNS / model)}
        for key in sorted(reference):
            values = reference[key]
            drawn = {s: q[key] for s, q in drawn_by_seed.items() if key in q}
            if len(values) < 3 or not drawn:
                continue
            mean, spread, low, high = prediction_interval(values)
            inside = sum(low <= v <= high for v in drawn.values())
            counts.append((inside, len(drawn)))
            per_seed = "; ".join(f"seed {s}: {number(key, v)}" for s, v in sorted(drawn.items()))
            rows.append(f"| {model} | {key} | {len(values)}, {number(key, mean)}, {spread:.1f} "
                        f"| [{number(key, low)}, {number(key, high)}] | {per_seed} | "
                        f"{inside} of {len(drawn)} |")
        for seed, folder in seed_folders(candidate / RUNS / model):
            mine = anchors(folder, tasks)
            for study in references:
                twin = seed_folder(study, model, seed)
                theirs = anchors(twin, tasks)
                for task in sorted(set(mine) & set(theirs)):
                    checks.append((model, folder.name, study.name, task,
                                   mine[task] == theirs[task], mine[task], theirs[task],
                                   chosen_step(folder, task), chosen_step(twin, task)))
    return rows, counts, checks


def summary(counts, checks) -> str:
    return (f"{sum(c[0] for c in counts)} of {sum(c[1] for c in counts)} values (seeds x "
            f"quantities) inside the float32 prediction interval ({len(counts)} quantities, "
            f"{sum(c[0] == c[1] for c in counts)} with every seed inside); random-init anchors "
            f"of the same seed identical in {sum(c[4] for c in checks)} of {len(checks)} pairs")


HEADER = ["| model | quantity (points) | float32: n, mean, sd | 95 % prediction interval "
          "| per seed | seeds inside |", "| --- | --- | --- | --- | --- | --- |"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bf16", required=True, help="the study folder trained with autocast")
    parser.add_argument("--fp32", nargs="+", required=True, help="float32 study folders")
    parser.add_argument("--tasks", default="ks,pr")
    parser.add_argument("--out", help="markdown file (default: print)")
    args = parser.parse_args(argv)
    tasks = split_list(args.tasks)
    bf16, fp32 = Path(args.bf16), [Path(p) for p in args.fp32]
    rows, counts, checks = compare(bf16, fp32, tasks)
    text = ["# Teachers pre-trained under --autocast bf16 against float32 ones", "",
            "Generated by `python benchmarks/autocast_pilot.py --bf16 " + args.bf16
            + " --fp32 " + " ".join(args.fp32) + "`.", "",
            " ".join(__doc__.split("\n\n")[2].split()), "",
            f"**bfloat16 ({bf16}):** {summary(counts, checks)}.", "", *HEADER, *rows]
    text += [f"- anchor differs: {m} {s} {task} against {study}: {a:.6f} ({why_a}) and "
             f"{b:.6f} ({why_b})"
             for m, s, study, task, equal, a, b, why_a, why_b in checks if not equal]
    if len(fp32) > 1:
        text += ["", "**The method's own check:** each float32 run judged the same way "
                     "against the other(s), where no difference is expected:", ""]
        for study in fp32:
            _, own, own_checks = compare(study, [p for p in fp32 if p != study], tasks)
            text.append(f"- {study}: {summary(own, own_checks)}.")
    output = "\n".join(text) + "\n"
    if args.out:
        Path(args.out).write_text(output)
    else:
        sys.stdout.write(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
