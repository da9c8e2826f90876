"""How a training step is counted (``profile(..., mode="train")``): the forward, autograd's
backward through the same op counter, and the optimizer step.

Backward ops belong to the module whose forward op made the autograd node that runs them:
each forward op's output is tagged, one op later (once autograd has attached its node),
with the module that ran it, in the node's ``metadata``; during the backward the op
counter asks ``torch._C._current_autograd_node()`` whose node runs. Ops of untagged nodes
(the gradients' accumulation into ``.grad``) go to the model's own row.

The backward starts from a gradient of ones on every output that requires one: the cost
of a loss is the user's, not the model's. Autograd computes only the gradients it needs:
no input gradient for a first layer whose input needs none, no weight gradient for a
frozen parameter.

Bits: a backward op is counted at its tensors' dtypes, never at a module's declared
``weight_bits``/``activation_bits``: a binarized (or quantized) layer trains through a
straight-through estimator, whose gradients are float, so its backward MACs are float
pairs (``W32A32`` for gradient x weight, ``A32A32`` for gradient x activation).

The optimizer step is AdamW's (``torch.optim.AdamW``, single-tensor update), counted per
trainable parameter element (:data:`ADAMW_FLOPS_PER_PARAMETER`), with two state tensors
per parameter (``exp_avg``, ``exp_avg_sq``) at the parameter's dtype.
"""
from __future__ import annotations

import dataclasses
from typing import Mapping, Optional

import torch
from torch import nn

from .errors import ProfileError

__all__ = ["GraphTagger", "NodeOwners", "roots", "ADAMW_FLOPS_PER_PARAMETER",
           "ADAMW_STATE_TENSORS", "ADAMW_STEP_BYTES"]

NODE_KEY = "profiler.module"

# torch.optim.AdamW's update of one element (no amsgrad; bias corrections are per tensor):
#   p.mul_(1 - lr*wd)                                    1  (decoupled weight decay)
#   m.lerp_(g, 1 - b1)          m + (1-b1)(g - m)        3
#   v.mul_(b2).addcmul_(g, g, value=1-b2)                4
#   denom = (v.sqrt() / sqrt(bc2)).add_(eps)             3
#   p.addcdiv_(m, denom, value=-lr/bc1)                  3  (a quotient, a product, a sum)
ADAMW_FLOPS_PER_PARAMETER = 14
ADAMW_STATE_TENSORS = 2  # exp_avg and exp_avg_sq, each the parameter's size and dtype
ADAMW_STEP_BYTES = 4  # and a float32 step counter per parameter tensor


class GraphTagger:
    """Tags each forward op's autograd node with the module that ran the op."""

    def __init__(self):
        self.pending: list = []

    def add(self, out, owner: str) -> None:
        self.pending.append((out, owner))

    def flush(self) -> None:
        """Called before the next op: autograd has attached the last op's nodes by then."""
        pending, self.pending = self.pending, []
        for out, owner in pending:
            for tensor in (out if isinstance(out, (list, tuple)) else (out,)):
                node = getattr(tensor, "grad_fn", None) if isinstance(tensor, torch.Tensor) \
                    else None
                if node is not None:
                    node.metadata.setdefault(NODE_KEY, owner)


class NodeOwners:
    """The backward's answer to "which module runs": the tag of the autograd node now
    running. Gives no module object, so that no declared bits apply (see above)."""

    def __init__(self):
        self._ancestors: dict = {}

    def current(self) -> tuple[str, Optional[nn.Module]]:
        node = torch._C._current_autograd_node()
        return (node.metadata.get(NODE_KEY, "") if node is not None else ""), None

    def open_names(self) -> list:
        name = self.current()[0]
        try:
            return self._ancestors[name]
        except KeyError:
            parts = name.split(".") if name else []
            names = self._ancestors[name] = [""] + [".".join(parts[:i + 1])
                                                   for i in range(len(parts))]
            return names


def roots(output) -> tuple[list, list]:
    """Where the backward starts: the output tensors that require a gradient, each with a
    gradient of ones."""
    tensors = list({id(t): t for t in _tensors(output)
                    if t.requires_grad and t.is_floating_point()}.values())
    if not tensors:
        raise ProfileError("mode='train': no output of the model requires a gradient "
                           "(are all its parameters frozen?)")
    return tensors, [torch.ones_like(t) for t in tensors]


def _tensors(value) -> list:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, Mapping):
        value = list(value.values())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = [getattr(value, f.name) for f in dataclasses.fields(value)]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []
