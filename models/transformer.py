"""The Transformer encoder of HuBERT-Base (fairseq's TransformerSentenceEncoderLayer with
``layer_norm_first=False``): post-LN blocks of self-attention and a two-layer feed-forward
network. The Sparseformer reuses these blocks with a sparse attention core."""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import nn

from .attention import MultiheadSelfAttention, dense_attention_core
from .bit import linear
from .quantization import FULL_PRECISION, BlockQuantization, Quantization

# The feed-forward activations a config may name (HubertConfig.ffn_activation).
ACTIVATIONS = {"gelu": nn.GELU, "relu": nn.ReLU, "swish": nn.SiLU}


def activation(name: str) -> nn.Module:
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"unknown activation {name!r}; known: {sorted(ACTIVATIONS)}") from None


class FeedForward(nn.Module):
    """Linear -> activation -> dropout -> Linear. In a quantized build the second Linear's
    input comes out of a ReLU, so BiT quantizes it to unsigned levels ({0, 1} at 1 bit)."""

    def __init__(self, dim: int, ffn_dim: int, activation_name: str, *, dropout: float = 0.0,
                 quantization: Quantization = FULL_PRECISION):
        super().__init__()
        self.fc1 = linear(dim, ffn_dim, quantization=quantization)
        self.activation = activation(activation_name)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = linear(ffn_dim, dim, quantization=quantization,
                          unsigned_input=activation_name == "relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.dropout(self.activation(self.fc1(x))))


class TransformerLayer(nn.Module):
    """Post-LN block: x = LN(x + Attn(x)); x = LN(x + FFN(x))."""

    def __init__(self, attention: nn.Module, feed_forward: nn.Module, dim: int,
                 dropout: float = 0.0):
        super().__init__()
        self.attention = attention
        self.dropout = nn.Dropout(dropout)
        self.attention_norm = nn.LayerNorm(dim)
        self.feed_forward = feed_forward
        self.final_norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        x = self.attention_norm(x + self.dropout(self.attention(x, padding_mask)))
        return self.final_norm(x + self.dropout(self.feed_forward(x)))


class TransformerEncoder(nn.Module):
    """A stack of blocks that all run at the input's frame rate."""

    def __init__(self, layers: List[nn.Module]):
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: torch.Tensor,
                padding_mask: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, ...]:
        """Returns every layer's output, (B, T, D) each."""
        outputs = []
        for layer in self.layers:
            x = layer(x, padding_mask)
            outputs.append(x)
        return tuple(outputs)


def transformer_layer(dim: int, heads: int, ffn_dim: int, *, activation_name: str = "gelu",
                      dropout: float = 0.1, attention_dropout: float = 0.1,
                      activation_dropout: float = 0.0,
                      quantization: Quantization | BlockQuantization = FULL_PRECISION,
                      attention_core: Optional[nn.Module] = None) -> TransformerLayer:
    bits = BlockQuantization.of(quantization)
    if attention_core is None:
        attention_core = dense_attention_core(quantization=bits.attention,
                                              dropout=attention_dropout)
    attention = MultiheadSelfAttention(dim, heads, attention_core, quantization=bits.attention)
    feed_forward = FeedForward(dim, ffn_dim, activation_name, dropout=activation_dropout,
                               quantization=bits.feed_forward)
    return TransformerLayer(attention, feed_forward, dim, dropout)


def transformer_encoder(layers: int, dim: int, heads: int, ffn_dim: int, *,
                        activation_name: str = "gelu", dropout: float = 0.1,
                        attention_dropout: float = 0.1, activation_dropout: float = 0.0,
                        quantization: Quantization | BlockQuantization = FULL_PRECISION
                        ) -> TransformerEncoder:
    return TransformerEncoder([
        transformer_layer(dim, heads, ffn_dim, activation_name=activation_name, dropout=dropout,
                          attention_dropout=attention_dropout,
                          activation_dropout=activation_dropout, quantization=quantization)
        for _ in range(layers)
    ])
