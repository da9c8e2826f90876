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
from typing import ContextManager, Optional

# The one spelling of each lower precision --autocast accepts.
BFLOAT16 = "bf16"
AUTOCAST_CHOICES = (BFLOAT16,)
AUTOCAST_HELP = ("run each training step's forward pass under torch.autocast in this "
                 "precision (bf16: bfloat16 matrix products and convolutions; weights, "
                 "gradients and the optimizer stay float32); part of the recipe")


def autocast(name: Optional[str], device) -> ContextManager:
    """The context a forward pass runs in: ``torch.autocast`` on ``device``'s type with
    the dtype ``name`` names, or nothing when ``name`` is None."""
    if name is None:
        return contextlib.nullcontext()
    import torch

    if name not in AUTOCAST_CHOICES:
        raise ValueError(f"autocast must be one of {', '.join(AUTOCAST_CHOICES)}, not {name!r}")
    return torch.autocast(torch.device(device).type, dtype=torch.bfloat16)
