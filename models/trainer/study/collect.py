"""What a study's folders hold: its record, every evaluation, per-item scores, propagation.

Everything is read as it is found, so a partial study reports what it has: the models,
seeds, variants and tasks are the record's and any others found under ``runs/`` (the
committed copy in ``reports/study/`` has the same layout, see :mod:`.archive`). An
evaluation whose ``results.json`` says ``upstream.kind: random-init`` is an anchor (a
random-weights upstream of the model's shape), whatever its variant folder is called (the
study's are ``random`` and ``bq-random``). An evaluation folder with ``gated.json`` and no
``results.json`` is *gated* (its gate left it out: the teacher did not beat chance), not
missing.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from profiler.option_values import split_list

from ...constants import is_binarized
from ..distill.chain import CHAIN_FILE
from ..errors import DataError
from ..fileio import read_json, read_log
from ..pretrain.checkpoint import METADATA, is_finished, read_metadata
from ..pretrain.settings import FEATURE_TARGETS, MFCC_TARGETS, PHONE_TARGETS
from ..superb.settings import PER_ITEM, RANDOM_INIT, RESULTS
from ..superb.task_table import HEAD_BUDGET_KEYS
from .layout import (
    EVALUATIONS,
    GATED_FILE,
    PROPAGATION_FILE,
    RUNS,
    STUDY_FILE,
    STUDY_LOG,
    evaluation_folder,
    seed_folder,
    seed_folders,
)
from .presets import RANDOM_VARIANTS, SCRATCH_VARIANT, sensitivity_variants
from .settings import BQ_VARIANT, FP_VARIANT

Cell = Tuple[str, str, str]          # (model, variant, task)
PHONE_TASK = "pr"                    # the task whose labels phone-target teachers have seen


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
    # CPU time of the jobs that logged it (studies before it was logged have none).
    job_cpu_seconds: Dict[str, float] = field(default_factory=dict)
    # Each job's latest log entry, whole (threads, a copy's source...).
    job_log: Dict[str, Dict[str, Any]] = field(default_factory=dict)
    chains: Dict[str, Dict[int, List[str]]] = field(default_factory=dict)  # variant -> seed
    gated: Dict[Cell, Dict[int, str]] = field(default_factory=dict)  # seed -> the reason
    # (model, variant) -> seed -> a run's masked prediction on validation (final_valid)
    pretraining: Dict[Tuple[str, str], Dict[int, Dict[str, Any]]] = field(
        default_factory=dict)

    @property
    def models(self) -> List[str]:
        return list(self.record.get("models", []))

    @property
    def tasks(self) -> List[str]:
        return list(self.record.get("tasks", []))

    def has_convolution(self, model: str) -> bool:
        """Whether ``model``, built with the study's config overrides (``--set``), has
        convolution modules, as the plan decided which variants it gets."""
        import models

        overrides = self.record.get("recipe", {}).get("overrides") or {}
        return models.config(model, **overrides).family.has_convolution

    def evaluated_seeds(self, model: str, variant: str) -> List[int]:
        """The seeds at which ``model``'s ``variant`` has an evaluation on any task."""
        return sorted({seed for (m, v, _), by_seed in self.results.items()
                       if (m, v) == (model, variant) for seed in by_seed})

    def values(self, cell: Cell) -> List[float]:
        return [r["value"] for _, r in sorted(self.results.get(cell, {}).items())]

    def is_random_init(self, variant: str) -> bool:
        """Whether ``variant``'s evaluations are of random-weights upstreams (anchors)."""
        return variant in RANDOM_VARIANTS or any(r.get("upstream", {}).get("kind") == RANDOM_INIT
                   for (_, name, _), by_seed in self.results.items() if name == variant
                   for r in by_seed.values())

    def random_variant(self, model: str, binarized: bool = False) -> Optional[str]:
        """The anchor variant of ``model``'s shape: its full-precision random-init upstream
        (or, ``binarized``, the bq- one), None when the study has none."""
        for (name, variant, _), by_seed in self.results.items():
            for result in by_seed.values():
                upstream = result.get("upstream", {})
                if (name == model and upstream.get("kind") == RANDOM_INIT
                        and is_binarized(str(upstream.get("model", ""))) == binarized):
                    return variant
        return None

    def teacher_targets(self, model: str) -> List[str]:
        """What ``model``'s fp teachers predicted in pre-training (mfcc, phones, features),
        as their archived runs say; empty when none is archived."""
        by_seed = self.pretraining.get((model, FP_VARIANT), {})
        return sorted({run["targets"] for run in by_seed.values()})

    def phone_supervised(self, task: str) -> List[str]:
        """The models whose fp teacher was pre-trained on phone labels, when ``task`` is
        phoneme recognition (whose labels those are): empty otherwise."""
        if task != PHONE_TASK:
            return []
        return [model for model in self.models if PHONE_TARGETS in self.teacher_targets(model)]

    def head_budgets(self) -> Dict[str, List[Dict[str, Any]]]:
        """Each task's head settings (steps, batch size, learning rate) as its evaluations
        recorded them, one entry per distinct budget: more than one means the task's rows
        mix heads trained for different lengths."""
        budgets: Dict[str, List[Dict[str, Any]]] = {}
        for (_, _, task), by_seed in self.results.items():
            for result in by_seed.values():
                ran = result.get("settings", {})
                budget = {key: ran.get(key) for key in HEAD_BUDGET_KEYS}
                if budget not in budgets.setdefault(task, []):
                    budgets[task].append(budget)
        return {task: budgets[task] for task in self.tasks if task in budgets}

    def task_info(self, task: str) -> Optional[Dict[str, Any]]:
        """``metric``/``higher_is_better``/``chance`` of any evaluation of ``task``."""
        for (model, variant, name), by_seed in self.results.items():
            if name == task and by_seed:
                return next(iter(by_seed.values()))
        return None


