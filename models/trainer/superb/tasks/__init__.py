"""The SUPERB tasks beyond KS, SID and PR, one module each, behind one registry.

The registered tasks are the rows of :data:`models.trainer.superb.task_table.SUPERB_TASKS`
marked ``registered``; that table holds their names, titles, metrics and head defaults.
Every task module (``asr``, ``sd``, ``asv``, ``ic``, ``sf``, ``qbe``, ``er``) defines
``TASK``, a :class:`models.trainer.superb.tasks.common.Task`: its synthetic data (plans rendered
with espeak-ng, label files and dictionaries), how its folder is read, its head, its
metric with a bootstrap interval over test items, and its chance level.
:mod:`models.trainer.superb.runner` hands these tasks to :func:`run_task`; ``data synth`` hands
them to :func:`models.trainer.superb.tasks.common.synthesize_tasks`.

This module imports nothing heavy: the CLI reads the task names from it.
"""
from __future__ import annotations

import importlib

from ..task_table import SUPERB_TASKS

# In table order; the order also seeds each task's synthesis (do not reorder).
TASKS = tuple(key for key, task in SUPERB_TASKS.items() if task.registered)


def get_task(name: str):
    """The ``Task`` object of a registered task."""
    if name not in TASKS:
        raise KeyError(name)
    # Imported on first use: every task module imports torch (about 1.6 s), and the
    # command line reads TASKS from this module to build its parser.
    return importlib.import_module(f"{__name__}.{name}").TASK


def run_task(settings) -> dict:
    """Evaluate one upstream on a registered task (see :mod:`.common`)."""
    from .common import run_registered_task

    return run_registered_task(settings)
