"""HuBERT (Hsu et al. 2021) around any of the zoo's encoders, following fairseq's
HubertModel: CNN feature extractor -> LayerNorm -> projection to D -> (span masking with a
learned embedding, pre-training only) -> convolutional positional embedding (kernel 128,
16 groups, weight norm) -> LayerNorm -> encoder layers -> projection to 256 and cosine
logits against learned label embeddings at temperature 0.1.

The positional convolution and the LayerNorm after it are applied in front of every encoder
(fairseq's post-LN layout). ``forward`` never masks and runs on meta tensors (shapes only);
``pretrain_forward`` draws the span mask on the CPU.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from .bit import linear, per_channel_depthwise_scales
from .configuration import HubertConfig
from .encoders import build_encoder
from .frontends import feature_extractor
from .quantization import FULL_PRECISION


class HubertOutput(NamedTuple):
    last_hidden_state: torch.Tensor                 # (B, T, D)
    hidden_states: Tuple[torch.Tensor, ...]         # layers + 1 tensors, (B, T, D) each
    padding_mask: Optional[torch.Tensor]            # (B, T) bool, True at padding


class PretrainOutput(NamedTuple):
    logits: torch.Tensor                            # (B, T, num_classes)
    mask_indices: torch.Tensor                      # (B, T) bool, True where masked
    padding_mask: torch.Tensor                      # (B, T) bool, all False without lengths
    hidden_states: Tuple[torch.Tensor, ...]


class ConvolutionalPositionalEmbedding(nn.Module):
    """Grouped conv over time (weight-normalized over the kernel axis, as wav2vec 2.0),
    GELU, added to its input by the caller."""

    def __init__(self, dim: int, kernel_size: int = 128, groups: int = 16):
        super().__init__()
        conv = nn.Conv1d(dim, dim, kernel_size, padding=kernel_size // 2, groups=groups)
        nn.init.normal_(conv.weight, mean=0.0, std=math.sqrt(4.0 / (kernel_size * dim)))
        nn.init.zeros_(conv.bias)
        self.conv = weight_norm(conv, name="weight", dim=2)
        # An even kernel with padding k // 2 gives one frame too many.
        self.trim = 1 if kernel_size % 2 == 0 else 0
        self.activation = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x.transpose(1, 2))
        if self.trim:
            y = y[..., : -self.trim]
        return self.activation(y).transpose(1, 2)


class _GradMultiply(torch.autograd.Function):
    """Scales the gradient flowing into the feature extractor (HuBERT: 0.1)."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


