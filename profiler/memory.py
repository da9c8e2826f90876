"""Memory of a profiled run: the bytes of weights and of live activations along the
execution order, from the same (meta) run that counts the ops.

Every tensor an op makes is an allocation of its storage's bytes, unless the storage is
already known (views, in-place results, the parameters and buffers); the allocation ends
when PyTorch frees the storage (a ``weakref.finalize`` on the untyped storage, whose Python
object lives exactly as long as the storage itself), whoever held it last: a Python
variable, autograd's saved tensors or a ``.grad``. Meta storages have sizes but no data,
so a meta run's live set is a real run's, without the memory. Fused kernels count as
their real outputs (not the unfused reference their FLOPs are costed by): what a run
allocates. Allocator rounding, workspaces and caching are not modelled.

A module's ``activation_peak_bytes`` is the largest live set seen while it (or anything
under it) ran; its ``saved_bytes`` the bytes still live at the end of the forward that its
own ops made: in training, what autograd keeps for the backward (and the outputs).

Totals (``Profile.memory["totals"]``, bytes): ``weight_bytes`` (parameters and buffers as
held in memory, at their dtypes), ``activation_peak_bytes`` (the largest live set of
everything else: inputs, activations and, in training, gradients as the backward makes
them) and ``peak_bytes``: weights + the activation peak at inference. In training also
``gradient_bytes`` (one per trainable parameter), ``optimizer_state_bytes`` (AdamW's two
states per parameter and its step counters), ``saved_activation_bytes`` (live at the end
of the forward) and ``peak_bytes`` = weights + optimizer state + the larger of the
activation peak and the step's (all gradients and AdamW's temporaries for one tensor):
a steady-state step, the optimizer's state already made.
"""
from __future__ import annotations

import weakref
from collections import Counter
from typing import Iterable, Optional

import torch

from .op_arguments import op_tensors
from .train_step import ADAMW_STATE_TENSORS, ADAMW_STEP_BYTES

__all__ = ["MemoryTracker", "summary"]


def _storage(tensor):
    try:
        storage = tensor.untyped_storage()
        return storage, storage._cdata
    except (RuntimeError, NotImplementedError, TypeError):  # nested, sparse, subclasses
        return None, None


class MemoryTracker:
    """Live bytes along a run; :meth:`allocated` is called with every op's outputs."""

    def __init__(self, weights: Iterable[torch.Tensor], inputs: Iterable[torch.Tensor]):
        self.fixed: set = set()
        self.weight_bytes = 0
        for tensor in weights:
            storage, key = _storage(tensor)
            if storage is not None and key not in self.fixed:
                self.fixed.add(key)
                self.weight_bytes += storage.nbytes()
        self.sizes: dict = {}  # storage key -> (bytes, owner module)
        self.finalizers: dict = {}
        self.live = 0
        self.peak = 0
        self.owner_live: Counter = Counter()
        self.module_peak: Counter = Counter()
        self.marks: dict = {}
        for tensor in inputs:
            self.allocated(tensor, "", ())

    def allocated(self, out, owner: str, running: Iterable[str]) -> None:
        """``out`` (a tensor or a list/tuple of them) was made by ``owner``'s op while the
        modules ``running`` were open."""
        grew = False
        for tensor in op_tensors((out,)):
            storage, key = _storage(tensor)
            if storage is None or key in self.fixed or key in self.sizes:
                continue
            size = storage.nbytes()
            if not size:
                continue
            self.sizes[key] = (size, owner)
            self.finalizers[key] = weakref.finalize(storage, self._freed, key)
            self.live += size
            self.owner_live[owner] += size
            grew = True
        if grew:
            self.peak = max(self.peak, self.live)
            for name in running:
                if self.live > self.module_peak[name]:
                    self.module_peak[name] = self.live

    def _freed(self, key) -> None:
        size, owner = self.sizes.pop(key)
        self.finalizers.pop(key, None)
        self.live -= size
        self.owner_live[owner] -= size

    def mark(self, label: str) -> None:
        """Remember the live set now (``"forward"``: what the backward starts from)."""
        self.marks[label] = (self.live, +self.owner_live)

    def close(self) -> None:
        """Stop watching: the run's tensors may outlive the profile."""
        for finalizer in list(self.finalizers.values()):
            finalizer.detach()
        self.finalizers.clear()


def summary(tracker: MemoryTracker, modules: Iterable[str],
            training: Optional[tuple[int, int, int]] = None) -> dict:
    """The profile's ``memory`` mapping: ``totals`` and, per module, its activation peak
    (and in training its saved bytes). ``training`` is (gradient bytes, the largest
    trainable parameter's bytes, trainable parameter tensors), None at inference."""
    totals = {"weight_bytes": tracker.weight_bytes, "activation_peak_bytes": tracker.peak}
    saved_total, saved = tracker.marks.get("forward", (0, {}))
    rows = {}
    for name in modules:
        rows[name] = {"activation_peak_bytes": tracker.module_peak.get(name, 0)}
        if training is not None:
            rows[name]["saved_bytes"] = saved.get(name, 0)
    if training is None:
        totals["peak_bytes"] = tracker.weight_bytes + tracker.peak
        return {"totals": totals, "modules": rows}
    gradients, largest, tensors = training
    states = ADAMW_STATE_TENSORS * gradients + ADAMW_STEP_BYTES * tensors
    # The step: every gradient, and AdamW's temporaries for one tensor (sqrt, quotient).
    step = gradients + 2 * largest
    totals.update(gradient_bytes=gradients, optimizer_state_bytes=states,
                  saved_activation_bytes=saved_total,
                  peak_bytes=tracker.weight_bytes + states + max(tracker.peak, step))
    return {"totals": totals, "modules": rows}
