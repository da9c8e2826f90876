"""The jobs of a study, their dependencies and their state on disk.

A study is a matrix: zoo models x variants x seeds x SUPERB tasks; the variants and the
budgets are in :mod:`.presets`. Jobs form a DAG::

    data [-> train fp-it1] -> train fp -> train bq (chain), bq-<type>, bq-single... -> superb
                                            -> propagation (fp against each student)
    data -> train bq-scratch -> superb
    data -> superb random, bq-random (random-init anchors of M's and bq-M's shape)

Layout under the study folder: ``data/`` (unless --data), ``runs/M/seed-S/<variant>/``
(train run folders), ``runs/M/seed-S/superb/<variant>/<task>/`` (``results.json``,
``per_item.json``), ``runs/M/seed-S/propagation.json``.

A job is done when its output says so: a run folder's ``metadata.json`` has
``finished: true`` (a chain: its last stage's); an evaluation folder has ``results.json``
(written last) or, for a gated task whose teacher did not beat chance, ``gated.json``; the
corpus has ``corpus.json`` (written last). Anything else reruns (a training run from its
newest checkpoint).

Which shard runs a job and in what order: :mod:`.order`.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from profiler.option_values import split_list

from ...constants import BINARIZED_PREFIX, float_name, is_binarized
from ...quantization import W1A1
from ..data import CORPUS_FILE, OWN_DATA, PRETRAIN
from ..distill.chain import CHAIN_FILE, stage_folder
from ..errors import DataError
from ..options import check_bounds, option_flag
from ..pretrain.distillation import parse_chain
from ..pretrain.settings import PHONE_TARGETS, PretrainSettings
from ..superb.settings import ALL_STATES, RESULTS, WITHOUT_STATE0, SuperbSettings
from ..superb.task_table import HEAD_BUDGET_KEYS, SUPERB_TASKS, head_budget
from .job import Job
from .layout import (
    GATED_FILE,
    PROPAGATION_FILE,
    SEED_PREFIX,
    evaluation_folder,
    seed_folder,
)
from .order import parse_shard
from .presets import (
    ITERATION_1_VARIANT,
    PHONE_TEACHERS,
    PRESETS,
    RANDOM_VARIANTS,
    Preset,
    Variant,
    ablation_types,
    evaluated_variants,
    preset_tasks,
    sensitivity_names,
    variants,
)
from .restored import study_file
from .settings import FP_VARIANT, StudySettings

# Options of an evaluation job that are the study's, not the evaluation's: the chain its
# upstream ran, the teacher evaluation that gates it, the variant of the heads on states
# 1..L it also trains (``also_without_state0``), and, on that variant's own job, the job
# whose extraction it shares (it runs only if that job did not write it); on an anchor
# that --anchors-from copies, the evaluation folder it copies and that study's corpus.json.
REUSED_ANCHOR, REUSED_ANCHOR_CORPUS = "reuse", "reuse_corpus"
STUDY_OPTIONS = ("chain", "gate", "paired_variant", "extracted_by", REUSED_ANCHOR,
                 REUSED_ANCHOR_CORPUS)
FINISHED, RESUMABLE, TO_DO = "done", "resume", "to do"
# A training run of which the study folder holds the record (metadata.json, chain.json)
# but not the weights: a study restored from its committed copy (``--restore-from``). It
# is trained again only if an unfinished job reads it.
RECORDED = "record"


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
        if is_binarized(name) and name in known:
            raise DataError(f"--models {name}: name the full-precision model "
                            f"({float_name(name)}); the study makes its bq- version")
        if name not in known:
            raise DataError(f"unknown model {name!r}; known models: "
                            f"{', '.join(n for n in known if not is_binarized(n))}")
        try:
            zoo.config(name, **model_overrides(settings))
        except (ValueError, TypeError) as error:
            raise DataError(str(error)) from None
    tasks = parse_names(study_tasks(settings), "tasks")
    for task in tasks:
        if task not in SUPERB_TASKS:
            raise DataError(f"unknown task {task!r}; choose from {', '.join(SUPERB_TASKS)}")
    ablation_types(settings)
    sensitivity_names(settings)
    stages = parse_chain(settings.chain)
    if stages[0].quantized or stages[-1] != W1A1:
        raise DataError(f"--chain {settings.chain!r}: the bq variant's chain runs from the "
                        f"full-precision teacher (W32A32) down to W1A1")
    return names, tasks


def check_study_paths(settings: StudySettings) -> None:
    """The folders and files a study names, checked before it writes anything (its record
    included) and in its dry run: OUT can be a folder, a given corpus and DeepSpeed config
    exist. Each training job would find a bad config only after the corpus was made."""
    from ..data.corpora import existing_folder
    from ..fileio import check_output_folder

    check_output_folder(settings.out)
    if settings.data:
        existing_folder(settings.data, "data")
    if settings.deepspeed:
        from ..pretrain.run_setup import read_deepspeed_config

        read_deepspeed_config(settings.deepspeed)


def study_seeds(settings: StudySettings) -> int:
    return settings.seeds or PRESETS[settings.preset].seeds


def study_tasks(settings: StudySettings) -> str:
    return settings.tasks if settings.tasks is not None else preset_tasks(PRESETS[settings.preset])


def model_overrides(settings: StudySettings) -> Dict[str, Any]:
    return {**PRESETS[settings.preset].overrides, **settings.overrides}


def data_folder(settings: StudySettings) -> Path:
    return Path(settings.data) if settings.data else Path(settings.out) / OWN_DATA


def trained_run(folder: Path, variant: Variant) -> Path:
    """The run folder a variant's training leaves: its own folder, or for a chain the
    last stage's (``bq/stage-3-W1A1``), which the heads and the propagation read."""
    return run_folder(Job("", "train", folder, None, options={"chain": variant.chain}))


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
                        options={"tasks": [PRETRAIN, *tasks], "sizes": preset.corpus,
                                 "task_size": preset.task_size, "synth": preset.synth}))
        root = ("data",)
    common = {"data": str(data), "progress": False, "device": settings.device,
              "deepspeed": settings.deepspeed, "autocast": settings.autocast}
    for model in names:
        has_convolution = zoo.config(model, **model_overrides(settings)).family.has_convolution
        for seed in range(study_seeds(settings)):
            folder = seed_folder(Path(settings.out), model, seed)
            trained: Dict[str, str] = {}
            runs: Dict[str, Variant] = {}
            for variant in variants(settings):
                if variant.needs_convolution and not has_convolution:
                    continue       # nothing to binarize, or the same model as bq
                jobs.append(train_job(settings, preset, common, root, model, seed, folder,
                                      variant, trained))
                trained[variant.name] = jobs[-1].key
                runs[variant.name] = variant
            evaluate = {"preset": preset, "tasks": tasks, "model": model, "seed": seed,
                        "folder": folder, "data": data}
            chosen = evaluated_variants(settings, list(trained))
            # Heads on states 1..L of an upstream whose heads on 0..L run anyway share its
            # extraction: that job trains both, and theirs is done when it has.
            paired = {upstream: name for name, upstream, hidden in chosen
                      if hidden == WITHOUT_STATE0 and (upstream, upstream, ALL_STATES) in chosen}
            for name, upstream, hidden in chosen:
                variant = runs[upstream]
                shared = hidden == WITHOUT_STATE0 and upstream in paired
                jobs += superb_jobs(settings, evaluate, name, (trained[upstream],),
                                    {"upstream": str(trained_run(folder / upstream, variant)),
                                     **({} if hidden == ALL_STATES else {"hidden_states": hidden}),
                                     **deployed_option(settings, variant.student)},
                                    variant.stages,
                                    paired=paired.get(upstream) if hidden == ALL_STATES else None,
                                    extracted_by=upstream if shared else None)
            for name, binarized in RANDOM_VARIANTS.items():
                jobs += superb_jobs(settings, evaluate, name, root, {
                    "random_init": (BINARIZED_PREFIX if binarized else "") + model,
                    "overrides": model_overrides(settings),
                    **deployed_option(settings, binarized)}, None)
            # Only students of the fp run are comparable with it layer by layer.
            students = [v for v in runs.values() if v.teacher]
            jobs.append(Job(f"propagation/{model}/{SEED_PREFIX}{seed}", "propagation",
                            folder / PROPAGATION_FILE, (model, seed),
                            tuple(trained[v] for v in [FP_VARIANT, *(s.name for s in students)]),
                            options={"teacher": str(folder / FP_VARIANT), "students":
                                     {v.name: str(trained_run(folder / v.name, v))
                                      for v in students},
                                     "utterances": settings.propagation_utterances,
                                     "device": settings.device,
                                     **deployed_option(settings, True)}))
    return jobs


