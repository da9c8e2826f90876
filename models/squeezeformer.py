"""Squeezeformer (Kim et al. 2022) as in its reference code (kssteven418/Squeezeformer):
each block is an MF part (self-attention, then feed-forward) and a CF part (convolution,
then feed-forward). Every module scales its input with learned per-channel weights and
biases ("adaptive scaling", in place of the Conformer's pre-LN) and is followed by a
post-LN; feed-forward modules take full steps. Before block ``reduce_index`` the frame
rate halves (depthwise conv, kernel 5, stride 2, then pointwise conv); before block
``recover_index`` each reduced frame is repeated twice, passed through a Linear layer and
added to the activation saved before the reduction.

Parameter layout: the paper's Squeezeformer-XS is 0.17 MB larger than its Conformer-S,
exactly the time-reduction and recovery layers at D = 144, so its blocks keep the
Conformer's GLU convolution module and per-layer relative-position tables
(``conv_use_glu=True``; the reference XS config replaces GLU by SiLU).
"""
from __future__ import annotations

from typing import Any, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from .bit import conv1d, linear, masked_conv, takes_padding_mask
from .conformer import (
    CONV_KERNEL_SIZE,
    MAX_RELATIVE_POSITIONS,
    ConvolutionModule,
    RelPositionSelfAttention,
)
from .quantization import FULL_PRECISION, BlockQuantization, Quantization
from .transformer import FeedForward


class AdaptiveScale(nn.Module):
    """x * scale + bias, per channel."""

    def __init__(self, dim: int):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale + self.bias


class SqueezeformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, ffn_dim: int, *,
                 kernel_size: int = CONV_KERNEL_SIZE, max_len: int = MAX_RELATIVE_POSITIONS,
                 activation_name: str = "swish", conv_use_glu: bool = True,
                 dropout: float = 0.1, attention_dropout: float = 0.1,
                 activation_dropout: float = 0.0,
                 quantization: Quantization | BlockQuantization = FULL_PRECISION):
        super().__init__()
        bits = BlockQuantization.of(quantization)
        # MF: attention, feed-forward
        self.attention_scale = AdaptiveScale(dim)
        self.attention = RelPositionSelfAttention(dim, heads, max_len=max_len,
                                                  dropout=attention_dropout,
                                                  quantization=bits.attention)
        self.attention_norm = nn.LayerNorm(dim)
        self.ffn1_scale = AdaptiveScale(dim)
        self.ffn1 = FeedForward(dim, ffn_dim, activation_name, dropout=activation_dropout,
                                quantization=bits.feed_forward)
        self.ffn1_norm = nn.LayerNorm(dim)
        # CF: convolution, feed-forward
        self.conv_scale = AdaptiveScale(dim)
        self.conv = ConvolutionModule(dim, kernel_size, use_glu=conv_use_glu, dropout=dropout,
                                      quantization=bits.convolution)
        self.conv_norm = nn.LayerNorm(dim)
        self.ffn2_scale = AdaptiveScale(dim)
        self.ffn2 = FeedForward(dim, ffn_dim, activation_name, dropout=activation_dropout,
                                quantization=bits.feed_forward)
        self.ffn2_norm = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = self.attention_norm(
            x + self.dropout(self.attention(self.attention_scale(x), padding_mask)))
        x = self.ffn1_norm(x + self.dropout(self.ffn1(self.ffn1_scale(x))))
        x = self.conv_norm(x + self.dropout(self.conv(self.conv_scale(x), padding_mask)))
        return self.ffn2_norm(x + self.dropout(self.ffn2(self.ffn2_scale(x))))


