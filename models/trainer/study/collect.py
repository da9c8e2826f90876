"""What a study's folders hold: its record, every evaluation, per-item scores, propagation.

Everything is read as it is found, so a partial study reports what it has.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from ..errors import DataError
from ..pretrain.checkpoint import read_json
from ..superb.runner import PER_ITEM, RESULTS
from .plan import SCRATCH_VARIANT, STUDY_FILE, STUDY_LOG

Cell = Tuple[str, str, str]          # (model, variant, task)


@dataclass
class Study:
    folder: Path
    record: Dict[str, Any]
    variants: List[str]
    results: Dict[Cell, Dict[int, Dict[str, Any]]] = field(default_factory=dict)
    items: Dict[Cell, Dict[int, Tuple[List[str], np.ndarray, np.ndarray]]] = field(
        default_factory=dict)
    propagation: Dict[str, Dict[int, Dict[str, Any]]] = field(default_factory=dict)
    job_seconds: Dict[str, float] = field(default_factory=dict)

    @property
    def models(self) -> List[str]:
        return list(self.record.get("models", []))

    @property
    def tasks(self) -> List[str]:
        return list(self.record.get("tasks", []))

    def values(self, cell: Cell) -> List[float]:
        return [r["value"] for _, r in sorted(self.results.get(cell, {}).items())]

    def task_info(self, task: str) -> Optional[Dict[str, Any]]:
        """``metric``/``higher_is_better``/``chance`` of any evaluation of ``task``."""
        for (model, variant, name), by_seed in self.results.items():
            if name == task and by_seed:
                return next(iter(by_seed.values()))
        return None


def variant_names(record: Dict[str, Any]) -> List[str]:
    names = ["fp", "bq"] + ([SCRATCH_VARIANT] if record.get("scratch") else [])
    return names + [f"bq-{kind}" for kind in record.get("ablations", [])]


def load_study(folder: Path) -> Study:
    folder = Path(folder)
    path = folder / STUDY_FILE
    if not path.is_file():
        raise DataError(f"{path}: no such study record (run 'profile-encoder study --out "
                        f"{folder}' first)")
    record = read_json(path, "study record", error=DataError)
    study = Study(folder, record, variant_names(record))
    for model in study.models:
        for seed in range(int(record.get("seeds", 0))):
            base = folder / "runs" / model / f"seed-{seed}"
            for variant in study.variants:
                for task in study.tasks:
                    _read_evaluation(study, base / "superb" / variant / task,
                                     (model, variant, task), seed)
            propagation = base / "propagation.json"
            if propagation.is_file():
                study.propagation.setdefault(model, {})[seed] = json.loads(
                    propagation.read_text(encoding="utf-8"))
    log = folder / STUDY_LOG
    if log.is_file():
        for line in log.read_text(encoding="utf-8").splitlines():
            if line.strip():
                entry = json.loads(line)
                study.job_seconds[entry["job"]] = float(entry["seconds"])
    return study


def _read_evaluation(study: Study, folder: Path, cell: Cell, seed: int) -> None:
    if not (folder / RESULTS).is_file():
        return
    study.results.setdefault(cell, {})[seed] = read_json(folder / RESULTS, "results",
                                                         error=DataError)
    if (folder / PER_ITEM).is_file():
        record = read_json(folder / PER_ITEM, "per-item scores", error=DataError)
        study.items.setdefault(cell, {})[seed] = (
            list(record["items"]), np.asarray(record["numerators"], dtype=np.float64),
            np.asarray(record["denominators"], dtype=np.float64))


def paired_seeds(study: Study, first: Cell, second: Cell) -> List[int]:
    """Seeds with per-item scores of both cells on the same test items."""
    a, b = study.items.get(first, {}), study.items.get(second, {})
    return [seed for seed in sorted(set(a) & set(b)) if a[seed][0] == b[seed][0]]
