"""BiT binarization (Liu et al. 2022, "BiT: Robustly Binarized Multi-distilled Transformer")
and its k-bit generalization, for a layer's weights and its activations at any bit pair.

Weights at 1 bit: ``W_b = mean(|W|) * sign(W - mean(W))``, one scale per weight tensor
(BiT's default, ``weight_layerwise=True``), optionally one per output channel. The gradient
passes straight through to the float weight (BiT's BWN quantizer returns it unchanged).

Weights at k >= 2 bits: uniform and symmetric around zero, with either
  a statistics scale (BiT's ``SymQuantizer``): ``s = max|W| / Q``, ``W_q = s * round(W / s)``,
  levels ``{-Q .. Q}`` with ``Q = 2^(k-1) - 1``, gradient straight through; or
  a learned scale (LSQ, Esser et al. 2020): the signed elastic quantizer below applied to
  the weight, levels ``{-2^(k-1) .. 2^(k-1) - 1}``.

Activations: elastic quantizers with a learnable scale ``alpha`` (BiT's
``ElasticQuantBinarizerSigned``/``Unsigned``, which take any number of bits):
  signed, 1 bit   {-alpha, +alpha}: ``alpha * sign(x)``, for layer inputs and attention Q/K/V;
  signed, k bits  ``alpha * clip(round(x / alpha), -2^(k-1), 2^(k-1) - 1)``;
  unsigned        ``alpha * clip(round(x / alpha), 0, 2^k - 1)``, after softmax and ReLU.
Backward, as in BiT's reference code (an LSQ variant), with ``Qn .. Qp`` the level range:
the input gradient passes where ``x / alpha`` lies inside ``[Qn, Qp]`` and is zero outside;
``alpha`` gets ``sum(dq/dalpha * grad) / sqrt(numel * max(Qp, 1))``, with ``dq/dalpha =
sign(x)`` (signed, 1 bit) and otherwise ``round(q) - q`` inside, ``Qp`` above and ``Qn``
below the range. ``alpha`` starts at 1 and is set on the first training forward (training
mode, gradients enabled, real tensors) to ``2 * mean|x| / sqrt(Qp)`` (signed) or
``4 * mean|x| / sqrt(Qp)`` (unsigned), ``Qp`` at least 1: BiT's "default" initialization;
evaluation, ``no_grad`` and meta runs never change it.

Quantized linear and convolution layers also learn a per-input-channel offset added before
the activation quantizer (BiT's ``LearnableBias`` "move"). 32 bits on either side means
that side stays float.

Each quantized module states its bit-widths to the analyzer with plain attributes
(``weight_bits``, ``activation_bits``, ``parameter_bits``, ``extra_storage_bits``; see the
README's "Declaring bits"). The bit pair a layer is built at, ``Quantization``, is in
``quantization.py``. Deviation from BiT's code: ``sign(0)`` is taken as +1 so values
really are in {-1, +1}.
"""
from __future__ import annotations

import math
from typing import Any, Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .quantization import FULL_PRECISION, FULL_PRECISION_BITS, W1A1, Quantization

# Below this, a learned scale is clamped: a non-positive alpha would flip or kill the signal.
_MIN_ALPHA = 1e-5


def level_range(bits: int, signed: bool) -> tuple[int, int]:
    """(Qn, Qp): the integer levels of an elastic quantizer; 1 bit signed is {-1, +1}."""
    if signed:
        return (-1, 1) if bits == 1 else (-2 ** (bits - 1), 2 ** (bits - 1) - 1)
    return 0, 2 ** bits - 1


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


class _ElasticQuantize(torch.autograd.Function):
    """``alpha * clip(round(x / alpha), Qn, Qp)`` (every case but the 1-bit signed one)."""

    @staticmethod
    def forward(ctx, x, alpha, low: int, high: int):
        alpha = alpha.clamp(min=_MIN_ALPHA)
        ctx.save_for_backward(x, alpha)
        ctx.levels = (low, high)
        return (x / alpha).round().clamp(low, high) * alpha

    @staticmethod
    def backward(ctx, grad_output):
        x, alpha = ctx.saved_tensors
        low, high = ctx.levels
        q = x / alpha
        below = q < low
        above = q > high
        inside = ~(below | above)
        grad_input = grad_output * inside
        dq_dalpha = torch.where(above, torch.full_like(q, high),
                                torch.where(inside, q.round() - q, torch.full_like(q, low)))
        grad_scale = 1.0 / math.sqrt(x.numel() * max(high, 1))
        grad_alpha = (dq_dalpha * grad_output).sum() * grad_scale
        return grad_input, grad_alpha.reshape(alpha.shape).to(alpha.dtype), None, None


