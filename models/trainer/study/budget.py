"""The CPU time a study's jobs are expected to take, for ``study --dry-run``'s time plan.

Rates are of the zoo's -s models on 2 CPU cores. Training: seconds per step of 16 s of
audio (8 x 2 s crops), the median interval between logged steps of the SD sensitivity
study's runs (below), plus a start-up per run. Evaluations: feature extraction
grows with the task's utterances and head training with its steps, each measured apart
(``results.json``'s ``wall_seconds``): SD, KS and PR from the paper study's first seed
(medians of the conformer-s teacher, its random-init twin and the sparseformer-dn-s
teacher, 2 December 2026, runs/study); the other tasks from the small study's job log,
split half and half. Planning figures, not benchmarks: once a study has logged jobs of a
kind (the same job at another seed), the plan prices that kind at their median time instead,
measured on the machine that runs it: of the jobs that had the cores to themselves where
there are any (:func:`had_the_cores`).
"""
from __future__ import annotations

import re
import statistics
from typing import Dict, Iterable, List, Mapping, Optional, Sequence

from ..autocast import cpu_has_bfloat16
from ..data import PRETRAIN
from ..data.sentences import KS_CLASSES
from .anchors import REUSED_FROM, reused_from
from .layout import SEED_PREFIX
from .plan import train_settings
from .presets import is_binarized_variant

# Seconds per training step of 16 s of audio (8 x 2 s crops), 2 CPU cores: the median of
# each run's intervals between logged steps (elapsed seconds over 5 steps, so pauses, a
# resume and the end-of-run validation fall out), then the middle of those runs, in the SD
# sensitivity study (2026-12-04/05): pre-training 0.53-0.60 over 10 runs of both encoders,
# distillation 0.90-1.32 over 21 of its 22 chain stages and one-stage runs, 2.56 in one
# run beside other work (a distillation step also runs its teacher forward). Whole jobs
# logged up to twice these (paused for CI, other work beside them), which is what the plan
# used to price (1.1 and 1.6).
PRETRAIN_STEP_SECONDS = 0.56
DISTILL_STEP_SECONDS = 1.04
# Each training run (each stage of a chain) outside its steps: start-up, the last
# validation and checkpoint; the smallest such remainder of that study's jobs, 4-18 s.
RUN_START_SECONDS = 15.0
REFERENCE_AUDIO_SECONDS = 16.0
# --autocast bf16: float32 / bfloat16 seconds per step in the training loop itself (train
# --small on the paper preset's corpus, conformer-s, two paired 40-step runs on an idle
# 2-core AMD EPYC with AVX-512 BF16: 1.18x and 1.13x; a profiled step 1.21x). Its batches
# are cut to their shortest utterance, about 1.5 s, where the convolutions and products
# gain less and the optimizer and dropout, which do not gain, weigh more. Distillation
# was not timed in the loop, so its price does not move.
AUTOCAST_PRETRAIN_GAIN = 1.13
AUTOCAST_DISTILL_GAIN = 1.0
# The same on a CPU without bfloat16 instructions, which torch emulates: float32 / bfloat16
# of benchmarks/bench_autocast.py's conformer-s step on a 2-core AMD EPYC with AVX2 only
# (0.976 / 7.923 s, 2026-12-05). Distillation was not timed there; its forward passes run
# under the same emulation, so it is priced alike.
AUTOCAST_EMULATED_GAIN = 0.12
# HuBERT's second iteration first labels its corpus by k-means on the iteration-1 run's
# hidden states, outside the training loop: 109 s for the paper preset's 1 260 pre-training
# utterances with conformer-s (features 100 s, one utterance at a time; k-means the rest;
# 2 CPU cores, 4 December 2026), priced per utterance. Iteration 1's MFCC targets took 8 s.
# The features' forward now stops at the label layer: 0.74x their time (median of three
# paired passes over 200 of those utterances, layer 8 of 16, study paused), so 74 + 9 s.
ITERATION_2_TARGET_SECONDS_PER_UTTERANCE = 83.0 / 1260

