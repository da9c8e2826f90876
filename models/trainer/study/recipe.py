"""What ``study.json`` records as a study's recipe, and when two records are one study.

The recipe is fixed for a study (a rerun with other settings is refused, and a committed
copy of another recipe is refused too, never replaced), except that a study may grow by
variants.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional

from ..data import OWN_DATA
from ..pretrain.settings import STUDENT_SCALES_TEACHER
from .plan import check_study, data_folder, model_overrides, study_seeds
from .presets import PRESETS, ablation_types, sensitivity_names, variants
from .settings import StudySettings

# The recipe's name for the corpus a study makes in its own folder (OUT/data): the same
# corpus wherever the folder lives, so a study moved or rebuilt elsewhere is the same
# recipe; a given --data corpus is recorded by its absolute path.
OWN_CORPUS = f"OUT/{OWN_DATA}"


def recorded_data(study: Path, data: Path) -> str:
    """The recipe's ``data`` of a study in folder ``study`` reading corpus ``data``."""
    own = (Path(study) / OWN_DATA).resolve()
    return OWN_CORPUS if Path(data).resolve() == own else str(Path(data).resolve())


def recorded_folder(study: Path, data: Optional[str]) -> Path:
    """The corpus folder that the recipe's ``data`` names for a study in folder ``study``
    (the inverse of :func:`recorded_data`)."""
    return Path(study) / OWN_DATA if data in (None, OWN_CORPUS) else Path(data)


def recipe_in(study: Path, recipe: Dict[str, Any]) -> Dict[str, Any]:
    """``recipe`` as the study in folder ``study`` records it now: a record written before
    OWN_CORPUS named its own corpus by the folder's absolute path."""
    data = recipe.get("data")
    if data and data != OWN_CORPUS:
        recipe = {**recipe, "data": recorded_data(study, Path(data))}
    return recipe


def study_record(settings: StudySettings) -> Dict[str, Any]:
    """What ``study.json`` records: the recipe (fixed for the study, but for new variants'
    chains) and its axes. ``recipe.chains`` is the one record of the precisions each
    training variant ran, teacher first (``bq``: ``--chain``); the report reads it."""
    names, tasks = check_study(settings)
    return {"recipe": {"preset": settings.preset, "steps": settings.steps,
                       "teachers": PRESETS[settings.preset].teachers,
                       "distill_steps": settings.distill_steps,
                       "superb_steps": settings.superb_steps,
                       "overrides": model_overrides(settings),
                       "data": recorded_data(Path(settings.out), data_folder(settings)),
                       "chains": {v.name: v.stages for v in variants(settings)},
                       # only when set, so the recipes of studies from before it still match
                       **({"deployed": True} if settings.deployed else {}),
                       **({"autocast": settings.autocast} if settings.autocast else {}),
                       # 'teacher' unrecorded: the recipes from before the option meant it
                       **({"student_scales": settings.student_scales}
                          if settings.student_scales != STUDENT_SCALES_TEACHER else {})},
            "models": names, "seeds": study_seeds(settings), "tasks": tasks,
            "scratch": settings.scratch, "ablations": ablation_types(settings),
            "sensitivity": sensitivity_names(settings)}


def recipe_changes(old: Dict[str, Any], new: Dict[str, Any]) -> List[str]:
    """The keys in which recipe ``new`` differs from ``old``: a study that grows by a
    variant adds its chain (not a change); another chain for a variant is one."""
    changed = sorted(key for key in set(old) | set(new)
                     if key != "chains" and old.get(key) != new.get(key))
    before, after = old.get("chains") or {}, new.get("chains") or {}
    if any(before[name] != after[name] for name in set(before) & set(after)):
        changed.append("chains")
    return changed


def extend_record(old: Dict[str, Any], record: Dict[str, Any]) -> Dict[str, Any]:
    """``record`` grown by what ``old`` (a record of the same recipe: the caller checks
    :func:`recipe_changes`) has besides: its models, tasks, variants and chains, the
    larger of the two seed counts."""
    merged = {**record, "recipe": {**record["recipe"], "chains": {
        **old.get("recipe", {}).get("chains", {}), **record["recipe"].get("chains", {})}}}
    for axis in ("models", "tasks", "ablations", "sensitivity"):
        merged[axis] = list(dict.fromkeys(old.get(axis, []) + record.get(axis, [])))
    merged["seeds"] = max(int(old.get("seeds", 0)), int(record.get("seeds", 0)))
    merged["scratch"] = bool(old.get("scratch")) or bool(record.get("scratch"))
    return merged
