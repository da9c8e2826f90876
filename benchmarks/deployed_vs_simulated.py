"""Does a binarized upstream score the same deployed as simulated (``superb --deployed``)?

    PYTHONPATH=. python benchmarks/deployed_vs_simulated.py --out RUNS [--task ks]
        [--models bq-conformer-s,bq-sparseformer-dn-s] [--seeds 5] [--steps N]
        [--data CORPUS] [--report reports/deployed_vs_simulated.md]
    PYTHONPATH=. python benchmarks/deployed_vs_simulated.py --out RUNS --task sd --steps 300 \
        --students-from STUDY --report reports/deployed_vs_simulated_students_sd.md
    PYTHONPATH=. python benchmarks/deployed_vs_simulated.py --from-runs   # rebuild only

For each model and seed the random-init ``bq-`` upstream (its binarizers given BiT's
data-based initialization on 8 training utterances, as ``superb --random-init`` does) is
evaluated twice on the same task, corpus, seed and head budget: as the training-time
simulation (``profile-encoder superb``) and deployed on the packed 1-bit kernels (the same
command with ``--deployed``). The two compute the same products up to float rounding, which
a binarized network amplifies (``benchmarks/simulation_rounding.py``); this measures
whether the task score moves with it. Each evaluation is a real subprocess of the CLI, run
one after another (2 threads each); a finished one (``results.json``) is kept, so a rerun
resumes. The corpus is ``data synth --size default`` of the task in ``RUNS/data``, or
``--data``'s; ``--steps`` sets both arms' head steps (the study's SD budget is 300).

With ``--students-from STUDY`` the upstreams are instead the study's trained ``bq``
students (the last stage of each seed's chain, ``runs/<model>/seed-<n>/bq/stage-*-W1A1``),
on the study's corpus: the simulated arm is the study's own evaluation of that student
(``superb/bq/<task>``, the same command without ``--deployed``), copied, and only the
deployed arm runs; a seed whose student has no checkpoint left (restored from its record
only) is skipped and said so.

The report gives each seed's two scores, the paired difference deployed minus simulated
per model with the study's hierarchical bootstrap over seeds and test items (and Student's
t over seeds as a check), and each arm's feature-extraction seconds from ``results.json``
(sequential runs on one machine: read them with the load the report states). Every
``results.json`` and ``per_item.json`` is copied beside the report (``<report>/runs/``),
from which ``--from-runs`` rebuilds it alone.
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

import numpy as np
from runs_beside_report import load_arms, paired_cells, run_or_rebuild, runs_beside

from models.constants import float_name
from models.trainer.study.layout import SEED_PREFIX, evaluation_folder, seed_folder, seed_folders
from models.trainer.study.settings import BQ_VARIANT
from models.trainer.superb.settings import PER_ITEM, RESULTS
from profiler.files import atomic_write
from profiler.option_values import split_list

ARMS = {"simulated": [], "deployed": ["--deployed"]}
REPORT = Path("reports/deployed_vs_simulated.md")
CLI = [sys.executable, "-m", "profiler"]


def arm_folder(root: Path, model: str, seed: int, arm: str, task: str) -> Path:
    """One arm's evaluation, in the study's layout with arms for variants."""
    return root / model / f"{SEED_PREFIX}{seed}" / arm / task


def evaluate(folder: Path, task: str, upstream: list, data: Path, seed: int, steps,
             flags: list) -> None:
    """One ``superb`` evaluation, a subprocess of the CLI on the CPU."""
    subprocess.run(CLI + ["superb", "--task", task, "--out", str(folder), *upstream,
                          "--data", str(data), "--seed", str(seed), "--device", "cpu",
                          "--quiet", *(["--steps", str(steps)] if steps else []), *flags],
                   check=True)


def student_folder(study: Path, model: str, seed: int) -> Optional[Path]:
    """The last stage of a study seed's ``bq`` chain, if it still has a checkpoint."""
    stages = sorted((seed_folder(study, float_name(model), seed) / BQ_VARIANT).glob(
        "stage-*-W1A1"))
    if not stages or not (stages[-1] / "checkpoints").is_dir():
        return None
    return stages[-1]


def run_students(out: Path, study: Path, task: str, names: list, seeds: int, steps) -> None:
    for seed in range(seeds):
        for model in names:
            student = student_folder(study, model, seed)
            if student is None:
                print(f"{model} seed {seed}: no trained student with a checkpoint in {study}; "
                      f"skipped", flush=True)
                continue
            simulated = evaluation_folder(seed_folder(study, float_name(model), seed), BQ_VARIANT,
                                          task)
            if not (simulated / RESULTS).is_file():
                print(f"{model} seed {seed}: the study has no {task} evaluation of its student; "
                      f"skipped", flush=True)
                continue
            target = arm_folder(out / "runs", model, seed, "simulated", task)
            if not (target / RESULTS).is_file():
                target.mkdir(parents=True, exist_ok=True)
                for name in (RESULTS, PER_ITEM):
                    shutil.copyfile(simulated / name, target / name)
            folder = arm_folder(out / "runs", model, seed, "deployed", task)
            if (folder / RESULTS).is_file():
                continue
            print(f"{model} seed {seed} deployed ...", flush=True)
            evaluate(folder, task, ["--upstream", str(student)], study / "data", seed, steps,
                     ARMS["deployed"])


