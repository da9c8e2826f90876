"""The jobs of a study, their dependencies, their state on disk and their shards.

A study is a matrix: zoo models x variants x seeds x SUPERB tasks. The variants of a model
M are ``fp`` (M pre-trained with HuBERT's loss), ``bq`` (``bq-M`` distilled from that ``fp``
run, BiT), optionally ``bq-scratch`` (``bq-M`` pre-trained without a teacher, the control)
and ``bq-<type>`` ablations (``bq-M`` binarizing one module type only, distilled like
``bq``). Jobs form a DAG::

    data -> train fp -> train bq, bq-<type> -> superb (each variant x task)
                                            -> propagation (fp against each student)
    data -> train bq-scratch -> superb

Layout under the study folder: ``data/`` (unless --data), ``runs/M/seed-S/<variant>/``
(train run folders), ``runs/M/seed-S/superb/<variant>/<task>/`` (``results.json``,
``per_item.json``), ``runs/M/seed-S/propagation.json``.

A job is done when its output says so: a run folder's ``metadata.json`` has
``finished: true``; an evaluation folder has ``results.json`` (written last); the corpus
has ``corpus.json`` (written last). Anything else reruns (a training run from its newest
checkpoint).

Shards: all jobs of one (model, seed) chain go to one shard, chain k (in sorted order) to
shard k mod N + 1, so a job's dependencies are in its own shard; the only exception is
the synthesized corpus, made by shard 1 and waited for by the others (with --data there is
none).
"""
from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from profiler.option_values import split_list

from ...quantization import MODULE_TYPES
from ..data.synth_plan import PRESETS as CORPUS_PRESETS
from ..data.synth_plan import CorpusSizes
from ..distill.chain import BINARIZED_PREFIX
from ..errors import DataError
from ..options import check_bounds
from ..pretrain.settings import PretrainSettings
from ..superb.settings import SuperbSettings
from ..superb.task_table import SUPERB_TASKS
from .settings import StudySettings

STUDY_FILE = "study.json"
STUDY_LOG = "study.log.jsonl"
FINISHED, RESUMABLE, TO_DO = "done", "resume", "to do"


@dataclass(frozen=True)
class Preset:
    """Budgets of a study: pre-training/distillation settings, SUPERB head settings, model
    overrides and the sizes of the synthesized corpus (``corpus``: pre-training, KS, SID and
    PR; ``task_size``: the other tasks' size name, ASR, SD...)."""

    train: Dict[str, Any]
    superb: Dict[str, Any]
    overrides: Dict[str, Any]
    corpus: Union[str, CorpusSizes]
    task_size: str
    superb_by_task: Dict[str, Dict[str, Any]] = field(default_factory=dict)


PRESETS = {
    # `train --tiny` (250 steps of 8 x 2 s crops) and the corpus it synthesizes.
    # The sequence heads get 500 steps (their defaults: 2 000 for ASR, 1 500 for the others):
    # on 2 CPU cores an ASR head takes about 13 minutes at 2 000 steps, and a study of two
    # encoders runs 4 of them per seed.
    "small": Preset(train={"tiny": True}, superb={}, overrides={}, corpus=CORPUS_PRESETS["small"],
                    task_size="small",
                    superb_by_task={task: {"steps": 500} for task in ("asr", "sd", "pr", "sf")}),
    # tests/train_fixtures.py's one narrow layer: seconds per job.
    "smoke": Preset(train=dict(steps=6, batch_size=2, crop_seconds=0.5, clusters=8,
                               kmeans_max_frames=4000, warmup_steps=2, save_every=3,
                               log_every=1, valid_every=3),
                    superb=dict(steps=20, eval_every=10),
                    overrides=dict(layers=1, dim=64, heads=2, sparse_block=8,
                                   sparse_summary=2),
                    corpus="tiny", task_size="tiny"),
    # HuBERT Base's first iteration; a real corpus is expected (--data).
    "full": Preset(train={}, superb={}, overrides={}, corpus="default", task_size="default"),
}


# The from-scratch control: bq-M pre-trained with HuBERT's loss, no teacher.
SCRATCH_VARIANT = "bq-scratch"


@dataclass(frozen=True)
class Variant:
    name: str                  # fp, bq, bq-scratch, bq-attention, ...
    student: bool              # built from the bq- name
    teacher: Optional[str]     # the variant it is distilled from
    modules: Optional[str]     # quantize_modules of an ablation


def variants(settings: StudySettings) -> List[Variant]:
    chosen = [Variant("fp", False, None, None), Variant("bq", True, "fp", None)]
    if settings.scratch:
        chosen.append(Variant(SCRATCH_VARIANT, True, None, None))
    chosen += [Variant(f"bq-{kind}", True, "fp", kind) for kind in ablation_types(settings)]
    return chosen


