"""The study's training on a lent GPU: the teachers and distillation chains of every
(model, seed), in parallel, at a larger batch and longer crops; the heads stay on the CPU.

    python benchmarks/study_gpu.py --out STUDY [--data CORPUS] [--dry-run]

It plans the study exactly as ``profile-encoder study --out STUDY`` would (same preset,
models, seeds, folders, ``study.json``), so its run folders are the study's own: a later
``profile-encoder study --out STUDY`` (same options, on the CPU) finds the training jobs
finished and runs the SUPERB heads and the propagation measure. What changes on the GPU is
stated, not hidden: ``--batch-size`` and ``--crop-seconds`` replace the preset's own,
each run's ``metadata.json`` records its settings, and ``STUDY/gpu.json`` and
``REPORTS/summary.json`` / ``summary.md`` record the GPU, the settings and each job's
status and wall time. A rerun skips finished runs and resumes interrupted ones. Of the
corpus it synthesizes pre-training's alone (on the machine's CPUs); the CPU study adds the
SUPERB tasks' to the same folder. Besides PyTorch it needs numpy, scikit-learn, pandas,
pyyaml, tqdm and the synthesizer's espeakng-loader (a pip wheel that carries espeak-ng).

One process per (model, seed): the teacher (the paper preset: both of HuBERT's
iterations, fp-it1 then fp), then its students in plan order (bq: BiT's chain),
all processes at once on the one GPU. Commit REPORTS (default reports/study/gpu/) after
a run; the CPU results must stand on their own without it.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# The study's own options, declared by its settings: the recipe the CPU study resumes
# (--deployed, --autocast and --student-scales are part of it: give the same to both).
STUDY_OPTIONS = ("out", "data", "preset", "models", "seeds", "sensitivity", "deployed",
                 "autocast", "student_scales")


def parse_arguments(argv=None):
    from models.trainer.study.settings import StudySettings
    from profiler.commands.settings_arguments import add_settings_arguments

    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    add_settings_arguments(parser, StudySettings, fields=STUDY_OPTIONS)
    parser.add_argument("--batch-size", type=int, default=32,
                        help="per run, in place of the preset's (summary.md names both)")
    parser.add_argument("--crop-seconds", type=float, default=4.0,
                        help="per crop, in place of the preset's (summary.md names both)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--threads", type=int, default=2,
                        help="CPU threads of each process (k-means, data loading)")
    parser.add_argument("--time-limit", type=float, default=540.0,
                        help="seconds; runs still going are stopped (they resume on a rerun)")
    parser.add_argument("--reports", default=str(ROOT / "reports" / "study" / "gpu"),
                        help="where the measurements are written")
    parser.add_argument("--dry-run", action="store_true",
                        help="list each process's jobs and commands; run nothing")
    return parser.parse_args(argv)


def study_settings(a):
    from models.trainer.study.settings import StudySettings
    from profiler.commands.settings_arguments import settings_from_arguments

    given = {name: value for name, value in settings_from_arguments(a, StudySettings).items()
             if name in STUDY_OPTIONS and value is not None}
    return StudySettings(**given, device=a.device, progress=False)


def training_chains(a):
    """{(model, seed): [(job, command words)]}: the training jobs of each (model, seed),
    in plan order, at the GPU's batch and crops (a resumable run resumes)."""
    from models.trainer.study.job import Job
    from models.trainer.study.plan import RESUMABLE, build_plan, command_words, job_state

    chains = {}
    for job in build_plan(study_settings(a)):
        if job.kind != "train":
            continue
        state = job_state(job)
        if state == RESUMABLE:
            options = {"out": job.options["out"], "resume": True, "progress": False,
                       "device": a.device}
        else:
            options = {**job.options, "batch_size": a.batch_size,
                       "crop_seconds": a.crop_seconds, "device": a.device}
        words = command_words(Job(job.key, job.kind, job.path, job.chain, options=options))
        chains.setdefault(job.chain, []).append((job, state, words))
    return chains


def pretraining_corpus(job):
    """The study's corpus job cut to the pre-training corpus, all its training jobs read: a
    lent GPU's minutes are not spent synthesizing the SUPERB tasks. The CPU study that takes
    the runs over adds the tasks missing from the folder, leaving pre-training as it is."""
    import dataclasses

    return dataclasses.replace(job, options={**job.options, "tasks": ["pretrain"]})


def run_chain_jobs(jobs, log: Path, deadline: float, measured: dict, threads: int) -> None:
    """One (model, seed): its training jobs in turn, each a ``profiler train`` process."""
    from models.trainer.study.plan import FINISHED

    # Every process on the one machine: torch's default (one thread per core each)
    # would oversubscribe its cores.
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "TORCHINDUCTOR_COMPILE_THREADS": str(threads),
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    with open(log, "a", encoding="utf-8") as out:
        for job, state, words in jobs:
            if state == FINISHED:
                measured[job.key] = {"status": "finished before"}
                continue
            args = [sys.executable, "-m", "profiler", *words]
            out.write("$ " + shlex.join(args) + "\n")
            out.flush()
            started = time.perf_counter()
            try:
                code = subprocess.run(args, cwd=ROOT, env=env, stdout=out,
                                      stderr=subprocess.STDOUT,
                                      timeout=max(1.0, deadline - time.monotonic())).returncode
                status = "ok" if code == 0 else f"exit {code}: {last_line(log)} ({log.name})"
            except subprocess.TimeoutExpired:
                status = "stopped at the time limit (resumes on a rerun)"
            measured[job.key] = {"status": status,
                                 "seconds": round(time.perf_counter() - started, 1)}
            if status != "ok":
                return              # its students need it



