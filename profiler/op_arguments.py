"""The tensors among an ATen op's arguments or outputs, for every dispatch-level observer
(op counting, the kernel estimate, the memory tracker)."""
from __future__ import annotations

import torch


def op_tensors(*groups) -> list:
    """The tensors in ``groups`` of values (args, kwargs.values(), (out,)): each value a
    tensor or a list/tuple of them, one level deep, which is as deep as ATen schemas nest."""
    found = []
    for group in groups:
        for value in group:
            if isinstance(value, torch.Tensor):
                found.append(value)
            elif isinstance(value, (list, tuple)):
                found.extend(v for v in value if isinstance(v, torch.Tensor))
    return found
