"""The SUPERB tasks the bundled evaluation runs: what each measures and how its head trains.

One row per task; everything else (the command line's choices, help text and defaults,
the metric in ``results.json``) reads this table.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict


@dataclass(frozen=True)
class SuperbTask:
    key: str               # the name on the command line and in results.json
    title: str
    metric: str            # "accuracy" (higher is better) or "per" (phoneme error rate)
    frame_level: bool      # CTC on every frame; else one class per utterance (mean pooling)
    steps: int             # head training defaults (s3prl: up to 200k steps at lr 1e-4)
    batch_size: int
    lr: float

    @property
    def higher_is_better(self) -> bool:
        return self.metric == "accuracy"


SUPERB_TASKS: Dict[str, SuperbTask] = {task.key: task for task in (
    SuperbTask("ks", "keyword spotting", "accuracy", frame_level=False,
               steps=1500, batch_size=32, lr=1e-3),
    SuperbTask("sid", "speaker identification", "accuracy", frame_level=False,
               steps=1500, batch_size=32, lr=1e-3),
    SuperbTask("pr", "phoneme recognition", "per", frame_level=True,
               steps=1500, batch_size=16, lr=1e-2),
)}


def per_task_defaults(name: str) -> str:
    """How a head default reads in help text: ``"ks/sid 32, pr 16"`` (``"1500"`` if equal)."""
    groups: Dict[str, list] = {}
    for task in SUPERB_TASKS.values():
        groups.setdefault(f"{getattr(task, name):g}", []).append(task.key)
    if len(groups) == 1:
        return next(iter(groups))
    return ", ".join(f"{'/'.join(keys)} {value}" for value, keys in groups.items())
