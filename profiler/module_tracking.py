"""Which of the model's modules is running: the module an op is attributed to.

Forward hooks on the model's own modules push and pop frames on a stack; an op belongs to
the innermost module running, or to the child a fused kernel's decomposition names with
:func:`profiler.formulas.part` (``self_attn``, ``linear1``...) where that child exists.

Recurrent layers run as PyTorch's Python reference while their frame is open: PyTorch's
C++ RNN kernels project the whole input sequence at once on CPU (and cuDNN does on CUDA)
but step by step on other devices, which reads the input weights once per step: same
MACs, different bytes moved. PyTorch's own Python reference (``torch._decomp``, reached
through the thread-local Python dispatcher) projects at once on every device; oneDNN is
kept out of it, as its one-layer LSTM kernel would take the CPU run back to a C++ path.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Mapping, Optional

import torch
from torch import nn
from torch._dispatch.python import enable_python_dispatcher as _enable_python_dispatcher

from .formulas import current_part

__all__ = ["ModuleStack"]


@dataclass
class _Frame:
    name: str
    module: nn.Module
    context: Optional[contextlib.ExitStack] = None


class ModuleStack:
    """The modules running now, innermost last, keyed by their names in the model."""

    def __init__(self, modules: Mapping[str, nn.Module]):
        self.modules = modules
        self.names = {id(m): n for n, m in modules.items()}
        self.frames: list[_Frame] = []

    def push(self, module: nn.Module) -> str:
        """A module's forward starts (a forward pre-hook): its name."""
        name = self.names.get(id(module), type(module).__name__)
        frame = _Frame(name, module)
        if isinstance(module, nn.RNNBase):  # counted as the Python reference (see above)
            frame.context = contextlib.ExitStack()
            frame.context.enter_context(_onednn_off())
            frame.context.enter_context(_enable_python_dispatcher())
        self.frames.append(frame)
        return name

    def pop(self, module: nn.Module) -> Optional[str]:
        """A module's forward ended (a forward hook): its name, or None for a module whose
        frame is not the innermost (an exception unwound past frames we never saw leave)."""
        if not self.frames or self.frames[-1].module is not module:
            return None
        frame = self.frames.pop()
        if frame.context is not None:
            frame.context.close()
        return frame.name

    def unwind(self) -> None:
        """Close what frames left open when an exception skipped their ``pop``."""
        while self.frames:
            frame = self.frames.pop()
            if frame.context is not None:
                frame.context.close()

    def open_names(self) -> list[str]:
        """The names of the modules running now, outermost first."""
        return [frame.name for frame in self.frames]

    def current(self) -> tuple[str, Optional[nn.Module]]:
        """The name and module an op counted now belongs to."""
        if not self.frames:
            return "", self.modules.get("")
        frame = self.frames[-1]
        suffix = current_part()
        if suffix:
            candidate = f"{frame.name}.{suffix}" if frame.name else suffix
            if candidate in self.modules:
                return candidate, self.modules[candidate]
        return frame.name, frame.module


@contextlib.contextmanager
def _onednn_off():
    enabled = torch._C._get_mkldnn_enabled()
    torch._C._set_mkldnn_enabled(False)
    try:
        yield
    finally:
        torch._C._set_mkldnn_enabled(enabled)
