"""Waveform front ends: 1-D CNNs from 16 kHz samples to 50 Hz frames (total stride 320).

- ``wav2vec2``: the wav2vec 2.0 / HuBERT extractor, (512, 10, 5) + (512, 3, 2) x 4 +
  (512, 2, 2) x 2, as (channels, kernel, stride).
- ``fastconv``: the paper's "+FastConv" extractor is not specified; its storage and FLOPs
  fit SEW's compact "WFE-C" extractor (Wu et al. 2022) with c = 64, l = 1: every stride-2
  conv is followed by a kernel-1 conv, channels double from 64 to 512.

Both: no conv bias, GroupNorm with one group per channel after the first conv (wav2vec 2.0's
"default" mode), GELU after every conv. 160 000 samples give 499 frames.

That GroupNorm normalizes over time, so in a zero-padded batch the padding would move
every real frame (fairseq's extractor has this flaw; its pre-training avoids padding by
cropping). Given the utterances' sample counts, the first block takes its statistics over
each utterance's own frames, so an utterance encodes the same alone or padded in a batch.
"""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import torch
from torch import nn

from .constants import (
    WAV2VEC2_KERNELS_AND_STRIDES,
    conv_output_length,
    encoder_frames,
    stride_and_field,
)

ConvSpec = Tuple[int, int, int]  # (out_channels, kernel_size, stride)

WAV2VEC2_LAYERS: Tuple[ConvSpec, ...] = tuple((512, kernel, stride)
                                              for kernel, stride in WAV2VEC2_KERNELS_AND_STRIDES)

FASTCONV_LAYERS: Tuple[ConvSpec, ...] = (
    (64, 10, 5),
    (128, 3, 2), (128, 1, 1),
    (128, 3, 2), (128, 1, 1),
    (256, 3, 2), (256, 1, 1),
    (256, 3, 2), (256, 1, 1),
    (512, 2, 2), (512, 1, 1),
    (512, 2, 2), (512, 1, 1),
)

FRONTENDS = {"fastconv": FASTCONV_LAYERS, "wav2vec2": WAV2VEC2_LAYERS}


class ConvLayerBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 group_norm: bool):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride, bias=False)
        # fairseq's wav2vec 2.0 / HuBERT extractor: Kaiming-normal init. PyTorch's default
        # (kaiming-uniform with a=sqrt(5)) shrinks the signal ~3x per conv: after FastConv's
        # 13 layers it is ~1e-6, below the following LayerNorm's eps, and the model's
        # output no longer depends on its input (nothing can be trained or evaluated).
        nn.init.kaiming_normal_(self.conv.weight)
        self.norm = nn.GroupNorm(out_channels, out_channels) if group_norm else None
        self.activation = nn.GELU()

    def forward(self, x: torch.Tensor, frames: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``frames`` (B,): each utterance's valid output frames (None: all of them)."""
        x = self.conv(x)
        if self.norm is not None:
            # whenever lengths are given, not only when some are short: the work done must
            # not depend on the data, so that meta tensors count what a real run does
            if frames is not None:
                x = _group_norm_over_frames(self.norm, x, frames)
            else:
                x = self.norm(x)
        return self.activation(x)


def _group_norm_over_frames(norm: nn.GroupNorm, x: torch.Tensor,
                            frames: torch.Tensor) -> torch.Tensor:
    """One-group-per-channel GroupNorm of (B, C, T) ``x`` with each row's mean and (biased)
    variance taken over its first ``frames`` frames only."""
    valid = (torch.arange(x.shape[-1], device=x.device)[None, :]
             < frames.to(x.device)[:, None])[:, None, :].to(x.dtype)      # (B, 1, T)
    count = valid.sum(dim=-1, keepdim=True).clamp(min=1)
    mean = (x * valid).sum(dim=-1, keepdim=True) / count
    variance = (((x - mean) * valid) ** 2).sum(dim=-1, keepdim=True) / count
    x = (x - mean) / torch.sqrt(variance + norm.eps)
    return x * norm.weight[None, :, None] + norm.bias[None, :, None]


class ConvFeatureExtractor(nn.Module):
    """(B, S) waveform -> (B, C, T) features."""

    def __init__(self, layers: Sequence[ConvSpec]):
        super().__init__()
        blocks: List[nn.Module] = []
        in_channels = 1
        for index, (channels, kernel_size, stride) in enumerate(layers):
            blocks.append(ConvLayerBlock(in_channels, channels, kernel_size, stride,
                                         group_norm=index == 0))
            in_channels = channels
        self.conv_layers = nn.ModuleList(blocks)
        self.out_channels = in_channels
        self.kernels_and_strides = tuple((kernel, stride) for _, kernel, stride in layers)

    def forward(self, waveforms: torch.Tensor,
                lengths: Optional[torch.Tensor] = None) -> torch.Tensor:
        """``lengths`` (B,): sample counts of a zero-padded batch (None: all S)."""
        x = waveforms[:, None, :]
        frames = lengths
        for block in self.conv_layers:
            if frames is not None:
                frames = conv_output_length(frames, block.kernel_size, block.stride)
            x = block(x, frames)
        return x

    @property
    def downsample_rate(self) -> int:
        return stride_and_field(self.kernels_and_strides)[0]

    def frames(self, num_samples: int) -> int:
        """Output frames for ``num_samples`` input samples (0 if the input is too short)."""
        return encoder_frames(num_samples, self.kernels_and_strides)

    def frame_lengths(self, lengths: torch.Tensor) -> torch.Tensor:
        """Per-utterance frame counts for (B,) sample counts, with tensor ops only."""
        for kernel, stride in self.kernels_and_strides:
            lengths = conv_output_length(lengths, kernel, stride)
        return lengths.clamp(min=0)


def feature_extractor(name: str) -> ConvFeatureExtractor:
    try:
        return ConvFeatureExtractor(FRONTENDS[name])
    except KeyError:
        raise ValueError(f"unknown front end {name!r}; known: {sorted(FRONTENDS)}") from None
