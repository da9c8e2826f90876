"""Costs of ``torch.ao.nn.quantized`` modules (static and dynamic quantization).

Their weights live in packed parameters (a ``torch.ScriptObject``), not in tensors the
analyzer sees, and their ops (``quantized::linear``, ``quantized::conv1d``...) are not ATen
ops. The formulas here count them like their float counterparts: ``out x in_features``
MACs for a linear, ``out x (C_in / groups) x kernel`` for a convolution, plus the bias and
a fused ReLU at 1 FLOP per output element. The analyzer takes the packed weight as the
constant operand at its own dtype's bits (qint8: 8) and the activation at its tensor's
dtype: 8 bits for static quantization (quint8 inputs), 32 for dynamic quantization, whose
input arrives in float32 (the kernel quantizes it on the fly; a model declaring
``activation_bits`` overrides this). Storage: see :func:`profiler.bits.quantized_storage_bits`.

Quantizing and dequantizing (``QuantStub``/``DeQuantStub``) are conversions, free like
``to(dtype)``. Run a quantized model with ``device="cpu"``: quantized kernels have no meta
implementation.
"""
from __future__ import annotations

import math

import torch

from .. import bits as bitspec
from .registry import Cost, Mac, formula, zero_cost

quantized = torch.ops.quantized
aten = torch.ops.aten


def _bias_flops(packed, out_shape) -> int:
    weight_and_bias = packed.unpack() if bitspec.packed_weight(packed) is not None else (None, None)
    return math.prod(out_shape) if weight_and_bias[1] is not None else 0


def _linear(x, packed, relu: bool, out_shape) -> Cost:
    macs = math.prod(out_shape) * x[-1]
    extra = _bias_flops(packed, out_shape) + (math.prod(out_shape) if relu else 0)
    return Cost(macs=(Mac(macs, 0, 1),), elementwise=extra)


def _conv(x, packed, relu: bool, out_shape) -> Cost:
    weight = bitspec.packed_weight(packed)
    per_output = math.prod(weight.shape[1:])  # C_in / groups x kernel
    extra = _bias_flops(packed, out_shape) + (math.prod(out_shape) if relu else 0)
    return Cost(macs=(Mac(math.prod(out_shape) * per_output, 0, 1),), elementwise=extra)


def _register() -> None:
    for name, maker, relu in (
            ("linear", _linear, False), ("linear_relu", _linear, True),
            ("linear_dynamic", _linear, False), ("linear_relu_dynamic", _linear, True),
            ("conv1d", _conv, False), ("conv1d_relu", _conv, True),
            ("conv2d", _conv, False), ("conv2d_relu", _conv, True),
            ("conv3d", _conv, False), ("conv3d_relu", _conv, True)):
        op = getattr(quantized, name, None)
        if op is None:
            continue

        def cost(x, packed, *args, out_shape=None, _maker=maker, _relu=relu, **kwargs):
            return _maker(x, packed, _relu, out_shape)

        formula(op)(cost)
    zero_cost([aten.quantize_per_tensor, aten.quantize_per_channel, aten.dequantize])


_register()