# A task's evaluation: (feature extraction seconds per utterance of its corpus, all
# splits; head training seconds per step). SD's: the SD sensitivity study's own float
# extractions (the teachers of both encoders, 9 runs, 2026-12-04/05, padded batches):
# median 267 s for its 1 600 utterances (228-685, the longest beside other work), and its
# heads' median 28 s per 300 steps (12-62 over 32 heads); the paper study's first seed,
# scaled by the padded extraction's gain, had priced them at 0.226 and 0.156. PR's is
# measured with padded batches: 58 s for its 1 250 utterances (the bf16 pilot's float32
# extractions, fp and random-init medians 60 and 57 s; the x 0.5 gain measured on two
# upstreams had priced it at 51 s), and its heads at 46 s per 1 500 steps (the middle of
# the three committed studies' median head times, 35, 46 and 57 s; the paper study's
# first seed alone had given 26 s).
MEASURED_EVALUATIONS = {"sd": (267.0 / 1600, 28.0 / 300), "ks": (0.0205, 0.00166),
                        "pr": (58.0 / 1250, 46.0 / 1500)}
# The small study's evaluations, for the tasks the paper study has not timed: (median
# seconds, utterances of its corpus at the small size, head steps it trained).
SMALL_EVALUATIONS = {"sid": (17.0, 160, 1500), "asr": (59.8, 330, 500)}
# Extracting a binarized upstream's states in the training-time simulation takes longer
# than a float one's, by task: the median of bq / fp and bq-random / random feature
# seconds, same model, seed and task, over the 90 such pairs of the three committed CPU
# studies (reports/study, study_sensitivity, study_sensitivity_sd; 30 a task; copied
# anchors counted once): SD 1.61, KS 1.42, PR 2.06, 1.72 over all (the other tasks).
BINARIZED_EXTRACTION_FACTORS = {"sd": 1.61, "ks": 1.42, "pr": 2.06}
BINARIZED_EXTRACTION_FACTOR = 1.72
# Deployed on packed kernels (--deployed), against a float upstream of the same shape: the
# median of bq / fp and bq-random / fp feature seconds, paired in one run on one machine
# (a --deployed --autocast bf16 study of both encoders' seed 0, 2026-12-05, idle 2 cores;
# 4 pairs a task): SD 0.50 (0.42-0.56), KS 0.56 (0.52-0.61), PR 0.57 (0.54-0.59), 0.55
# over all 12 (the other tasks). The plan had priced them as the simulation's time over
# 2.1 (its gain over the simulation on random-init upstreams, reports/
# deployed_vs_simulated*.md), 0.77, 0.68 and 0.98 of a float upstream's: the simulation's
# times came from other days and machines' loads.
DEPLOYED_EXTRACTION_FACTORS = {"sd": 0.50, "ks": 0.56, "pr": 0.57}
DEPLOYED_EXTRACTION_FACTOR = 0.55
PROPAGATION_SECONDS = 6.0
ANCHOR_LINE = "random-init"         # the time plan's line for the anchors' evaluations
# The paper study's corpus: 289 s for its 5 010 task utterances (and the pre-training set).
DATA_SECONDS_PER_UTTERANCE = 0.058


def train_seconds(options: Dict) -> float:
    """A training job: steps x (batch x crop) x rate; a chain, each of its stages."""
    from ..pretrain.distillation import parse_chain

    settings = train_settings(options)
    audio = settings.batch_size * settings.crop_seconds / REFERENCE_AUDIO_SECONDS
    mixed = settings.autocast is not None
    emulated = mixed and not cpu_has_bfloat16()
    if settings.teacher is None:
        return RUN_START_SECONDS + settings.steps * audio * PRETRAIN_STEP_SECONDS / (
            AUTOCAST_EMULATED_GAIN if emulated else AUTOCAST_PRETRAIN_GAIN if mixed else 1.0)
    stages = len(parse_chain(settings.chain)) - 1 if settings.chain else 1
    return stages * (RUN_START_SECONDS + settings.steps * audio * DISTILL_STEP_SECONDS / (
        AUTOCAST_EMULATED_GAIN if emulated else AUTOCAST_DISTILL_GAIN if mixed else 1.0))