def weight_signs_and_scale(weight: torch.Tensor, per_channel: bool):
    """BiT's binarized weight as (signs, scale): ``weight >= mean`` and ``mean |weight|``,
    over the whole tensor or, ``per_channel``, over each output channel (the scale then
    shaped to broadcast against the weight). The simulation and the packed deployment
    both binarize with it."""
    if per_channel:
        dims = tuple(range(1, weight.dim()))
        scale = weight.abs().mean(dim=dims, keepdim=True)
        centre = weight.mean(dim=dims, keepdim=True)
    else:
        scale, centre = weight.abs().mean(), weight.mean()
    return weight >= centre, scale


class _BinarizeWeight(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight, per_channel: bool):
        signs, scale = weight_signs_and_scale(weight, per_channel)
        return torch.where(signs, scale, -scale).to(weight.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, None


class _SymmetricQuantizeWeight(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight, bits: int, per_channel: bool):
        if per_channel:
            dims = tuple(range(1, weight.dim()))
            largest = weight.abs().amax(dim=dims, keepdim=True)
        else:
            largest = weight.abs().max()
        step = largest.clamp(min=_MIN_ALPHA) / (2 ** (bits - 1) - 1)
        return (weight / step).round() * step

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output, None, None


def binarize_weight(weight: torch.Tensor, per_channel: bool = False) -> torch.Tensor:
    """``mean|W| * sign(W - mean W)`` (per tensor, or per output channel), straight-through
    gradient. Depends on the parameter only, so a deployed model stores it as sign bits
    plus the scale(s)."""
    return _BinarizeWeight.apply(weight, per_channel)


def quantize_weight(weight: torch.Tensor, bits: int, per_channel: bool = False) -> torch.Tensor:
    """``bits`` = 1: :func:`binarize_weight`. Otherwise BiT's symmetric quantizer with the
    statistics scale ``max|W| / (2^(bits-1) - 1)`` (per tensor or per output channel),
    levels ``{-(2^(bits-1) - 1) .. 2^(bits-1) - 1}``, straight-through gradient."""
    if bits == 1:
        return binarize_weight(weight, per_channel)
    return _SymmetricQuantizeWeight.apply(weight, bits, per_channel)


class ElasticBinarizer(nn.Module):
    """Quantizes activations to ``bits`` bits with a learnable scale ``alpha``: signed
    levels {-alpha, alpha} at 1 bit, ``alpha * {-2^(bits-1) .. 2^(bits-1) - 1}`` above;
    unsigned ``alpha * {0 .. 2^bits - 1}``. Named after BiT's ``ElasticQuantBinarizer``,
    which also serves every bit-width.

    ``init_over_nonzero``: take the initial mean over the non-zero entries only. Used for
    attention probabilities, whose exact zeros are masked-out pairs: the dense-masked and
    the blocked sparse attention then start from the same alpha on an unpadded batch (see
    :mod:`models.sparseformer` for where they part).
    """

    # The learned scale, which BiT trains at its own learning rate without weight decay.
    scale_parameters = ("alpha",)

    def __init__(self, signed: bool, *, bits: int = 1, init_over_nonzero: bool = False):
        super().__init__()
        if (isinstance(bits, bool) or not isinstance(bits, int)
                or not 1 <= bits < FULL_PRECISION_BITS):
            raise ValueError(f"an elastic quantizer needs 1 to {FULL_PRECISION_BITS - 1} bits, "
                             f"got {bits!r}")
        self.signed = signed
        self.bits = bits
        self.levels = level_range(bits, signed)
        self.init_over_nonzero = init_over_nonzero
        self.alpha = nn.Parameter(torch.ones(()))
        # Plain Python state, not a tensor: testing it must not read tensor data (meta runs).
        self.initialized = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Only a real training step initializes: not eval, no_grad (profiling) or meta runs.
        if self.training and not self.initialized and torch.is_grad_enabled() and not x.is_meta:
            self._initialize(x)
        if self.signed and self.bits == 1:
            return _SignedElasticBinarize.apply(x, self.alpha)
        return _ElasticQuantize.apply(x, self.alpha, *self.levels)

    @torch.no_grad()
    def _initialize(self, x: torch.Tensor) -> None:
        magnitude = x.detach().abs()
        if self.init_over_nonzero:
            mean = magnitude.sum() / (magnitude != 0).sum().clamp(min=1)
        else:
            mean = magnitude.mean()
        factor = 2.0 if self.signed else 4.0
        self.alpha.copy_(factor * mean / math.sqrt(max(self.levels[1], 1)))
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
        kind = "signed" if self.signed else "unsigned"
        return kind if self.bits == 1 else f"{kind}, bits={self.bits}"


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


class _QuantizedOperands:
    """Weight and input quantization shared by ``QuantizedLinear`` and ``QuantizedConv1d``.
    A float side declares nothing, so the analyzer takes it at its dtype's width."""

    weight_bits: Optional[int] = None
    activation_bits: Optional[int] = None

    def _init_quantizers(self, quantization: Quantization, in_channels: int, channel_dim: int,
                         unsigned_input: bool, per_channel_scale: bool) -> None:
        self.per_channel_scale = per_channel_scale
        self.weight_quantizer = None
        self.input_offset = self.input_binarizer = None
        if quantization.weights_quantized:
            self.weight_bits = quantization.weight_bits
            self.parameter_bits = {"weight": quantization.weight_bits}
            if quantization.weight_bits > 1 and quantization.weight_scale == "learned":
                if per_channel_scale:
                    raise ValueError("a learned weight scale is one per tensor")
                self.weight_quantizer = ElasticBinarizer(signed=True, bits=quantization.weight_bits)
        if quantization.activations_quantized:
            self.activation_bits = quantization.activation_bits
            self.input_offset = LearnableBias(in_channels, channel_dim=channel_dim)
            self.input_binarizer = ElasticBinarizer(signed=not unsigned_input,
                                                    bits=quantization.activation_bits)

    def _quantized_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_binarizer is None:
            return x
        return self.input_binarizer(self.input_offset(x))

    def _quantized_weight(self) -> torch.Tensor:
        if self.weight_bits is None:
            return self.weight
        if self.weight_quantizer is not None:
            return self.weight_quantizer(self.weight)
        return quantize_weight(self.weight, self.weight_bits, self.per_channel_scale)

    def extra_storage_bits(self) -> int:
        # A statistics scale: recomputed on the fly in training, stored by a deployed model.
        # (A learned scale is a parameter and counts as one.)
        if self.weight_bits is None or self.weight_quantizer is not None:
            return 0
        scales = self.weight.shape[0] if self.per_channel_scale else 1
        return scales * self.weight.element_size() * 8


class QuantizedLinear(_QuantizedOperands, nn.Linear):
    """Linear layer on quantized weights and quantized inputs (either side may stay float).
    The MAC work is a single ``F.linear`` on the quantized input and weight."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 quantization: Quantization, unsigned_input: bool = False,
                 per_channel_scale: bool = False):
        super().__init__(in_features, out_features, bias=bias)
        self._init_quantizers(quantization, in_features, -1, unsigned_input, per_channel_scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self._quantized_input(x), self._quantized_weight(), self.bias)


class QuantizedConv1d(_QuantizedOperands, nn.Conv1d):
    """Conv1d on quantized weights and quantized inputs (either side may stay float)."""

    # masked_conv passes the padding mask: padded frames must enter as 0 after quantization.
    takes_padding_mask = True

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, groups: int = 1, bias: bool = True, *,
                 quantization: Quantization, unsigned_input: bool = False,
                 per_channel_scale: bool = False):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         groups=groups, bias=bias)
        self._init_quantizers(quantization, in_channels, 1, unsigned_input, per_channel_scale)

    def forward(self, x: torch.Tensor, padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``padding_mask`` (B, T), True at padding: those frames enter the convolution as
        0, like the frames of its own zero padding, rather than as a quantized offset."""
        x = self._quantized_input(x)
        if padding_mask is not None and self.input_binarizer is not None:
            x = x.masked_fill(padding_mask[:, None, :], 0.0)
        return F.conv1d(x, self._quantized_weight(), self.bias, self.stride, self.padding,
                        self.dilation, self.groups)


class BinaryLinear(QuantizedLinear):
    """Linear layer with 1-bit weights and 1-bit inputs (BiT)."""

    weight_bits = 1
    activation_bits = 1
    parameter_bits = {"weight": 1}

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *,
                 unsigned_input: bool = False, per_channel_scale: bool = False):
        super().__init__(in_features, out_features, bias=bias, quantization=W1A1,
                         unsigned_input=unsigned_input, per_channel_scale=per_channel_scale)


