"""Deployed W1A1 Linear layers and convolutions (pointwise and depthwise): weights held as
packed sign bits with their scale, inputs binarized and packed on the fly.

Each layer keeps two forms of its weight bits: ``weight_signs``, the state that is saved
(all sign bits back to back, 1 bit per weight), and ``weight_words``, the same bits
re-laid one 64-bit-aligned row per output channel for the kernel, rebuilt on load.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from ..bit import QuantizedConv1d, QuantizedLinear, weight_signs_and_scale
from . import kernels


def compact_signs(signs: torch.Tensor) -> torch.Tensor:
    """Bool tensor -> its bits back to back in int64 words (the saved form)."""
    flat = signs.reshape(-1)
    flat = F.pad(flat, (0, -flat.numel() % kernels.WORD_BITS))
    return kernels.pack_rows(flat.view(-1, kernels.WORD_BITS)).reshape(-1)


def expand_signs(words: torch.Tensor, shape: tuple) -> torch.Tensor:
    """Inverse of :func:`compact_signs`: the bool tensor of ``shape``."""
    count = math.prod(shape)
    shifts = torch.arange(kernels.WORD_BITS, dtype=torch.int64)
    bits = (words[:, None] >> shifts) & 1
    return bits.reshape(-1)[:count].to(torch.bool).reshape(shape)


def is_binary(layer: nn.Module) -> bool:
    """A quantized Linear or Conv1d at W1A1 with the statistics weight scale."""
    return (isinstance(layer, (QuantizedLinear, QuantizedConv1d)) and layer.weight_bits == 1
            and layer.activation_bits == 1 and layer.weight_quantizer is None)


def binarizer_alpha(binarizer: nn.Module) -> torch.Tensor:
    """The scale an ElasticBinarizer applies (its forward clamps alpha the same way)."""
    from ..bit import _MIN_ALPHA

    return binarizer.alpha.detach().clamp(min=_MIN_ALPHA).clone()


class _PackedWeights(nn.Module):
    """Weight signs and scale of a binarized layer, its input offset and binarizer."""

    def _init_from(self, layer: nn.Module, rows: int, row_bits: int) -> None:
        signs, scale = weight_signs_and_scale(layer.weight.detach(), layer.per_channel_scale)
        if layer.per_channel_scale:
            scale = scale.flatten()          # one per output row
        self.rows, self.row_bits = rows, row_bits
        self.unsigned_input = not layer.input_binarizer.signed
        self.register_buffer("weight_signs", compact_signs(signs))
        self.register_buffer("weight_scale", scale.clone())
        self.register_buffer("input_offset", layer.input_offset.bias.detach().clone())
        self.register_buffer("input_alpha", binarizer_alpha(layer.input_binarizer))
        self.register_buffer("bias", None if layer.bias is None else layer.bias.detach().clone())
        self.register_buffer("weight_words", kernels.pack_rows(signs.reshape(rows, row_bits)),
                             persistent=False)

    def _unpack(self) -> None:
        signs = expand_signs(self.weight_signs, (self.rows, self.row_bits))
        self.weight_words = kernels.pack_rows(signs)

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._unpack()

    def output_scale(self) -> torch.Tensor:
        """alpha * weight scale: the value of one unit of the integer product."""
        return self.input_alpha * self.weight_scale

    def _op(self) -> int:
        return kernels.AND if self.unsigned_input else kernels.XOR

    def _product(self, bits: torch.Tensor, dtype: torch.dtype,
                 bias: Optional[torch.Tensor]) -> torch.Tensor:
        """(rows, words) packed inputs -> (rows, out) ``products * scale + bias``; in float32
        the kernel writes it in the same pass."""
        if dtype == torch.float32:
            return kernels.binary_matmul(bits[None], self.weight_words[None], self.row_bits,
                                         self._op(), scale=self.output_scale(), bias=bias)[0]
        counts = kernels.binary_matmul(bits[None], self.weight_words[None], self.row_bits,
                                       self._op())[0]
        out = counts.to(dtype) * self.output_scale()
        return out if bias is None else out + bias

    def extra_repr(self) -> str:
        kind = "{0, 1}" if self.unsigned_input else "signed"
        return f"rows={self.rows}, bits={self.row_bits}, input={kind}"


class PackedLinear(_PackedWeights):
    """``BinaryLinear`` on packed operands."""

    def __init__(self, layer: QuantizedLinear):
        super().__init__()
        self.in_features, self.out_features = layer.in_features, layer.out_features
        self._init_from(layer, layer.out_features, layer.in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lead = x.shape[:-1]
        bits = kernels.pack_rows(x, self.input_offset, self.input_alpha,
                                 self.unsigned_input)
        out = self._product(bits.reshape(-1, bits.size(-1)), x.dtype, self.bias)
        return out.view(*lead, self.out_features)


class PackedPointwiseConv1d(_PackedWeights):
    """A kernel-1 ``BinaryConv1d`` (B, C, T) -> (B, N, T), as a packed product per frame."""

    takes_padding_mask = True

    def __init__(self, layer: QuantizedConv1d):
        super().__init__()
        self.in_channels, self.out_channels = layer.in_channels, layer.out_channels
        self._init_from(layer, layer.out_channels, layer.in_channels)

    def forward(self, x: torch.Tensor, padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        frames = x.transpose(1, 2)
        batch, time, _ = frames.shape
        bits = kernels.pack_rows(frames, self.input_offset, self.input_alpha,
                                 self.unsigned_input)
        out = self._product(bits.reshape(batch * time, -1), x.dtype, self.bias)
        out = out.view(batch, time, self.out_channels)
        if padding_mask is not None:  # a padded frame enters as 0: its output is the bias
            fill = out.new_zeros(()) if self.bias is None else self.bias
            out = torch.where(padding_mask[..., None], fill, out)
        return out.transpose(1, 2)


class PackedDepthwiseConv1d(_PackedWeights):
    """A depthwise ``BinaryConv1d`` (kernel <= 64): each channel's time axis packed, one
    word of kernel bits per channel; zero padding and masked frames are 'invalid' bits
    that contribute 0, as the zeros they are in the simulated model."""

    takes_padding_mask = True

    def __init__(self, layer: QuantizedConv1d):
        super().__init__()
        self.channels = layer.in_channels
        self.kernel_size = layer.kernel_size[0]
        self.stride = layer.stride[0]
        self.padding = layer.padding[0]
        self._init_from(layer, layer.in_channels, self.kernel_size)

    def forward(self, x: torch.Tensor, padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        batch, channels, time = x.shape
        shifted = x + self.input_offset.view(1, -1, 1)
        bits = kernels.input_bits(shifted, self.input_alpha, self.unsigned_input)
        valid = None
        if padding_mask is not None or self.padding:
            valid = torch.ones((batch, 1, time), dtype=torch.bool, device=x.device)
            if padding_mask is not None:
                valid = ~padding_mask[:, None, :]
            valid = F.pad(valid.expand(batch, channels, time), (self.padding, self.padding))
        bits = F.pad(bits, (self.padding, self.padding))
        padded = time + 2 * self.padding
        t_out = (padded - self.kernel_size) // self.stride + 1
        words = kernels.pack_rows(bits.reshape(batch * channels, padded))
        valid_words = None if valid is None else kernels.pack_rows(
            valid.reshape(batch * channels, padded))
        counts = kernels.binary_depthwise(words, valid_words, self.weight_words.view(-1),
                                          self.kernel_size, self.stride, t_out,
                                          self.unsigned_input)
        scale = self.output_scale()
        if scale.dim():
            scale = scale.view(-1, 1)
        out = counts.view(batch, channels, t_out).to(x.dtype) * scale
        if self.bias is not None:
            out = out + self.bias.view(-1, 1)
        return out


def _conv_form(layer: QuantizedConv1d):
    """The packed class of a binarized Conv1d, or None where no packed kernel fits it."""
    kernel, groups = layer.kernel_size[0], layer.groups
    if kernel == 1 and groups == 1 and layer.stride[0] == 1 and layer.padding[0] == 0:
        return PackedPointwiseConv1d
    if groups == layer.in_channels == layer.out_channels and kernel <= kernels.WORD_BITS \
            and layer.dilation[0] == 1:
        return PackedDepthwiseConv1d
    return None


def conv_refusal(layer: QuantizedConv1d) -> Optional[str]:
    """Why no packed kernel runs a binarized Conv1d (None: one does)."""
    if _conv_form(layer) is not None:
        return None
    return (f"no packed kernel for a binarized Conv1d with kernel {layer.kernel_size[0]}, "
            f"groups {layer.groups}: only pointwise and depthwise "
            f"(kernel <= {kernels.WORD_BITS})")


def packed_conv(layer: QuantizedConv1d) -> nn.Module:
    """The deployed form of a binarized Conv1d: pointwise or depthwise."""
    form = _conv_form(layer)
    if form is None:
        raise ValueError(conv_refusal(layer))
    return form(layer)
