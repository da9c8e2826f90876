"""Runs a study's jobs (one shard of them), skipping what is done and resuming the rest.

Each training job goes through the same entry as ``profile-encoder train`` (the adapter's
``pretrain``), each evaluation through the one of ``profile-encoder superb``; with
``--launcher`` a training job is a subprocess ``LAUNCHER -m profiler train ...`` instead
(torchrun for several GPUs; ``--deepspeed`` is passed to every training job). Every job
finished is one line of ``OUT/study.log.jsonl`` (its wall time and CPU time).
"""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from profiler.calibration import cpu_name
from profiler.files import PROJECT_ROOT

from ..errors import DataError
from ..fileio import append_log, read_json, read_log, write_json
from ..superb.settings import RESULTS
from .anchors import (
    REUSED_FROM,
    check_anchor_source,
    copy_anchor,
    corpus_is_known,
    corpus_record,
    mark_reused_anchors,
    record_corpus,
    reused_from,
)
from .archive import check_restore_source, files_to_restore, merged_log, restore_study
from .job import Job
from .job_cost import cpu_seconds, release_freed_memory, torch_threads
from .layout import GATED_FILE, STUDY_FILE, STUDY_LOG
from .order import gate_jobs, parse_shard, seed_major, shard_jobs
from .plan import (
    FINISHED,
    RECORDED,
    RESUMABLE,
    STUDY_OPTIONS,
    TO_DO,
    build_plan,
    check_study_paths,
    command_words,
    job_state,
    missing_tasks,
    parse_names,
    study_tasks,
)
from .recipe import extend_record, recipe_changes, recipe_in, study_record
from .restored import as_if_restored, study_file
from .settings import StudySettings

# How often a shard looks whether shard 1 has finished the corpus.
WAIT_SECONDS = 15.0


def record_study(settings: StudySettings) -> Dict[str, Any]:
    """Write (or extend) ``OUT/study.json``; a different recipe is an error, new models,
    seeds, tasks or variants extend the study."""
    record = study_record(settings)
    path = Path(settings.out) / STUDY_FILE
    if path.is_file():
        old = read_json(path, "study record")
        changed = recipe_changes(recipe_in(Path(settings.out), old.get("recipe", {})),
                                 record["recipe"])
        if changed:
            raise DataError(f"{path}: this study was made with other settings ({', '.join(changed)}"
                            f"); use them again or choose another --out")
        record = extend_record(old, record)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, record, sort_keys=False)
    return record


def planned_jobs(settings: StudySettings) -> List[Job]:
    """Every job of the study (:func:`.plan.build_plan`), the anchors that
    ``--anchors-from`` copies marked as copies."""
    corpus = check_anchor_source(settings)
    jobs = build_plan(settings)
    mark_reused_anchors(settings, jobs, corpus)
    return jobs


def describe(job: Job) -> str:
    if job.kind == "data":
        return f"corpus -> {job.path}"
    model, seed = job.chain
    what = {"train": f"train {job.variant}", "superb": f"superb {job.variant} {job.task}",
            "propagation": "propagation"}[job.kind]
    return f"{model} seed {seed}: {what}"


def shard_plan(settings: StudySettings, jobs: List[Job]) -> List[Job]:
    """This shard's jobs of the study's ``jobs`` in the order they run (``--gate-only``:
    the gate's only)."""
    mine = shard_jobs(jobs, settings.shard)
    if settings.gate_only:
        mine = gate_jobs(mine)
    return seed_major(mine, parse_names(settings.models, "models"))


def reads_its_runs(job: Job) -> bool:
    """Whether ``job``, when it runs, reads the runs it needs: a gated evaluation whose
    teacher's evaluation has closed its gate only writes ``gated.json``."""
    if job.kind != "superb" or not job.options.get("gate"):
        return True
    results = study_file(Path(job.options["gate"]) / RESULTS)
    return results is None or gate_passes(results.parent)[0]


def unfinished(jobs: List[Job]) -> List[Job]:
    """The jobs left to run, in their order; a run held only as its record
    (:data:`RECORDED`) is left out: trained again only when a job reads it."""
    return [job for job in jobs if job_state(job) not in (FINISHED, RECORDED)]


def restore_committed_runs(settings: StudySettings, echo: Callable[[str], None]) -> int:
    """``--restore-from``: :func:`.archive.restore_study` into this study, its corpus made."""
    return restore_study(*_restore_arguments(settings), echo=echo)


