"""The CPU time a study's jobs are expected to take, for ``study --dry-run``'s time plan.

Rates are of the zoo's -s models on 2 CPU cores, taken from the job log of the committed
small study (``reports/study/summary.json``, ``job_seconds``: 250-step ``--tiny`` runs
of 8 x 2 s crops; SUPERB heads at the ``small`` corpus sizes), medians over both
encoders and seeds. That log was written on a shared machine, so these are planning
figures, not measurements: the lead re-measures on a quiet machine. A quick timing taken
while this was written (6 helpers on 2 cores, load 8-13) could not finish one step of
each model in 3 minutes, so the log is the better source.

Training time scales with steps x batch x crop seconds (a distillation step also runs
the teacher's forward); an evaluation's time is taken as half feature extraction, which
grows with the task's utterances, and half head training, which grows with its steps.
The random-init anchors' evaluations (no training) are priced as any evaluation and shown
on their own line.
"""
from __future__ import annotations

from typing import Dict, List, Sequence

# Seconds per training step of 16 s of audio (8 x 2 s crops), 2 CPU cores.
PRETRAIN_STEP_SECONDS = 1.1     # fp runs: 266 s (conformer-s), 299 s (sparseformer-dn-s)
DISTILL_STEP_SECONDS = 1.6      # bq runs: 320 s and 718 s (the latter on a busier machine)
REFERENCE_AUDIO_SECONDS = 16.0

# A task's evaluation in the small study: (median seconds, utterances of its corpus at
# the small size, head steps it trained).
SMALL_EVALUATIONS = {"ks": (10.9, 600, 1500), "sid": (17.0, 160, 1500),
                     "pr": (21.2, 160, 500), "sd": (84.0, 180, 500),
                     "asr": (59.8, 330, 500)}
PROPAGATION_SECONDS = 6.0
RANDOM_INIT = "random-init"         # the time plan's line for the anchors' evaluations
DATA_SECONDS_PER_UTTERANCE = 0.02     # the small corpus: 26 s for about 1 300 utterances


def train_seconds(options: Dict) -> float:
    """A training job: steps x (batch x crop) x rate; a chain, each of its stages."""
    from ..pretrain.distillation import parse_chain
    from ..pretrain.settings import resolve_settings

    given = {k: v for k, v in options.items() if k not in ("model", "out", "overrides")}
    settings = resolve_settings(options["model"], options["out"], **given)
    audio = settings.batch_size * settings.crop_seconds / REFERENCE_AUDIO_SECONDS
    if settings.teacher is None:
        return settings.steps * audio * PRETRAIN_STEP_SECONDS
    stages = len(parse_chain(settings.chain)) - 1 if settings.chain else 1
    return stages * settings.steps * audio * DISTILL_STEP_SECONDS


def superb_seconds(task: str, utterances: int, steps: int) -> float:
    seconds, small_utterances, small_steps = SMALL_EVALUATIONS.get(task, SMALL_EVALUATIONS["pr"])
    return seconds * (0.5 * utterances / small_utterances + 0.5 * steps / small_steps)


def task_utterances(job_sizes, task_size: str, task: str) -> int:
    """Utterances (all splits) of ``task``'s corpus at the study's sizes."""
    from ..data.synth_plan import CorpusSizes, resolve_sizes
    from ..superb.tasks import get_task

    sizes = job_sizes if isinstance(job_sizes, CorpusSizes) else resolve_sizes(job_sizes)
    if task == "ks":
        return 12 * (sizes.ks_per_class_train + sizes.ks_per_class_valid
                     + sizes.ks_per_class_test)
    if task == "sid":
        return sizes.sid_speakers * (sizes.sid_train_per_speaker + sizes.sid_valid_per_speaker
                                     + sizes.sid_test_per_speaker)
    if task == "pr":
        return sizes.pr_train + sizes.pr_valid + sizes.pr_test
    return sum(get_task(task).sizes.get(task_size, {}).values())


def job_seconds(job, preset) -> float:
    """The estimated seconds of one job (2 CPU cores)."""
    from ..superb.task_table import SUPERB_TASKS

    if job.kind == "data":
        utterances = sum(task_utterances(preset.corpus, preset.task_size, task)
                         for task in job.options["tasks"] if task != "pretrain")
        return DATA_SECONDS_PER_UTTERANCE * utterances
    if job.kind == "train":
        return train_seconds(job.options)
    if job.kind == "superb":
        steps = job.options.get("steps") or SUPERB_TASKS[job.task].steps
        return superb_seconds(job.task, task_utterances(preset.corpus, preset.task_size,
                                                        job.task), steps)
    return PROPAGATION_SECONDS


def time_plan(jobs: Sequence, preset, states: Sequence[str], done: str) -> List[str]:
    """Lines of the time plan: estimated hours by kind of job, of all and of what is left
    (the gated evaluations apart)."""
    total: Dict[str, float] = {}
    left: Dict[str, float] = {}
    gated = 0.0
    for job, state in zip(jobs, states):
        seconds = job_seconds(job, preset)
        if job.options.get("gate"):
            gated += seconds
            continue
        # The random-init anchors' evaluations apart from the trained upstreams'.
        kind = RANDOM_INIT if job.options.get("random_init") else job.kind
        total[kind] = total.get(kind, 0.0) + seconds
        if state != done:
            left[kind] = left.get(kind, 0.0) + seconds
    lines = ["estimated CPU time on 2 cores (planning rates from the committed small "
             "study's job log; see models/trainer/study/budget.py):"]
    for kind in total:
        lines.append(f"  {kind:<12} {total[kind] / 3600:6.2f} h in all, "
                     f"{left.get(kind, 0.0) / 3600:6.2f} h left")
    lines.append(f"  {'total':<12} {sum(total.values()) / 3600:6.2f} h in all, "
                 f"{sum(left.values()) / 3600:6.2f} h left (resumable: rerun the same command)")
    if gated:
        lines.append(f"  and {gated / 3600:.2f} h more for the gated tasks' students and "
                     f"anchors, if their teachers beat chance")
    return lines
