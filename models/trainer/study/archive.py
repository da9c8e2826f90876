"""The committed copy of a study: the small files every table of ``reports/study/`` needs.

``study --report`` copies, from the study folder into the reports folder and under the same
relative paths, ``study.json``, ``study.log.jsonl`` and, for every model and seed,
``runs/M/seed-S/superb/V/T/results.json`` and ``per_item.json`` (each evaluation's scores
and per-test-item shares) or ``gated.json`` (an evaluation its gate left out),
``runs/M/seed-S/propagation.json``, the ``runs/M/seed-S/V/chain.json`` of a
multi-distillation run and the ``runs/M/seed-S/V/metadata.json`` of a single-stage run
(the teacher's masked prediction against its unit prior); and the corpus's
``corpus.json`` into the reports folder itself (what the corpus was synthesized with, which
a later study's ``--anchors-from`` checks its own against); never weights, heads or
corpora. The report is then built from that copy alone, so whatever it says can be
recomputed from the repository. Copies merge (a shard's report adds its runs to those
already there); a copy whose recipe differs from the study's is another study's and is
refused with one line, never replaced.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from ..data import CORPUS_FILE, PRETRAIN
from ..distill.chain import CHAIN_FILE
from ..errors import DataError
from ..fileio import (
    check_output_folder,
    read_json,
    read_log,
    write_json,
    write_log,
    write_text_atomic,
)
from ..pretrain.checkpoint import METADATA, is_finished, read_metadata
from ..superb.settings import PER_ITEM, RESULTS
from .anchors import corpus_mismatches
from .layout import (
    EVALUATIONS,
    GATED_FILE,
    PROPAGATION_FILE,
    RUNS,
    SEED_PREFIX,
    STUDY_FILE,
    STUDY_LOG,
)
from .recipe import extend_record, recipe_changes, recipe_in, recorded_folder

# Relative to the study folder.
SEEDS = f"{RUNS}/*/{SEED_PREFIX}*"
PATTERNS = (f"{SEEDS}/{EVALUATIONS}/*/*/{RESULTS}", f"{SEEDS}/{EVALUATIONS}/*/*/{PER_ITEM}",
            f"{SEEDS}/{EVALUATIONS}/*/*/{GATED_FILE}", f"{SEEDS}/{PROPAGATION_FILE}",
            f"{SEEDS}/*/{CHAIN_FILE}", f"{SEEDS}/*/{METADATA}")


def committed_files(study: Path) -> List[Path]:
    """The files of ``study`` that the committed copy holds, relative to it (a training
    run's record only once the run has finished: a running one's changes under it)."""
    return sorted({path.relative_to(study) for pattern in PATTERNS
                   for path in study.glob(pattern)
                   if path.is_file() and not _unfinished_run(path)})


def _unfinished_run(path: Path) -> bool:
    return (path.name == METADATA
            and not is_finished(read_metadata(path.parent)))


def archive_study(study: Path, reports: Path, echo: Callable[[str], None] = print) -> Path:
    """The folder to report from: ``reports`` after copying ``study``'s small files into
    it, or ``reports`` alone (its committed copy) when ``study`` holds no study record."""
    study, reports = Path(study), Path(reports)
    if not (study / STUDY_FILE).is_file():
        if (reports / STUDY_FILE).is_file():
            echo(f"{study / STUDY_FILE}: no study here; rebuilding from the runs committed "
                 f"in {reports}")
            return reports
        raise DataError(f"{study / STUDY_FILE}: no such study record, and {reports} holds "
                        f"no committed runs (run 'profile-encoder study --out {study}' first)")
    if study.resolve() == reports.resolve():
        return reports
    check_output_folder(reports)        # before a file is copied
    record = read_json(study / STUDY_FILE, "study record")
    record["recipe"] = recipe_in(study, record.get("recipe", {}))
    if (reports / STUDY_FILE).is_file():
        # Never replaced unasked: the default --reports is the project's committed report.
        old = read_json(reports / STUDY_FILE, "study record")
        changed = recipe_changes(old.get("recipe", {}), record.get("recipe", {}))
        if changed:
            raise DataError(f"--reports {reports}: it holds the report of another recipe "
                            f"({', '.join(changed)} differ); give this study's report "
                            f"another folder (--reports DIR), or delete that one first")
        record = extend_record(old, record)
    for relative in committed_files(study):
        target = reports / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, (study / relative).read_text(encoding="utf-8"))
    _merge_log(study / STUDY_LOG, reports / STUDY_LOG)
    corpus = recorded_folder(study, record["recipe"].get("data")) / CORPUS_FILE
    if not corpus.is_file():       # a --data folder's description, written by the study
        corpus = study / CORPUS_FILE
    if corpus.is_file():     # what a later study's --anchors-from compares its corpus with
        write_text_atomic(reports / CORPUS_FILE, corpus.read_text(encoding="utf-8"))
    write_json(reports / STUDY_FILE, record, sort_keys=False)
    return reports


def merged_log(source: Path, target: Path) -> List[Dict[str, Any]]:
    """One entry per job: the target's, then the source's (a rerun job's newest time)."""
    return list({entry["job"]: entry for path in (target, source)
                 for entry in read_log(path)}.values())


def _merge_log(source: Path, target: Path, into: Optional[Path] = None) -> None:
    """:func:`merged_log` written to ``into`` (default ``target``)."""
    entries = merged_log(source, target)
    if entries:
        write_log(into or target, entries)


def check_restore_source(reports: Path, recipe: Dict[str, Any]) -> None:
    """A one-line :class:`DataError` unless ``reports`` is a committed copy of a study
    (what ``--restore-from`` names) made with ``recipe`` (a study's ``recipe``, as
    :func:`.recipe.study_record` makes it; new variants' chains are no change)."""
    reports = Path(reports)
    if not (reports / STUDY_FILE).is_file() or not (reports / RUNS).is_dir():
        raise DataError(f"--restore-from {reports}: no committed study there (no "
                        f"{STUDY_FILE} and runs/; 'study --report' writes them)")
    if not (reports / CORPUS_FILE).is_file():
        raise DataError(f"--restore-from {reports}: its corpus description {CORPUS_FILE} is "
                        f"missing (a study writes one: its synthesized corpus's, or its "
                        f"--data folder's description), so its runs cannot be checked "
                        f"against this corpus")
    theirs = read_json(reports / STUDY_FILE, "study record")
    changed = recipe_changes(recipe_in(reports, theirs.get("recipe", {})), recipe)
    if changed:
        raise DataError(f"--restore-from {reports}: its runs were made with other settings "
                        f"than this study's ({', '.join(changed)})")


def files_to_restore(reports: Path, study: Path, recipe: Dict[str, Any],
                     corpus: Dict[str, Any], tasks: List[str]) -> List[Path]:
    """The committed files of ``reports`` that :func:`restore_study` copies into ``study``
    (relative paths): each evaluation or run record only where ``study`` has no folder for
    it (a run trained again there is its own). One :class:`DataError` line instead when
    the committed runs were made with another ``recipe`` (:func:`check_restore_source`)
    or on another corpus than ``corpus`` (the description of ``study``'s) for
    pre-training or any of ``tasks``."""
    reports, study = Path(reports), Path(study)
    check_restore_source(reports, recipe)
    found = corpus_mismatches([PRETRAIN, *tasks], corpus,
                              read_json(reports / CORPUS_FILE, "corpus description"))
    if found:
        raise DataError(f"--restore-from {reports}: its runs were evaluated on another "
                        f"corpus ({'; '.join(found)})")
    return sorted(relative for relative in committed_files(reports)
                  if not (study / relative).exists()
                  and (relative.name == PROPAGATION_FILE
                       or not (study / relative.parent).exists()))


def restore_study(reports: Path, study: Path, recipe: Dict[str, Any],
                  corpus: Dict[str, Any], tasks: List[str],
                  echo: Callable[[str], None] = print) -> int:
    """The reverse of :func:`archive_study`, for a study whose folder was lost (a fresh
    machine): copy :func:`files_to_restore` into ``study`` and merge the logs (``study``'s
    lines win); returns how many files it copied. Their training runs come back as
    records without weights (:data:`.plan.RECORDED`). Nothing is copied when the
    committed runs do not fit (one :class:`DataError` line)."""
    reports, study = Path(reports), Path(study)
    absent = files_to_restore(reports, study, recipe, corpus, tasks)
    for relative in absent:
        target = study / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, (reports / relative).read_text(encoding="utf-8"))
    _merge_log(study / STUDY_LOG, reports / STUDY_LOG, into=study / STUDY_LOG)
    if (study / STUDY_FILE).is_file():      # the copy's models, seeds, tasks and variants too
        write_json(study / STUDY_FILE, extend_record(
            read_json(reports / STUDY_FILE, "study record"),
            read_json(study / STUDY_FILE, "study record")), sort_keys=False)
    echo(f"restored {len(absent)} files of finished runs from {reports} into {study}")
    return len(absent)