def committed_runs_to_restore(settings: StudySettings) -> Dict[Path, Path]:
    """What ``--restore-from`` would copy into this study, its corpus made: each file's
    path in the study and its committed copy (checked as the restore checks them)."""
    reports, study = Path(settings.restore_from), Path(settings.out)
    return {study / relative: reports / relative
            for relative in files_to_restore(*_restore_arguments(settings))}


def _restore_arguments(settings: StudySettings):
    return (Path(settings.restore_from), Path(settings.out), study_record(settings)["recipe"],
            corpus_record(settings), parse_names(study_tasks(settings), "tasks"))


def jobs_to_run(jobs: List[Job]) -> List[Job]:
    """The unfinished of ``jobs``, in their order, with the training runs held only as a
    record (:data:`RECORDED`) that an unfinished job reads, directly or through others (a
    gated evaluation counted as reading until its gate is known)."""
    by_key = {job.key: job for job in jobs}
    states = {job.key: job_state(job) for job in jobs}
    wanted = [key for key, state in states.items() if state not in (FINISHED, RECORDED)]
    needed = set(wanted)
    while wanted:
        job = by_key[wanted.pop()]
        for need in job.needs if reads_its_runs(job) else ():
            if need in by_key and need not in needed and states[need] != FINISHED:
                needed.add(need)
                wanted.append(need)
    return [job for job in jobs if job.key in needed]


def dry_run(settings: StudySettings, echo: Callable[[str], None] = print) -> List[Job]:
    """List this shard's jobs: state and the command that runs each."""
    check_study_paths(settings)     # as the run would
    jobs = planned_jobs(settings)
    mine = shard_plan(settings, jobs)
    index, count = parse_shard(settings.shard)
    study = Path(settings.out)
    restored: Dict[Path, Path] = {}
    log_entries = read_log(study / STUDY_LOG)
    if settings.restore_from:
        reports = Path(settings.restore_from)
        if corpus_is_known(settings):
            restored = committed_runs_to_restore(settings)
            log_entries = merged_log(study / STUDY_LOG, reports / STUDY_LOG)
            echo(f"--restore-from: {len(restored)} files of finished runs in {reports} are "
                 f"restored into {study} when the study runs; this plan counts them as "
                 f"there (a dry run copies nothing)")
        else:
            check_restore_source(reports, study_record(settings)["recipe"])
            echo("--restore-from: the committed runs are restored when the study runs, "
                 "once its corpus is made and checked; this plan counts them as to do")
    with as_if_restored(restored):
        to_run = {job.key for job in jobs_to_run(mine)}
        echo(f"shard {index}/{count}: {len(mine)} of {len(jobs)} jobs, "
             f"{len(mine) - len(to_run)} done, {len(to_run)} left")
        for job in mine:
            state = job_state(job)
            command = ("profile-encoder " + shlex.join(command_words(job))
                       if job.kind in ("train", "superb") else "(in process)")
            if job.options.get("extracted_by"):
                command = f"by {job.options['extracted_by']}'s job, else {command}"
            if reused_from(job):
                command = f"copy of {reused_from(job)} (checked when it runs)"
            if state == RECORDED and job.key not in to_run:
                command = "restored record, not trained again: every job that reads it is done"
            echo(f"  [{state:>6}] {job.key}: {command}")
    from .budget import logged_seconds, time_plan
    from .presets import PRESETS

    states = [TO_DO if job.key in to_run else FINISHED for job in mine]
    for line in time_plan(mine, PRESETS[settings.preset], states, FINISHED,
                          logged_seconds(log_entries, cpu_name())):
        echo(line)
    return mine


