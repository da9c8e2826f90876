"""The formula registry: which cost formula each ATen op has, and the types formulas return.

A formula is a pure function of shapes (tensors arrive as ``torch.Size``) returning the
op's elementwise FLOPs (an ``int``) or one or more :class:`Cost` records that also name
the multiply-accumulate (:class:`Mac`) terms and which arguments were multiplied, so that
the analyzer can give each term the bit-widths of its operands. A *decomposition* instead
runs PyTorch's own unfused reference computation on meta tensors while the analyzer counts
it (for fused kernels). :func:`part` tells the analyzer which child module a piece of a
decomposition belongs to.

Register with :func:`formula`, :func:`decomposition`, :func:`elementwise` or
:func:`zero_cost`. An op has one formula: registering a second raises unless
``override=True`` says to replace it, and every op must exist in the installed PyTorch
(:func:`aten_ops` raises for a name it lacks). The formulas themselves live in the other
modules of this package, one per kind of op.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Sequence, Union

import torch

aten = torch.ops.aten

__all__ = [
    "Mac",
    "Cost",
    "Handler",
    "OUTPUT_RULES",
    "formula",
    "decomposition",
    "elementwise",
    "zero_cost",
    "no_cost",
    "lookup",
    "registered_ops",
    "aten_ops",
    "numel",
    "part",
    "current_part",
]


@dataclass(frozen=True)
class Mac:
    """``count`` multiply-accumulates between two operands.

    ``lhs``/``rhs`` index the op's positional arguments; ``None`` stands for an
    intermediate activation the kernel makes itself (for example attention scores).
    """

    count: int
    lhs: Optional[int]
    rhs: Optional[int]


@dataclass(frozen=True)
class Cost:
    macs: tuple[Mac, ...] = ()
    elementwise: int = 0


Result = Union[int, Cost, Sequence[Cost]]


# How the fast meta path (fastmeta.py) builds an op's output without running its kernel:
OUTPUT_RULES = (
    "same",        # like the op's one tensor argument (unary elementwise ops)
    "broadcast",   # the broadcast shape and promoted dtype of its tensor arguments
    "compare",     # the broadcast shape, bool
    "mm",          # a 2-D matrix product (a bias first when there are three tensors)
    "bmm",         # a batched 3-D matrix product (likewise)
    "layer_norm",  # the normalized tensor and its two statistics
    "reduce_all",  # a float tensor reduced over all its elements: a 0-dim tensor, its dtype
)


@dataclass(frozen=True)
class Handler:
    fn: Callable
    # "shape": fn(*shapes, out_shape=..., **kwargs) -> Result
    # "decompose": fn(*meta_args, **meta_kwargs) runs reference torch code to be counted
    kind: str
    output: Optional[str] = None  # one of OUTPUT_RULES; None: the meta kernel runs


_REGISTRY: dict[object, Handler] = {}
_OP_TYPES = (torch._ops.OpOverloadPacket, torch._ops.OpOverload)


def _register(ops, handler: Handler, override: bool) -> None:
    if handler.output is not None and handler.output not in OUTPUT_RULES:
        raise ValueError(f"output must be one of {OUTPUT_RULES}, got {handler.output!r}")
    targets = list(ops) if isinstance(ops, (list, tuple, set)) else [ops]
    for op in targets:  # all checked before any is registered
        if not isinstance(op, _OP_TYPES):
            raise TypeError(f"expected an ATen op such as torch.ops.aten.mm, got {op!r}")
        existing = _REGISTRY.get(op)
        if existing is not None and not override:
            raise ValueError(f"{op} already has a formula ({existing.fn.__qualname__}); "
                             "pass override=True to replace it")
    for op in targets:
        _REGISTRY[op] = handler


def formula(ops, *, output: Optional[str] = None, override: bool = False) -> Callable:
    """Register ``fn(*shapes, out_shape=None, **kwargs) -> int | Cost | [Cost]`` for ``ops``
    (an ``OpOverloadPacket`` such as ``aten.mm`` covers all its overloads). ``override``
    replaces an op's registered formula; ``output`` is the op's rule in OUTPUT_RULES."""

    def register(fn):
        _register(ops, Handler(fn, "shape", output), override)
        return fn

    return register


def decomposition(ops, *, override: bool = False) -> Callable:
    """Register a reference computation for fused kernels: ``fn(*args, **kwargs)`` gets the
    op's arguments as meta tensors and runs the unfused PyTorch code, which is counted."""

    def register(fn):
        _register(ops, Handler(fn, "decompose"), override)
        return fn

    return register


