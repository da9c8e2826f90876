"""The interface the CLI trains and evaluates through: two methods, plain data in and out.

The requests are derived from the trainer's settings (:mod:`models.trainer.pretrain.settings`,
:mod:`models.trainer.superb.settings`): they have the same fields, with the same help text
in their metadata, but every field that is not required defaults to ``None``, meaning
"not given": the backend's default, or with ``resume``, the run's own setting.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, Dict, List, Optional, Protocol, Tuple, runtime_checkable

from models.trainer.options import value_type
from models.trainer.pretrain.settings import PretrainSettings
from models.trainer.superb.settings import SuperbSettings


def _request_type(name: str, settings: type, doc: str) -> type:
    """A frozen dataclass with the fields of ``settings``; the ones the command line does
    not require default to ``None``."""
    required, optional = [], []
    for source in dataclasses.fields(settings):
        kind = value_type(settings, source.name)
        if source.metadata["required"]:
            required.append((source.name, kind, field(metadata=source.metadata)))
        else:
            optional.append((source.name, Optional[kind],
                             field(default=None, metadata=source.metadata)))
    request = dataclasses.make_dataclass(name, required + optional, frozen=True,
                                         namespace={"__doc__": doc})
    request.__module__ = __name__
    return request


TrainRequest = _request_type(
    "TrainRequest", PretrainSettings,
    "One pre-training run: the fields of ``PretrainSettings``, ``None`` where not given "
    "(the backend's default, or with ``resume``, the run's own setting).")
EvalRequest = _request_type(
    "EvalRequest", SuperbSettings,
    "One SUPERB-style evaluation: the fields of ``SuperbSettings``, ``None`` where not "
    "given (the backend's default); either ``upstream`` (a run folder) or ``random_init`` "
    "(a zoo name with random weights, the baseline of the same shape).")


def given_options(request: Any) -> Dict[str, Any]:
    """The fields of a request that were given, paths as strings."""
    return {item.name: str(value) if isinstance(value, PurePath) else value
            for item in dataclasses.fields(request)
            if (value := getattr(request, item.name)) is not None}


@dataclass(frozen=True)
class TrainResult:
    out: Path                       # the run folder
    steps: int                      # optimizer steps done in total
    final_loss: Optional[float]     # training loss of the last step (this process's view)
    valid: Optional[Dict[str, float]]
    wall_seconds: float             # this session
    checkpoint: Optional[Path]      # newest checkpoint folder
    rank_checksums: List[str] = field(default_factory=list)


@dataclass(frozen=True)
class EvalResult:
    task: str
    metric: str                 # the task's metric (models.trainer.superb.task_table.SUPERB_TASKS)
    value: float                # on the test split
    interval: Tuple[float, float]   # its 95 % bootstrap interval over the test items
    chance: float
    results_path: Path          # OUT/results.json
    details: Dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class TrainingBackend(Protocol):
    """What the ``train`` and ``superb`` commands need from an engine.

    Bad input (missing data, corrupt checkpoint, impossible settings) must raise
    :class:`profiler.errors.UsageError` with a one-line message; outputs must be written
    atomically.
    """

    name: str

    def pretrain(self, request: TrainRequest) -> TrainResult: ...

    def evaluate(self, request: EvalRequest) -> EvalResult: ...
