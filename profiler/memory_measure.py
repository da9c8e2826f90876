"""Measured peak memory of a real CPU run, to check :mod:`profiler.memory`'s estimates.

The measurement is PyTorch's own: ``torch.profiler`` with ``profile_memory=True`` records
every allocation and free of the CPU allocator (``c10``) in order; the peak is the highest
running sum of those records above the bytes already resident when the run starts
(weights, buffers, inputs and, in training, the optimizer's state), which are added back
from the tensors themselves. It shares no code with the estimate, which follows storage
lifetimes on meta tensors. Allocations outside PyTorch's allocator (oneDNN scratch space,
the Python heap) are in neither.

A training step is measured as a loop runs it: a first step (not measured) makes AdamW's
state, then forward, backward from gradients of ones on the outputs (made beforehand, as
the estimate leaves them out), ``AdamW.step`` (single-tensor, ``foreach=False``) and
``zero_grad(set_to_none=True)``.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from .option_values import check_mode
from .train_step import roots

__all__ = ["measured_peak"]


def measured_peak(model: nn.Module, inputs: Any, *, mode: str = "inference") -> dict:
    """``{"resident_bytes", "growth_bytes", "peak_bytes"}`` of one CPU forward
    (``mode="inference"``, under ``no_grad``) or one training step (``mode="train"``)."""
    check_mode(mode)
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    tensors = [*model.parameters(), *model.buffers(),
               *(a for a in args if isinstance(a, torch.Tensor))]
    if mode == "inference":
        def run():
            with torch.no_grad():
                model(*args)
    else:
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                      foreach=False)
        seeds = []

        def run():
            outputs, grads = roots(model(*args))
            if not seeds:
                seeds.extend(grads)
            torch.autograd.backward(outputs, seeds)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        run()  # AdamW's state, made on the first step
        tensors += [v for state in optimizer.state.values() for v in state.values()
                    if isinstance(v, torch.Tensor)]
    resident = _distinct_bytes(tensors)
    growth = _growth(run)
    return {"resident_bytes": resident, "growth_bytes": growth, "peak_bytes": resident + growth}


def _distinct_bytes(tensors) -> int:
    storages = {}
    for t in tensors:
        storage = t.untyped_storage()
        storages[storage._cdata] = storage.nbytes()
    return sum(storages.values())


def _growth(run) -> int:
    from torch._C._profiler import _EventType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        run()
    events = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:
        event = stack.pop()
        stack.extend(event.children)
        if event.tag == _EventType.Allocation and str(event.extra_fields.device) == "cpu":
            events.append((event.start_time_ns, event.extra_fields.alloc_size))
    live = peak = 0
    for _, size in sorted(events, key=lambda e: e[0]):
        live += size
        peak = max(peak, live)
    return peak