def ablation_types(settings: StudySettings) -> List[str]:
    text = settings.ablations.strip().lower()
    if text in ("", "none"):
        return []
    if text == "all":
        return list(MODULE_TYPES)
    chosen = [part.replace("-", "_") for part in split_list(text)]
    unknown = [part for part in chosen if part not in MODULE_TYPES]
    if unknown:
        raise DataError(f"--ablations: unknown module type {unknown[0]!r}; choose from "
                        f"{', '.join(MODULE_TYPES)}, all or none")
    return list(dict.fromkeys(chosen))


@dataclass(frozen=True)
class Job:
    key: str                                   # unique, e.g. "train/conformer-s/seed-0/bq"
    kind: str                                  # data | train | superb | propagation
    path: Path                                 # run/evaluation folder or output file
    chain: Optional[Tuple[str, int]]           # (model, seed); None for the corpus
    needs: Tuple[str, ...] = ()
    variant: Optional[str] = None
    task: Optional[str] = None
    options: Dict[str, Any] = field(default_factory=dict, compare=False)


def parse_shard(text: str) -> Tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text or "")
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise DataError(f"--shard {text!r}: expected I/N with 1 <= I <= N, e.g. 2/4")
    return int(match.group(1)), int(match.group(2))


def parse_names(text: str, what: str) -> List[str]:
    names = split_list(text or "")
    if not names:
        raise DataError(f"--{what}: expected a comma-separated list, got {text!r}")
    return list(dict.fromkeys(names))


def check_study(settings: StudySettings) -> Tuple[List[str], List[str]]:
    """(models, tasks), or a one-line :class:`DataError` for settings that cannot run."""
    import models as zoo

    check_bounds(settings)
    parse_shard(settings.shard)
    if settings.preset not in PRESETS:
        raise DataError(f"unknown preset {settings.preset!r}; choose one of "
                        f"{', '.join(PRESETS)}")
    names = parse_names(settings.models, "models")
    known = zoo.names()
    for name in names:
        if name.startswith(BINARIZED_PREFIX) and name in known:
            raise DataError(f"--models {name}: name the full-precision model "
                            f"({name[len(BINARIZED_PREFIX):]}); the study makes its bq- version")
        if name not in known:
            raise DataError(f"unknown model {name!r}; known models: "
                            f"{', '.join(n for n in known if not n.startswith(BINARIZED_PREFIX))}")
        try:
            zoo.config(name, **model_overrides(settings))
        except (ValueError, TypeError) as error:
            raise DataError(str(error)) from None
    tasks = parse_names(settings.tasks, "tasks")
    for task in tasks:
        if task not in SUPERB_TASKS:
            raise DataError(f"unknown task {task!r}; choose from {', '.join(SUPERB_TASKS)}")
    ablation_types(settings)
    return names, tasks


def model_overrides(settings: StudySettings) -> Dict[str, Any]:
    return {**PRESETS[settings.preset].overrides, **settings.overrides}


def data_folder(settings: StudySettings) -> Path:
    return Path(settings.data) if settings.data else Path(settings.out) / "data"


def seed_folder(settings: StudySettings, model: str, seed: int) -> Path:
    return Path(settings.out) / "runs" / model / f"seed-{seed}"


def build_plan(settings: StudySettings) -> List[Job]:
    """Every job of the study, dependencies before dependents."""
    import models as zoo

    names, tasks = check_study(settings)
    preset = PRESETS[settings.preset]
    data = data_folder(settings)
    jobs: List[Job] = []
    root: Tuple[str, ...] = ()
    if settings.data is None:
        jobs.append(Job("data", "data", data, None,
                        options={"tasks": ["pretrain", *tasks], "sizes": preset.corpus,
                                 "task_size": preset.task_size}))
        root = ("data",)
    common = {"data": str(data), "progress": False, "device": settings.device,
              "deepspeed": settings.deepspeed}
    for model in names:
        # A convolution-only ablation of an encoder without convolutions binarizes nothing.
        has_convolution = zoo.config(model, **model_overrides(settings)).family.has_convolution
        for seed in range(settings.seeds):
            folder = seed_folder(settings, model, seed)
            trained = {}
            for variant in variants(settings):
                if variant.modules == "convolution" and not has_convolution:
                    continue       # nothing to binarize
                key = f"train/{model}/seed-{seed}/{variant.name}"
                overrides = dict(model_overrides(settings))
                if variant.modules:
                    overrides["quantize_modules"] = variant.modules
                options = {**preset.train, **common, "seed": seed, "overrides": overrides,
                           "model": BINARIZED_PREFIX + model if variant.student else model,
                           "out": str(folder / variant.name)}
                if settings.steps:
                    options["steps"] = settings.steps
                needs = root
                if variant.name != "fp":
                    distill = settings.distill_steps or settings.steps
                    if distill:
                        options["steps"] = distill
                if variant.teacher:
                    options["teacher"] = str(folder / variant.teacher)
                    needs = (trained[variant.teacher],)
                jobs.append(Job(key, "train", folder / variant.name, (model, seed), needs,
                                variant.name, options=options))
                trained[variant.name] = key
            for variant, train_key in trained.items():
                for task in tasks:
                    options = {**preset.superb, **preset.superb_by_task.get(task, {}),
                               "task": task, "upstream": str(folder / variant),
                               "out": str(folder / "superb" / variant / task), "seed": seed,
                               "progress": False, "device": settings.device,
                               "data": str(data)}
                    if settings.superb_steps:
                        options["steps"] = settings.superb_steps
                    jobs.append(Job(f"superb/{model}/seed-{seed}/{variant}/{task}", "superb",
                                    folder / "superb" / variant / task, (model, seed),
                                    (train_key,), variant, task, options))
            # Only students of the fp run are comparable with it layer by layer.
            students = [v.name for v in variants(settings) if v.teacher and v.name in trained]
            jobs.append(Job(f"propagation/{model}/seed-{seed}", "propagation",
                            folder / "propagation.json", (model, seed),
                            tuple(trained[v] for v in ["fp", *students]),
                            options={"teacher": str(folder / "fp"), "students":
                                     {v: str(folder / v) for v in students},
                                     "utterances": settings.propagation_utterances,
                                     "device": settings.device}))
    return jobs


