"""Conformer (Gulati et al. 2020) in ESPnet's layout: macaron half-step feed-forward
modules, relative-position self-attention in the Transformer-XL style (``linear_pos``,
``pos_bias_u``, ``pos_bias_v``, relative shift), and a convolution module (pointwise conv,
GLU, depthwise conv, BatchNorm, SiLU, pointwise conv), all pre-LN, with a final LayerNorm.

Positional table per layer: ESPnet computes one sinusoidal table of relative positions
and shares it. The paper's Conformer-S storage (131.87 MB for a 16/144/4 model that has
only ~10.4 M other parameters) is matched almost exactly by a (2 * 5000 - 1) x 144 table
stored in each of the 16 layers, so here every attention layer owns its table as a
parameter, initialized with the sinusoidal encoding; only the 2T - 1 rows a forward needs
are read, and an input longer than the table gets the missing rows computed on the fly (as
ESPnet's ``extend_pe`` does), so the storage does not depend on the input length.
"""
from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn

from .attention import (
    HeadProjections,
    attend,
    attention_core,
    merge_heads,
    project_heads,
    split_heads,
)
from .bit import ElasticBinarizer, conv1d, linear, masked_conv
from .quantization import FULL_PRECISION, BlockQuantization, Quantization
from .transformer import FeedForward, TransformerEncoder

# Conformer's depthwise kernel (Gulati et al. 2020, and ESPnet's default), and the relative
# positions each layer's table covers (ESPnet's max_len; the paper's storage fits it, see
# above). The zoo's HubertConfig and Squeezeformer's blocks take these defaults from here.
CONV_KERNEL_SIZE = 31
MAX_RELATIVE_POSITIONS = 5000


