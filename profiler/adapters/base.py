"""The interface the CLI trains and evaluates through: two methods, plain data in and out."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol, runtime_checkable

from ..errors import UsageError


@dataclass(frozen=True)
class TrainRequest:
    """One pre-training run. ``None`` means "the backend's default" (or, with ``resume``,
    "as the run was started"). ``overrides`` are model config overrides (``layers=2``...)."""

    out: Path
    model: Optional[str] = None
    data: Optional[Path] = None
    tiny: bool = False
    resume: bool = False
    steps: Optional[int] = None
    batch_size: Optional[int] = None
    accumulate: Optional[int] = None
    crop_seconds: Optional[float] = None
    lr: Optional[float] = None
    warmup_steps: Optional[int] = None
    unmasked_weight: Optional[float] = None
    seed: Optional[int] = None
    iteration: int = 1
    targets_from: Optional[Path] = None
    label_layer: Optional[int] = None
    clusters: Optional[int] = None
    save_every: Optional[int] = None
    log_every: Optional[int] = None
    valid_every: Optional[int] = None
    workers: Optional[int] = None
    deepspeed: Optional[Path] = None
    device: Optional[str] = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    progress: bool = True


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
class EvalRequest:
    """One SUPERB-style evaluation: a task, and either a run folder or a zoo name to
    initialize randomly (the baseline of the same shape)."""

    task: str
    out: Path
    upstream: Optional[Path] = None
    random_init: Optional[str] = None
    overrides: Mapping[str, Any] = field(default_factory=dict)   # for random_init
    data: Optional[Path] = None
    steps: Optional[int] = None
    batch_size: Optional[int] = None
    lr: Optional[float] = None
    seed: int = 0
    device: Optional[str] = None
    progress: bool = True


@dataclass(frozen=True)
class EvalResult:
    task: str
    metric: str                 # "accuracy" or "per"
    value: float                # on the test split, as a fraction
    chance: float
    results_path: Path          # OUT/results.json
    details: Dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class TrainingBackend(Protocol):
    """What the ``train`` and ``superb`` commands need from an engine.

    Bad input (missing data, corrupt checkpoint, impossible settings) must raise
    :class:`profiler.errors.UsageError` or a ``ValueError`` subclass with a one-line
    message; outputs must be written atomically.
    """

    name: str

    def pretrain(self, request: TrainRequest) -> TrainResult: ...

    def evaluate(self, request: EvalRequest) -> EvalResult: ...


_FACTORIES: Dict[str, Callable[[], TrainingBackend]] = {}


def register_backend(name: str, factory: Callable[[], TrainingBackend]) -> None:
    """Make ``get_backend(name)`` return ``factory()``."""
    _FACTORIES[name] = factory


def available_backends() -> List[str]:
    _register_builtin()
    return sorted(_FACTORIES)


def get_backend(name: str = "bundled") -> TrainingBackend:
    """The backend called ``name`` (default: the bundled minimal HuBERT trainer)."""
    _register_builtin()
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise UsageError(f"unknown training backend {name!r}; available: "
                         f"{', '.join(sorted(_FACTORIES))}") from None
    return factory()


def _register_builtin() -> None:
    if "bundled" not in _FACTORIES:
        from .bundled import BundledBackend

        _FACTORIES["bundled"] = BundledBackend