def elementwise(ops, flops_per_element: int = 1, *, per: str = "output",
                output: Optional[str] = None, override: bool = False) -> None:
    """Register ops that cost ``flops_per_element`` per output (or input) element."""
    if per not in ("output", "input"):
        raise ValueError("per must be 'output' or 'input'")

    def count(*args, out_shape=None, **kwargs) -> int:
        if per == "input":
            return flops_per_element * numel(_first_shape(args))
        return flops_per_element * numel(_first_shape(out_shape))

    formula(ops, output=output, override=override)(count)


def zero_cost(ops, *, override: bool = False) -> None:
    """Register ops that do no arithmetic (views, copies, indexing, factories)."""
    formula(ops, override=override)(no_cost)


def no_cost(*args, **kwargs) -> int:
    return 0


def lookup(op, extra: Optional[dict] = None) -> Optional[Handler]:
    """The handler for an ``OpOverload``: per-call extras first, then the registry; an
    overload's own entry wins over its packet's."""
    for table in (extra or {}, _REGISTRY):
        for key in (op, getattr(op, "overloadpacket", None)):
            if key is not None and key in table:
                entry = table[key]
                return entry if isinstance(entry, Handler) else Handler(entry, "shape")
    if _is_pure_view(op):
        return Handler(no_cost, "shape")
    return None


def registered_ops(output: Optional[str] = None) -> list[str]:
    """Names of the ops with a formula (those with this output rule, if one is given)."""
    return sorted(str(op) for op, handler in _REGISTRY.items()
                  if output is None or handler.output == output)


def _is_pure_view(op) -> bool:
    schema = getattr(op, "_schema", None)
    if schema is None or not schema.returns:
        return False
    first = schema.arguments[0] if schema.arguments else None
    alias = first.alias_info if first is not None else None
    return alias is not None and not alias.is_write and all(
        r.alias_info is not None and not r.alias_info.is_write for r in schema.returns
    )


# ---------------------------------------------------------------------------------------
# Parts: fused kernels attribute their pieces to the submodules the unfused path would run
# in (``self_attn``, ``linear1``...); the analyzer asks current_part() where an op belongs.

_part_stack: list[str] = []


class part:
    """``with part("linear1"):`` attributes the ops counted inside to that child module of
    the module now running (or to the module itself if it has no such child)."""

    def __init__(self, name: str):
        self.name = name

    def __enter__(self):
        _part_stack.append(self.name)

    def __exit__(self, *exc):
        _part_stack.pop()


def current_part() -> str:
    return ".".join(p for p in _part_stack if p)


# ---------------------------------------------------------------------------------------
# Shapes and op names, for the formulas

def numel(shape) -> int:
    """Elements of a shape (0 for an absent tensor)."""
    return math.prod(shape) if shape is not None else 0


def _first_shape(value):
    if isinstance(value, torch.Size):
        return value
    if isinstance(value, (list, tuple)):
        for item in value:
            found = _first_shape(item)
            if found is not None:
                return found
    return None


def aten_ops(names: Iterable[str], inplace: bool = True) -> list:
    """The ATen ops named, with their in-place variants (``add_``) where those exist; a
    name that the installed PyTorch lacks raises, so that no formula is silently lost."""
    found = []
    for name in names:
        packet = getattr(aten, name, None)
        if packet is None:
            raise ValueError(f"torch {torch.__version__} has no op aten.{name}")
        found.append(packet)
        variant = getattr(aten, name + "_", None) if inplace else None
        if variant is not None:
            found.append(variant)
    return found

