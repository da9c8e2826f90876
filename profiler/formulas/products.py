"""Formulas of matrix products and convolutions: the ops that do multiply-accumulates.

MACs: ``mm``/``bmm``/``addmm``/``baddbmm`` m*k*n per matrix; convolution
N * prod(output spatial) * C_out * (C_in / groups) * prod(kernel) (for transposed
convolutions the input's spatial size takes the output's place). A bias costs 1 FLOP per
output element.
"""
from __future__ import annotations

import torch

from .registry import Cost, Mac, formula, numel

aten = torch.ops.aten


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


def _convolution_cost(x, w, has_bias: bool, transposed: bool, out_shape) -> Cost:
    # w is (C_out, C_in/groups, *k) for a convolution and (C_in, C_out/groups, *k) for a
    # transposed one, so prod(w) is C_out * C_in / groups * prod(k) either way; a
    # transposed convolution visits each input position, a convolution each output one.
    positions = numel((x if transposed else out_shape)[2:])
    macs = x[0] * positions * numel(w)
    return Cost(macs=(Mac(macs, 0, 1),), elementwise=numel(out_shape) if has_bias else 0)


# The convolution ops differ in where (and whether) they take the bias and the transposed
# flag: one formula per argument layout. mkldnn_convolution has groups where the others
# have transposed (an int, never True: it does not transpose).
@formula([aten.convolution, aten._convolution, aten.convolution_overrideable,
          aten.mkldnn_convolution])
def convolution(x, w, bias=None, stride=None, padding=None, dilation=None,
                transposed=False, *args, out_shape=None, **kwargs) -> Cost:
    return _convolution_cost(x, w, bias is not None, transposed is True, out_shape)


@formula(aten.cudnn_convolution)
def cudnn_convolution(x, w, *args, out_shape=None, **kwargs) -> Cost:
    """``(input, weight, padding, stride, dilation, groups, benchmark, ...)``: no bias."""
    return _convolution_cost(x, w, False, False, out_shape)


@formula([aten._slow_conv2d_forward, aten.slow_conv3d_forward])
def slow_convolution(x, w, kernel_size=None, bias=None, *args, out_shape=None,
                     **kwargs) -> Cost:
    """``(input, weight, kernel_size, bias, stride, padding)``."""
    return _convolution_cost(x, w, bias is not None, False, out_shape)
