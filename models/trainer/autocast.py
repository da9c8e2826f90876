"""Lower-precision forward passes for training (``--autocast``), one definition for every
command that takes the option.

Under ``torch.autocast`` the matrix products and convolutions run in bfloat16 while the
parameters, gradients and optimizer state stay float32 (mixed precision, not a bfloat16
model). bfloat16 keeps float32's exponent range, so no loss scaling is needed, unlike
float16. Its speed against float32: benchmarks/bench_autocast.py.

Imports stay light (no torch at import): the command line builds its parser from the
settings that name :data:`AUTOCAST_CHOICES`.
"""
from __future__ import annotations

import contextlib
import sys
from typing import ContextManager, Optional

# The one spelling of each lower precision --autocast accepts.
BFLOAT16 = "bf16"
AUTOCAST_CHOICES = (BFLOAT16,)
AUTOCAST_HELP = ("run each training step's forward pass under torch.autocast in this "
                 "precision (bf16: bfloat16 matrix products and convolutions; weights, "
                 "gradients and the optimizer stay float32); part of the recipe")


# The CPU flags of native bfloat16 arithmetic; without either, torch emulates it.
BFLOAT16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
EMULATED_WARNING = (
    "warning: --autocast bf16 on a CPU without bfloat16 instructions (AVX512_BF16 or "
    "AMX): torch emulates them, and a training step took 8.1x its float32 time on such a "
    "CPU (benchmarks/bench_autocast.py, 2-core AMD EPYC); leave --autocast out where the "
    "recipe lets you")
# Whether this process has looked at its CPU yet: once, not on every training step.
_cpu_checked = False


def cpu_has_bfloat16() -> bool:
    """Whether this machine's CPU computes in bfloat16 natively (see :data:`BFLOAT16_FLAGS`)."""
    from profiler.calibration import cpu_flags

    return bool(BFLOAT16_FLAGS & cpu_flags())


def autocast(name: Optional[str], device) -> ContextManager:
    """The context a forward pass runs in: ``torch.autocast`` on ``device``'s type with
    the dtype ``name`` names, or nothing when ``name`` is None. On a CPU that would emulate
    bfloat16 it says so once per process, on stderr: the option then costs time instead of
    saving it."""
    global _cpu_checked
    if name is None:
        return contextlib.nullcontext()
    import torch

    if name not in AUTOCAST_CHOICES:
        raise ValueError(f"autocast must be one of {', '.join(AUTOCAST_CHOICES)}, not {name!r}")
    kind = torch.device(device).type
    if kind == "cpu" and not _cpu_checked:
        _cpu_checked = True
        if not cpu_has_bfloat16():
            print(EMULATED_WARNING, file=sys.stderr)
    return torch.autocast(kind, dtype=torch.bfloat16)