def deployed_option(settings: StudySettings, binarized: bool) -> Dict[str, Any]:
    """The evaluation options that score a binarized upstream deployed (``--deployed``):
    on the CPU, where the packed kernels run, whatever device the study trains on."""
    return {"deployed": True, "device": "cpu"} if settings.deployed and binarized else {}


def superb_jobs(settings: StudySettings, evaluate: Dict[str, Any], name: str,
                needs: Tuple[str, ...], upstream: Dict[str, Any],
                chain: Optional[List[str]], *, paired: Optional[str] = None,
                extracted_by: Optional[str] = None) -> List[Job]:
    """The evaluations of one variant ``name`` of a (model, seed) on every task: heads on
    ``upstream`` (a run folder, or ``random_init`` with its overrides), after ``needs``. A
    gated task's evaluations other than the fp teacher's wait for, and are gated by, it.
    ``paired``: the variant whose heads on states 1..L each job also trains, from its own
    extraction; ``extracted_by``: the variant whose job of the same task does that for
    this one (so this one waits for it, and runs only if it did not)."""
    preset, model, seed, folder = (evaluate[k] for k in ("preset", "model", "seed", "folder"))
    jobs = []
    for task in evaluate["tasks"]:
        options = {**preset.superb, **preset.superb_by_task.get(task, {}), "task": task,
                   "out": str(evaluation_folder(folder, name, task)), "seed": seed,
                   "progress": False, "device": settings.device,
                   "data": str(evaluate["data"]), **upstream}
        if settings.superb_steps:
            options["steps"] = settings.superb_steps
        if paired is not None and shares_extraction(preset, task, name):
            options.update(also_without_state0=str(evaluation_folder(folder, paired, task)),
                           paired_variant=paired)
        gate, waits = None, needs
        if extracted_by is not None and shares_extraction(preset, task, extracted_by):
            options["extracted_by"] = evaluation_key(model, seed, extracted_by, task)
            waits += (options["extracted_by"],)
        if task in preset.gated and name != FP_VARIANT:
            gate = str(evaluation_folder(folder, FP_VARIANT, task))
            waits += (evaluation_key(model, seed, FP_VARIANT, task),)
        jobs.append(Job(evaluation_key(model, seed, name, task), "superb",
                        evaluation_folder(folder, name, task), (model, seed), waits, name, task,
                        {**options, "chain": chain, "gate": gate}))
    return jobs