def sinusoids(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """(N, dim) sinusoidal encodings of N (relative) positions, interleaved sin/cos."""
    positions = positions.to(torch.float32)[:, None]
    frequencies = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=positions.device)
                            * (-math.log(10000.0) / dim))
    table = positions.new_zeros(positions.size(0), dim)
    table[:, 0::2] = torch.sin(positions * frequencies)
    table[:, 1::2] = torch.cos(positions * frequencies[: dim // 2])
    return table


def relative_sinusoids(max_len: int, dim: int) -> torch.Tensor:
    """(2 * max_len - 1, dim) table; row r encodes relative position max_len - 1 - r, so the
    rows run from +(max_len - 1) down to -(max_len - 1) (ESPnet's ordering)."""
    positions = torch.arange(max_len - 1, -max_len, -1)
    if positions.is_meta:
        # A shape-only build (under torch.device("meta")): no values to compute, and the meta
        # kernels of exp/sin/cos are slow Python references (a profile cares about the shape).
        return torch.empty(positions.size(0), dim, dtype=torch.float32)
    return sinusoids(positions, dim)


def relative_position_rows(table: torch.Tensor, time: int) -> torch.Tensor:
    """Rows of a ``relative_sinusoids``-ordered table for relative positions T-1 ... -(T-1):
    (2T - 1, dim). Positions beyond the stored rows are computed on the fly, as ESPnet's
    ``extend_pe`` does, so any length works and the stored table (the storage) is unchanged."""
    max_len = (table.size(0) + 1) // 2
    if time <= max_len:
        return table[max_len - time: max_len + time - 1]
    beyond = torch.arange(time - 1, max_len - 1, -1, device=table.device)  # T-1 ... max_len
    above = sinusoids(beyond, table.size(1)).to(table.dtype)
    below = sinusoids(-beyond.flip(0), table.size(1)).to(table.dtype)  # -max_len ... -(T-1)
    return torch.cat([above, table, below])


def relative_shift(scores: torch.Tensor) -> torch.Tensor:
    """(B, H, T, 2T - 1) scores against relative positions T-1 ... -(T-1) -> (B, H, T, T)
    with ``out[..., i, j] = scores[..., i, T - 1 - i + j]``, the score for position i - j.
    A strided view: the same result as Transformer-XL's pad-and-reshape, without a copy."""
    batch, heads, time, positions = scores.shape
    scores = scores.contiguous()
    s_batch, s_head, s_row, s_col = scores.stride()
    return scores.as_strided((batch, heads, time, time), (s_batch, s_head, s_row - s_col, s_col),
                             scores.storage_offset() + (time - 1) * s_col)


class RelPositionAttentionCore(nn.Module):
    """scores = ((q + u) k^T + shift((q + v) p^T)) / sqrt(d); softmax; times V."""

    def __init__(self, heads: int, head_dim: int, dropout: float = 0.0):
        super().__init__()
        self.pos_bias_u = nn.Parameter(torch.empty(heads, head_dim))
        self.pos_bias_v = nn.Parameter(torch.empty(heads, head_dim))
        nn.init.xavier_uniform_(self.pos_bias_u)
        nn.init.xavier_uniform_(self.pos_bias_v)
        self.dropout = nn.Dropout(dropout)

    def forward(self, q, k, v, p, key_padding_mask: Optional[torch.Tensor] = None):
        q_u, q_v, k, v, p = self._operands(q, k, v, p)
        content = torch.matmul(q_u, k.transpose(-2, -1))
        position = relative_shift(torch.matmul(q_v, p.transpose(-2, -1)))
        scores = (content + position) * (1.0 / math.sqrt(q.size(-1)))
        return attend(scores, v, key_padding_mask, self.dropout, self._probs)

    def _operands(self, q, k, v, p):
        return q + self.pos_bias_u[:, None, :], q + self.pos_bias_v[:, None, :], k, v, p

    def _probs(self, probs):
        return probs


class QuantizedRelPositionAttentionCore(RelPositionAttentionCore):
    """All three products on quantized operands (BiT at 1 bit). The position operand p is
    computed from parameters only, so the analyzer sees it as the constant (weight) side,
    quantized by an activation quantizer at the activations' width."""

    def __init__(self, heads: int, head_dim: int, dropout: float = 0.0, *, bits: int = 1):
        super().__init__(heads, head_dim, dropout)
        self.weight_bits = self.activation_bits = bits
        self.query_u_binarizer = ElasticBinarizer(signed=True, bits=bits)
        self.query_v_binarizer = ElasticBinarizer(signed=True, bits=bits)
        self.key_binarizer = ElasticBinarizer(signed=True, bits=bits)
        self.value_binarizer = ElasticBinarizer(signed=True, bits=bits)
        self.position_binarizer = ElasticBinarizer(signed=True, bits=bits)
        self.probs_binarizer = ElasticBinarizer(signed=False, bits=bits, init_over_nonzero=True)

    def _operands(self, q, k, v, p):
        q_u, q_v, k, v, p = super()._operands(q, k, v, p)
        return (self.query_u_binarizer(q_u), self.query_v_binarizer(q_v), self.key_binarizer(k),
                self.value_binarizer(v), self.position_binarizer(p))

    def _probs(self, probs):
        return self.probs_binarizer(probs)


class RelPositionSelfAttention(HeadProjections):
    """ESPnet's RelPositionMultiHeadedAttention with its own positional table."""

    def __init__(self, dim: int, heads: int, *, max_len: int = MAX_RELATIVE_POSITIONS,
                 dropout: float = 0.0, quantization: Quantization = FULL_PRECISION):
        super().__init__(dim, heads, quantization=quantization)
        # The layer's own table (see the module docstring), a parameter of this module rather
        # than of a child so that no module returns a bare view of a parameter.
        self.position_table = nn.Parameter(relative_sinusoids(max_len, dim))
        bits = quantization.activation_bits
        if quantization.activations_quantized:
            # Only read through linear_pos's input quantizer, which keeps the levels of
            # table + offset (the signs at 1 bit): a deployed model stores those, `bits` a value.
            self.parameter_bits = {"position_table": bits}
        self.linear_pos = linear(dim, dim, bias=False, quantization=quantization)
        self.core = attention_core(RelPositionAttentionCore, QuantizedRelPositionAttentionCore,
                                   quantization, heads, dim // heads, dropout)
        self.out_proj = linear(dim, dim, quantization=quantization)

    def forward(self, x: torch.Tensor,
                key_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        q, k, v = project_heads(self, x)
        positions = relative_position_rows(self.position_table, x.size(1))
        if not torch.is_grad_enabled():
            # A parameter slice made under no_grad still claims requires_grad but has no
            # grad_fn; tools that hook module inputs (FlopCounterMode's tracker) reject it.
            positions = positions.detach()
        p = split_heads(self.linear_pos(positions[None]), self.heads)
        return self.out_proj(merge_heads(self.core(q, k, v, p, key_padding_mask)))


class ConvolutionModule(nn.Module):
    """Pointwise conv -> GLU -> depthwise conv -> BatchNorm -> SiLU -> pointwise conv.

    ``use_glu=False`` is the Squeezeformer reference's variant: SiLU instead of GLU, so the
    depthwise conv runs on the 2D channels of the first pointwise conv."""

    def __init__(self, dim: int, kernel_size: int = CONV_KERNEL_SIZE, *, use_glu: bool = True,
                 dropout: float = 0.0, quantization: Quantization = FULL_PRECISION):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"the depthwise kernel must be odd to keep the length, "
                             f"got {kernel_size}")
        channels = dim if use_glu else 2 * dim
        self.pointwise_conv1 = conv1d(dim, 2 * dim, 1, quantization=quantization)
        self.gate = nn.GLU(dim=1) if use_glu else nn.SiLU()
        self.depthwise_conv = conv1d(channels, channels, kernel_size,
                                     padding=(kernel_size - 1) // 2,
                                     groups=channels, quantization=quantization)
        self.batch_norm = nn.BatchNorm1d(channels)
        self.activation = nn.SiLU()
        self.pointwise_conv2 = conv1d(channels, dim, 1, quantization=quantization)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = self.gate(self.pointwise_conv1(x.transpose(1, 2)))
        # Padding must not enter the depthwise kernel's window.
        x = self.activation(self.batch_norm(masked_conv(self.depthwise_conv, x, padding_mask)))
        return self.dropout(self.pointwise_conv2(x)).transpose(1, 2)


class ConformerLayer(nn.Module):
    def __init__(self, dim: int, heads: int, ffn_dim: int, *,
                 kernel_size: int = CONV_KERNEL_SIZE, max_len: int = MAX_RELATIVE_POSITIONS,
                 activation_name: str = "swish", dropout: float = 0.1,
                 attention_dropout: float = 0.1, activation_dropout: float = 0.0,
                 quantization: Quantization | BlockQuantization = FULL_PRECISION):
        super().__init__()
        bits = BlockQuantization.of(quantization)
        self.ffn1_norm = nn.LayerNorm(dim)
        self.ffn1 = FeedForward(dim, ffn_dim, activation_name, dropout=activation_dropout,
                                quantization=bits.feed_forward)
        self.attention_norm = nn.LayerNorm(dim)
        self.attention = RelPositionSelfAttention(dim, heads, max_len=max_len,
                                                  dropout=attention_dropout,
                                                  quantization=bits.attention)
        self.conv_norm = nn.LayerNorm(dim)
        self.conv = ConvolutionModule(dim, kernel_size, dropout=dropout,
                                      quantization=bits.convolution)
        self.ffn2_norm = nn.LayerNorm(dim)
        self.ffn2 = FeedForward(dim, ffn_dim, activation_name, dropout=activation_dropout,
                                quantization=bits.feed_forward)
        self.final_norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = x + 0.5 * self.dropout(self.ffn1(self.ffn1_norm(x)))
        x = x + self.dropout(self.attention(self.attention_norm(x), padding_mask))
        x = x + self.dropout(self.conv(self.conv_norm(x), padding_mask))
        x = x + 0.5 * self.dropout(self.ffn2(self.ffn2_norm(x)))
        return self.final_norm(x)


class ConformerEncoder(TransformerEncoder):
    """A stack of Conformer layers, all at the input frame rate."""


def conformer_encoder(layers: int, dim: int, heads: int, ffn_dim: int, *,
                      kernel_size: int = CONV_KERNEL_SIZE, max_len: int = MAX_RELATIVE_POSITIONS,
                      activation_name: str = "swish", dropout: float = 0.1,
                      attention_dropout: float = 0.1, activation_dropout: float = 0.0,
                      quantization: Quantization | BlockQuantization = FULL_PRECISION
                      ) -> ConformerEncoder:
    return ConformerEncoder([
        ConformerLayer(dim, heads, ffn_dim, kernel_size=kernel_size, max_len=max_len,
                       activation_name=activation_name, dropout=dropout,
                       attention_dropout=attention_dropout, activation_dropout=activation_dropout,
                       quantization=quantization)
        for _ in range(layers)
    ])
