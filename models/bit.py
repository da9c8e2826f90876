"""BiT binarization (Liu et al. 2022, "BiT: Robustly Binarized Multi-distilled Transformer").

Weights: ``W_b = mean(|W|) * sign(W - mean(W))``, one scale per weight tensor (BiT's
default, ``weight_layerwise=True``), optionally one per output channel. The gradient passes
straight through to the float weight (BiT's BWN quantizer returns it unchanged).

Activations: elastic binarizers with a learnable scale ``alpha``
  signed   {-alpha, +alpha}: ``alpha * sign(x)``, for layer inputs and attention Q/K/V;
  unsigned {0, alpha}:      ``alpha * round(clip(x / alpha, 0, 1))``, after softmax and ReLU.
Backward, as in BiT's reference code (an LSQ variant): the input gradient passes where
``x / alpha`` lies inside the clipping range and is zero outside; ``alpha`` gets
``sum(dq/dalpha * grad) / sqrt(numel)``, with ``dq/dalpha = sign(x)`` (signed) and
``dq/dalpha = round(q) - q`` inside, ``1`` above, ``0`` below the range (unsigned).
``alpha`` starts at 1 and is set on the first training forward (training mode, gradients
enabled, real tensors) to ``2 * mean|x|`` (signed) or ``4 * mean|x|`` (unsigned), BiT's
"default" initialization; evaluation, ``no_grad`` and meta runs never change it.

Binary linear and convolution layers also learn a per-input-channel offset added before
binarization (BiT's ``LearnableBias`` "move").

Each binarized module states its bit-widths in plain attributes, the protocol the analyzer
reads (described in ``profiler/bits.py``; the zoo imports nothing from ``profiler``).
Deviation from BiT's code: ``sign(0)`` is taken as +1 so values really are in {-1, +1}.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

# Below this, a learned scale is clamped: a non-positive alpha would flip or kill the signal.
_MIN_ALPHA = 1e-5


class _SignedElasticBinarize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, alpha):
        alpha = alpha.clamp(min=_MIN_ALPHA)
        ctx.save_for_backward(x, alpha)
        return torch.where(x >= 0, alpha, -alpha).to(x.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        x, alpha = ctx.saved_tensors
        q = x / alpha
        inside = (q >= -1) & (q <= 1)
        grad_input = grad_output * inside
        sign = torch.where(x >= 0, 1.0, -1.0).to(grad_output.dtype)
        grad_scale = 1.0 / math.sqrt(x.numel())
        grad_alpha = (sign * grad_output).sum() * grad_scale
        return grad_input, grad_alpha.reshape(alpha.shape).to(alpha.dtype)


class _UnsignedElasticBinarize(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, alpha):
        alpha = alpha.clamp(min=_MIN_ALPHA)
        ctx.save_for_backward(x, alpha)
        return (x / alpha).round().clamp(0, 1) * alpha

    @staticmethod
    def backward(ctx, grad_output):
        x, alpha = ctx.saved_tensors
        q = x / alpha
        below = q < 0
        above = q > 1
        inside = ~(below | above)
        grad_input = grad_output * inside
        dq_dalpha = torch.where(above, torch.ones_like(q), torch.where(inside, q.round() - q, torch.zeros_like(q)))
        grad_scale = 1.0 / math.sqrt(x.numel())
        grad_alpha = (dq_dalpha * grad_output).sum() * grad_scale
        return grad_input, grad_alpha.reshape(alpha.shape).to(alpha.dtype)


class _BinarizeWeight(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight, per_channel: bool):
        if per_channel:
            dims = tuple(range(1, weight.dim()))
            scale = weight.abs().mean(dim=dims, keepdim=True)
            centre = weight.mean(dim=dims, keepdim=True)
        else:
            scale = weight.abs().mean()
            centre = weight.mean()
        return torch.where(weight >= centre, scale, -scale).to(weight.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, None


def binarize_weight(weight: torch.Tensor, per_channel: bool = False) -> torch.Tensor:
    """``mean|W| * sign(W - mean W)`` (per tensor, or per output channel), straight-through
    gradient. Depends on the parameter only, so a deployed model stores it as sign bits
    plus the scale(s)."""
    return _BinarizeWeight.apply(weight, per_channel)


class ElasticBinarizer(nn.Module):
    """Binarizes activations to {-alpha, alpha} (``signed``) or {0, alpha} with a learnable
    ``alpha``.

    ``init_over_nonzero``: take the initial mean over the non-zero entries only. Used for
    attention probabilities, whose exact zeros are masked-out pairs: the dense-masked and
    the blocked sparse attention then start from the same alpha.
    """

    def __init__(self, signed: bool, *, init_over_nonzero: bool = False):
        super().__init__()
        self.signed = signed
        self.init_over_nonzero = init_over_nonzero
        self.alpha = nn.Parameter(torch.ones(()))
        # Plain Python state, not a tensor: testing it must not read tensor data (meta runs).
        self.initialized = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Only a real training step initializes: not eval, no_grad (profiling) or meta runs.
        if self.training and not self.initialized and torch.is_grad_enabled() and not x.is_meta:
            self._initialize(x)
        if self.signed:
            return _SignedElasticBinarize.apply(x, self.alpha)
        return _UnsignedElasticBinarize.apply(x, self.alpha)

    @torch.no_grad()
    def _initialize(self, x: torch.Tensor) -> None:
        magnitude = x.detach().abs()
        if self.init_over_nonzero:
            mean = magnitude.sum() / (magnitude != 0).sum().clamp(min=1)
        else:
            mean = magnitude.mean()
        factor = 2.0 if self.signed else 4.0
        self.alpha.copy_(factor * mean)
        self.initialized = True

    def mark_initialized(self, alpha: float | None = None) -> None:
        """Skip the data-dependent first-batch initialization (tests, loaded checkpoints)."""
        if alpha is not None:
            with torch.no_grad():
                self.alpha.fill_(alpha)
        self.initialized = True

    def get_extra_state(self) -> Dict[str, Any]:
        return {"initialized": self.initialized}

    def set_extra_state(self, state: Dict[str, Any]) -> None:
        self.initialized = bool(state.get("initialized", False))

    def extra_repr(self) -> str:
        return "signed" if self.signed else "unsigned"


class LearnableBias(nn.Module):
    """Per-channel offset added to an activation before it is binarized (BiT's "move")."""

    def __init__(self, channels: int, channel_dim: int = -1):
        super().__init__()
        self.channel_dim = channel_dim
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.channel_dim == -1:
            return x + self.bias
        shape = [1] * x.dim()
        shape[self.channel_dim] = -1
        return x + self.bias.view(shape)


class BinaryLinear(nn.Linear):
    """Linear layer with 1-bit weights and 1-bit inputs (BiT). The MAC work is a single
    ``F.linear`` on the binarized input and the binarized weight."""

    weight_bits = 1
    activation_bits = 1
    parameter_bits = {"weight": 1}

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 unsigned_input: bool = False, per_channel_scale: bool = False):
        super().__init__(in_features, out_features, bias=bias)
        self.per_channel_scale = per_channel_scale
        self.input_offset = LearnableBias(in_features)
        self.input_binarizer = ElasticBinarizer(signed=not unsigned_input)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_binary = self.input_binarizer(self.input_offset(x))
        w_binary = binarize_weight(self.weight, self.per_channel_scale)
        return F.linear(x_binary, w_binary, self.bias)

    def extra_storage_bits(self) -> int:
        # The weight scales: recomputed on the fly in training, stored by a deployed model.
        scales = self.out_features if self.per_channel_scale else 1
        return scales * self.weight.element_size() * 8


