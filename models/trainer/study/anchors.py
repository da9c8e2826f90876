"""Random-init anchors copied from an earlier study (``study --anchors-from DIR``).

An anchor's heads train on an upstream with random weights, so its result depends on the
corpus, the head settings, the upstream's shape and the seed, never on how the study
trains: a study that shares those with an earlier one (a sensitivity or autocast study
after the main study) can copy that study's anchors instead of evaluating them again. At
the paper preset they are 4.0 of the 12.1 planned hours. Each copy is checked when its job
runs (the corpus exists by then); one that does not match stops the study with one line,
as other bad input does, and nothing is written for it. One difference is known when the
study is planned and is no mistake: an anchor scored the other way (simulated there,
``--deployed`` here) is not copied but evaluated.

The corpus is compared through its description: a synthesized corpus's ``corpus.json``,
or for a ``--data`` folder without one, a description of its contents that the study
writes to ``OUT/corpus.json`` (:func:`corpus_record`); ``--restore-from`` checks a
committed copy with the same description.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..data import CORPUS_FILE
from ..data.folder_description import describe_folder
from ..errors import DataError
from ..fileio import read_json, staged_folder, write_json, write_text_atomic
from ..superb.settings import PER_ITEM, RANDOM_INIT, RESULTS
from .job import Job
from .layout import STUDY_FILE, evaluation_folder, seed_folder
from .plan import REUSED_ANCHOR, REUSED_ANCHOR_CORPUS, STUDY_OPTIONS, data_folder, job_head_budget
from .presets import RANDOM_VARIANTS
from .recipe import recorded_folder
from .settings import StudySettings

# The copied results.json, and the study log's line of its job, name the evaluation copied.
REUSED_FROM = "reused_from"
# corpus.json's fields that must agree besides the task's own entry (sizes, seed, hours).
CORPUS_IDENTITY = ("format", "espeak_ng", "sample_rate")
# An evaluation's settings that say where or how fast it ran, not what it computed.
RUN_ONLY_SETTINGS = ("device", "progress", "out", "data")


def corpus_record(settings: StudySettings) -> Dict[str, Any]:
    """The description this study's evaluations are checked by: its corpus's corpus.json (a
    synthesized corpus), else, for a ``--data`` folder without one, a description of what
    the folder holds (:func:`..data.folder_description.describe_folder`)."""
    own = data_folder(settings) / CORPUS_FILE
    if own.is_file() or not settings.data:
        return read_json(own, "corpus description")
    return dict(_described(str(Path(settings.data).resolve())))


@functools.lru_cache(maxsize=4)
def _described(folder: str) -> Dict[str, Any]:
    """One description per folder and process: every anchor copied checks against it."""
    return describe_folder(folder)


def corpus_is_known(settings: StudySettings) -> bool:
    """Whether :func:`corpus_record` can answer now (a synthesized corpus once made)."""
    return bool(settings.data) or (data_folder(settings) / CORPUS_FILE).is_file()


def record_corpus(settings: StudySettings) -> None:
    """Write a ``--data`` folder's description to ``OUT/corpus.json`` (afresh each run),
    where a later study's ``--anchors-from`` and the report's copy find it; a synthesized
    corpus has its own."""
    if settings.data and not (Path(settings.data) / CORPUS_FILE).is_file():
        write_json(Path(settings.out) / CORPUS_FILE, corpus_record(settings))


def source_corpus(study: Path) -> Path:
    """The corpus.json an earlier study (or its committed reports folder, which holds a
    copy) evaluated on."""
    copy = study / CORPUS_FILE
    if copy.is_file():
        return copy
    record = read_json(study / STUDY_FILE, "study record")
    return recorded_folder(study, record.get("recipe", {}).get("data")) / CORPUS_FILE


def check_anchor_source(settings: StudySettings) -> Optional[Path]:
    """The corpus description of the study (or reports) folder ``--anchors-from`` names
    (None without the option); a one-line :class:`DataError` unless it is there to
    compare."""
    if not settings.anchors_from:
        return None
    study = Path(settings.anchors_from)
    if not (study / STUDY_FILE).is_file():
        raise DataError(f"--anchors-from {study}: no study there (no {STUDY_FILE})")
    corpus = source_corpus(study)
    if not corpus.is_file():
        raise DataError(f"--anchors-from {study}: its corpus description {corpus} is "
                        f"missing, so its anchors cannot be checked against this corpus")
    return corpus


def mark_reused_anchors(settings: StudySettings, jobs: List[Job],
                        corpus: Optional[Path]) -> None:
    """Give each anchor evaluation that ``--anchors-from`` has a result for the options
    that make its job a checked copy against ``corpus`` (:func:`check_anchor_source`'s).
    A gated task's anchors are left to run: their gate is this study's teacher. So is an
    anchor scored the other way (deployed, or simulated): a ``--deployed`` study after a
    simulated one has its FP anchors to copy but not its BQ ones, which it evaluates."""
    if corpus is None:
        return
    study = Path(settings.anchors_from)
    for job in jobs:
        if job.kind != "superb" or job.variant not in RANDOM_VARIANTS or job.options.get("gate"):
            continue
        model, seed = job.chain
        source = evaluation_folder(seed_folder(study, model, seed), job.variant, job.task)
        if not ((source / RESULTS).is_file() and (source / PER_ITEM).is_file()):
            continue
        results = read_json(source / RESULTS, "anchor evaluation")
        if deployment_mismatch(job, results) is None:
            job.options.update({REUSED_ANCHOR: str(source),
                                REUSED_ANCHOR_CORPUS: str(corpus)})


def deployment_mismatch(job: Job, results: Dict[str, Any]) -> Optional[str]:
    """How the anchor ``results`` recorded was scored unlike ``job`` would score it
    (deployed on packed kernels, or simulated); None when alike."""
    deployed = (results.get("upstream") or {}).get("deployed")
    if bool(deployed) == bool(job.options.get("deployed")):
        return None
    return ("scored deployed there, simulated here" if deployed
            else "scored simulated there, deployed here")


def corpus_mismatches(tasks: List[str], corpus: Dict[str, Any],
                      their_corpus: Dict[str, Any]) -> List[str]:
    """How corpus description ``corpus`` (here) differs from ``their_corpus`` for
    evaluations of ``tasks``: the synthesizer's identity and each task's own entry."""
    found = [f"corpus {key} {their_corpus.get(key)!r}, here {corpus.get(key)!r}"
             for key in CORPUS_IDENTITY if corpus.get(key) != their_corpus.get(key)]
    for task in tasks:
        theirs, mine = (c.get("tasks", {}).get(task) for c in (their_corpus, corpus))
        if theirs is None or theirs != mine:
            found.append(f"the {task} corpus differs (sizes, seed or hours)")
    return found


def mismatches(job: Job, results: Dict[str, Any], corpus: Dict[str, Any],
               their_corpus: Dict[str, Any]) -> List[str]:
    """What differs between the evaluation ``job`` would run on ``corpus`` and the one
    ``results`` recorded on ``their_corpus``; empty when it can be copied."""
    found = corpus_mismatches([job.task], corpus, their_corpus)
    upstream = results.get("upstream") or {}
    wanted = {"kind": RANDOM_INIT, "model": job.options["random_init"],
              "overrides": job.options.get("overrides") or {}, "seed": job.options["seed"]}
    found += [f"upstream {key} {upstream.get(key)!r}, here {value!r}"
              for key, value in wanted.items() if upstream.get(key) != value]
    deployment = deployment_mismatch(job, results)
    if deployment:
        found.append(deployment)
    ran = results.get("settings") or {}
    asked = {key: value for key, value in job.options.items()
             if value is not None and key in ran and key not in RUN_ONLY_SETTINGS
             and key not in STUDY_OPTIONS}
    asked.update(job_head_budget(job))
    found += [f"head {key} {ran.get(key)!r}, here {value!r}"
              for key, value in asked.items() if ran.get(key) != value]
    if not str(ran.get("hidden_states", "0")).startswith("0"):
        found.append(f"heads on hidden states {ran.get('hidden_states')}, here from 0")
    return found


def copy_anchor(job: Job, settings: StudySettings) -> Path:
    """Copy ``job``'s anchor evaluation (results.json with :data:`REUSED_FROM` added, and
    per_item.json) from the earlier study into ``job.path`` after checking that it is the
    evaluation this job would run; returns the source folder."""
    source = Path(job.options[REUSED_ANCHOR])
    results = read_json(source / RESULTS, "anchor evaluation")
    corpus = corpus_record(settings)
    theirs = read_json(job.options[REUSED_ANCHOR_CORPUS], "corpus description")
    found = mismatches(job, results, corpus, theirs)
    if found:
        raise DataError(f"--anchors-from: {source} is not the evaluation {job.key} would run "
                        f"({'; '.join(found)}); drop --anchors-from to evaluate it here")
    per_item = (source / PER_ITEM).read_text(encoding="utf-8")
    with staged_folder(job.path) as staging:
        write_json(staging / RESULTS, {**results, REUSED_FROM: str(source.resolve())})
        write_text_atomic(staging / PER_ITEM, per_item)
    return source


def reused_from(job: Job) -> Optional[str]:
    """The evaluation folder ``job`` copies, if it is a reused anchor."""
    return job.options.get(REUSED_ANCHOR)