def evaluation_key(model: str, seed: int, variant: str, task: str) -> str:
    """The key of the job that evaluates ``variant`` of (``model``, ``seed``) on ``task``."""
    return f"superb/{model}/{SEED_PREFIX}{seed}/{variant}/{task}"


def shares_extraction(preset: Preset, task: str, upstream_variant: str) -> bool:
    """Whether the heads on states 1..L of ``upstream_variant`` are trained by its own job
    of ``task``. Not the fp teacher's on a gated task: its heads are not gated, the 1..L
    ones are (by them)."""
    return not (task in preset.gated and upstream_variant == FP_VARIANT)


def train_job(settings: StudySettings, preset: Preset, common: Dict[str, Any],
              root: Tuple[str, ...], model: str, seed: int, folder: Path, variant: Variant,
              trained: Dict[str, str]) -> Job:
    overrides = {**model_overrides(settings), **variant.model_overrides}
    options = {**preset.train, **common, "seed": seed, "overrides": overrides,
               "model": BINARIZED_PREFIX + model if variant.student else model,
               "out": str(folder / variant.name)}
    if preset.teachers == PHONE_TEACHERS and not variant.teacher:
        options["targets"] = PHONE_TARGETS
    if settings.steps:
        options["steps"] = settings.steps
    needs = root
    if variant.name not in (FP_VARIANT, ITERATION_1_VARIANT):     # the teachers keep their budget
        options.update(preset.distill)
        distill = settings.distill_steps or settings.steps
        if distill:
            options["steps"] = distill
    if variant.units_from:
        # HuBERT's iteration 2; --label-layer's default, half the depth, is the layer.
        options.update(iteration=2, targets_from=str(folder / variant.units_from))
        needs = (trained[variant.units_from],)
    if variant.teacher:
        # A student learns its teacher's units, whatever the teacher was trained on.
        options.pop("targets", None)
        options["teacher"] = str(folder / variant.teacher)
        needs = (trained[variant.teacher],)
    if variant.chain:
        options.update(chain=variant.chain, student_scales=settings.student_scales)
    options.update(variant.train_options)
    return Job(f"train/{model}/{SEED_PREFIX}{seed}/{variant.name}", "train", folder / variant.name,
               (model, seed), needs, variant.name, options=options)