def last_line(log: Path) -> str:
    """The last line a job wrote to its chain's log: a failed command's one-line error."""
    lines = [line for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
             if line.strip()]
    return lines[-1].strip() if lines else "no output"


def gpu_name() -> str:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"


def run_progress(folder: Path) -> dict:
    """What one training run's folder says of it: steps done (over a chain's stages), the
    median seconds a step took, the last stage begun, and its last validation's masked
    accuracy over the unit prior (utterance-bootstrap standard error), finished or not."""
    from statistics import median

    from models.trainer.fileio import read_log
    from models.trainer.pretrain.checkpoint import LOG

    # read_log: a run still writing may have cut its last line
    stages = sorted(folder.glob("stage-*")) or [folder]
    logs = [read_log(stage / LOG) for stage in stages if (stage / LOG).is_file()]
    trains = [[line for line in log if line.get("split") == "train"] for log in logs]
    train = [line for stage in trains for line in stage]
    valid = [line for log in logs for line in log if line.get("split") == "valid"]
    if not train:
        return {}
    progress = {"steps": sum(max(line["step"] for line in stage) for stage in trains if stage)}
    if len(stages) > 1 or stages[0] != folder:
        progress["stage"] = stages[-1].name
    progress["step_seconds"] = round(median(line["step_seconds"] for line in train), 4)
    if valid and "acc_over_prior" in valid[-1]:
        progress.update(valid_step=valid[-1]["step"],
                        acc_over_prior=round(valid[-1]["acc_over_prior"], 4),
                        acc_over_prior_se=round(valid[-1]["acc_over_prior_se"], 4))
    return progress


def cpu_batch(plan) -> tuple:
    """(batch size, crop seconds) the CPU study's preset trains with: its first training
    job's, from the study's ``plan``."""
    from models.trainer.study.plan import train_settings

    job = next(job for job in plan if job.kind == "train")
    run = train_settings(job.options)
    return run.batch_size, run.crop_seconds


def write_reports(a, settings, plan, measured: dict, wall: float, jobs: dict) -> None:
    """``settings`` and ``plan``: the study's; ``jobs``: {job key: run folder}."""
    from models.trainer.study.plan import study_seeds
    from profiler.files import atomic_write

    for key, folder in jobs.items():
        measured.setdefault(key, {"status": "not started (the time limit, or its teacher failed)"})
        measured[key].update(run_progress(Path(folder)))
    reports = Path(a.reports)
    reports.mkdir(parents=True, exist_ok=True)
    record = {"gpu": gpu_name(), "preset": settings.preset, "models": settings.models,
              "seeds": study_seeds(settings), "autocast": settings.autocast,
              "student_scales": settings.student_scales,
              "batch_size": a.batch_size, "crop_seconds": a.crop_seconds,
              "wall_seconds": round(wall, 1), "jobs": measured}
    for path in (Path(settings.out) / "gpu.json", reports / "summary.json"):
        atomic_write(path, json.dumps(record, indent=2) + "\n")
    batch, crop = cpu_batch(plan)
    lines = [f"# The study's training on {record['gpu']}", "",
             f"Preset {settings.preset}, batch {a.batch_size} x {a.crop_seconds:g} s crops "
             f"(the CPU study's: {batch} x {crop:g} s); all (model, seed) chains in parallel; "
             f"wall {wall:.0f} s.", "",
             "| job | status | seconds | steps | s / step | masked acc - prior (se) |",
             "|---|---|---:|---:|---:|---:|"]
    for key, value in measured.items():
        gain = (f"{value['acc_over_prior']:+.3f} ({value['acc_over_prior_se']:.3f}) at step "
                f"{value['valid_step']}" if "acc_over_prior" in value else "")
        lines.append(f"| {key} | {value['status']} | {value.get('seconds', '')} | "
                     f"{value.get('steps', '')} | {value.get('step_seconds', '')} | {gain} |")
    atomic_write(reports / "summary.md", "\n".join(lines) + "\n")


def main(argv=None) -> int:
    from models.trainer.errors import DataError

    a = parse_arguments(argv)
    try:
        chains = training_chains(a)
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if a.dry_run:
        for (model, seed), jobs in chains.items():
            print(f"process {model} seed {seed}:")
            for job, state, words in jobs:
                print(f"  [{state:>6}] {job.key}: profile-encoder {shlex.join(words)}")
        return 0
    from models.trainer.study.plan import FINISHED, build_plan, job_state
    from models.trainer.study.runner import record_study, run_job

    settings = study_settings(a)
    record_study(settings)
    plan = build_plan(settings)
    for job in plan:
        if job.kind == "data":
            job = pretraining_corpus(job)
            if job_state(job) != FINISHED:
                run_job(job, settings)      # on this machine's CPUs
    logs = Path(settings.out) / "gpu-logs"
    logs.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + a.time_limit
    measured: dict = {}
    started = time.perf_counter()
    threads = [threading.Thread(target=run_chain_jobs,
                                args=(jobs, logs / f"{model}-seed-{seed}.log", deadline,
                                      measured, a.threads))
               for (model, seed), jobs in chains.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    write_reports(a, settings, plan, measured, time.perf_counter() - started,
                  {job.key: job.path for jobs in chains.values() for job, _, _ in jobs})
    print(json.dumps(measured, indent=1))
    failed = [key for key, value in measured.items() if value["status"].startswith("exit")]
    if failed:
        print(f"error: {len(failed)} training job(s) failed, first {failed[0]}: "
              f"{measured[failed[0]]['status']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
