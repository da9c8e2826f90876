"""The SUPERB tasks, one module each, behind one registry.

The tasks are the rows of :data:`models.trainer.superb.task_table.SUPERB_TASKS`, which holds
their names, titles, metrics and head defaults. Every task module (``ks``, ``sid``, ``pr``,
``asr``, ``sd``, ``asv``, ``ic``, ``sf``, ``qbe``, ``er``) defines ``TASK``, a
:class:`models.trainer.superb.tasks.common.Task`: its synthetic data (plans rendered with
espeak-ng, label files and dictionaries), how its folder is read, its head, its metric
with a bootstrap interval over test items (:mod:`.metrics`), and its chance level.
:mod:`models.trainer.superb.runner` runs every task through
:func:`models.trainer.superb.tasks.common.evaluate_task`; ``data synth`` synthesizes them
with :func:`models.trainer.superb.tasks.common.synthesize_tasks`.

This module imports nothing heavy: the CLI reads the task names from it.
"""
from __future__ import annotations

import importlib

from ..task_table import SUPERB_TASKS

# In table order (common.SYNTHESIS_NUMBERS seeds each task's synthesis, not this order).
TASKS = tuple(SUPERB_TASKS)


def get_task(name: str):
    """The ``Task`` object of a task."""
    if name not in TASKS:
        raise KeyError(name)
    # Imported on first use: every task module imports torch (about 1.6 s), and the
    # command line reads TASKS from this module to build its parser.
    return importlib.import_module(f"{__name__}.{name}").TASK