class BinaryConv1d(nn.Conv1d):
    """Conv1d with 1-bit weights and 1-bit inputs (BiT's recipe applied to convolutions)."""

    weight_bits = 1
    activation_bits = 1
    parameter_bits = {"weight": 1}

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, groups: int = 1, bias: bool = True, *,
                 unsigned_input: bool = False, per_channel_scale: bool = False):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         groups=groups, bias=bias)
        self.per_channel_scale = per_channel_scale
        self.input_offset = LearnableBias(in_channels, channel_dim=1)
        self.input_binarizer = ElasticBinarizer(signed=not unsigned_input)

    def forward(self, x: torch.Tensor, padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``padding_mask`` (B, T), True at padding: those frames enter the convolution as
        0, like the frames of its own zero padding, rather than as +-alpha."""
        x_binary = self.input_binarizer(self.input_offset(x))
        if padding_mask is not None:
            x_binary = x_binary.masked_fill(padding_mask[:, None, :], 0.0)
        w_binary = binarize_weight(self.weight, self.per_channel_scale)
        return F.conv1d(x_binary, w_binary, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)

    def extra_storage_bits(self) -> int:
        scales = self.out_channels if self.per_channel_scale else 1
        return scales * self.weight.element_size() * 8


def linear(in_features: int, out_features: int, *, bias: bool = True, binarized: bool = False,
           unsigned_input: bool = False) -> nn.Linear:
    """A float ``nn.Linear`` or, in a binarized build, a ``BinaryLinear``. ``unsigned_input``
    says the input is non-negative (after ReLU), so BiT binarizes it to {0, 1}."""
    if binarized:
        return BinaryLinear(in_features, out_features, bias=bias, unsigned_input=unsigned_input)
    return nn.Linear(in_features, out_features, bias=bias)


def conv1d(in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1,
           padding: int = 0, groups: int = 1, bias: bool = True, binarized: bool = False) -> nn.Conv1d:
    if binarized:
        return BinaryConv1d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                            groups=groups, bias=bias)
    return nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                     groups=groups, bias=bias)


def masked_conv(conv: nn.Conv1d, x: torch.Tensor, padding_mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Applies ``conv`` to (B, C, T) ``x`` with the frames at ``padding_mask`` set to zero
    (after binarization, for a binary convolution)."""
    if padding_mask is None:
        return conv(x)
    x = x.masked_fill(padding_mask[:, None, :], 0.0)
    if isinstance(conv, BinaryConv1d):
        return conv(x, padding_mask)
    return conv(x)


def mark_binarizers_initialized(module: nn.Module) -> None:
    """Turn off the first-batch alpha initialization in every binarizer under ``module``."""
    for child in module.modules():
        if isinstance(child, ElasticBinarizer):
            child.mark_initialized()
