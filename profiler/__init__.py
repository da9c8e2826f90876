"""Storage, MACs/FLOPs, bit operations and runtime estimates of PyTorch models.

    >>> import profiler
    >>> p = profiler.profile(model, torch.randn(1, 160_000))   # meta tensors by default
    >>> p.totals["flops"], p.totals["bop_bq"], p.to_dataframe(depth=2)
"""
import importlib

# Loaded on first use, so that `profile-encoder --help` and argument errors answer at once
# instead of waiting for torch to import.
_EXPORTS = {
    "profile": ".analyzer", "ProfileError": ".errors", "Profile": ".result",
    "Cost": ".formulas", "Mac": ".formulas", "formula": ".formulas",
    "decomposition": ".formulas", "elementwise": ".formulas", "zero_cost": ".formulas",
    "crosscheck": ".peers",
}

__all__ = list(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'profiler' has no attribute {name!r}")
