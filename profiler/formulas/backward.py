"""Formulas of the backward kernels autograd runs in a training step (``mode="train"``).

Matrix products need no formulas of their own: autograd computes a linear layer's and a
matmul's gradients with ``mm``/``bmm``, counted by :mod:`.products`. The kernels here are
the fused gradients of convolutions, attention, norms and pointwise functions.

Conventions (a backward kernel costs what its forward costs, with each gradient counted
only when autograd asks for it):

==============================================  =========================================
backward kernel                                 cost
==============================================  =========================================
convolution_backward                            input gradient: the forward's MACs
                                                (grad_out x weight); weight gradient: the
                                                forward's MACs (grad_out x input); bias
                                                gradient: 1 FLOP per grad_out element
fused attention (flash / efficient / math)      dQ, dK, dV and dP: 2x the forward's MACs
                                                (4 products of the forward's sizes), and
                                                the softmax backward: 1 per score element
layer/group/batch norm backward                 input gradient: the forward's FLOPs;
                                                weight and bias gradients: 1 FLOP per
                                                element each (a product and a reduction)
softmax / log_softmax backward                  1 per element (as the forward)
activation backward (gelu, silu, tanh, relu's   1 per element (as the forward: the
threshold, hardtanh, elu, leaky_relu, glu: 2)   derivative times the incoming gradient is
                                                one pointwise op)
weight_norm backward                            the forward's 4 per element
max/avg pooling backward                        1 per input element (as the forward)
slice/select/index/embedding backward, dropout  0 (a scatter into zeros, a mask: no
backward                                        arithmetic, as their forwards)
==============================================  =========================================
"""
from __future__ import annotations

import torch

from .per_element import layer_norm
from .products import convolution
from .registry import Cost, Mac, aten_ops, elementwise, formula, numel, zero_cost

aten = torch.ops.aten


def _wanted(mask, index: int) -> bool:
    return mask is None or bool(mask[index])


@formula(aten.convolution_backward)
def convolution_backward(grad_out, x, w, bias_sizes=None, stride=None, padding=None,
                         dilation=None, transposed=False, output_padding=None, groups=1,
                         output_mask=None, *args, out_shape=None, **kwargs) -> list:
    forward = convolution(x, w, None, stride, padding, dilation, transposed,
                          out_shape=grad_out).macs[0].count
    costs = []
    if _wanted(output_mask, 0):  # grad_input = grad_out (*) weight
        costs.append(Cost(macs=(Mac(forward, 0, 2),)))
    if _wanted(output_mask, 1):  # grad_weight = grad_out (*) input
        costs.append(Cost(macs=(Mac(forward, 0, 1),)))
    if bias_sizes is not None and _wanted(output_mask, 2):
        costs.append(Cost(elementwise=numel(grad_out)))
    return costs


@formula([aten._scaled_dot_product_flash_attention_for_cpu_backward,
          aten._scaled_dot_product_flash_attention_backward,
          aten._scaled_dot_product_efficient_attention_backward,
          aten._scaled_dot_product_cudnn_attention_backward])
def sdpa_backward(grad_out, q, k, v, *args, out_shape=None, **kwargs) -> Cost:
    *batch, length, e = q
    source, ev = k[-2], v[-1]
    scores = numel(batch) * length * source
    # dV = P^T dO and dP = dO V^T (Ev deep), dQ = dS K and dK = dS^T Q (E deep)
    return Cost(macs=(Mac(scores * ev, None, None), Mac(scores * ev, None, None),
                      Mac(scores * e, None, None), Mac(scores * e, None, None)),
                elementwise=scores)


def _norm_backward(grad_out, x, weight, mask, forward_flops: int) -> int:
    flops = forward_flops if _wanted(mask, 0) else 0
    if weight is not None:
        flops += numel(x) * (int(_wanted(mask, 1)) + int(_wanted(mask, 2)))
    return flops


@formula(aten.native_layer_norm_backward)
def layer_norm_backward(grad_out, x, normalized_shape, mean, rstd, weight=None, bias=None,
                        output_mask=None, *args, out_shape=None, **kwargs) -> int:
    return _norm_backward(grad_out, x, weight, output_mask, layer_norm(x, normalized_shape,
                                                                       weight))


@formula(aten.native_group_norm_backward)
def group_norm_backward(grad_out, x, mean, rstd, weight=None, n=None, c=None, hw=None,
                        group=None, output_mask=None, *args, out_shape=None, **kwargs) -> int:
    return _norm_backward(grad_out, x, weight, output_mask, layer_norm(x, None, weight))


@formula(aten.native_batch_norm_backward)
def batch_norm_backward(grad_out, x, weight=None, *args, out_shape=None, **kwargs) -> int:
    mask = args[-1] if args and isinstance(args[-1], (list, tuple)) else None
    return _norm_backward(grad_out, x, weight, mask, layer_norm(x, None, weight))


@formula(aten._weight_norm_interface_backward)
def weight_norm_backward(grad_w, v, g, norms, dim=0, *args, out_shape=None, **kwargs) -> int:
    return 4 * numel(v)


elementwise([aten._softmax_backward_data, aten._log_softmax_backward_data], 1)
elementwise(aten_ops(["gelu_backward", "silu_backward", "tanh_backward", "threshold_backward",
                      "hardtanh_backward", "elu_backward", "leaky_relu_backward",
                      "hardswish_backward", "hardsigmoid_backward", "softplus_backward",
                      "mish_backward", "log_sigmoid_backward"], inplace=False), 1)
elementwise(aten.glu_backward, 2, per="input")
elementwise(aten_ops(["max_pool2d_with_indices_backward", "avg_pool2d_backward"],
                     inplace=False), 1)
zero_cost(aten_ops(["slice_backward", "select_backward", "index_select_backward",
                    "embedding_dense_backward", "native_dropout_backward", "unfold_backward",
                    "diagonal_backward"], inplace=False))