class BinaryConv1d(QuantizedConv1d):
    """Conv1d with 1-bit weights and 1-bit inputs (BiT's recipe applied to convolutions)."""

    weight_bits = 1
    activation_bits = 1
    parameter_bits = {"weight": 1}

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, groups: int = 1, bias: bool = True, *,
                 unsigned_input: bool = False, per_channel_scale: bool = False):
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         groups=groups, bias=bias, quantization=W1A1,
                         unsigned_input=unsigned_input, per_channel_scale=per_channel_scale)


def linear(in_features: int, out_features: int, *, bias: bool = True,
           quantization: Quantization = FULL_PRECISION, unsigned_input: bool = False) -> nn.Linear:
    """A float ``nn.Linear``, a ``BinaryLinear`` at W1A1 or a ``QuantizedLinear``.
    ``unsigned_input`` says the input is non-negative (after ReLU), so its quantizer uses
    the levels {0 .. 2^bits - 1}."""
    if _is_binary(quantization):
        return BinaryLinear(in_features, out_features, bias=bias, unsigned_input=unsigned_input)
    if quantization.quantized:
        return QuantizedLinear(in_features, out_features, bias=bias, quantization=quantization,
                               unsigned_input=unsigned_input)
    return nn.Linear(in_features, out_features, bias=bias)


