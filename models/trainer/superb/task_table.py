"""The SUPERB tasks the bundled evaluation runs: what each measures and how its head trains.

One row per task; everything else (the command line's choices, help text and defaults,
the metric and title in ``results.json``, the registry of :mod:`models.trainer.superb.tasks`)
reads this table. Every task has a module in :mod:`models.trainer.superb.tasks`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

# Metrics where lower is better (error rates); every other metric is a score.
ERROR_METRICS = ("per", "wer", "der", "eer")


@dataclass(frozen=True)
class SuperbTask:
    key: str               # the name on the command line and in results.json
    title: str
    metric: str
    frame_level: bool      # the head sees every frame; else per-layer means (mean pooling)
    steps: int             # head training defaults (s3prl: up to 200k steps at lr 1e-4)
    batch_size: int
    lr: float
    trains: bool = True            # False: nothing is trained (QbE picks a layer)
    unit: str = "fraction (0-1)"

    @property
    def higher_is_better(self) -> bool:
        return self.metric not in ERROR_METRICS


SUPERB_TASKS: Dict[str, SuperbTask] = {task.key: task for task in (
    SuperbTask("ks", "keyword spotting", "accuracy", frame_level=False,
               steps=1500, batch_size=32, lr=1e-3),
    SuperbTask("sid", "speaker identification", "accuracy", frame_level=False,
               steps=1500, batch_size=32, lr=1e-3),
    SuperbTask("pr", "phoneme recognition", "per", frame_level=True,
               steps=1500, batch_size=16, lr=1e-2),
    SuperbTask("asr", "automatic speech recognition", "wer", frame_level=True,
               steps=2000, batch_size=16, lr=2e-3),
    SuperbTask("sd", "speaker diarization", "der", frame_level=True,
               steps=1500, batch_size=8, lr=2e-3),
    SuperbTask("asv", "automatic speaker verification", "eer", frame_level=False,
               steps=1500, batch_size=32, lr=1e-3),
    SuperbTask("ic", "intent classification", "accuracy", frame_level=False,
               steps=1500, batch_size=32, lr=1e-3),
    SuperbTask("sf", "slot filling", "slot_type_f1", frame_level=True,
               steps=2000, batch_size=16, lr=2e-3),
    SuperbTask("qbe", "query by example spoken term detection", "mtwv", frame_level=True,
               steps=1500, batch_size=32, lr=1e-3, trains=False,
               unit="term-weighted value (1 = perfect, 0 = nothing detected)"),
    SuperbTask("er", "prosody-class recognition, a proxy for SUPERB's emotion recognition",
               "accuracy", frame_level=False, steps=1500, batch_size=32, lr=1e-3),
)}


# The head settings that make an evaluation's budget, as results.json's settings name them.
HEAD_BUDGET_KEYS = ("steps", "batch_size", "lr")


def head_budget(task: str, steps: Optional[int] = None, batch_size: Optional[int] = None,
                lr: Optional[float] = None) -> Dict[str, Any]:
    """The head settings an evaluation of ``task`` runs with: each one given, else the
    task's default. ``results.json`` records them under ``settings``; a study compares the
    two to tell a finished evaluation from one run at another budget."""
    row = SUPERB_TASKS[task]
    given = dict(zip(HEAD_BUDGET_KEYS, (steps, batch_size, lr)))
    return {key: given[key] or getattr(row, key) for key in HEAD_BUDGET_KEYS}


def per_task_defaults(name: str) -> str:
    """How a head default reads in help text: ``"ks/sid 32, pr 16"`` (``"1500"`` if equal).
    Tasks that train nothing are left out."""
    groups: Dict[str, list] = {}
    for task in SUPERB_TASKS.values():
        if task.trains:
            groups.setdefault(f"{getattr(task, name):g}", []).append(task.key)
    if len(groups) == 1:
        return next(iter(groups))
    return ", ".join(f"{'/'.join(keys)} {value}" for value, keys in groups.items())