def evaluation_rates(task: str) -> tuple:
    """(seconds per utterance, seconds per head step) of ``task``'s evaluations."""
    if task in MEASURED_EVALUATIONS:
        return MEASURED_EVALUATIONS[task]
    seconds, utterances, steps = SMALL_EVALUATIONS.get(task, SMALL_EVALUATIONS["asr"])
    return 0.5 * seconds / utterances, 0.5 * seconds / steps


def task_utterances(job_sizes, task_size: str, task: str) -> int:
    """Utterances (all splits) of ``task``'s corpus at the study's sizes."""
    from ..data.synth_plan import CorpusSizes, resolve_sizes
    from ..superb.tasks import get_task

    sizes = job_sizes if isinstance(job_sizes, CorpusSizes) else resolve_sizes(job_sizes)
    if task == "ks":
        return len(KS_CLASSES) * (sizes.ks_per_class_train + sizes.ks_per_class_valid
                     + sizes.ks_per_class_test)
    if task == "sid":
        return sizes.sid_speakers * (sizes.sid_train_per_speaker + sizes.sid_valid_per_speaker
                                     + sizes.sid_test_per_speaker)
    if task == "pr":
        return sizes.pr_train + sizes.pr_valid + sizes.pr_test
    return sum(get_task(task).sizes.get(task_size, {}).values())


def job_seconds(job, preset) -> float:
    """The estimated seconds of one job (2 CPU cores)."""
    from ..data.synth_plan import resolve_sizes
    from ..superb.task_table import SUPERB_TASKS

    if job.kind == "data":
        utterances = sum(task_utterances(preset.corpus, preset.task_size, task)
                         for task in job.options["tasks"] if task != PRETRAIN)
        return DATA_SECONDS_PER_UTTERANCE * utterances
    if job.kind == "train":
        seconds = train_seconds(job.options)
        if job.options.get("iteration") == 2:
            sizes = resolve_sizes(preset.corpus)
            seconds += ITERATION_2_TARGET_SECONDS_PER_UTTERANCE * (sizes.pretrain_train
                                                                   + sizes.pretrain_valid)
        return seconds
    if job.kind == "superb":
        steps = job.options.get("steps") or SUPERB_TASKS[job.task].steps
        if job.options.get("extracted_by") or reused_from(job):
            return 0.0             # trained in that job, on its extraction; or copied
        per_utterance, per_step = evaluation_rates(job.task)
        if is_binarized_variant(job.variant) and job.options.get("deployed"):
            per_utterance *= DEPLOYED_EXTRACTION_FACTORS.get(job.task,
                                                             DEPLOYED_EXTRACTION_FACTOR)
        elif is_binarized_variant(job.variant):
            per_utterance *= BINARIZED_EXTRACTION_FACTORS.get(job.task,
                                                              BINARIZED_EXTRACTION_FACTOR)
        seconds = (per_utterance * task_utterances(preset.corpus, preset.task_size, job.task)
                   + per_step * steps)
        if job.options.get("also_without_state0"):
            seconds += per_step * steps     # the second head
        return seconds
    return PROPAGATION_SECONDS


def job_class(key: str) -> str:
    """A job's key with its seed left out: the jobs expected to take the same time."""
    return re.sub(rf"/{re.escape(SEED_PREFIX)}\d+(/|$)", rf"/{SEED_PREFIX}*\1", key)


# The cores a study's rates are of, and the threads an entry logged before the log kept
# them ran on.
PLANNING_CORES = 2
# A job had its cores to itself when its CPU time is at least this share of threads x wall
# time. The fast-route study's log (2 cores, 2026-12-05) splits at it: jobs alone on the
# machine 1.89-1.99 CPU seconds a second, jobs beside test suites or paused 0.82-1.72.
CORE_SHARE = 0.9


def had_the_cores(entry: Mapping) -> Optional[bool]:
    """Whether a logged job had its threads' cores to itself (its wall time is then its
    cost); None for an entry that logged no CPU time, or no time at all (a copy)."""
    seconds = float(entry.get("seconds", 0.0))
    if "cpu_seconds" not in entry or seconds <= 0:
        return None
    threads = int(entry.get("threads", PLANNING_CORES))
    return float(entry["cpu_seconds"]) >= CORE_SHARE * threads * seconds


