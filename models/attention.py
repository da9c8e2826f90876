"""Multi-head self-attention split in two: the projections (Linear layers, float or binary)
and an attention *core*, the module whose forward runs Q.K^T and A.V directly. Keeping the
two products in their own module lets it state their bit-width to the analyzer (BiT
quantizes both operands of both products) and lets sparse patterns swap only the core.

Cores take ``q, k, v`` of shape (B, H, T, d) and an optional ``key_padding_mask`` (B, T),
True at padding, and return (B, H, T, d).
"""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .bit import ElasticBinarizer, linear
from .quantization import FULL_PRECISION, Quantization


def mask_value(dtype: torch.dtype) -> float:
    """Additive score for a forbidden pair. Finite, unlike -inf, so a row whose keys are all
    padding gives a uniform (finite) distribution instead of NaNs that would leak into the
    padded frames' values at the next layer."""
    return torch.finfo(dtype).min


def attend(scores: torch.Tensor, v: torch.Tensor, key_padding_mask: Optional[torch.Tensor],
           dropout: nn.Module, quantize_probs) -> torch.Tensor:
    """The end of every unfused attention core: padded keys masked (:func:`mask_value`),
    the softmax, dropout, the probabilities quantized (``quantize_probs``: their
    binarizer, or the identity), then their product with ``v``."""
    if key_padding_mask is not None:
        scores = scores.masked_fill(key_padding_mask[:, None, None, :], mask_value(scores.dtype))
    return torch.matmul(quantize_probs(dropout(torch.softmax(scores, dim=-1))), v)


class DotProductAttention(nn.Module):
    """softmax(Q K^T / sqrt(d)) V over all keys, through PyTorch's fused kernel."""

    def __init__(self, dropout: float = 0.0):
        super().__init__()
        self.dropout = dropout

    def forward(self, q, k, v, key_padding_mask: Optional[torch.Tensor] = None):
        attn_mask = None
        if key_padding_mask is not None:
            attn_mask = ~key_padding_mask[:, None, None, :]
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, dropout_p=self.dropout if self.training else 0.0)


class AttentionBinarizers(nn.Module):
    """The four activation quantizers of BiT's attention: Q, K, V signed, the
    probabilities unsigned ({-1, 1} and {0, 1} at 1 bit)."""

    def __init__(self, bits: int = 1):
        super().__init__()
        self.query = ElasticBinarizer(signed=True, bits=bits)
        self.key = ElasticBinarizer(signed=True, bits=bits)
        self.value = ElasticBinarizer(signed=True, bits=bits)
        self.probs = ElasticBinarizer(signed=False, bits=bits, init_over_nonzero=True)


class QuantizedDotProductAttention(nn.Module):
    """Dense attention with both products on quantized operands (BiT at 1 bit)."""

    def __init__(self, dropout: float = 0.0, *, bits: int = 1):
        super().__init__()
        self.activation_bits = bits
        self.dropout = nn.Dropout(dropout)
        self.binarizers = AttentionBinarizers(bits)

    def forward(self, q, k, v, key_padding_mask: Optional[torch.Tensor] = None):
        q = self.binarizers.query(q)
        k = self.binarizers.key(k)
        v = self.binarizers.value(v)
        scores = torch.matmul(q, k.transpose(-2, -1)) * (1.0 / math.sqrt(q.size(-1)))
        return attend(scores, v, key_padding_mask, self.dropout, self.binarizers.probs)


class HeadProjections(nn.Module):
    """The query, key and value projections of multi-head self-attention; subclasses add
    their core and ``out_proj`` after them (parameter order: q, k, v, the subclass's)."""

    def __init__(self, dim: int, heads: int, *, quantization: Quantization = FULL_PRECISION):
        super().__init__()
        if dim % heads != 0:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.q_proj = linear(dim, dim, quantization=quantization)
        self.k_proj = linear(dim, dim, quantization=quantization)
        self.v_proj = linear(dim, dim, quantization=quantization)


def project_heads(attention: nn.Module, x: torch.Tensor):
    """``attention``'s q, k and v of ``x`` (B, T, D), each (B, H, T, D / H): for every
    module with ``q_proj``, ``k_proj``, ``v_proj`` and ``heads``, deployed ones included."""
    return tuple(split_heads(projection(x), attention.heads)
                 for projection in (attention.q_proj, attention.k_proj, attention.v_proj))


class MultiheadSelfAttention(HeadProjections):
    """Q/K/V/output projections around an attention core."""

    def __init__(self, dim: int, heads: int, core: nn.Module, *,
                 quantization: Quantization = FULL_PRECISION):
        super().__init__(dim, heads, quantization=quantization)
        self.core = core
        self.out_proj = linear(dim, dim, quantization=quantization)

    def forward(self, x: torch.Tensor,
                key_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        q, k, v = project_heads(self, x)
        return self.out_proj(merge_heads(self.core(q, k, v, key_padding_mask)))


def split_heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    batch, time, dim = x.shape
    return x.view(batch, time, heads, dim // heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    batch, heads, time, head_dim = x.shape
    return x.transpose(1, 2).reshape(batch, time, heads * head_dim)


def attention_core(float_core: type, quantized_core: type, quantization: Quantization,
                   *args, **kwargs) -> nn.Module:
    """``float_core(*args, **kwargs)``, or ``quantized_core`` at the activation bits when
    activations are quantized: attention's products have no weight operand, so the
    activation bits alone decide (every family's attention chooses its core here)."""
    if quantization.activations_quantized:
        return quantized_core(*args, bits=quantization.activation_bits, **kwargs)
    return float_core(*args, **kwargs)


def dense_attention_core(*, quantization: Quantization, dropout: float) -> nn.Module:
    return attention_core(DotProductAttention, QuantizedDotProductAttention, quantization,
                          dropout)
