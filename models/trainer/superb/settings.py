"""Every option of a SUPERB-style evaluation, each defined once (see :mod:`..options`).

Imports stay light (no torch): the command line builds its parser from this module.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

from ..autocast import AUTOCAST_CHOICES
from ..errors import DataError
from ..options import NON_NEGATIVE, POSITIVE, check_bounds, device_option, option
from .task_table import SUPERB_TASKS, per_task_defaults

# What an evaluation writes into its folder: the result, and per test item the parts of
# the score (for paired bootstraps between upstreams).
RESULTS = "results.json"
PER_ITEM = "per_item.json"
RANDOM_INIT = "random-init"   # results.json's upstream kind for an upstream of random weights

# Which hidden states the weighted sum reads: all of 0..L, or 1..L, leaving out state 0
# (the encoder input).
ALL_STATES, WITHOUT_STATE0 = "all", "1-L"
HIDDEN_STATE_CHOICES = (ALL_STATES, WITHOUT_STATE0)


@dataclass
class SuperbSettings:
    """One SUPERB-style evaluation: a task, an upstream (a run folder, or a zoo model with
    random weights) and how the task's head is trained. ``None`` head settings take the
    task's defaults (:data:`models.trainer.superb.task_table.SUPERB_TASKS`)."""

    task: str = option(help="the task (its metric): " + "; ".join(
        f"{key}: {task.title} ({task.metric})" for key, task in SUPERB_TASKS.items()),
        choices=tuple(SUPERB_TASKS), required=True)
    out: str = option(help="output folder for results.json and head.pt", required=True)
    upstream: Optional[str] = option(None, "a run folder of 'profile-encoder train' (or one of "
                                           "its checkpoints)", metavar="RUN", one_of="upstream")
    random_init: Optional[str] = option(None, "a zoo model with random weights (the baseline "
                                              "of the same shape)", metavar="MODEL",
                                        one_of="upstream")
    overrides: Dict[str, Any] = option(factory=dict, help="model config override for "
                                                          "--random-init, e.g. layers=4",
                                       deprecated=("--override",))
    data: Optional[str] = option(None, "corpus folder", shown="the one the upstream was trained "
                                 "on if it holds the task; else the task's 'small' synthesis "
                                 "preset, made into OUT/data")
    steps: Optional[int] = option(None, "head training steps", bound=POSITIVE,
                                  shown=per_task_defaults("steps"))
    batch_size: Optional[int] = option(None, "head batch size", bound=POSITIVE,
                                       shown=per_task_defaults("batch_size"),
                                       deprecated=("--batch",))
    lr: Optional[float] = option(None, "head learning rate (Adam)", bound=POSITIVE,
                                 shown=per_task_defaults("lr"))
    hidden_states: str = option(
        "all", "hidden states the heads' weighted sum reads: all (0..L, the encoder input "
               "and every layer's output) or 1-L (the layers' outputs only, without state 0, "
               "which the float front end and projection make even in a bq- model)",
        choices=HIDDEN_STATE_CHOICES)
    also_without_state0: Optional[str] = option(
        None, "also train a head that reads hidden states 1..L only (as --hidden-states "
              "1-L would) and write that evaluation to DIR; both heads read one extraction "
              "of the states, so the pair costs one extraction instead of two",
        metavar="DIR")
    deployed: bool = option(False, "extract the hidden states of a bq- upstream deployed on "
                                   "packed 1-bit kernels (models.deploy: every W1A1 product "
                                   "summed exactly in integers; CPU only), so the heads score "
                                   "the deployed model instead of the training-time "
                                   "simulation")
    autocast: Optional[str] = option(None, "extract the hidden states under torch.autocast "
                                           "in this precision (bf16: bfloat16 products and "
                                           "convolutions); the states are kept and the heads "
                                           "train in float32",
                                     choices=AUTOCAST_CHOICES, metavar="DTYPE",
                                     shown="none, float32")
    eval_every: int = option(50, "head steps between validations (the best head is tested)",
                             bound=POSITIVE)
    projector_dim: int = option(256, "utterance-level heads: projection size before pooling",
                                bound=POSITIVE)
    extract_batch: int = option(16, "utterances per upstream call when extracting hidden "
                                    "states", bound=POSITIVE)
    extract_seconds: float = option(30.0, "seconds of audio, padding included, per upstream "
                                          "call when extracting hidden states (a longer "
                                          "utterance goes alone)", bound=POSITIVE)
    seed: int = option(0, "random seed", bound=NON_NEGATIVE)
    device: Optional[str] = device_option("a GPU if there is one")
    progress: bool = option(True, "no progress bars or summary", flag="--quiet",
                            shown="both shown")


def check_superb_settings(s: SuperbSettings) -> None:
    """Raise :class:`DataError` (one clear line) for settings that cannot run."""
    if s.task not in SUPERB_TASKS:
        raise DataError(f"unknown task {s.task!r}; choose one of {', '.join(SUPERB_TASKS)}")
    if (s.upstream is None) == (s.random_init is None):
        raise DataError("give exactly one upstream: a training run folder (--upstream RUN) or "
                        "a zoo model to initialize randomly (--random-init MODEL)")
    if s.overrides and s.random_init is None:
        raise DataError("--set applies to --random-init only (a run folder fixes its model)")
    if s.also_without_state0 is not None:
        if s.hidden_states == WITHOUT_STATE0:
            raise DataError("--also-without-state0: the head already reads states 1..L "
                            "(--hidden-states 1-L); drop one of them")
        if Path(s.also_without_state0).resolve() == Path(s.out).resolve():
            raise DataError(f"--also-without-state0 {s.also_without_state0}: the same folder "
                            f"as --out; give the second evaluation a folder of its own")
    if s.autocast is not None and s.deployed:
        raise DataError(f"--autocast {s.autocast} and --deployed do not combine: a deployed "
                        f"upstream runs its own packed kernels")
    check_bounds(s)