def logged_seconds(entries: Iterable[Mapping], cpu: Optional[str] = None) -> Dict[str, float]:
    """Median logged seconds of each job class in a study's log entries: of the jobs that
    had the cores to themselves (:func:`had_the_cores`) on ``cpu`` (the entries' ``cpu``,
    the machine's model name) where the class has any, else of those on any CPU, else of
    all. A study resumed on another machine plans at that machine's pace once it has timed
    a job of the class (on 2 cores an AMD EPYC took 2.2-2.8x an Intel Xeon's time for the
    same deployed evaluations). The median, as a job resumed from a checkpoint logs only
    its last part, and one run beside other work logs more than its share. A job logged
    twice ran again (an evaluation recorded at another head budget): its latest entry
    replaces the earlier one. An anchor copied from another study (``--anchors-from``) took
    no evaluation's time and prices nothing."""
    latest = {entry["job"]: entry for entry in entries if REUSED_FROM not in entry}
    times: Dict[str, List[float]] = {}
    alone: Dict[str, List[float]] = {}
    here: Dict[str, List[float]] = {}
    for job, entry in latest.items():
        kind, seconds = job_class(job), float(entry["seconds"])
        times.setdefault(kind, []).append(seconds)
        if had_the_cores(entry):
            alone.setdefault(kind, []).append(seconds)
            if cpu is not None and entry.get("cpu") == cpu:
                here.setdefault(kind, []).append(seconds)
    return {kind: statistics.median(here.get(kind) or alone.get(kind) or seconds)
            for kind, seconds in times.items()}


def time_plan(jobs: Sequence, preset, states: Sequence[str], done: str,
              logged: Optional[Mapping[str, float]] = None) -> List[str]:
    """Lines of the time plan: estimated hours by kind of job, of all and of what is left
    (the gated evaluations apart). ``logged`` (:func:`logged_seconds`) prices the job
    classes the study has already run; the planning rates price the rest."""
    logged = logged or {}
    total: Dict[str, float] = {}
    left: Dict[str, float] = {}
    gated = 0.0
    from_log = 0
    for job, state in zip(jobs, states):
        # A job whose heads another's extraction trains is priced in that one (a log of
        # the study from before the two shared it would price its extraction again).
        seconds = (None if job.options.get("extracted_by") or reused_from(job)
                   else logged.get(job_class(job.key)))
        from_log += seconds is not None
        seconds = job_seconds(job, preset) if seconds is None else seconds
        if job.options.get("gate"):
            gated += seconds
            continue
        # The random-init anchors' evaluations apart from the trained upstreams'.
        kind = ANCHOR_LINE if job.options.get("random_init") else job.kind
        total[kind] = total.get(kind, 0.0) + seconds
        if state != done:
            left[kind] = left.get(kind, 0.0) + seconds
    source = (f"{from_log} of {len(jobs)} jobs at the median time this study logged for the "
              f"same job at other seeds, the rest " if from_log else "")
    lines = [f"estimated CPU time on 2 cores ({source}at planning rates measured on the paper "
             f"and small studies' jobs; see models/trainer/study/budget.py):"]
    for kind in total:
        lines.append(f"  {kind:<12} {total[kind] / 3600:6.2f} h in all, "
                     f"{left.get(kind, 0.0) / 3600:6.2f} h left")
    lines.append(f"  {'total':<12} {sum(total.values()) / 3600:6.2f} h in all, "
                 f"{sum(left.values()) / 3600:6.2f} h left (resumable: rerun the same command)")
    copied = sum(1 for job in jobs if reused_from(job))
    if copied:
        lines.append(f"  ({copied} anchor evaluations are copies from --anchors-from's study, "
                     f"priced at 0)")
    if gated:
        lines.append(f"  and {gated / 3600:.2f} h more for the gated tasks' students and "
                     f"anchors, if their teachers beat chance")
    return lines
