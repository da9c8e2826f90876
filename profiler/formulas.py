"""Cost formulas of ATen ops, one small function per op, registered by decorator.

Every formula is a pure function of shapes (tensors arrive as ``torch.Size``), so counting
works the same on meta, CPU and CUDA tensors. A formula returns the number of
elementwise FLOPs (an ``int``) or one or more :class:`Cost` records that also name the
multiply-accumulate (MAC) terms and which arguments were multiplied, so that the analyzer
can give each term the bit-widths of its operands.

Fused kernels (scaled-dot-product attention, the ``nn.MultiheadAttention`` and
``nn.TransformerEncoderLayer`` fast paths) are costed by a *decomposition*: a function that
runs PyTorch's own reference computation on meta tensors while the analyzer counts it. A
fused kernel therefore costs exactly what the unfused path it replaces costs, and a CPU
run (which takes the fast paths) gives the same counts as a meta run (which cannot).

Extend with :func:`formula`, :func:`decomposition`, :func:`elementwise` or
:func:`zero_cost`, or pass ``formulas={op: fn}`` to :func:`profiler.profile` for one call.
An op has one formula: registering a second raises unless ``override=True`` says to replace
it, and every op must exist in the installed PyTorch.

Elementwise conventions (FLOPs per element; DeepSpeed's flops profiler, the tool the paper
used, where it defines one, else one per arithmetic result):

=====================================================  =====================================
op                                                     FLOPs
=====================================================  =====================================
add, sub, mul, div, neg, abs, sign, pow, exp, log,     1 per output element
sqrt, rsqrt, comparisons, where, masked_fill, clamp
relu, gelu, silu, sigmoid, tanh, elu, leaky_relu,      1 per output element
hardtanh, softplus, mish, erf, sin, cos
glu                                                    2 per output element (sigmoid, product)
softmax, log_softmax                                   1 per element (DeepSpeed's count)
layer_norm, group_norm                                 5 per element with affine, else 4
batch_norm, inference                                  2 per element with affine, else 1
batch_norm, training statistics                        5 per element with affine, else 4
bias of linear/conv/addmm/baddbmm                      1 per output element
sum, mean, amax, var, norm and other reductions        1 per input element
cumsum, cumprod                                        1 per element
FFT (r2c, c2r / c2c) of length n                       2.5 / 5 n log2 n per transform
avg/max/adaptive pooling                               1 per input element
upsample / interpolate                                 1 per output element
dropout, bernoulli                                     0 (the identity at inference)
views, copies, cat, index, gather, embedding lookup    0
=====================================================  =====================================

MACs: ``mm``/``bmm``/``addmm``/``baddbmm`` m*k*n per matrix; convolution
N * prod(output spatial) * C_out * (C_in / groups) * prod(kernel) (for transposed
convolutions the input's spatial size takes the output's place); attention Q.K^T and A.V
through their decompositions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Iterable, Optional, Sequence, Union

import torch
import torch.nn.functional as F

aten = torch.ops.aten

__all__ = [
    "Mac",
    "Cost",
    "Handler",
    "formula",
    "decomposition",
    "elementwise",
    "zero_cost",
    "lookup",
    "part",
    "registered_ops",
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
            return flops_per_element * _numel(_first_shape(args))
        return flops_per_element * _numel(_first_shape(out_shape))

    formula(ops, output=output, override=override)(count)


def zero_cost(ops, *, override: bool = False) -> None:
    """Register ops that do no arithmetic (views, copies, indexing, factories)."""
    formula(ops, override=override)(_no_cost)


def _no_cost(*args, **kwargs) -> int:
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
        return Handler(_no_cost, "shape")
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
# Helpers

def _numel(shape) -> int:
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


# ---------------------------------------------------------------------------------------
# Matrix products and convolutions

@formula(aten.mm, output="mm")
def mm(a, b, *args, out_shape=None, **kwargs) -> Cost:
    m, k = a
    n = b[1]
    return Cost(macs=(Mac(m * k * n, 0, 1),))


@formula([aten._int_mm, aten._scaled_mm])
def int_mm(a, b, *args, out_shape=None, **kwargs) -> Cost:
    return mm(a, b)


@formula(aten.addmm, output="mm")
def addmm(bias, a, b, *args, out_shape=None, **kwargs) -> Cost:
    m, k = a
    n = b[1]
    return Cost(macs=(Mac(m * k * n, 1, 2),), elementwise=m * n)


@formula(aten._addmm_activation)
def addmm_activation(bias, a, b, *args, out_shape=None, **kwargs) -> Cost:
    m, k = a
    n = b[1]
    return Cost(macs=(Mac(m * k * n, 1, 2),), elementwise=2 * m * n)


@formula(aten.bmm, output="bmm")
def bmm(a, b, *args, out_shape=None, **kwargs) -> Cost:
    batch, m, k = a
    n = b[2]
    return Cost(macs=(Mac(batch * m * k * n, 0, 1),))


@formula(aten.baddbmm, output="bmm")
def baddbmm(bias, a, b, *args, out_shape=None, **kwargs) -> Cost:
    batch, m, k = a
    n = b[2]
    return Cost(macs=(Mac(batch * m * k * n, 1, 2),), elementwise=batch * m * n)


@formula(aten.addbmm)
def addbmm(bias, a, b, *args, out_shape=None, **kwargs) -> Cost:
    batch, m, k = a
    n = b[2]
    return Cost(macs=(Mac(batch * m * k * n, 1, 2),), elementwise=batch * m * n + m * n)


@formula(aten.mv)
def mv(a, v, *args, out_shape=None, **kwargs) -> Cost:
    return Cost(macs=(Mac(a[0] * a[1], 0, 1),))


@formula(aten.addmv)
def addmv(bias, a, v, *args, out_shape=None, **kwargs) -> Cost:
    return Cost(macs=(Mac(a[0] * a[1], 1, 2),), elementwise=a[0])


@formula([aten.dot, aten.vdot])
def dot(a, b, *args, out_shape=None, **kwargs) -> Cost:
    return Cost(macs=(Mac(a[0], 0, 1),))


@formula([aten.convolution, aten._convolution, aten.cudnn_convolution,
          aten.convolution_overrideable, aten.mkldnn_convolution,
          aten._slow_conv2d_forward, aten.slow_conv3d_forward])
def convolution(x, w, bias=None, stride=None, padding=None, dilation=None,
                transposed=False, *args, out_shape=None, **kwargs) -> Cost:
    batch = x[0]
    # w is (C_out, C_in/groups, *k) for a convolution and (C_in, C_out/groups, *k) for a
    # transposed one, so prod(w) is C_out * C_in / groups * prod(k) either way; a
    # transposed convolution visits each input position, a convolution each output one.
    positions = _numel((x if transposed is True else out_shape)[2:])
    macs = batch * positions * _numel(w)
    bias_adds = _numel(out_shape) if bias is not None else 0
    return Cost(macs=(Mac(macs, 0, 1),), elementwise=bias_adds)


# ---------------------------------------------------------------------------------------
# Normalization, softmax and other elementwise work

@formula(aten.native_layer_norm, output="layer_norm")
def layer_norm(x, normalized_shape, weight=None, bias=None, *args, out_shape=None, **kwargs) -> int:
    return _numel(x) * (5 if weight is not None else 4)


@formula(aten.native_group_norm)
def group_norm(x, weight=None, bias=None, *args, out_shape=None, **kwargs) -> int:
    return _numel(x) * (5 if weight is not None else 4)


@formula(aten._native_batch_norm_legit_no_training)
def batch_norm_inference(x, weight=None, bias=None, *args, out_shape=None, **kwargs) -> int:
    return _numel(x) * (2 if weight is not None else 1)


@formula(aten._native_batch_norm_legit)
def batch_norm_legit(x, weight=None, bias=None, running_mean=None, running_var=None,
                     training=True, *args, out_shape=None, **kwargs) -> int:
    if training:
        return _numel(x) * (5 if weight is not None else 4)
    return _numel(x) * (2 if weight is not None else 1)


@formula(aten._native_batch_norm_legit_functional)
def batch_norm_functional(x, weight=None, bias=None, running_mean=None, running_var=None,
                          training=True, *args, out_shape=None, **kwargs) -> int:
    return batch_norm_legit(x, weight, bias, running_mean, running_var, training)


@formula([aten.native_batch_norm, aten.cudnn_batch_norm, aten.miopen_batch_norm])
def native_batch_norm(x, weight=None, bias=None, running_mean=None, running_var=None,
                      training=False, *args, out_shape=None, **kwargs) -> int:
    return batch_norm_legit(x, weight, bias, running_mean, running_var, training)


@formula(aten._weight_norm_interface)
def weight_norm(v, g, *args, out_shape=None, **kwargs) -> int:
    # ||v|| over all but one dim (a square and an add per element), then g * v / ||v||.
    return 4 * _numel(v)


def _fft_flops(signal_shape, dim, real: bool) -> int:
    # Radix-2 estimate: 5 n log2(n) FLOPs per complex transform of length n, half of that
    # when the input or the output is real (n: the full signal's length).
    n = _numel([signal_shape[d] for d in dim])
    if n <= 1:
        return 0
    transforms = _numel(signal_shape) // n
    return int(round(transforms * 5 * n * math.log2(n) / (2 if real else 1)))


@formula(aten._fft_r2c)
def fft_r2c(x, dim, normalization, onesided, *args, out_shape=None, **kwargs) -> int:
    return _fft_flops(x, dim, real=True)


@formula(aten._fft_c2r)
def fft_c2r(x, dim, normalization, last_dim_size, *args, out_shape=None, **kwargs) -> int:
    return _fft_flops(out_shape, dim, real=True)


@formula(aten._fft_c2c)
def fft_c2c(x, dim, normalization, forward, *args, out_shape=None, **kwargs) -> int:
    return _fft_flops(x, dim, real=False)


elementwise([aten._softmax, aten._safe_softmax, aten._log_softmax, aten.softmax,
             aten.log_softmax], 1, per="input")
elementwise(aten.glu, 2)
elementwise([aten.addcmul, aten.addcmul_, aten.addcdiv, aten.addcdiv_, aten.lerp,
             aten.lerp_], 2)

# One FLOP per output element. The first three groups are the common ops whose outputs
# the fast meta path builds (see OUTPUT_RULES); the rest run their meta kernels.
_SAME_SHAPE = [
    "neg", "abs", "sign", "sgn", "reciprocal", "sqrt", "rsqrt", "exp", "log", "sin", "cos",
    "tanh", "sigmoid", "erf", "relu", "gelu", "silu", "mish", "elu", "leaky_relu", "hardtanh",
    "hardswish", "hardsigmoid", "softplus", "clamp", "clamp_min", "clamp_max", "floor",
    "ceil", "round", "trunc",
]
_BROADCAST = ["add", "sub", "mul", "div", "pow", "minimum", "maximum", "where"]
_COMPARISONS = ["eq", "ne", "lt", "le", "gt", "ge"]
_OTHER_ONE_PER_OUTPUT = [
    "rsub", "exp2", "expm1", "log1p", "log2", "log10", "square", "tan", "asin", "acos",
    "atan", "atan2", "sinh", "cosh", "erfc", "erfinv", "selu", "celu", "softshrink",
    "hardshrink", "threshold", "_prelu_kernel", "log_sigmoid_forward", "clip", "fmin",
    "fmax", "frac", "fmod", "remainder", "floor_divide", "logical_and", "logical_or",
    "logical_xor", "logical_not", "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not",
    "masked_fill", "isnan", "isinf", "isfinite", "nan_to_num", "hypot", "xlogy",
    "sigmoid_backward", "heaviside",
]
_ONE_PER_INPUT = [
    "sum", "mean", "nansum", "nanmean", "prod", "amax", "amin", "max", "min", "aminmax",
    "argmax", "argmin", "var", "std", "var_mean", "std_mean", "norm", "linalg_vector_norm",
    "logsumexp", "any", "all", "count_nonzero", "cumsum", "cumprod", "logcumsumexp",
    "cummax", "cummin", "avg_pool1d", "avg_pool2d", "avg_pool3d", "max_pool1d",
    "max_pool2d", "max_pool3d", "max_pool2d_with_indices", "max_pool3d_with_indices",
    "_adaptive_avg_pool2d", "_adaptive_avg_pool3d", "adaptive_max_pool2d",
    "adaptive_max_pool3d", "adaptive_avg_pool1d",
]
_UPSAMPLE = [
    "upsample_nearest1d", "upsample_nearest2d", "upsample_nearest3d", "_upsample_nearest_exact1d",
    "_upsample_nearest_exact2d", "upsample_linear1d", "upsample_bilinear2d",
    "upsample_bicubic2d", "upsample_trilinear3d",
]


def _packets(names: Iterable[str], inplace: bool = True) -> list:
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


elementwise(_packets(_SAME_SHAPE), 1, output="same")
elementwise(_packets(_BROADCAST), 1, output="broadcast")
elementwise(_packets(_COMPARISONS), 1, output="compare")
elementwise(_packets(_OTHER_ONE_PER_OUTPUT), 1)
elementwise(_packets(_ONE_PER_INPUT, inplace=False), 1, per="input")
elementwise(_packets(_UPSAMPLE, inplace=False), 1)

# Dropout is the identity at inference; profile a model in eval() for inference costs.
zero_cost(_packets(["native_dropout", "dropout", "bernoulli", "feature_dropout",
                    "alpha_dropout", "rand", "randn", "rand_like", "randn_like", "randint",
                    "randperm", "uniform", "normal", "multinomial", "exponential"]))

zero_cost(_packets([
    "clone", "copy", "_to_copy", "contiguous", "cat", "stack", "index", "index_select",
    "gather", "scatter", "index_put", "index_copy", "index_fill", "masked_select",
    "masked_scatter", "embedding", "_embedding_bag", "select_scatter", "slice_scatter",
    "diagonal_scatter", "as_strided_scatter", "constant_pad_nd", "reflection_pad1d",
    "reflection_pad2d", "replication_pad1d", "replication_pad2d", "pad", "roll", "flip",
    "repeat", "repeat_interleave", "tril", "triu", "zeros", "zeros_like", "ones",
    "ones_like", "full", "full_like", "empty", "empty_like", "empty_strided", "new_zeros",
    "new_ones", "new_full", "new_empty", "new_empty_strided", "arange", "linspace",
    "logspace", "eye", "scalar_tensor", "fill", "zero", "lift_fresh", "lift_fresh_copy",
    "detach", "alias", "_unsafe_view", "view", "reshape", "_reshape_alias", "expand",
    "permute", "transpose", "t", "squeeze", "unsqueeze", "select", "slice", "narrow",
    "split", "split_with_sizes", "unsafe_split", "unsafe_split_with_sizes", "unsafe_chunk",
    "chunk", "unbind", "unfold", "as_strided", "view_as",
    "_local_scalar_dense", "item", "_assert_async", "sym_size", "sym_stride", "sym_numel",
    "sym_storage_offset", "is_nonzero", "resize", "set", "nonzero", "sort", "argsort",
    "_pin_memory", "record_stream", "_has_compatible_shallow_copy_type",
    "_nested_tensor_from_mask", "_nested_tensor_from_mask_left_aligned",
    "_transform_bias_rescale_qkv", "_masked_softmax", "bucketize", "searchsorted",
    "one_hot", "col2im", "im2col", "pixel_shuffle", "channel_shuffle", "_unique2",
    "unique_consecutive", "unique_dim", "topk", "kthvalue", "_copy_from",
    "_copy_from_and_resize", "_conj", "_neg_view", "resolve_conj", "resolve_neg",
    "_foreach_copy", "_index_put_impl", "index_add", "scatter_add", "scatter_reduce",
    "_fused_sdp_choice", "_make_per_tensor_quantized_tensor",
]))


# ---------------------------------------------------------------------------------------
# Fused kernels, costed by the unfused reference they replace

@decomposition([aten._scaled_dot_product_flash_attention_for_cpu])
def sdpa_flash_cpu(query, key, value, dropout_p=0.0, is_causal=False, *, attn_mask=None,
                   scale=None):
    aten._scaled_dot_product_attention_math(
        query, key, value, attn_mask, 0.0, is_causal, scale=scale
    )


@decomposition([aten._scaled_dot_product_flash_attention])
def sdpa_flash(query, key, value, dropout_p=0.0, is_causal=False, return_debug_mask=False,
               *, scale=None):
    aten._scaled_dot_product_attention_math(query, key, value, None, 0.0, is_causal, scale=scale)


@decomposition([aten._scaled_dot_product_efficient_attention,
               aten._scaled_dot_product_cudnn_attention])
def sdpa_with_bias(query, key, value, attn_bias=None, compute_log_sumexp=False, dropout_p=0.0,
                   is_causal=False, *args, scale=None, **kwargs):
    aten._scaled_dot_product_attention_math(
        query, key, value, attn_bias, 0.0, is_causal, scale=scale
    )


@decomposition([aten._scaled_dot_product_fused_attention_overrideable])
def sdpa_overrideable(query, key, value, attn_bias=None, dropout_p=0.0, is_causal=False,
                      *args, scale=None, **kwargs):
    aten._scaled_dot_product_attention_math(
        query, key, value, attn_bias, 0.0, is_causal, scale=scale
    )


def _split_mha_mask(mask, mask_type, batch, heads, tgt_len, src_len):
    """The fast paths take one merged mask and its type (0: (L, S) attention mask,
    1: (B, S) key padding mask, 2: (B, H, L, S) both merged); the unfused call takes two."""
    if mask is None:
        return None, None
    if mask_type == 1:
        return None, mask
    if mask_type == 2:
        return mask.reshape(batch * heads, tgt_len, src_len), None
    return mask, None


def _mha_reference(query, key, value, embed_dim, num_heads, qkv_weight, qkv_bias,
                   proj_weight, proj_bias, mask, need_weights, average_attn_weights,
                   mask_type):
    # The fast path works on batch-first tensors; F.multi_head_attention_forward takes
    # (L, B, E), the transposes being views as on nn.MultiheadAttention's slow path.
    batch, tgt_len = query.shape[0], query.shape[1]
    src_len = key.shape[1]
    attn_mask, key_padding_mask = _split_mha_mask(mask, mask_type, batch, num_heads,
                                                  tgt_len, src_len)
    # Same identities as the slow path: `query is key is value` selects one packed
    # in-projection there.
    q = query.transpose(0, 1)
    k = q if key is query else key.transpose(0, 1)
    v = k if value is key else value.transpose(0, 1)
    out, _ = F.multi_head_attention_forward(
        q, k, v, embed_dim, num_heads, qkv_weight, qkv_bias, None, None, False, 0.0,
        proj_weight, proj_bias, training=False, key_padding_mask=key_padding_mask,
        need_weights=need_weights, attn_mask=attn_mask,
        average_attn_weights=average_attn_weights,
    )
    return out.transpose(0, 1)


@decomposition(aten._native_multi_head_attention)
def native_multi_head_attention(query, key, value, embed_dim, num_head, qkv_weight, qkv_bias,
                                proj_weight, proj_bias, mask=None, need_weights=True,
                                average_attn_weights=True, mask_type=None):
    _mha_reference(query, key, value, embed_dim, num_head, qkv_weight, qkv_bias,
                   proj_weight, proj_bias, mask, need_weights, average_attn_weights, mask_type)


@decomposition(aten._transformer_encoder_layer_fwd)
def transformer_encoder_layer(src, embed_dim, num_heads, qkv_weight, qkv_bias, proj_weight,
                              proj_bias, use_gelu, norm_first, eps, norm_weight_1,
                              norm_bias_1, norm_weight_2, norm_bias_2, ffn_weight_1,
                              ffn_bias_1, ffn_weight_2, ffn_bias_2, mask=None,
                              mask_type=None):
    # Mirrors nn.TransformerEncoderLayer's slow path, with each piece attributed to the
    # submodule that runs it there.
    def self_attention(x):
        with part("self_attn"):
            return _mha_reference(x, x, x, embed_dim, num_heads, qkv_weight, qkv_bias,
                                  proj_weight, proj_bias, mask, False, True, mask_type)

    def norm(x, name, weight, bias):
        with part(name):
            return F.layer_norm(x, (embed_dim,), weight, bias, eps)

    def feed_forward(x):
        with part("linear1"):
            h = F.linear(x, ffn_weight_1, ffn_bias_1)
        h = F.gelu(h) if use_gelu else F.relu(h)
        with part("linear2"):
            return F.linear(h, ffn_weight_2, ffn_bias_2)

    x = src
    if norm_first:
        x = x + self_attention(norm(x, "norm1", norm_weight_1, norm_bias_1))
        x = x + feed_forward(norm(x, "norm2", norm_weight_2, norm_bias_2))
    else:
        x = norm(x + self_attention(x), "norm1", norm_weight_1, norm_bias_1)
        x = norm(x + feed_forward(x), "norm2", norm_weight_2, norm_bias_2)


@decomposition(aten.mkldnn_rnn_layer)
def mkldnn_lstm_layer(input, weight_ih, weight_hh, bias_ih, bias_hh, hx, cx, reverse,
                      batch_sizes, mode, hidden_size, num_layers, has_biases, bidirectional,
                      batch_first, train):
    # oneDNN runs one direction of one LSTM layer per call on a time-major input; the
    # reference is the generic single-layer LSTM (running it reversed costs the same).
    params = [weight_ih, weight_hh, bias_ih, bias_hh] if has_biases else [weight_ih, weight_hh]
    aten.lstm.input(input, [hx.unsqueeze(0), cx.unsqueeze(0)], params, has_biases, 1, 0.0,
                    False, False, False)