def run_all(out: Path, task: str, names: list, seeds: int, steps, data=None) -> None:
    data = data or out / "data"
    if not (data / task / "test.tsv").is_file():
        subprocess.run(CLI + ["data", "synth", "--out", str(data), "--tasks", task,
                                "--size", "default", "--workers", "2", "--quiet"], check=True)
    for seed in range(seeds):
        for model in names:
            for arm, flags in ARMS.items():
                folder = arm_folder(out / "runs", model, seed, arm, task)
                if (folder / RESULTS).is_file():
                    continue
                print(f"{model} seed {seed} {arm} ...", flush=True)
                evaluate(folder, task, ["--random-init", model], data, seed, steps, flags)


def copy_runs(source: Path, target: Path) -> None:
    for results in sorted(source.glob(f"*/{SEED_PREFIX}*/*/*/{RESULTS}")):
        folder = target / results.parent.relative_to(source)
        folder.mkdir(parents=True, exist_ok=True)
        for name in (RESULTS, PER_ITEM):
            shutil.copyfile(results.parent / name, folder / name)


def report(runs: Path, load_text: str) -> str:
    lines = ["# A binarized upstream deployed against its simulation, on one task", "",
             "Written by `python benchmarks/deployed_vs_simulated.py` (its docstring says how); "
             "rebuilt from `runs/` beside this file by `--from-runs`. " + load_text, ""]
    table = ["| model | seed | simulated | deployed | deployed - simulated (points) | "
             "features, simulated (s) | features, deployed (s) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    summary = ["| model | seeds | deployed - simulated (points) | 95 % interval | items only | "
               "t over seeds | p | extraction speed-up |",
               "| --- | ---: | ---: | --- | --- | --- | ---: | ---: |"]
    task = metric = steps = kind = None
    for model_dir in sorted(path for path in runs.iterdir() if path.is_dir()):
        pairs, seconds = [], {arm: [] for arm in ARMS}
        for seed, seed_dir in seed_folders(model_dir):
            arms = {arm: next(iter(sorted((seed_dir / arm).glob(f"*/{RESULTS}"))), None)
                    for arm in ARMS}
            if any(path is None for path in arms.values()):
                continue
            loaded = load_arms({arm: path.parent for arm, path in arms.items()}, seed_dir)
            sim, dep = loaded["simulated"][0], loaded["deployed"][0]
            task, metric, steps = sim["task"], sim["metric"], sim["settings"]["steps"]
            kind = sim.get("upstream", {}).get("kind")
            difference = dep["value"] - sim["value"]
            pairs.append((loaded["simulated"][1][1:], loaded["deployed"][1][1:], difference))
            for arm in ARMS:
                seconds[arm].append(loaded[arm][0]["wall_seconds"]["features"])
            table.append(f"| {model_dir.name} | {seed} | {100 * sim['value']:.1f} | "
                         f"{100 * dep['value']:.1f} | {100 * difference:+.1f} | "
                         f"{seconds['simulated'][-1]:.0f} | {seconds['deployed'][-1]:.0f} |")
        if not pairs:
            continue
        speed = np.median(seconds["simulated"]) / np.median(seconds["deployed"])
        summary.append(f"| {model_dir.name} | {len(pairs)} | {paired_cells(pairs)} | "
                       f"{speed:.2f}x |")
    upstreams = ("the `bq` students of a study (the last stage of each seed's chain; the "
                 "simulated arm is the study's own evaluation, its extraction timed then)"
                 if kind == "checkpoint" else "random-init `bq-` zoo models")
    lines += [f"Task {task} ({metric}, percent; positive difference: the deployed score is "
              f"higher). Upstreams: {upstreams} of "
              f"{', '.join(sorted(float_name(p.name) for p in runs.iterdir() if p.is_dir()))}"
              f", heads trained as `superb` trains them for this task ({steps} steps).", "",
              *summary, "",
              "Per seed:", "", *table, ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="run folder (outside the repository)")
    parser.add_argument("--task", default="ks")
    parser.add_argument("--models", default="bq-conformer-s,bq-sparseformer-dn-s")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, help="head steps (default: the task's)")
    parser.add_argument("--data", type=Path, help="an existing corpus holding the task")
    parser.add_argument("--students-from", type=Path, metavar="STUDY",
                        help="a study folder: its trained bq students instead of random-init "
                             "upstreams, on its corpus (its simulated evaluations reused)")
    parser.add_argument("--report", type=Path, default=REPORT)
    parser.add_argument("--from-runs", action="store_true",
                        help="rebuild the report from the copy beside it; run nothing")
    args = parser.parse_args()
    if args.students_from is not None and not (args.students_from / "runs").is_dir():
        parser.error(f"--students-from {args.students_from}: not a study folder (no runs/)")
    load_text = run_or_rebuild(
        parser, args.report, args.from_runs, args.out, "RUNS",
        lambda: (run_students(args.out, args.students_from, args.task, split_list(args.models),
                              args.seeds, args.steps) if args.students_from else
                 run_all(args.out, args.task, split_list(args.models), args.seeds, args.steps,
                         args.data)),
        lambda copied: copy_runs(args.out / "runs", copied))
    atomic_write(args.report, report(runs_beside(args.report), load_text))
    print(args.report.read_text())


if __name__ == "__main__":
    main()
