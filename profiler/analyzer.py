"""The analysis entry point: :func:`profile` counts every ATen op one forward pass runs,
attributed to the innermost module that ran it, and, with ``mode="train"``, the backward
and the optimizer step of a training step (:mod:`profiler.train_step`); the same run
tracks memory (:mod:`profiler.memory`).

It runs the model once under the op counter (:mod:`profiler.op_counter`), a
``TorchDispatchMode``, with forward hooks on the model's own modules telling it which
module runs (:mod:`profiler.module_tracking`), on the device asked for
(:mod:`profiler.device_state`). Nothing global is patched; the hooks are removed, the
model's parameters and buffers are never written, and attributes a forward sets (a cache
filled on first use) are put back as they were.

Device independence: the counts are those of the computation as PyTorch defines it, the
same on meta, CPU and CUDA. Where PyTorch's kernels take device-specific routes, one route
is counted everywhere: recurrent layers as its Python reference (input projection over the
whole sequence at once), a nested batch as its padded batch, and 0-dim CPU tensors beside
meta tensors as scalars.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Mapping, Optional

import torch
from torch import nn
from torch.utils._pytree import tree_leaves, tree_map
from torch.utils.weak import WeakIdKeyDictionary

from . import train_step
from .device_state import input_on, plain_attributes_on, restore_attributes, rng_kept, state_on
from .errors import ProfileError
from .memory import MemoryTracker
from .module_tracking import ModuleStack
from .op_counter import OpCounter
from .option_values import check_mode
from .result import ModuleTally, OperatorTally, Profile, TrainingCounts

__all__ = ["profile", "ProfileError"]


def profile(
    model: nn.Module,
    inputs: Any,
    *,
    device: str | torch.device = "meta",
    kwargs: Optional[Mapping[str, Any]] = None,
    formulas: Optional[Mapping[Any, Callable]] = None,
    mode: str = "inference",
) -> Profile:
    """Profile one forward pass of ``model`` on ``inputs`` (``mode="inference"``), or one
    training step (``mode="train"``): the forward, the backward of the gradients autograd
    needs (of activations and of every parameter with ``requires_grad``) and AdamW's
    update; see :mod:`profiler.train_step`. Call ``model.train()`` first for a training
    step's dropout and batch statistics: the model's mode is respected either way.

    ``inputs`` is a tensor or a tuple of positional arguments; ``kwargs`` are passed as
    keyword arguments. ``device="meta"`` (the default) runs on meta tensors: no memory is
    allocated for weights or activations and nothing is computed, so any input length or
    model size costs the same fraction of a second; the counts equal a CPU or CUDA run's.
    The model's train/eval mode is respected (profile in ``eval()`` for inference costs).
    ``formulas`` maps ATen ops (``torch.ops.aten.xxx``) to extra or replacement formulas for
    this call (see :mod:`profiler.formulas`).
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"profile() needs an nn.Module, got {type(model).__name__}")
    check_mode(mode)
    train = mode == "train"
    device = torch.device(device)
    args = inputs if isinstance(inputs, tuple) else (inputs,)
    kwargs = dict(kwargs or {})

    modules = dict(model.named_modules())
    params, buffers = state_on(model, device)
    if train:
        # Leaves of their own, so that gradients never reach the user's parameters; on a
        # real device copies, as a training-mode forward may write them (a quantizer's
        # first-step initialization under no_grad).
        originals = dict(model.named_parameters())
        params = {n: (p.detach() if p.is_meta else p.detach().clone())
                  .requires_grad_(originals[n].requires_grad) for n, p in params.items()}
    constants = WeakIdKeyDictionary()
    for tensor in (*params.values(), *buffers.values()):
        constants[tensor] = True
    args, kwargs = tree_map(lambda x: input_on(x, device), (args, kwargs))

    running = ModuleStack(modules)
    counter = OpCounter(running, constants, dict(formulas or {}), meta=device.type == "meta")
    counter.memory = MemoryTracker((*params.values(), *buffers.values()),
                                   [t for t in tree_leaves((args, kwargs))
                                    if isinstance(t, torch.Tensor)])
    counter.tagger = train_step.GraphTagger() if train else None
    training = None
    handles = []
    for module in modules.values():
        handles.append(module.register_forward_pre_hook(counter.enter, with_kwargs=True))
        handles.append(
            module.register_forward_hook(counter.leave, with_kwargs=True, always_call=True)
        )
    attributes = plain_attributes_on(model, device)
    try:
        with rng_kept(device), torch.set_grad_enabled(train), counter:
            output = torch.func.functional_call(model, {**params, **buffers}, args, kwargs,
                                                strict=False)
            if train:
                training = _backward(counter, output)
                training.updated = {n for n, p in params.items() if p.grad is not None}
            del output
    except ProfileError:
        raise
    except Exception as error:  # the model's own error: say where it came from
        raise ProfileError(_explain(model, device, error)) from error
    finally:
        for handle in handles:
            handle.remove()
        running.unwind()
        restore_attributes(attributes)
        counter.memory.close()
    return Profile.from_tallies(model, counter.tallies, counter.operators, counter.unsupported,
                                device=str(device), inputs=_describe(args, kwargs),
                                memory=counter.memory, training=training)


def _backward(counter: OpCounter, output) -> TrainingCounts:
    """The backward of a training step, tallied apart from the forward."""
    counter.tagger.flush()
    counter.tagger = None
    counter.memory.mark("forward")
    forward = counter.tallies, counter.operators, counter.running
    counter.tallies, counter.operators = defaultdict(ModuleTally), defaultdict(OperatorTally)
    counter.running = train_step.NodeOwners()
    counter.paused += 1  # the seeds (ones) are not the model's work
    try:
        roots, seeds = train_step.roots(output)
    finally:
        counter.paused -= 1
    try:
        torch.autograd.backward(roots, seeds)
        counter.memory.mark("backward")
        return TrainingCounts(counter.tallies, counter.operators)
    finally:
        counter.tallies, counter.operators, counter.running = forward


def _describe(args, kwargs) -> list:
    def one(x):
        if isinstance(x, torch.Tensor):
            return {"shape": list(x.shape), "dtype": str(x.dtype).removeprefix("torch.")}
        return repr(x) if not isinstance(x, (int, float, str, bool, type(None))) else x
    return [one(a) for a in args] + [{k: one(v)} for k, v in kwargs.items()]


def _explain(model: nn.Module, device: torch.device, error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    where = f"{type(model).__name__} raised {type(error).__name__}: {text}"
    lowered = text.lower()
    if device.type == "meta" and ("meta" in lowered or "data-dependent" in lowered
                                  or "item()" in lowered):
        return (f"{where} (the model reads tensor values, which meta tensors do not have; "
                f"profile it with device='cpu')")
    if "shape" in lowered or "size" in lowered or "dimension" in lowered:
        return f"{where} (do the input shapes fit the model?)"
    return where