def variant_names(record: Dict[str, Any]) -> List[str]:
    """The variants a study record implies: fp, bq, the control, the ablations, the
    sensitivity variants and the random-init anchors."""
    names = [FP_VARIANT, BQ_VARIANT] + ([SCRATCH_VARIANT] if record.get("scratch") else [])
    names += [f"{BQ_VARIANT}-{kind}" for kind in record.get("ablations", [])]
    return names + sensitivity_variants(record.get("sensitivity", [])) + list(RANDOM_VARIANTS)


def _found(folder: Path, pattern: str) -> List[str]:
    return sorted(path.name for path in folder.glob(pattern) if path.is_dir())


def load_study(folder: Path) -> Study:
    folder = Path(folder)
    path = folder / STUDY_FILE
    if not path.is_file():
        raise DataError(f"{path}: no such study record (run 'profile-encoder study --out "
                        f"{folder}' first)")
    record = read_json(path, "study record")
    runs = folder / RUNS
    models = list(dict.fromkeys(record.get("models", []) + _found(runs, "*")))
    seeds = sorted({*range(int(record.get("seeds", 0))), *(
        seed for model in models for seed, _ in seed_folders(runs / model))})
    variants = variant_names(record)
    tasks = list(record.get("tasks", []))
    for model in models:
        for seed in seeds:
            evaluations = seed_folder(folder, model, seed) / EVALUATIONS
            for variant in _found(evaluations, "*"):
                variants = list(dict.fromkeys(variants + [variant]))
                tasks = list(dict.fromkeys(tasks + _found(evaluations / variant, "*")))
    study = Study(folder, {**record, "models": models, "tasks": tasks}, variants)
    for model in models:
        for seed in seeds:
            base = seed_folder(folder, model, seed)
            for variant in variants:
                for task in tasks:
                    _read_evaluation(study, evaluation_folder(base, variant, task),
                                     (model, variant, task), seed)
                _read_chain(study, base / variant / CHAIN_FILE, variant, seed)
            for run in _found(base, "*"):      # every run: fp-it1 is no variant of heads
                _read_pretraining(study, base / run / METADATA, (model, run), seed)
            propagation = base / PROPAGATION_FILE
            if propagation.is_file():
                study.propagation.setdefault(model, {})[seed] = json.loads(
                    propagation.read_text(encoding="utf-8"))
    for entry in read_log(folder / STUDY_LOG):
        study.job_log[entry["job"]] = entry
        study.job_seconds[entry["job"]] = float(entry["seconds"])
        if "cpu_seconds" in entry:
            study.job_cpu_seconds[entry["job"]] = float(entry["cpu_seconds"])
    return study


