"""Training backends by name: the bundled trainer, and any that :func:`register_backend` adds."""
from __future__ import annotations

from typing import Callable, Dict, List

from ..errors import UsageError
from ..training_commands import DEFAULT_BACKEND
from .base import TrainingBackend
from .bundled import BundledBackend

_FACTORIES: Dict[str, Callable[[], TrainingBackend]] = {BundledBackend.name: BundledBackend}


def register_backend(name: str, factory: Callable[[], TrainingBackend]) -> None:
    """Make ``get_backend(name)`` return ``factory()``."""
    _FACTORIES[name] = factory


def available_backends() -> List[str]:
    return sorted(_FACTORIES)


def get_backend(name: str = DEFAULT_BACKEND) -> TrainingBackend:
    """The backend called ``name`` (default: the bundled minimal HuBERT trainer)."""
    try:
        factory = _FACTORIES[name]
    except KeyError:
        raise UsageError(f"unknown training backend {name!r}; available: "
                         f"{', '.join(sorted(_FACTORIES))}") from None
    return factory()
