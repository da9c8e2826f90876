"""Formulas of the ops costed per element: normalization, softmax, activations,
arithmetic and comparisons, reductions, pooling, resampling; and the FFT.

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
views, copies, cat, index, gather, embedding lookup    0 (see no_arithmetic.py)
=====================================================  =====================================
"""
from __future__ import annotations

import math

import torch

from .registry import aten_ops, elementwise, formula, numel

aten = torch.ops.aten

# FLOPs per element of a normalization (the table above): 4 where it computes its statistics
# (layer and group norm, batch norm in training), 1 where it applies stored ones (batch norm
# at inference), and 1 more for an affine weight and bias.
COMPUTED_STATISTICS_FLOPS, STORED_STATISTICS_FLOPS, AFFINE_FLOPS = 4, 1, 1


def norm_flops(x, weight, *, computes_statistics: bool) -> int:
    per_element = COMPUTED_STATISTICS_FLOPS if computes_statistics else STORED_STATISTICS_FLOPS
    return numel(x) * (per_element + (AFFINE_FLOPS if weight is not None else 0))


@formula(aten.native_layer_norm, output="layer_norm")
def layer_norm(x, normalized_shape, weight=None, bias=None, *args, out_shape=None, **kwargs) -> int:
    return norm_flops(x, weight, computes_statistics=True)


@formula(aten.native_group_norm)
def group_norm(x, weight=None, bias=None, *args, out_shape=None, **kwargs) -> int:
    return norm_flops(x, weight, computes_statistics=True)


@formula(aten._native_batch_norm_legit_no_training)
def batch_norm_inference(x, weight=None, bias=None, *args, out_shape=None, **kwargs) -> int:
    return norm_flops(x, weight, computes_statistics=False)


@formula(aten._native_batch_norm_legit)
def batch_norm_legit(x, weight=None, bias=None, running_mean=None, running_var=None,
                     training=True, *args, out_shape=None, **kwargs) -> int:
    return norm_flops(x, weight, computes_statistics=bool(training))


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
    return 4 * numel(v)


def _fft_flops(signal_shape, dim, real: bool) -> int:
    # Radix-2 estimate: 5 n log2(n) FLOPs per complex transform of length n, half of that
    # when the input or the output is real (n: the full signal's length).
    n = numel([signal_shape[d] for d in dim])
    if n <= 1:
        return 0
    transforms = numel(signal_shape) // n
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
_REDUCE_ALL = ["sum", "mean"]  # reduced over all elements, the fast path's (OUTPUT_RULES)
_ONE_PER_INPUT = [
    "nansum", "nanmean", "prod", "amax", "amin", "max", "min", "aminmax",
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

elementwise(aten_ops(_SAME_SHAPE), 1, output="same")
elementwise(aten_ops(_BROADCAST), 1, output="broadcast")
elementwise(aten_ops(_COMPARISONS), 1, output="compare")
elementwise(aten_ops(_OTHER_ONE_PER_OUTPUT), 1)
elementwise(aten_ops(_REDUCE_ALL, inplace=False), 1, per="input", output="reduce_all")
elementwise(aten_ops(_ONE_PER_INPUT, inplace=False), 1, per="input")
elementwise(aten_ops(_UPSAMPLE, inplace=False), 1)