def run_study(settings: StudySettings, *, backend: Optional[JobBackend] = None,
              runner: Optional[Callable[[Job], None]] = None) -> Dict[str, Any]:
    """Run this shard's unfinished jobs in dependency order, training and evaluating
    through ``backend``; returns counts and times. ``runner`` replaces :func:`run_job`
    (tests)."""
    from tqdm import tqdm

    check_study_paths(settings)     # before anything is written
    jobs = planned_jobs(settings)
    by_key = {job.key: job for job in jobs}
    mine = shard_plan(settings, jobs)
    if settings.restore_from:       # before anything is written
        check_restore_source(Path(settings.restore_from), study_record(settings)["recipe"])
    record_study(settings)
    record_corpus(settings)
    log = Path(settings.out) / STUDY_LOG
    pending = unfinished(mine)
    ran: List[str] = []
    started = time.perf_counter()
    with tqdm(total=len(mine), initial=len(mine) - len(pending), desc="study", unit="job",
              file=sys.stderr, dynamic_ncols=True, disable=not settings.progress) as bar:
        def step(job: Job) -> None:
            # A record is trained again only when a job about to run reads it (a gated
            # evaluation only once its gate, an earlier job, has passed).
            needs = [by_key[need] for need in job.needs]
            records = [need for need in needs if job_state(need) == RECORDED]
            for need in needs:
                if need not in records:
                    wait_for(need, settings, bar)
            if records and reads_its_runs(job):
                bar.total += len(records)
                for record in records:
                    step(record)
            bar.set_postfix_str(describe(job))
            if job_state(job) == FINISHED:     # written by the job whose extraction it shares
                bar.update(1)
                return
            t0, cpu0 = time.perf_counter(), cpu_seconds()
            (runner or (lambda j: run_job(j, settings, backend)))(job)
            seconds, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
            release_freed_memory()
            copied = {REUSED_FROM: reused_from(job)} if reused_from(job) else {}
            append_log(log, {"job": job.key, "seconds": round(seconds, 2),
                             "cpu_seconds": round(cpu, 2), "threads": torch_threads(),
                             "cpu": cpu_name(),
                             "shard": settings.shard,
                             "finished_at": time.time(), **copied})
            ran.append(job.key)
            bar.update(1)
            if settings.progress:
                bar.write(f"done: {describe(job)} ({seconds / 60:.1f} min)" if not copied
                          else f"copied: {describe(job)} from {copied[REUSED_FROM]}")

        if settings.restore_from:
            # The committed runs are checked against this corpus before any is copied.
            for job in jobs:
                if job.kind == "data":
                    if job in pending:
                        step(job)
                    else:
                        wait_for(job, settings, bar)
            restore_committed_runs(settings, bar.write)
            pending = [job for job in unfinished(mine) if job.kind != "data"]
            bar.n = len(mine) - len(pending)
            bar.refresh()
        for job in pending:
            step(job)
    return {"jobs": len(mine), "ran": ran, "skipped": len(mine) - len(ran),
            "wall_seconds": time.perf_counter() - started}


def wait_for(job: Job, settings: StudySettings, bar) -> None:
    """A dependency of another shard (the corpus) is waited for; one of this shard that
    is not done means it failed, which already stopped the study."""
    announced = False
    while job_state(job) != FINISHED:
        if job.kind != "data" or parse_shard(settings.shard)[0] == 1:
            raise DataError(f"{job.key} is not done; rerun the study")
        if not announced:
            bar.write(f"waiting for shard 1 to synthesize the corpus into {job.path} "
                      f"(or pass --data)")
            announced = True
        time.sleep(WAIT_SECONDS)


# ------------------------------------------------------------------------------ one job
def run_job(job: Job, settings: StudySettings, backend: Optional[JobBackend] = None) -> None:
    if job.kind == "data":
        synthesize(job)
    elif job.kind == "train":
        train(job, settings, backend)
    elif job.kind == "superb":
        evaluate(job, settings, backend)
    else:
        from .propagation import measure_job

        measure_job(job)


def synthesize(job: Job) -> None:
    """The corpus: the corpus of ``train`` (pre-training, KS, SID, PR) at the preset's
    ``sizes``, the other tasks (ASR, SD...) at the preset's size of theirs. Tasks already
    there stay as they are, so a study that grows by a task keeps the corpus its finished
    runs were trained on."""
    from ..data.synth import TASKS as CORPUS_TASKS
    from ..data.synth import synthesize_corpus
    from ..superb.tasks.common import synthesize_tasks

    path = job.path
    workers = max(1, min(8, os.cpu_count() or 1))
    tasks = missing_tasks(job)
    # The preset's "corpus" sizes (a CorpusSizes) cover train's corpus; the study keeps the
    # sizes it was planned with, so those tasks are made as train's corpus is.
    corpus = [task for task in tasks if task in CORPUS_TASKS]
    others = [task for task in tasks if task not in CORPUS_TASKS]
    if corpus:
        synthesize_corpus(path, seed=0, sizes=job.options["sizes"], tasks=corpus,
                          overwrite=True, workers=workers, progress=False,
                          options=job.options["synth"])
    if others:
        synthesize_tasks(path, others, seed=0, size=job.options["task_size"], overwrite=True,
                         workers=workers, progress=False)


