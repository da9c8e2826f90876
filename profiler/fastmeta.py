"""Quick output construction for common ops on meta tensors.

On the meta device PyTorch computes many ops' outputs through its Python reference
implementations (around a millisecond each), which dominates a meta profile. For the
plain cases (contiguous floating-point inputs, scalar extras) the output is known without
running anything: a contiguous tensor of the broadcast shape and the promoted dtype (bool
for comparisons), or the input itself for in-place ops. Anything else returns ``None`` and
the real meta kernel runs. Only shapes, dtypes and layouts matter on meta, and a test checks
that every zoo model profiles identically with and without this shortcut.
"""
from __future__ import annotations

from typing import Optional

import torch

_UNARY = {
    "neg", "abs", "relu", "gelu", "silu", "sigmoid", "tanh", "exp", "log", "sqrt", "rsqrt",
    "sign", "sgn", "round", "floor", "ceil", "trunc", "hardtanh", "leaky_relu", "elu",
    "softplus", "erf", "reciprocal", "sin", "cos", "clamp", "clamp_min", "clamp_max", "mish",
    "hardswish", "hardsigmoid",
}
_BINARY = {"add", "sub", "mul", "div", "where", "maximum", "minimum", "pow"}
_COMPARE = {"ge", "gt", "le", "lt", "eq", "ne"}
_MATMUL = {"mm", "addmm", "bmm", "baddbmm"}
_ALLOWED_KWARGS = {"approximate", "alpha", "beta"}

_names: dict = {}


def _base_name(func) -> tuple[str, bool]:
    try:
        return _names[func]
    except KeyError:
        name = func.overloadpacket.__name__
        inplace = name.endswith("_") and not name.endswith("__")
        entry = _names[func] = (name[:-1] if inplace else name, inplace)
        return entry


def _plain(t) -> bool:
    return isinstance(t, torch.Tensor) and t.is_meta and t.is_contiguous() and not t.is_complex()


def _scalar(v) -> bool:
    return v is None or isinstance(v, str) or (isinstance(v, (int, float)) and not isinstance(v, bool))


def fast_output(func, args, kwargs):
    base, inplace = _base_name(func)
    if base in _UNARY or base in _BINARY or base in _COMPARE:
        return _elementwise(base, inplace, args, kwargs)
    if base in _MATMUL and not inplace and not kwargs.keys() - _ALLOWED_KWARGS:
        return _matmul(base, args)
    if base == "native_layer_norm":
        return _layer_norm(args)
    return None


def _elementwise(base, inplace, args, kwargs) -> Optional[torch.Tensor]:
    if kwargs.keys() - _ALLOWED_KWARGS or kwargs.get("alpha", 1) != 1:
        return None
    tensors = [a for a in args if isinstance(a, torch.Tensor)]
    if not tensors or not all(_plain(t) for t in tensors):
        return None
    if not all(isinstance(a, torch.Tensor) or _scalar(a) for a in args):
        return None
    first = args[0]
    if not isinstance(first, torch.Tensor) or (base != "where" and not first.dtype.is_floating_point):
        return None
    if base in _UNARY:
        if len(tensors) != 1:
            return None
        if inplace:
            return first
        return torch.empty(first.shape, dtype=first.dtype, device="meta")
    operands = args[1:3] if base == "where" else args[:2]
    if len(operands) < 2:
        return None
    dtype = torch.bool if base in _COMPARE else torch.result_type(*operands)
    if base not in _COMPARE and not dtype.is_floating_point:
        return None
    shape = torch.broadcast_shapes(*(t.shape for t in tensors))
    if inplace:
        return first if shape == first.shape and dtype == first.dtype else None
    return torch.empty(shape, dtype=dtype, device="meta")


def _matmul(base, args) -> Optional[torch.Tensor]:
    a, b = (args[1], args[2]) if base in ("addmm", "baddbmm") else (args[0], args[1])
    tensors = [t for t in args if isinstance(t, torch.Tensor)]
    if not all(t.is_meta and t.dtype.is_floating_point and t.dtype == a.dtype for t in tensors):
        return None
    if base in ("mm", "addmm"):
        if a.dim() != 2 or b.dim() != 2 or a.shape[1] != b.shape[0]:
            return None
        shape = (a.shape[0], b.shape[1])
    else:
        if a.dim() != 3 or b.dim() != 3 or a.shape[0] != b.shape[0] or a.shape[2] != b.shape[1]:
            return None
        shape = (a.shape[0], a.shape[1], b.shape[2])
    if base in ("addmm", "baddbmm"):
        bias = args[0]
        try:
            if torch.broadcast_shapes(bias.shape, shape) != torch.Size(shape):
                return None
        except RuntimeError:
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
