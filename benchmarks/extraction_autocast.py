"""Do the heads score the same when the hidden states are extracted in bfloat16?

    python benchmarks/extraction_autocast.py --out STUDY [the study's own options]
        [--variants fp,random] [--report reports/training/extraction_autocast.md]
    python benchmarks/extraction_autocast.py --from-runs [--report ...]   # rebuild only

For every finished evaluation of the study in ``--out`` (its ``fp`` teachers and
``random`` anchors by default) the same ``profile-encoder superb`` command runs again with
``--autocast bf16``, into ``STUDY/extraction-bf16/<model>/seed-<s>/<variant>/<task>``: the
same upstream, corpus, head seed and budget, so the two evaluations differ by the
precision of the extraction alone and are paired item by item. A finished twin is kept, so
a rerun resumes. The report gives, per model, variant and task, bfloat16 minus float32 in
points of the task's metric (positive: bfloat16 scores higher) with the study's
hierarchical bootstrap over seeds and test items, Student's t over seeds as a check, and
each arm's median feature-extraction seconds (``results.json``; sequential runs on one
machine, the float32 ones timed when the study ran them). Both arms' ``results.json`` and
``per_item.json`` are copied beside the report (``<report>/runs/``), from which
``--from-runs`` rebuilds it alone.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from runs_beside_report import (  # noqa: E402
    load_arms,
    paired_cells,
    run_or_rebuild,
    runs_beside,
)

from models.trainer.study.layout import SEED_PREFIX  # noqa: E402
from models.trainer.superb.settings import PER_ITEM, RESULTS  # noqa: E402
from profiler.files import atomic_write  # noqa: E402
from profiler.option_values import split_list  # noqa: E402

REPORT = Path("reports/training/extraction_autocast.md")
ARMS = ("float32", "bf16")
TWINS = "extraction-bf16"
CLI = [sys.executable, "-m", "profiler"]


def study_jobs(argv):
    """The study's finished evaluations of the chosen variants, from its own plan."""
    from models.trainer.study.plan import FINISHED, build_plan, job_state
    from models.trainer.study.settings import StudySettings
    from profiler.commands.settings_arguments import (
        add_settings_arguments,
        settings_from_arguments,
    )

    fields = ("out", "models", "seeds", "tasks", "preset", "autocast", "sensitivity")
    parser = argparse.ArgumentParser(add_help=False)
    add_settings_arguments(parser, StudySettings, fields=fields)
    given, _ = parser.parse_known_args(argv)
    settings = StudySettings(**{k: v for k, v in settings_from_arguments(given, StudySettings)
                                .items() if k in fields and v is not None}, progress=False)
    return [job for job in build_plan(settings)
            if job.kind == "superb" and job_state(job) == FINISHED]


def run_twins(out: Path, jobs, variants) -> None:
    from models.trainer.study.plan import command_words

    for job in jobs:
        if job.variant not in variants:
            continue
        model, seed = job.chain
        twin = out / TWINS / model / f"{SEED_PREFIX}{seed}" / job.variant / job.task
        if (twin / RESULTS).is_file():
            continue
        words = command_words(job)
        words[words.index("--out") + 1] = str(twin)
        print(f"{model} seed {seed} {job.variant} {job.task} (bf16 extraction) ...", flush=True)
        subprocess.run(CLI + words + ["--autocast", "bf16", "--quiet"], check=True)


def copy_runs(out: Path, jobs, variants, target: Path) -> None:
    for job in jobs:
        model, seed = job.chain
        twin = out / TWINS / model / f"{SEED_PREFIX}{seed}" / job.variant / job.task
        if job.variant not in variants or not (twin / RESULTS).is_file():
            continue
        for arm, source in zip(ARMS, (job.path, twin)):
            folder = target / model / f"{SEED_PREFIX}{seed}" / job.variant / job.task / arm
            folder.mkdir(parents=True, exist_ok=True)
            for name in (RESULTS, PER_ITEM):
                shutil.copyfile(source / name, folder / name)


def report(runs: Path, load_text: str) -> str:
    rows = ["| model | upstream | task | seeds | bf16 - float32 (points) | 95 % interval | "
            "items only | t over seeds | p | features float32 / bf16 (s) |",
            "| --- | --- | --- | ---: | ---: | --- | --- | --- | ---: | ---: |"]
    per_seed = ["| model | upstream | task | seed | float32 | bf16 |",
                "| --- | --- | --- | ---: | ---: | ---: |"]
    cells = sorted({p.parent.parent.relative_to(runs).parts
                    for p in runs.glob(f"*/{SEED_PREFIX}*/*/*/bf16/{RESULTS}")},
                   key=lambda parts: (parts[0], parts[2], parts[3],
                                      int(parts[1][len(SEED_PREFIX):])))
    grouped = {}
    for model, seed, variant, task in cells:
        grouped.setdefault((model, variant, task), []).append(seed)
    for (model, variant, task), seeds in grouped.items():
        pairs, seconds = [], {arm: [] for arm in ARMS}
        for seed in seeds:
            folder = runs / model / seed / variant / task
            loaded = load_arms({arm: folder / arm for arm in ARMS}, folder)
            values = {arm: 100 * loaded[arm][0]["value"] for arm in ARMS}
            pairs.append((loaded["float32"][1][1:], loaded["bf16"][1][1:],
                          loaded["bf16"][0]["value"] - loaded["float32"][0]["value"]))
            for arm in ARMS:
                seconds[arm].append(loaded[arm][0]["wall_seconds"]["features"])
            per_seed.append(f"| {model} | {variant} | {task} | {seed[5:]} | "
                            f"{values['float32']:.1f} | {values['bf16']:.1f} |")
        rows.append(
            f"| {model} | {variant} | {task} | {len(pairs)} | {paired_cells(pairs)} | "
            f"{statistics.median(seconds['float32']):.0f} / "
            f"{statistics.median(seconds['bf16']):.0f} |")
    return "\n".join([
        "# Hidden states extracted in bfloat16 against float32, the same upstreams", "",
        "Written by `python benchmarks/extraction_autocast.py` (its docstring says how); "
        "rebuilt from `runs/` beside this file by `--from-runs`. " + load_text, "",
        "Scores in percent of each task's metric (KS accuracy: higher is better; PR PER: "
        "lower is better); the difference is bfloat16 minus float32 as scored, so on PR a "
        "positive difference is worse.", "", *rows, "", "Per seed:", "", *per_seed, ""])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="the study folder (as study --out)")
    parser.add_argument("--variants", default="fp,random")
    parser.add_argument("--report", type=Path, default=REPORT)
    parser.add_argument("--from-runs", action="store_true",
                        help="rebuild the report from the copy beside it; run nothing")
    args, study_argv = parser.parse_known_args(argv)
    variants = split_list(args.variants)
    jobs = [] if args.from_runs else study_jobs(["--out", str(args.out), *study_argv])
    load_text = run_or_rebuild(parser, args.report, args.from_runs, args.out, "STUDY",
                               lambda: run_twins(args.out, jobs, variants),
                               lambda copied: copy_runs(args.out, jobs, variants, copied))
    atomic_write(args.report, report(runs_beside(args.report), load_text))
    print(args.report.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