class TimeReduction(nn.Module):
    """Halves the frame rate: T -> ceil(T / 2), reduced frame i from frames 2i .. 2i + 4.

    The reference pads the input on the right by kernel - stride = 3 frames and, for odd T,
    appends a zero frame to reach ceil(T / 2); here odd inputs get one more padding frame
    instead, so that the last reduced frame is a convolution output and the result does not
    depend on how much padding follows an utterance in its batch."""

    def __init__(self, dim: int, kernel_size: int = 5, stride: int = 2, *,
                 quantization: Quantization = FULL_PRECISION):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride
        self.depthwise_conv = conv1d(dim, dim, kernel_size, stride=stride, groups=dim,
                                     quantization=quantization)
        self.pointwise_conv = conv1d(dim, dim, 1, quantization=quantization)

    def forward(self, x: torch.Tensor, padding_mask: Optional[torch.Tensor] = None
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
        time = x.size(1)
        reduced_time = -(-time // self.stride)
        right = (reduced_time - 1) * self.stride + self.kernel_size - time
        x = F.pad(x.transpose(1, 2), (0, right))
        frames_mask = padding_mask
        if frames_mask is None and takes_padding_mask(self.depthwise_conv):
            # the right padding enters a quantized convolution as 0, as it does when an
            # utterance is padded in a batch (and as a convolution's own padding does)
            frames_mask = torch.zeros((x.size(0), time), dtype=torch.bool, device=x.device)
        full_mask = None if frames_mask is None else F.pad(frames_mask, (0, right), value=True)
        x = self.pointwise_conv(masked_conv(self.depthwise_conv, x, full_mask)).transpose(1, 2)
        if padding_mask is not None:
            padding_mask = padding_mask[:, ::self.stride]
        return x, padding_mask


class TimeRecovery(nn.Module):
    """Repeats each frame ``stride`` times, trims to the saved length, applies a Linear layer
    and adds the activation saved before the reduction."""

    def __init__(self, dim: int, stride: int = 2, *, quantization: Quantization = FULL_PRECISION):
        super().__init__()
        self.stride = stride
        self.linear = linear(dim, dim, quantization=quantization)

    def upsample(self, x: torch.Tensor, time: int) -> torch.Tensor:
        """Each frame repeated ``stride`` times, trimmed to ``time`` frames."""
        return x.repeat_interleave(self.stride, dim=1)[:, :time]

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return self.linear(self.upsample(x, skip.size(1))) + skip


def reduce_recover_problem(reduce_index: Any, recover_index: Any, layers: int) -> Optional[str]:
    """Why the reduction and recovery cannot sit at these block indices, or None: both whole
    numbers with 0 <= reduce_index < recover_index <= layers."""
    whole = all(isinstance(index, int) and not isinstance(index, bool)
                for index in (reduce_index, recover_index))
    if whole and 0 <= reduce_index < recover_index <= layers:
        return None
    return (f"need 0 <= reduce_index < recover_index <= layers ({layers}), got "
            f"{reduce_index} and {recover_index}")


class SqueezeformerEncoder(nn.Module):
    """Blocks ``reduce_index .. recover_index - 1`` (0-based) run at half the frame rate.

    ``forward`` returns every block's output at the full rate: the outputs of the
    half-rate blocks are upsampled as the recovery does (each frame repeated, trimmed to T),
    without its Linear layer, which belongs to the block after them. ``recover_index`` may equal
    the number of blocks, in which case the recovery follows the last block.
    """

    def __init__(self, blocks, time_reduction: TimeReduction, time_recovery: TimeRecovery,
                 reduce_index: int, recover_index: int):
        super().__init__()
        problem = reduce_recover_problem(reduce_index, recover_index, len(blocks))
        if problem:
            raise ValueError(problem)
        self.layers = nn.ModuleList(blocks)
        self.time_reduction = time_reduction
        self.time_recovery = time_recovery
        self.reduce_index = reduce_index
        self.recover_index = recover_index

    def forward(self, x: torch.Tensor,
                padding_mask: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, ...]:
        full_time = x.size(1)
        full_padding_mask = padding_mask
        skip = x
        outputs = []
        for index, layer in enumerate(self.layers):
            if index == self.reduce_index:
                skip = x
                x, padding_mask = self.time_reduction(x, padding_mask)
            if index == self.recover_index:
                x = self.time_recovery(x, skip)
                padding_mask = full_padding_mask
            x = layer(x, padding_mask)
            outputs.append(x if x.size(1) == full_time
                           else self.time_recovery.upsample(x, full_time))
        if self.recover_index == len(self.layers):
            x = self.time_recovery(x, skip)
            outputs[-1] = x
        return tuple(outputs)


def default_reduce_index(layers: int) -> int:
    """Squeezeformer places the reduction at block 7 of 16: (layers - 2) // 2."""
    return max(0, (layers - 2) // 2)


def default_recover_index(layers: int, reduce_index: Optional[int] = None) -> int:
    """... and the recovery before the last block (15 of 16), after the reduction
    (``reduce_index``, default :func:`default_reduce_index`)."""
    if reduce_index is None:
        reduce_index = default_reduce_index(layers)
    return max(layers - 1, reduce_index + 1)


def squeezeformer_encoder(layers: int, dim: int, heads: int, ffn_dim: int, *,
                          reduce_index: int, recover_index: int,
                          kernel_size: int = CONV_KERNEL_SIZE,
                          max_len: int = MAX_RELATIVE_POSITIONS, activation_name: str = "swish",
                          conv_use_glu: bool = True, dropout: float = 0.1,
                          attention_dropout: float = 0.1, activation_dropout: float = 0.0,
                          quantization: Quantization | BlockQuantization = FULL_PRECISION
                          ) -> SqueezeformerEncoder:
    sampling = BlockQuantization.of(quantization).convolution
    blocks = [
        SqueezeformerBlock(dim, heads, ffn_dim, kernel_size=kernel_size, max_len=max_len,
                           activation_name=activation_name, conv_use_glu=conv_use_glu,
                           dropout=dropout, attention_dropout=attention_dropout,
                           activation_dropout=activation_dropout, quantization=quantization)
        for _ in range(layers)
    ]
    return SqueezeformerEncoder(blocks, TimeReduction(dim, quantization=sampling),
                                TimeRecovery(dim, quantization=sampling), reduce_index,
                                recover_index)
