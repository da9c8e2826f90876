"""Quick output construction for common ops on meta tensors.

On the meta device PyTorch computes many ops' outputs through its Python reference
implementations (around a millisecond each), which dominates a meta profile. For the
plain cases (contiguous floating-point inputs, scalar extras) the output is known without
running anything: a contiguous tensor of the broadcast shape and the promoted dtype (bool
for comparisons), a 0-dim tensor for a whole float tensor's sum or mean, or the input
itself for in-place ops. Anything else returns ``None`` and the real meta kernel runs.
Which ops take the shortcut, and how their outputs are shaped, the formula registry says
(``output=`` in :mod:`profiler.formulas`). Only shapes, dtypes and layouts matter on meta:
tests check each registered op's output against its meta kernel
and that every zoo model profiles identically with and without this shortcut.
"""
from __future__ import annotations

from typing import Optional

import torch

from . import formulas

# The keyword arguments that leave an output's shape and dtype as the rule says.
_ALLOWED_KWARGS = {"approximate", "alpha", "beta"}

_rules: dict = {}


def _rule(func) -> tuple[Optional[str], bool]:
    """The op's output rule in the formula registry (formulas.OUTPUT_RULES), and whether
    the op works in place."""
    try:
        return _rules[func]
    except KeyError:
        handler = formulas.lookup(func)
        rule = handler.output if handler is not None else None
        name = func.overloadpacket.__name__
        entry = _rules[func] = (rule, name.endswith("_") and not name.endswith("__"))
        return entry


def _plain(t) -> bool:
    return isinstance(t, torch.Tensor) and t.is_meta and t.is_contiguous() and not t.is_complex()


def _scalar(v) -> bool:
    return v is None or isinstance(v, str) or (isinstance(v, (int, float))
                                               and not isinstance(v, bool))


def fast_output(func, args, kwargs):
    rule, inplace = _rule(func)
    if rule in ("same", "broadcast", "compare"):
        return _elementwise(rule, func, inplace, args, kwargs)
    if rule in ("mm", "bmm") and not inplace and not kwargs.keys() - _ALLOWED_KWARGS:
        return _matmul(2 if rule == "mm" else 3, args)
    if rule == "layer_norm":
        return _layer_norm(args)
    if rule == "reduce_all":
        return _reduce_all(args, kwargs)
    return None


def _elementwise(rule, func, inplace, args, kwargs) -> Optional[torch.Tensor]:
    if kwargs.keys() - _ALLOWED_KWARGS or kwargs.get("alpha", 1) != 1:
        return None
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    if not tensors or not all(_plain(t) for t in tensors):
        return None
    if not all(isinstance(a, torch.Tensor) or _scalar(a) for a in args):
        return None
    first = args[0]
    where = func.overloadpacket is torch.ops.aten.where  # where(condition, a, b)
    if not isinstance(first, torch.Tensor) or (not where and not first.dtype.is_floating_point):
        return None
    if rule == "same":
        if len(tensors) != 1:
            return None
        if inplace:
            return first
        return torch.empty(first.shape, dtype=first.dtype, device="meta")
    operands = args[1:3] if where else args[:2]
    if len(operands) < 2:
        return None
    dtype = torch.bool if rule == "compare" else torch.result_type(*operands)
    if rule != "compare" and not dtype.is_floating_point:
        return None
    shape = _broadcast_shape([t.shape for t in tensors])
    if shape is None:
        return None
    if inplace:
        return first if shape == first.shape and dtype == first.dtype else None
    return torch.empty(shape, dtype=dtype, device="meta")


def _broadcast_shape(shapes) -> Optional[torch.Size]:
    """The shape ``shapes`` broadcast to, or None where they do not broadcast (the kernel
    then runs and says why). torch.broadcast_shapes does the same in Python with symbolic
    shape guards, several times slower, and it runs once per op."""
    ndim = max(len(shape) for shape in shapes)
    out = [1] * ndim
    for shape in shapes:
        for i, size in enumerate(shape, ndim - len(shape)):
            if size != 1:
                if out[i] == 1:
                    out[i] = size
                elif out[i] != size:
                    return None
    return torch.Size(out)


def _matmul(dims: int, args) -> Optional[torch.Tensor]:
    """``mm``/``bmm`` (a, b), or with a bias first, ``addmm``/``baddbmm`` (bias, a, b)."""
    with_bias = len(args) >= 3 and all(isinstance(t, torch.Tensor) for t in args[:3])
    bias, a, b = args[:3] if with_bias else (None, *args[:2])
    tensors = [t for t in args if isinstance(t, torch.Tensor)]
    if not all(t.is_meta and t.dtype.is_floating_point and t.dtype == a.dtype for t in tensors):
        return None
    if a.dim() != dims or b.dim() != dims or a.shape[-1] != b.shape[-2]:
        return None
    if dims == 3 and a.shape[0] != b.shape[0]:
        return None
    shape = torch.Size((*a.shape[:-1], b.shape[-1]))
    if bias is not None and _broadcast_shape([bias.shape, shape]) != shape:
        return None
    return torch.empty(shape, dtype=a.dtype, device="meta")


def _layer_norm(args):
    x, normalized_shape = args[0], args[1]
    if not (isinstance(x, torch.Tensor) and x.is_meta and x.dtype.is_floating_point):
        return None
    k = len(normalized_shape)
    if tuple(x.shape[x.dim() - k:]) != tuple(normalized_shape):
        return None
    stats_dtype = torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype
    stats_shape = tuple(x.shape[:x.dim() - k]) + (1,) * k
    return (torch.empty(x.shape, dtype=x.dtype, device="meta"),
            torch.empty(stats_shape, dtype=stats_dtype, device="meta"),
            torch.empty(stats_shape, dtype=stats_dtype, device="meta"))


def _reduce_all(args, kwargs):
    """``sum``/``mean`` of a whole float tensor (no dim, no dtype): a 0-dim tensor."""
    if len(args) != 1 or kwargs or not _plain(args[0]) or not args[0].dtype.is_floating_point:
        return None
    return torch.empty((), dtype=args[0].dtype, device="meta")
