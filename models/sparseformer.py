"""Sparseformer: HuBERT's post-LN Transformer blocks with the Sparse Transformer's fixed
attention pattern (Child et al. 2019), bidirectional.

Pattern, with block width l ("stride" in fairseq) and c summary columns ("expressivity"):
query i sees every key of its own block, floor(j / l) == floor(i / l), and the last c
positions of every block, j mod l >= l - c. That is about l + T c / l keys per query
instead of T. (fairseq's SparseMultiheadAttention builds a similar mask, but its window
and summary ranges include one extra position at each block edge; this is the paper's
definition.)

Two cores compute the same function:
- ``MaskedSparseAttention`` scores every pair and masks the disallowed ones before the
  softmax, as fairseq does; its cost is the dense cost, which is what the paper's
  Sparseformer FLOPs reflect.
- ``BlockedSparseAttention`` only computes allowed pairs: for each block, the queries
  against the block's own non-summary keys (l - c of them) and against the summary keys of
  all blocks (one shared matmul), with one softmax over both parts. Where it can, it runs
  the same pairs through a fused kernel instead: on a CPU two calls of PyTorch's fused
  attention merged by their log-sum-exps (``models.sparse_flash``), on a GPU a compiled
  FlexAttention kernel (``models.sparse_flex``).
Both report ``effective_attention_macs``: the Q.K^T and A.V MACs the pattern needs.
Quantized (bq-), their forwards agree too, but they do not train alike: the probability
binarizer's alpha gets a gradient scaled by one over the square root of its tensor's size
(B H T T in the masked core, fewer entries in the blocked one), and a key-padded query row
is uniform over all T keys in the masked core, over its allowed keys in the blocked one,
which moves alpha's first value in a padded batch. The study trains the masked core
(the zoo's default) on unpadded crops.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import _get_current_function_mode_stack
from torch.utils._python_dispatch import is_in_torch_dispatch_mode

from . import sparse_flash, sparse_flex
from .attention import AttentionBinarizers, attend, attention_core, mask_value
from .quantization import FULL_PRECISION, BlockQuantization, Quantization
from .transformer import TransformerEncoder, transformer_layer

ATTENTION_IMPLEMENTATIONS = ("masked", "blocked")
# How BlockedSparseAttention computes the pairs: "auto" takes the fused path of the operands'
# device where one may run (flash on a CPU, flex on a GPU), "blocked" never takes one.
BLOCKED_PATHS = ("auto", "flash", "flex", "blocked")


@dataclass(frozen=True)
class FixedSparsePattern:
    block: int = 32
    summary: int = 8

    def __post_init__(self):
        if self.block < 1:
            raise ValueError(f"sparse block width must be >= 1, got {self.block}")
        if not 0 <= self.summary <= self.block:
            raise ValueError(f"sparse summary columns must be in [0, {self.block}], "
                             f"got {self.summary}")

    def allowed(self, time: int, device=None) -> torch.Tensor:
        """(T, T) bool, True where query i may attend key j."""
        positions = torch.arange(time, device=device)
        block_of = torch.div(positions, self.block, rounding_mode="floor")
        summary_column = (positions % self.block) >= self.block - self.summary
        return (block_of[:, None] == block_of[None, :]) | summary_column[None, :]

    def summary_positions(self, time: int, device=None) -> torch.Tensor:
        """Positions j < T of the summary columns (j mod l >= l - c), in order."""
        positions = torch.arange(time, device=device)
        return positions[positions % self.block >= self.block - self.summary]

    def attended_pairs(self, time: int) -> int:
        """Number of allowed (query, key) pairs for T frames."""
        block_sizes = [min(self.block, time - start) for start in range(0, time, self.block)]
        summaries = [max(0, size - (self.block - self.summary)) for size in block_sizes]
        total_summaries = sum(summaries)
        return sum(size * (size + total_summaries - own)
                   for size, own in zip(block_sizes, summaries))


class _SparseAttentionCore(nn.Module):
    def __init__(self, pattern: FixedSparsePattern, dropout: float = 0.0):
        super().__init__()
        self.pattern = pattern
        self.dropout = nn.Dropout(dropout)

    def effective_attention_macs(self, q, k=None, v=None, key_padding_mask=None) -> int:
        batch, heads, time, head_dim = q.shape
        return 2 * batch * heads * head_dim * self.pattern.attended_pairs(time)

    def _operands(self, q, k, v):
        return q, k, v

    def _probs(self, probs):
        return probs

    def extra_repr(self) -> str:
        return f"block={self.pattern.block}, summary={self.pattern.summary}"


class MaskedSparseAttention(_SparseAttentionCore):
    """Dense scores, disallowed pairs masked before the softmax."""

    def forward(self, q, k, v, key_padding_mask: Optional[torch.Tensor] = None):
        q, k, v = self._operands(q, k, v)
        batch, heads, time, head_dim = q.shape
        bias = self.pattern_bias(time, q.dtype, q.device)
        scores = torch.baddbmm(bias, q.reshape(batch * heads, time, head_dim),
                               k.reshape(batch * heads, time, head_dim).transpose(1, 2),
                               alpha=1.0 / math.sqrt(head_dim)).view(batch, heads, time, time)
        return attend(scores, v, key_padding_mask, self.dropout, self._probs)

    def pattern_bias(self, time: int, dtype: torch.dtype, device) -> torch.Tensor:
        """(T, T) additive scores: 0 where allowed, a large negative number elsewhere. Built
        in every forward, as fairseq does: no cache, so that a profile counts the same ops
        on every call and device."""
        allowed = self.pattern.allowed(time, device=device)
        return torch.zeros((time, time), dtype=dtype, device=device).masked_fill(
            ~allowed, mask_value(dtype))


class BlockedSparseAttention(_SparseAttentionCore):
    """Computes only the allowed pairs (see the module docstring).

    Queries are processed a few blocks at a time (``chunk_elements`` scores per chunk) so
    that each chunk's scores and probabilities stay in cache: materializing all of them
    would make the softmax memory-bound and lose most of the saving on a CPU.

    A forward without key padding, without active dropout and without gradients takes a
    fused path instead (``path``, see ``BLOCKED_PATHS``): on a CPU tensor ``flash``
    (``models.sparse_flash``), on a GPU tensor ``flex`` (``models.sparse_flex``), each
    where its ``can_run`` allows. Neither runs on meta tensors or while a dispatch or
    function mode watches the ops, so the analyzer counts this core's ops on every device.
    ``path="blocked"`` always runs the blocked computation.
    """

    # The probability binarizer's first alpha is a mean over the non-zero probabilities; the
    # rows of the queries added to fill the last block must not count (quantized core only).
    zero_padded_queries = False

    def __init__(self, pattern: FixedSparsePattern, dropout: float = 0.0,
                 chunk_elements: int = 1 << 21, *, path: str = "auto"):
        super().__init__(pattern, dropout)
        if path not in BLOCKED_PATHS:
            raise ValueError(f"unknown blocked attention path {path!r}; known: "
                             f"{list(BLOCKED_PATHS)}")
        self.chunk_elements = chunk_elements
        self.path = path

    def forward(self, q, k, v, key_padding_mask: Optional[torch.Tensor] = None):
        if self._fused_path_allowed(q, k, v, key_padding_mask):
            if self.path in ("auto", "flash") and sparse_flash.can_run(q):
                return sparse_flash.flash_sparse_attention(q, k, v, self.pattern)
            if self.path in ("auto", "flex") and sparse_flex.can_run(q):
                out = sparse_flex.attention_or_none(q, k, v, self.pattern)
                if out is not None:
                    return out
        return self._blocked(q, k, v, key_padding_mask)

    def _fused_path_allowed(self, q, k, v, key_padding_mask) -> bool:
        """Whether this forward may leave the blocked computation: a fused path is chosen,
        nothing is padded, no dropout or gradient needs the probabilities, and nothing
        watches the ops (the analyzer's dispatch mode, a function mode, a model being
        compiled). Each path's ``can_run`` then says whether it takes these operands (neither
        takes meta tensors)."""
        return (self.path != "blocked" and key_padding_mask is None
                and not (self.training and self.dropout.p > 0)
                and q.shape == k.shape == v.shape
                and not (torch.is_grad_enabled() and any(x.requires_grad for x in (q, k, v)))
                and not is_in_torch_dispatch_mode() and not _get_current_function_mode_stack()
                and not torch.compiler.is_compiling())

    def _blocked(self, q, k, v, key_padding_mask):
        q, k, v = self._operands(q, k, v)
        batch, heads, time, head_dim = q.shape
        block, summary = self.pattern.block, self.pattern.summary
        local = block - summary
        blocks = -(-time // block)
        padded_time = blocks * block
        pad = padded_time - time
        q = q * (1.0 / math.sqrt(head_dim))
        if pad:
            q, k, v = (F.pad(x, (0, 0, 0, pad)) for x in (q, k, v))
        rows = batch * heads
        q = q.reshape(rows, padded_time, head_dim)
        k_blocks = k.reshape(rows, blocks, block, head_dim)
        v_blocks = v.reshape(rows, blocks, block, head_dim)
        k_local = k_blocks[:, :, :local].reshape(rows * blocks, local, head_dim)
        v_local = v_blocks[:, :, :local].reshape(rows * blocks, local, head_dim)
        k_summary = k_blocks[:, :, local:].reshape(rows, blocks * summary, head_dim)
        v_summary = v_blocks[:, :, local:].reshape(rows, blocks * summary, head_dim)
        summaries = blocks * summary

        # Scores against each block's own non-summary keys, for all blocks at once (small).
        local_scores = torch.bmm(q.reshape(rows * blocks, block, head_dim), k_local.transpose(1, 2))
        local_scores = local_scores.view(rows, blocks, block, local)
        local_bias, summary_bias = self._key_bias(key_padding_mask, batch, heads, time, pad, q)
        if local_bias is not None:
            local_scores = local_scores + local_bias

        step = max(1, self.chunk_elements // (rows * block * (local + summaries)))
        local_probs, summary_outputs = [], []
        for first in range(0, blocks, step):
            last = min(blocks, first + step)
            queries = q[:, first * block: last * block]
            if summary_bias is None:
                summary_scores = torch.bmm(queries, k_summary.transpose(1, 2))
            else:
                summary_scores = torch.baddbmm(summary_bias, queries, k_summary.transpose(1, 2))
            scores = torch.cat([local_scores[:, first:last],
                                summary_scores.view(rows, last - first, block, summaries)], dim=-1)
            probs = self.dropout(torch.softmax(scores, dim=-1))
            if pad and self.zero_padded_queries:
                padded_queries = torch.arange(first * block, last * block, device=q.device) >= time
                probs = probs.masked_fill(padded_queries.view(1, last - first, block, 1), 0.0)
            probs = self._probs(probs)
            local_probs.append(probs[..., :local])
            summary_probs = probs[..., local:].reshape(rows, (last - first) * block, summaries)
            summary_outputs.append(torch.bmm(summary_probs, v_summary))

        local_probs = torch.cat(local_probs, dim=1).reshape(rows * blocks, block, local)
        out = (torch.cat(summary_outputs, dim=1)
               + torch.bmm(local_probs, v_local).view(rows, padded_time, head_dim))
        return out.view(batch, heads, padded_time, head_dim)[:, :, :time]

    def _key_bias(self, key_padding_mask, batch, heads, time, pad, like):
        """Additive biases that forbid padded keys: (B*H, nb, 1, l - c) for the local keys
        and (B*H, 1, nb * c) for the summary keys; None where nothing is padded."""
        if key_padding_mask is None and pad == 0:
            return None, None
        block, summary = self.pattern.block, self.pattern.summary
        if key_padding_mask is None:
            invalid = torch.zeros((batch, time), dtype=torch.bool, device=like.device)
        else:
            invalid = key_padding_mask
        invalid = F.pad(invalid, (0, pad), value=True).view(batch, -1, block)
        bias = torch.zeros(invalid.shape, dtype=like.dtype, device=like.device)
        bias = bias.masked_fill(invalid, mask_value(like.dtype))
        bias = bias[:, None].expand(batch, heads, *bias.shape[1:]).reshape(batch * heads, -1, block)
        local_bias = bias[:, :, None, : block - summary]
        summary_bias = bias[:, :, block - summary:].reshape(batch * heads, 1, -1)
        return local_bias, summary_bias


class _QuantizedAttentionOperands:
    """BiT quantization of the attention operands, shared by both sparse cores."""

    def _init_binarizers(self, bits: int):
        self.activation_bits = bits
        self.binarizers = AttentionBinarizers(bits)

    def _operands(self, q, k, v):
        return self.binarizers.query(q), self.binarizers.key(k), self.binarizers.value(v)

    def _probs(self, probs):
        return self.binarizers.probs(probs)


class QuantizedMaskedSparseAttention(_QuantizedAttentionOperands, MaskedSparseAttention):
    def __init__(self, pattern: FixedSparsePattern, dropout: float = 0.0, *, bits: int = 1):
        super().__init__(pattern, dropout)
        self._init_binarizers(bits)


class QuantizedBlockedSparseAttention(_QuantizedAttentionOperands, BlockedSparseAttention):
    """Runs in one chunk: BiT's probability quantizer scales its alpha gradient by the size
    of the whole probability tensor, which chunking would change. Never through
    FlexAttention, which does not materialize the probabilities the quantizer binarizes."""

    zero_padded_queries = True

    def __init__(self, pattern: FixedSparsePattern, dropout: float = 0.0, *, bits: int = 1):
        super().__init__(pattern, dropout, chunk_elements=2 ** 62, path="blocked")
        self._init_binarizers(bits)


def sparse_attention_core(implementation: str, pattern: FixedSparsePattern, *,
                          quantization: Quantization, dropout: float = 0.0) -> nn.Module:
    """The float core, or the quantized one when activations are quantized."""
    cores = {
        "masked": (MaskedSparseAttention, QuantizedMaskedSparseAttention),
        "blocked": (BlockedSparseAttention, QuantizedBlockedSparseAttention),
    }
    if implementation not in cores:
        raise ValueError(f"unknown sparse attention {implementation!r}; "
                         f"known: {list(ATTENTION_IMPLEMENTATIONS)}")
    return attention_core(*cores[implementation], quantization, pattern, dropout)


class SparseformerEncoder(TransformerEncoder):
    """A stack of post-LN Transformer layers with fixed-pattern sparse attention."""


def sparseformer_encoder(layers: int, dim: int, heads: int, ffn_dim: int, *,
                         attention: str = "masked",
                         pattern: FixedSparsePattern = FixedSparsePattern(),
                         activation_name: str = "gelu", dropout: float = 0.1,
                         attention_dropout: float = 0.1, activation_dropout: float = 0.0,
                         quantization: Quantization | BlockQuantization = FULL_PRECISION
                         ) -> SparseformerEncoder:
    attention_bits = BlockQuantization.of(quantization).attention
    return SparseformerEncoder([
        transformer_layer(dim, heads, ffn_dim, activation_name=activation_name, dropout=dropout,
                          activation_dropout=activation_dropout, quantization=quantization,
                          attention_core=sparse_attention_core(attention, pattern,
                                                               quantization=attention_bits,
                                                               dropout=attention_dropout))
        for _ in range(layers)
    ])