class HuBERT(nn.Module):
    def __init__(self, config: HubertConfig):
        super().__init__()
        self.config = config
        projections = config.quantization if config.binarize_projections else FULL_PRECISION
        self.feature_extractor = feature_extractor(config.frontend)
        channels = self.feature_extractor.out_channels
        self.feature_norm = nn.LayerNorm(channels)
        self.feature_projection = linear(channels, config.dim, quantization=projections)
        self.input_dropout = nn.Dropout(config.input_dropout)
        self.mask_embedding = nn.Parameter(torch.empty(config.dim).uniform_())
        self.positional_conv = ConvolutionalPositionalEmbedding(
            config.dim, config.pos_conv_kernel, config.pos_conv_groups)
        self.encoder_norm = nn.LayerNorm(config.dim)
        self.encoder_dropout = nn.Dropout(config.dropout)
        self.encoder = build_encoder(config)
        if config.depthwise_scale == "channel":
            per_channel_depthwise_scales(self.encoder)
        self.final_projection = linear(config.dim, config.final_dim, quantization=projections)
        self.label_embeddings = nn.Parameter(
            torch.empty(config.num_classes, config.final_dim).uniform_())
        _init_bert_linears(self.encoder)

    @property
    def downsample_rate(self) -> int:
        return self.feature_extractor.downsample_rate

    def frames(self, num_samples: int) -> int:
        return self.feature_extractor.frames(num_samples)

    def forward(self, waveforms: torch.Tensor,
                lengths: Optional[torch.Tensor] = None) -> HubertOutput:
        """Encodes (B, S) 16 kHz waveforms; ``lengths`` (B,) are sample counts (None: all S).

        ``hidden_states`` holds the encoder input (after the positional convolution and its
        LayerNorm) and every layer's output, all at 50 Hz; for the Squeezeformer the
        half-rate middle layers are upsampled by repeating each frame twice.
        """
        x, padding_mask = self._encoder_input(self.feature_extractor(waveforms, lengths), lengths)
        hidden_states = self._encode(x, padding_mask)
        return HubertOutput(hidden_states[-1], hidden_states, padding_mask)

    def pretrain_forward(self, waveforms: torch.Tensor, lengths: Optional[torch.Tensor] = None, *,
                         generator: Optional[torch.Generator] = None,
                         mask_indices: Optional[torch.Tensor] = None) -> PretrainOutput:
        """Masked prediction: span-masks the projected features, encodes them and returns
        cosine-similarity logits / temperature against every label embedding.

        ``mask_indices`` (B, T) bool replaces the drawn mask: a distillation teacher sees
        the frames its student sees masked."""
        features = self.feature_extractor(waveforms, lengths)
        if self.training and self.config.feature_grad_mult != 1.0:
            features = _GradMultiply.apply(features, self.config.feature_grad_mult)
        x, padding_mask = self._encoder_input(features, lengths)
        batch, time, _ = x.shape
        if mask_indices is None:
            if padding_mask is None:
                frame_lengths = [time] * batch
            else:
                frame_lengths = (~padding_mask).sum(dim=1).tolist()
            mask_indices = span_mask(frame_lengths, time, self.config.mask_prob,
                                     self.config.mask_length, generator=generator)
        elif tuple(mask_indices.shape) != (batch, time):
            raise ValueError(f"mask_indices of shape {tuple(mask_indices.shape)} for "
                             f"{batch} x {time} frames")
        mask_indices = mask_indices.to(x.device)
        x = torch.where(mask_indices[..., None], self.mask_embedding.to(x.dtype), x)
        hidden_states = self._encode(x, padding_mask)
        if padding_mask is None:  # always a tensor here, so a loss can take mask & ~padding
            padding_mask = torch.zeros_like(mask_indices)
        return PretrainOutput(self.logits(hidden_states[-1]), mask_indices, padding_mask,
                              hidden_states)

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        projected = F.normalize(self.final_projection(hidden), dim=-1)
        labels = F.normalize(self.label_embeddings, dim=-1)
        return torch.matmul(projected, labels.t()) / self.config.logit_temperature

    def _encoder_input(self, features: torch.Tensor, lengths: Optional[torch.Tensor]):
        features = self.feature_norm(features.transpose(1, 2))
        padding_mask = None
        if lengths is not None:
            frame_lengths = self.feature_extractor.frame_lengths(lengths.to(features.device))
            positions = torch.arange(features.size(1), device=features.device)
            padding_mask = positions[None, :] >= frame_lengths[:, None]
        return self.input_dropout(self.feature_projection(features)), padding_mask

    def _encode(self, x: torch.Tensor,
                padding_mask: Optional[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        if padding_mask is not None:
            x = x.masked_fill(padding_mask[..., None], 0.0)
        x = self.encoder_norm(x + self.positional_conv(x))
        x = self.encoder_dropout(x)
        return (x,) + tuple(self.encoder(x, padding_mask))


def span_mask(frame_lengths, time: int, mask_prob: float, mask_length: int, *,
              generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """HuBERT's span masking (fairseq ``compute_mask_indices``, static lengths, overlaps
    allowed): for an utterance of n frames, int(mask_prob * n / mask_length + u) spans
    (u ~ U[0, 1), at least 2) of ``mask_length`` frames start at distinct random frames,
    all inside the n real frames. (fairseq also evens out the masked counts across the
    batch; not needed when the loss is taken over each utterance's own masked frames.)
    Returns (B, time) bool on the CPU."""
    mask = torch.zeros((len(frame_lengths), time), dtype=torch.bool)
    for row, frames in enumerate(frame_lengths):
        frames = int(frames)
        if frames <= 0 or mask_prob <= 0:
            continue
        uniform = torch.rand((), generator=generator).item()
        spans = max(2, int(mask_prob * frames / mask_length + uniform))
        starts_available = max(frames - mask_length, 1)
        spans = min(spans, starts_available)
        starts = torch.randperm(starts_available, generator=generator)[:spans]
        offsets = torch.arange(mask_length)
        positions = (starts[:, None] + offsets[None, :]).flatten()
        positions = positions[positions < frames]
        mask[row, positions] = True
    return mask


def _init_bert_linears(module: nn.Module) -> None:
    """fairseq's init_bert_params for the encoder's Linear layers: N(0, 0.02), zero bias."""
    for child in module.modules():
        if isinstance(child, nn.Linear):
            nn.init.normal_(child.weight, mean=0.0, std=0.02)
            if child.bias is not None:
                nn.init.zeros_(child.bias)
