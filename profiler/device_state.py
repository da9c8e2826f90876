"""Where a profiled model's tensors live for the run, and putting back what the run changed.

A meta run gives the model meta stand-ins for its parameters and buffers; a real run fresh
copies of its buffers (running statistics and other in-place updates never reach the
model) and its parameters where they already live on the device. Tensors a module keeps in
plain attributes (a rotary table cached on a first forward) are moved to the run's device
and every plain attribute is put back afterwards, so a model works and counts the same
whether it is profiled before or after a real forward. The random streams are kept, so
that dropout in train mode does not move the user's.
"""
from __future__ import annotations

import contextlib

import torch
from torch import nn

__all__ = ["state_on", "input_on", "plain_attributes_on", "restore_attributes", "rng_kept"]


def state_on(model: nn.Module, device: torch.device):
    """Parameters and buffers to run with: meta stand-ins for a meta run; for a real run the
    parameters themselves where they already live on ``device``, and always fresh buffers,
    so that running statistics and similar in-place updates never reach the model."""
    def place(t: torch.Tensor, is_buffer: bool) -> torch.Tensor:
        if device.type == "meta":
            # empty_like's meta kernel is a Python reference (slow, once per tensor); the
            # same shape, strides and dtype straight from the C++ factory
            return torch.empty_strided(t.shape, t.stride(), dtype=t.dtype, device="meta")
        if t.is_meta:
            return torch.zeros(t.shape, dtype=t.dtype, device=device)
        if t.device == device and not is_buffer:
            return t
        return t.detach().to(device, copy=True)

    params = {n: place(p, False) for n, p in model.named_parameters()}
    buffers = {n: place(b, True) for n, b in model.named_buffers()}
    return params, buffers


_MODULE_INTERNALS = frozenset(vars(nn.Module()))


def plain_attributes_on(model: nn.Module, device: torch.device) -> list:
    """Make the tensors a module keeps in plain attributes (caches such as a rotary
    table computed on a first forward) live on ``device`` for the run, and return what
    to restore afterwards: every plain attribute as it was, so that a forward which fills
    a cache leaves nothing behind (a meta tensor in a cache would break the next real
    forward)."""
    saved = []
    for module in model.modules():
        state = {k: v for k, v in vars(module).items() if k not in _MODULE_INTERNALS}
        saved.append((module, state))
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and not isinstance(value, nn.Parameter):
                vars(module)[key] = input_on(value, device)
    return saved


def restore_attributes(saved: list) -> None:
    """Put back what :func:`plain_attributes_on` saved; attributes the run added go."""
    for module, state in saved:
        attributes = vars(module)
        for key in [k for k in attributes if k not in _MODULE_INTERNALS and k not in state]:
            del attributes[key]
        attributes.update(state)


def input_on(x, device: torch.device):
    """An input (or a cached tensor) on ``device``; a meta tensor becomes zeros on a real one."""
    if not isinstance(x, torch.Tensor):
        return x
    if device.type == "meta":
        return x if x.is_meta else torch.empty_like(x, device="meta")
    if x.is_meta:
        return torch.zeros(x.shape, dtype=x.dtype, device=device)
    return x.to(device)


@contextlib.contextmanager
def rng_kept(device: torch.device):
    """Dropout and random masking in train mode must not move the user's random streams."""
    if device.type == "meta":
        yield
        return
    cuda = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        yield