def _read_chain(study: Study, path: Path, variant: str, seed: int) -> None:
    if path.is_file():
        chain = read_json(path, "distillation chain").get("chain")
        if chain:
            study.chains.setdefault(variant, {})[seed] = [str(stage) for stage in chain]


def _read_pretraining(study: Study, path: Path, key: Tuple[str, str], seed: int) -> None:
    """A finished run's validation record, with the targets it learned."""
    if not path.is_file():
        return
    metadata = read_metadata(path.parent)
    valid = metadata.get("final_valid") or {}
    if is_finished(metadata) and "acc_over_prior" in valid:
        recorded, settings = metadata.get("targets") or {}, metadata.get("settings") or {}
        if 2 in (recorded.get("iteration"), settings.get("iteration")):
            targets = FEATURE_TARGETS          # HuBERT's iteration 2, however it was asked
        else:
            # features:RUN:LAYER names a folder of the machine it ran on: the kind is enough
            targets = str(recorded.get("targets") or settings.get("targets", MFCC_TARGETS))
        study.pretraining.setdefault(key, {})[seed] = {**valid,
                                                       "targets": targets.split(":")[0]}


def chain_of(study: Study, variant: str) -> Optional[List[str]]:
    """The precision chain ``variant`` was distilled through, from the first record that
    has it: the study record's ``recipe.chains[variant]``, a run's ``chain.json``, an
    evaluation's ``chain`` key; None when none does (also when seeds disagree)."""
    recorded = study.record.get("recipe", {}).get("chains", {})
    if isinstance(recorded, dict) and recorded.get(variant):
        chain = recorded[variant]
        # a list, or its text: "W32A32,W1A1" as given, or "W32A32 -> W1A1" as shown
        return list(chain) if isinstance(chain, (list, tuple)) else split_list(
            str(chain).replace("->", ","))
    found = {tuple(chain) for chain in study.chains.get(variant, {}).values()}
    found |= {tuple(r["chain"]) for (_, name, _), by_seed in study.results.items()
              if name == variant for r in by_seed.values() if r.get("chain")}
    return list(found.pop()) if len(found) == 1 else None


def read_per_item(folder: Path) -> Tuple[List[str], np.ndarray, np.ndarray]:
    """An evaluation's ``per_item.json``: its test items, numerators and denominators."""
    record = read_json(folder / PER_ITEM, "per-item scores")
    return (list(record["items"]), np.asarray(record["numerators"], dtype=np.float64),
            np.asarray(record["denominators"], dtype=np.float64))


def _read_evaluation(study: Study, folder: Path, cell: Cell, seed: int) -> None:
    if not (folder / RESULTS).is_file():
        if (folder / GATED_FILE).is_file():
            study.gated.setdefault(cell, {})[seed] = str(read_json(
                folder / GATED_FILE, "gated evaluation").get("reason", ""))
        return
    study.results.setdefault(cell, {})[seed] = read_json(folder / RESULTS, "results")
    if (folder / PER_ITEM).is_file():
        study.items.setdefault(cell, {})[seed] = read_per_item(folder)


def paired_seeds(study: Study, first: Cell, second: Cell) -> List[int]:
    """Seeds with per-item scores of both cells (:func:`shared_item_count` checks that
    they score the same items)."""
    return sorted(set(study.items.get(first, {})) & set(study.items.get(second, {})))


def shared_item_count(study: Study, runs: List[Tuple[Cell, int]]) -> int:
    """The number of test items every one of ``runs`` ((cell, seed) pairs of one
    difference) scores. The bootstrap draws the items once for all of them (every seed and
    encoder is scored on the study's one test set), so a run that scores other items, or
    the same ones in another order, is refused rather than left out."""
    (cell, seed), expected = runs[0], study.items[runs[0][0]][runs[0][1]][0]
    for other, other_seed in runs[1:]:
        found = study.items[other][other_seed][0]
        if found != expected:
            raise DataError(
                f"{other[0]} {other[1]} seed {other_seed} scores other {other[2]} test items "
                f"than {cell[0]} {cell[1]} seed {seed} ({len(found)} against {len(expected)}, "
                "or another order): every run of a study must score its one test set")
    return len(expected)
