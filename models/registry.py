"""The ten models of Table 1 (Jeon et al. 2023) by name.

    name                  encoder         L    D   H  FFN
    vanilla               transformer    12  768  12  4x   (HuBERT-Base)
    conformer-s           conformer      16  144   4  4x
    squeezeformer-xs      squeezeformer  16  144   4  4x
    sparseformer-dn-s     sparseformer   16  256   4  4x   (deep-narrow)
    sparseformer-sw-s     sparseformer    8  512   4  4x   (shallow-wide)
    bq-<each>             the same, BiT-binarized (W1A1), ReLU feed-forward

Each encoder family's entry in ``encoders.py`` holds its models' shapes (its presets).

Any of them builds at any weight/activation bit pair: ``weight_bits`` and
``activation_bits`` (1 to 32, 32 = float) are config overrides; bq-* stay W1A1.
All use the "+FastConv" front end. Sparseformers default to the dense-masked attention
the paper's numbers reflect; ``attention="blocked"`` skips the masked work.
"""
from __future__ import annotations

import dataclasses
import functools
from contextlib import contextmanager, nullcontext
from typing import Any, Dict, List

import torch
from torch import nn

from . import encoders
from .configuration import HubertConfig, is_real_number
from .constants import BINARIZED_PREFIX, float_name, is_binarized
from .hubert import HuBERT


def _base_models() -> Dict[str, Dict[str, Any]]:
    """The full-precision zoo models, family by family in registry order."""
    return {name: dict(shape, encoder=family.name)
            for family in encoders.families() for name, shape in family.presets.items()}


# BiT replaces the feed-forward activation by ReLU, whose output it binarizes to {0, 1}.
_BINARIZED = dict(binarized=True, ffn_activation="relu")

# Other spellings accepted as overrides.
_ALIASES = {
    "block_size": "sparse_block", "stride": "sparse_block", "block": "sparse_block",
    "summary": "sparse_summary", "expressivity": "sparse_summary",
    "sparse_stride": "sparse_block", "sparse_expressivity": "sparse_summary",
}
_BUILD_OPTIONS = ("dtype", "device", "seed")


def names() -> List[str]:
    base = list(_base_models())
    return base + [BINARIZED_PREFIX + name for name in base]


def config(name: str, /, **overrides: Any) -> HubertConfig:
    """The config of zoo model ``name`` with ``overrides`` applied, validated, not built.

    Overrides: any ``HubertConfig`` field (``layers``, ``dim``, ``heads``, ``ffn_dim``,
    ``frontend``, ``attention``, ``sparse_block``, ``sparse_summary``, ``num_classes``, ...),
    plus ``ffn_ratio`` (ffn_dim = ffn_ratio * dim) and the aliases ``block_size``/``stride``
    and ``summary``/``expressivity``. ``dim`` alone keeps the model's FFN ratio.
    """
    known = names()
    if name not in known:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(known)}")
    spec = dict(_base_models()[float_name(name)])
    if is_binarized(name):
        spec.update(_BINARIZED)

    fields = {f.name for f in dataclasses.fields(HubertConfig) if f.init}
    overrides = {_ALIASES.get(key, key): value for key, value in overrides.items()}
    unknown = sorted(set(overrides) - fields - {"ffn_ratio"})
    if unknown:
        allowed = sorted((fields - {"name", "encoder", "binarized"}) | {"ffn_ratio"}
                         | set(_ALIASES))
        raise ValueError(f"unknown override(s) {unknown} for {name!r}; "
                         f"allowed: {', '.join(allowed)}")
    # The name says what these are (bq-: BiT's W1A1), and the reports read it so.
    for fixed in ("name", "encoder", "binarized"):
        if fixed in overrides:
            raise ValueError(f"{fixed!r} cannot be overridden; pick another model name instead")
    if "ffn_ratio" in overrides and "ffn_dim" in overrides:
        raise ValueError("give ffn_ratio or ffn_dim, not both")

    spec.update(overrides)
    ffn_ratio = spec.pop("ffn_ratio")
    if "ffn_dim" not in spec:
        if not is_real_number(ffn_ratio) or ffn_ratio <= 0:
            raise ValueError(f"{name}: ffn_ratio must be a positive number, got {ffn_ratio!r}")
        dim = spec["dim"]
        if isinstance(dim, int) and not isinstance(dim, bool):
            spec["ffn_dim"] = max(1, int(round(ffn_ratio * dim)))
        else:
            spec["ffn_dim"] = 0  # rejected with the bad dim by the config's validation
    return HubertConfig(name=name, **spec)


_INIT_FUNCTIONS = ("uniform_", "normal_", "trunc_normal_", "constant_", "ones_", "zeros_",
                   "eye_", "dirac_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
                   "kaiming_normal_", "orthogonal_", "sparse_")


@contextmanager
def _no_init_on_meta():
    """``torch.nn.init`` leaves meta tensors alone: they hold no values to initialize, and
    PyTorch runs random fills on meta through its Python references, which took most of a
    meta build's time. Restored on exit (not thread-safe: builds are not concurrent)."""
    originals = {name: getattr(nn.init, name) for name in _INIT_FUNCTIONS
                 if hasattr(nn.init, name)}

    def skipping(fn):
        @functools.wraps(fn)
        def init(tensor, *args, **kwargs):
            if isinstance(tensor, torch.Tensor) and tensor.is_meta:
                return tensor
            return fn(tensor, *args, **kwargs)
        return init

    try:
        for name, fn in originals.items():
            setattr(nn.init, name, skipping(fn))
        yield
    finally:
        for name, fn in originals.items():
            setattr(nn.init, name, fn)


def build(name: str, /, **overrides: Any) -> HuBERT:
    """Builds zoo model ``name`` (see ``config`` for the overrides). Build options:
    ``device`` (``"meta"`` gives a shape-only model at no memory cost), ``dtype`` (e.g.
    ``torch.float16``) and ``seed`` (initializes from its own RNG stream, leaving the
    global one untouched)."""
    options = {key: overrides.pop(key) for key in _BUILD_OPTIONS if key in overrides}
    model_config = config(name, **overrides)
    seed = options.get("seed")
    device = options.get("device")
    dtype = options.get("dtype")
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ValueError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    rng = torch.random.fork_rng(devices=[]) if seed is not None else nullcontext()
    with rng:
        if seed is not None:
            torch.manual_seed(seed)
        with torch.device(device) if device is not None else nullcontext(), \
                _no_init_on_meta():
            model = HuBERT(model_config)
    if dtype is not None:
        model = model.to(dtype=dtype)
    return model
