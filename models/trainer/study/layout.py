"""The study folder's layout: where each run, evaluation and record of a study lives. Names
and paths only, so that the plan, the runner, the report and the benchmarks that read a
study (or a report's copy of it) agree on them."""
from __future__ import annotations

from pathlib import Path
from typing import List, Tuple

STUDY_FILE = "study.json"
STUDY_LOG = "study.log.jsonl"
# Written instead of results.json where a gated task's teacher did not beat chance.
GATED_FILE = "gated.json"
# The study folder's layout: RUNS/M/seed-S/ holds one seed's runs of model M (a folder per
# training variant), its propagation measure and EVALUATIONS/V/T/, the heads of variant V's
# upstream on task T. Job keys follow it: train/M/seed-S/V, superb/M/seed-S/V/T.
RUNS = "runs"
SEED_PREFIX = "seed-"
EVALUATIONS = "superb"
PROPAGATION_FILE = "propagation.json"    # runs/M/seed-S/propagation.json


def seed_folder(study: Path, model: str, seed: int) -> Path:
    """STUDY/runs/M/seed-S: the runs and evaluations of one model and seed."""
    return Path(study) / RUNS / model / f"{SEED_PREFIX}{seed}"


def seed_folders(model_runs: Path) -> List[Tuple[int, Path]]:
    """(seed, folder) of every ``seed-S`` folder in ``model_runs`` (a study's RUNS/M, or a
    report's copy of that layout), by seed."""
    found = []
    for path in Path(model_runs).glob(f"{SEED_PREFIX}*"):
        number = path.name[len(SEED_PREFIX):]
        if number.isdigit() and path.is_dir():
            found.append((int(number), path))
    return sorted(found)


def evaluation_folder(seed_runs: Path, variant: str, task: str) -> Path:
    """The heads of ``variant``'s upstream on ``task``, in a :func:`seed_folder`."""
    return seed_runs / EVALUATIONS / variant / task