def shard_of(job: Job, jobs: Sequence[Job], shards: int) -> int:
    """The shard (1-based) that runs ``job``: chains in sorted (model, seed) order, dealt
    out round-robin; the corpus belongs to shard 1."""
    if job.chain is None:
        return 1
    chains = sorted({j.chain for j in jobs if j.chain is not None})
    return chains.index(job.chain) % shards + 1


def shard_jobs(jobs: Sequence[Job], shard: str) -> List[Job]:
    index, count = parse_shard(shard)
    return [job for job in jobs if shard_of(job, jobs, count) == index]


# ------------------------------------------------------------------------------- state
def job_state(job: Job) -> str:
    """:data:`FINISHED`, :data:`RESUMABLE` (a training run with a checkpoint) or
    :data:`TO_DO`."""
    if job.kind == "data":
        return FINISHED if (job.path / "corpus.json").is_file() and not missing_tasks(job) \
            else TO_DO
    if job.kind == "train":
        metadata = job.path / "metadata.json"
        if metadata.is_file():
            try:
                if json.loads(metadata.read_text(encoding="utf-8")).get("finished"):
                    return FINISHED
            except ValueError:
                pass
        from ..pretrain.checkpoint import latest_checkpoint

        return RESUMABLE if latest_checkpoint(job.path) is not None else TO_DO
    if job.kind == "superb":
        return FINISHED if (job.path / "results.json").is_file() else TO_DO
    if job.kind == "propagation" and job.path.is_file():
        # A study that grows by an ablation measures its new students too.
        try:
            measured = json.loads(job.path.read_text(encoding="utf-8")).get("students", {})
        except ValueError:
            return TO_DO
        return FINISHED if set(job.options["students"]) <= set(measured) else TO_DO
    return FINISHED if job.path.is_file() else TO_DO


def corpus_tasks(job: Job) -> List[str]:
    """The corpora the study's corpus job makes: pre-training and every evaluated task,
    once for all the evaluations that read them."""
    from ..data.synth_plan import TASKS
    from ..superb.task_table import SUPERB_TASKS

    return [task for task in job.options["tasks"] if task in TASKS or task in SUPERB_TASKS]


def missing_tasks(job: Job) -> List[str]:
    """The corpus job's tasks without their folder yet (a folder appears only once
    complete)."""
    return [task for task in corpus_tasks(job) if not (job.path / task).is_dir()]


# ------------------------------------------------------------------------ command lines
def command_words(job: Job) -> List[str]:
    """The ``profile-encoder`` words that run ``job`` (train and superb jobs)."""
    settings = PretrainSettings if job.kind == "train" else SuperbSettings
    words = ["train" if job.kind == "train" else "superb"]
    for item in dataclasses.fields(settings):
        value = job.options.get(item.name)
        meta = item.metadata
        if value is None or not meta["command_line"]:
            continue
        flag = meta["flag"] or "--" + item.name.replace("_", "-")
        if isinstance(value, dict):
            for key, entry in value.items():
                words += ["--set", f"{key}={entry}"]
        elif isinstance(value, bool):
            if value != item.default:
                words.append(flag)
        else:
            words += [flag, str(value)]
    return words


def study_record(settings: StudySettings) -> Dict[str, Any]:
    """What ``study.json`` records: the recipe (fixed for the study) and its axes."""
    names, tasks = check_study(settings)
    return {"recipe": {"preset": settings.preset, "steps": settings.steps,
                       "distill_steps": settings.distill_steps,
                       "superb_steps": settings.superb_steps,
                       "overrides": model_overrides(settings),
                       "data": str(data_folder(settings).resolve())},
            "models": names, "seeds": settings.seeds, "tasks": tasks,
            "scratch": settings.scratch, "ablations": ablation_types(settings)}
