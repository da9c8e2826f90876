"""The SUPERB tasks beyond KS, SID and PR, one module each, behind one registry.

Every task module (``asr``, ``sd``, ``asv``, ``ic``, ``sf``, ``qbe``, ``er``) defines
``TASK``, a :class:`models.trainer.tasks.common.Task`: its synthetic data (plans rendered
with espeak-ng, label files and dictionaries), how its folder is read, its head, its
metric with a bootstrap interval over test items, and its chance level.
:mod:`models.trainer.superb` hands these tasks to :func:`run_task`; ``data synth`` hands
them to :func:`models.trainer.tasks.common.synthesize_tasks`.

This module imports nothing heavy: the CLI reads the task names from it.
"""
from __future__ import annotations

import importlib

TASK_NAMES = {
    "asr": "automatic speech recognition",
    "sd": "speaker diarization",
    "asv": "automatic speaker verification",
    "ic": "intent classification",
    "sf": "slot filling",
    "qbe": "query by example spoken term detection",
    "er": "prosody-class recognition (a proxy for SUPERB's emotion recognition)",
}
TASKS = tuple(TASK_NAMES)


def get_task(name: str):
    """The ``Task`` object of a registered task."""
    if name not in TASK_NAMES:
        raise KeyError(name)
    return importlib.import_module(f"{__name__}.{name}").TASK


def run_task(settings) -> dict:
    """Evaluate one upstream on a registered task (see :mod:`models.trainer.tasks.common`)."""
    from .common import run_registered_task

    return run_registered_task(settings)