# ------------------------------------------------------------------------------- state
def job_state(job: Job) -> str:
    """:data:`FINISHED`, :data:`RESUMABLE` (a training run with a checkpoint) or
    :data:`TO_DO`."""
    if job.kind == "data":
        return FINISHED if (job.path / CORPUS_FILE).is_file() and not missing_tasks(job) \
            else TO_DO
    if job.kind == "train":
        if job.options.get("chain"):
            return chain_state(job)
        from ..pretrain.checkpoint import METADATA, is_finished, is_run_dir, latest_checkpoint

        metadata = study_file(job.path / METADATA)
        if metadata is not None:
            try:
                if is_finished(json.loads(metadata.read_text(encoding="utf-8"))):
                    return FINISHED if is_run_dir(job.path) else RECORDED
            except ValueError:
                pass
        return RESUMABLE if latest_checkpoint(job.path) is not None else TO_DO
    if job.kind == "superb":
        done = study_file(job.path / GATED_FILE) is not None or evaluated_at_budget(job)
        return FINISHED if done else TO_DO
    measured_file = study_file(job.path)
    if job.kind == "propagation" and measured_file is not None:
        # A study that grows by an ablation measures its new students too.
        try:
            measured = json.loads(measured_file.read_text(encoding="utf-8")).get("students", {})
        except ValueError:
            return TO_DO
        return FINISHED if set(job.options["students"]) <= set(measured) else TO_DO
    return FINISHED if measured_file is not None else TO_DO


def train_settings(options: Dict[str, Any]) -> PretrainSettings:
    """The settings a train job's options resolve to (its preset's batch, crops, steps...)."""
    from ..pretrain.settings import resolve_settings

    given = {k: v for k, v in options.items() if k not in ("model", "out", "overrides")}
    return resolve_settings(options["model"], options["out"], **given)


def run_folder(job: Job) -> Path:
    """The run folder a training job leaves (a chain: its last stage's)."""
    if not job.options.get("chain"):
        return job.path
    stages = parse_chain(job.options["chain"])
    return stage_folder(job.path, len(stages) - 1, stages[-1])


def chain_state(job: Job) -> str:
    """A chain is done when its last stage is; resumable once ``chain.json`` is written and
    a stage has started; only a record with ``chain.json`` alone (a restored study's)."""
    last = Job(job.key, "train", run_folder(job), job.chain)
    if job_state(last) == FINISHED:
        return FINISHED
    if study_file(job.path / CHAIN_FILE) is None:
        return TO_DO
    started = job.path.is_dir() and any(path.is_dir() for path in job.path.iterdir())
    return RESUMABLE if started else RECORDED


def corpus_tasks(job: Job) -> List[str]:
    """The corpora the study's corpus job makes: pre-training and every evaluated task,
    once for all the evaluations that read them."""
    from ..data.synth_plan import TASKS

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
        if value is None or not item.metadata["command_line"]:
            continue
        flag = option_flag(item)
        if isinstance(value, dict):
            for key, entry in value.items():
                words += ["--set", f"{key}={entry}"]
        elif isinstance(value, bool):
            if value != item.default:
                words.append(flag)
        else:
            words += [flag, str(value)]
    return words


def evaluated_at_budget(job: Job) -> bool:
    """Whether evaluation ``job`` has a ``results.json`` whose head ran the budget the job
    asks for; one recorded at another budget (a preset changed mid-study) is run again, so
    no table mixes heads trained for different lengths."""
    path = study_file(job.path / RESULTS)
    if path is None:
        return False
    if not SUPERB_TASKS[job.task].trains:
        return True
    try:
        ran = json.loads(path.read_text(encoding="utf-8")).get("settings")
    except ValueError:
        return False
    if not isinstance(ran, dict):
        return True          # a backend that records no settings: nothing to compare
    return all(ran.get(key) == value for key, value in job_head_budget(job).items())


def job_head_budget(job: Job) -> Dict[str, Any]:
    """The head settings (steps, batch size, lr) evaluation ``job`` runs with."""
    return head_budget(job.task, *(job.options.get(key) for key in HEAD_BUDGET_KEYS))