def conv1d(in_channels: int, out_channels: int, kernel_size: int, *, stride: int = 1,
           padding: int = 0, groups: int = 1, bias: bool = True,
           quantization: Quantization = FULL_PRECISION) -> nn.Conv1d:
    shape = dict(stride=stride, padding=padding, groups=groups, bias=bias)
    if _is_binary(quantization):
        return BinaryConv1d(in_channels, out_channels, kernel_size, **shape)
    if quantization.quantized:
        return QuantizedConv1d(in_channels, out_channels, kernel_size, quantization=quantization,
                               **shape)
    return nn.Conv1d(in_channels, out_channels, kernel_size, **shape)


def per_channel_depthwise_scales(module: nn.Module) -> int:
    """Give every depthwise quantized convolution in ``module`` whose weights take a
    statistics scale one scale per output channel instead of one per tensor; returns how
    many. (A learned k-bit scale is one per tensor and stays so.)"""
    changed = 0
    for layer in module.modules():
        if (isinstance(layer, QuantizedConv1d) and layer.weight_bits is not None
                and layer.weight_quantizer is None
                and layer.groups == layer.in_channels == layer.out_channels > 1):
            layer.per_channel_scale = True
            changed += 1
    return changed


def _is_binary(quantization: Quantization) -> bool:
    return quantization.weight_bits == 1 and quantization.activation_bits == 1


def takes_padding_mask(conv: nn.Module) -> bool:
    """Whether ``conv`` (quantized, simulated or deployed) must be told which frames are
    padding: after quantization a zero frame is no longer 0 unless the layer knows."""
    return getattr(conv, "takes_padding_mask", False)


def masked_conv(conv: nn.Conv1d, x: torch.Tensor,
                padding_mask: Optional[torch.Tensor]) -> torch.Tensor:
    """Applies ``conv`` to (B, C, T) ``x`` with the frames at ``padding_mask`` set to zero
    (after quantization, for a quantized convolution)."""
    if padding_mask is None:
        return conv(x)
    x = x.masked_fill(padding_mask[:, None, :], 0.0)
    if takes_padding_mask(conv):
        return conv(x, padding_mask)
    return conv(x)


def uninitialized_binarizers(module: nn.Module) -> list:
    """Names of the quantizers under ``module`` whose alpha still waits for its first batch
    (a model built, not trained or restored)."""
    return [name for name, child in module.named_modules()
            if isinstance(child, ElasticBinarizer) and not child.initialized]


def mark_binarizers_initialized(module: nn.Module) -> None:
    """Turn off the first-batch alpha initialization in every quantizer under ``module``."""
    for child in module.modules():
        if isinstance(child, ElasticBinarizer):
            child.mark_initialized()
