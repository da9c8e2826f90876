"""Cost formulas of ATen ops, one small function per op, registered by decorator.

Every formula is a pure function of shapes (tensors arrive as ``torch.Size``), so counting
works the same on meta, CPU and CUDA tensors. The registry and the types formulas return
are in :mod:`.registry`; the formulas, one module per kind of op: :mod:`.products`
(matrix products and convolutions), :mod:`.per_element` (norms, softmax, activations,
arithmetic, reductions, pooling, FFT; the table of per-element conventions),
:mod:`.no_arithmetic` (views, copies, factories, dropout), :mod:`.fused` (fused attention,
transformer-layer and LSTM kernels, costed by the unfused reference they replace),
:mod:`.quantized` (``torch.ao`` quantized modules) and :mod:`.backward` (the gradient
kernels of a training step). Importing this package registers them all.

Extend with :func:`formula`, :func:`decomposition`, :func:`elementwise` or
:func:`zero_cost`, or pass ``formulas={op: fn}`` to :func:`profiler.profile` for one call.
"""
from . import (  # noqa: F401  (register)
    backward,
    fused,
    no_arithmetic,
    per_element,
    products,
    quantized,
)
from .registry import (
    OUTPUT_RULES,
    Cost,
    Handler,
    Mac,
    current_part,
    decomposition,
    elementwise,
    formula,
    lookup,
    no_cost,
    part,
    registered_ops,
    zero_cost,
)

__all__ = [
    "Mac", "Cost", "Handler", "OUTPUT_RULES", "formula", "decomposition", "elementwise",
    "zero_cost", "no_cost", "lookup", "part", "current_part", "registered_ops",
]
