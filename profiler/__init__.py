"""Storage, MACs/FLOPs, bit operations and runtime estimates of PyTorch models.

    >>> import profiler
    >>> p = profiler.profile(model, torch.randn(1, 160_000))   # meta tensors by default
    >>> p.totals["flops"], p.totals["bop_bq"], p.to_dataframe(depth=2)
"""
from .analyzer import ProfileError, profile
from .formulas import Cost, Mac, decomposition, elementwise, formula, zero_cost
from .peers import crosscheck
from .result import Profile

__all__ = [
    "profile", "Profile", "ProfileError", "Cost", "Mac", "formula", "decomposition",
    "elementwise", "zero_cost", "crosscheck",
]