@dataclass(frozen=True)
class JobBackend:
    """How the study runs a training or evaluation job in this process: each callable
    takes the job's options (``train``'s and ``superb``'s, by name). The command line
    passes its ``--backend``'s (:func:`profiler.adapters.job_backend`); the trainer does
    not import the layer above it to find one."""

    train: Callable[[Dict[str, Any]], Any]
    evaluate: Callable[[Dict[str, Any]], Any]


def _backend(backend: Optional[JobBackend]) -> JobBackend:
    if backend is None:
        raise ValueError("a training or evaluation job needs a JobBackend (or --launcher)")
    return backend


def train(job: Job, settings: StudySettings, backend: Optional[JobBackend] = None) -> None:
    """A killed run resumes from its newest checkpoint; one killed before its first
    checkpoint starts again."""
    options = dict(job.options)
    if job_state(job) == RESUMABLE:
        options = {"out": options["out"], "resume": True, "progress": False,
                   "device": settings.device}
    elif job.path.exists():
        shutil.rmtree(job.path)
    if settings.launcher:
        words = command_words(Job(job.key, job.kind, job.path, job.chain, options=options))
        run_command([*shlex.split(settings.launcher), "-m", "profiler", *words])
        return
    _backend(backend).train(options)


def evaluate(job: Job, settings: StudySettings, backend: Optional[JobBackend] = None) -> None:
    """One evaluation; then its ``results.json`` records the chain of precisions its
    upstream ran (key ``chain``). A gated task whose ``fp`` teacher did not beat the
    task's chance reference is not evaluated: ``gated.json`` says why. A job that also
    trains heads on states 1..L (``also_without_state0``) does all this for that
    evaluation too."""
    if reused_from(job):
        copy_anchor(job, settings)
        return
    evaluations = [(job.path, job.variant)]
    if job.options.get("also_without_state0"):
        evaluations.append((Path(job.options["also_without_state0"]),
                            job.options["paired_variant"]))
    if job.options.get("gate"):
        passed, reason = gate_passes(Path(job.options["gate"]))
        if not passed:
            for path, variant in evaluations:
                path.mkdir(parents=True, exist_ok=True)
                write_json(path / GATED_FILE, {"task": job.task, "variant": variant,
                                                "evaluated": False, "reason": reason},
                           sort_keys=False)
            return
    options = {k: v for k, v in job.options.items() if k not in STUDY_OPTIONS}
    if settings.launcher:
        run_command([sys.executable, "-m", "profiler",
                     *command_words(Job(job.key, job.kind, job.path, job.chain,
                                        options=options))])
    else:
        _backend(backend).evaluate(options)
    for path, variant in evaluations:
        record_chain(path / RESULTS, variant, job.options.get("chain"))


def gate_passes(teacher_eval: Path):
    """(whether the fp teacher's evaluation in ``teacher_eval`` beats the task's chance
    reference, its 95 % interval entirely on the better side; the reason in words)."""
    results = read_json(teacher_eval / RESULTS, "the teacher's evaluation")
    low, high = results["interval"]
    chance = results["chance"]
    passed = low > chance if results.get("higher_is_better", True) else high < chance
    reason = (f"fp teacher {results['metric']} {100 * results['value']:.1f} % "
              f"[{100 * low:.1f}, {100 * high:.1f}] against chance {100 * chance:.1f} %: "
              f"{'beats' if passed else 'does not beat'} chance")
    return passed, reason


def record_chain(path: Path, variant: Optional[str], chain: Optional[List[str]]) -> None:
    """Add the study's variant and the chain its upstream ran to ``results.json``."""
    if chain is None:
        return
    results = read_json(path, "evaluation results")
    results.update({"variant": variant, "chain": list(chain)})
    write_json(path, results)


def run_command(words: List[str]) -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run(words, env=env)
    if result.returncode != 0:
        raise DataError(f"{shlex.join(words[:6])} ... failed with exit status "
                        f"{result.returncode}")
