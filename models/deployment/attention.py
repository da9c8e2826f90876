"""Deployed attention of BiT models: Q K^T on signed packed operands (XOR-popcount), the
binarized probabilities ({0, alpha}) times signed V (AND-popcount), and for the relative-
position attention the (Q + v) P^T product, with P from the packed position-table signs.
Softmax, masks and the relative shift stay float.

On float32 CPU tensors the whole core runs fused (``kernels.binary_attention``: a tile of
query rows from packed signs to output, equal to the unfused path to the bit), so the (T, T)
scores never reach memory; float32 meta tensors (the analyzers) trace it as one operator;
other dtypes take the unfused path."""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator, Optional

import torch
from torch import nn

from ..attention import (
    QuantizedDotProductAttention,
    mask_value,
    merge_heads,
    project_heads,
    split_heads,
)
from ..conformer import QuantizedRelPositionAttentionCore, relative_shift, sinusoids
from ..sparseformer import QuantizedBlockedSparseAttention, QuantizedMaskedSparseAttention
from . import kernels
from .linear import PackedLinear, binarizer_alpha, compact_signs, expand_signs


def signed_product(a: torch.Tensor, b: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """(B, H, M, d) x (B, H, N, d) -> (B, H, M, N) ``scale`` times the integer sum of
    sign(a) sign(b) (float32: the kernel applies the scale)."""
    if a.dtype == torch.float32:
        return kernels.binary_matmul(kernels.pack_rows(a), kernels.pack_rows(b), a.size(-1),
                                     scale=scale)
    counts = kernels.binary_matmul(kernels.pack_rows(a), kernels.pack_rows(b), a.size(-1))
    return counts.to(a.dtype) * scale


def _number(value: torch.Tensor) -> float:
    """A one-element float32 product as the kernel takes it (on meta, a placeholder)."""
    return 0.0 if value.device.type == "meta" else float(value)


@contextmanager
def unfused_attention(model: nn.Module) -> Iterator[nn.Module]:
    """``model``'s packed attention cores take the unfused path inside the block (tests and
    benchmarks compare the two)."""
    cores = [module for module in model.modules() if isinstance(module, _PackedCore)]
    for core in cores:
        core.fused = False
    try:
        yield model
    finally:
        for core in cores:
            del core.fused


class _PackedCore(nn.Module):
    """Holds the alphas of the query, key, value and probability binarizers."""

    fused = True  # unfused_attention() sets it False on an instance

    def _init_alphas(self, **binarizers) -> None:
        for name, binarizer in binarizers.items():
            self.register_buffer(f"{name}_alpha", binarizer_alpha(binarizer))

    def _runs_fused(self, q: torch.Tensor) -> bool:
        # meta: the analyzers trace what runs on the CPU
        return self.fused and q.dtype == torch.float32 and q.device.type in ("cpu", "meta")

    def _fused(self, q, k, v, key_padding_mask, allowed=None, **relative) -> torch.Tensor:
        """The whole core in one kernel; ``relative``: qv, positions and position_scale."""
        return kernels.binary_attention(
            kernels.pack_rows(q), kernels.pack_rows(k), kernels.pack_rows(v.transpose(-2, -1)),
            q.size(-1), content_scale=_number(self.query_alpha * self.key_alpha),
            score_scale=1.0 / math.sqrt(q.size(-1)), probs_alpha=_number(self.probs_alpha),
            out_scale=_number(self.probs_alpha * self.value_alpha), allowed=allowed,
            key_padding=key_padding_mask, **relative)

    def _scores(self, q, k) -> torch.Tensor:
        return signed_product(q, k, self.query_alpha * self.key_alpha)

    def _attend(self, scores: torch.Tensor, v: torch.Tensor,
                key_padding_mask: Optional[torch.Tensor]) -> torch.Tensor:
        """Masked softmax, {0, 1} probability bits, then AND-popcount against V's signs."""
        if key_padding_mask is not None:
            scores = scores.masked_fill(key_padding_mask[:, None, None, :],
                                        mask_value(scores.dtype))
        probs = torch.softmax(scores, dim=-1)
        prob_bits = kernels.pack_rows(probs, alpha=self.probs_alpha, unsigned=True)
        value_bits = kernels.pack_rows(v.transpose(-2, -1))
        scale = self.probs_alpha * self.value_alpha
        if v.dtype == torch.float32:
            return kernels.binary_matmul(prob_bits, value_bits, v.size(-2), kernels.AND,
                                         scale=scale)
        counts = kernels.binary_matmul(prob_bits, value_bits, v.size(-2), kernels.AND)
        return counts.to(v.dtype) * scale


class PackedDotProductAttention(_PackedCore):
    """``QuantizedDotProductAttention`` at 1 bit."""

    def __init__(self, core: QuantizedDotProductAttention):
        super().__init__()
        b = core.binarizers
        self._init_alphas(query=b.query, key=b.key, value=b.value, probs=b.probs)

    def forward(self, q, k, v, key_padding_mask: Optional[torch.Tensor] = None):
        if self._runs_fused(q):
            return self._fused(q, k, v, key_padding_mask)
        scores = self._scores(q, k) * (1.0 / math.sqrt(q.size(-1)))
        return self._attend(scores, v, key_padding_mask)


class PackedSparseAttention(_PackedCore):
    """Both quantized sparse cores at 1 bit. They compute the same function; deployed, the
    pattern is applied as the masked core does (scores for every pair, then a bias), so a
    blocked core's skipped pairs are computed here and masked."""

    def __init__(self, core: QuantizedMaskedSparseAttention | QuantizedBlockedSparseAttention):
        super().__init__()
        self.pattern = core.pattern
        b = core.binarizers
        self._init_alphas(query=b.query, key=b.key, value=b.value, probs=b.probs)

    def forward(self, q, k, v, key_padding_mask: Optional[torch.Tensor] = None):
        time = q.size(-2)
        allowed = self.pattern.allowed(time, device=q.device)
        if self._runs_fused(q):
            return self._fused(q, k, v, key_padding_mask, allowed)
        bias = torch.zeros((time, time), dtype=q.dtype, device=q.device).masked_fill(
            ~allowed, mask_value(q.dtype))
        scores = bias + self._scores(q, k) * (1.0 / math.sqrt(q.size(-1)))
        return self._attend(scores, v, key_padding_mask)

    def extra_repr(self) -> str:
        return f"block={self.pattern.block}, summary={self.pattern.summary}"


class PackedRelPositionAttentionCore(_PackedCore):
    """``QuantizedRelPositionAttentionCore`` at 1 bit; ``p`` is the float position operand
    (the packed product of the table signs), binarized here as in the simulated core."""

    def __init__(self, core: QuantizedRelPositionAttentionCore):
        super().__init__()
        self.register_buffer("pos_bias_u", core.pos_bias_u.detach().clone())
        self.register_buffer("pos_bias_v", core.pos_bias_v.detach().clone())
        self._init_alphas(query=core.query_u_binarizer, query_v=core.query_v_binarizer,
                          key=core.key_binarizer, value=core.value_binarizer,
                          position=core.position_binarizer, probs=core.probs_binarizer)

    def forward(self, q, k, v, p, key_padding_mask: Optional[torch.Tensor] = None):
        q_u = q + self.pos_bias_u[:, None, :]
        q_v = q + self.pos_bias_v[:, None, :]
        if self._runs_fused(q) and p.size(0) == 1:   # one position table for the batch
            return self._fused(q_u, k, v, key_padding_mask, qv=kernels.pack_rows(q_v),
                               positions=kernels.pack_rows(p[0]),
                               position_scale=_number(self.query_v_alpha * self.position_alpha))
        content = self._scores(q_u, k)
        p = p.expand(q.size(0), *p.shape[1:])
        position = signed_product(q_v, p, self.query_v_alpha * self.position_alpha)
        scores = (content + relative_shift(position)) * (1.0 / math.sqrt(q.size(-1)))
        return self._attend(scores, v, key_padding_mask)


class PackedRelPositionSelfAttention(nn.Module):
    """``RelPositionSelfAttention`` whose ``linear_pos`` is binarized: the position table
    is kept only as the signs its binarizer sees (sign(table + offset), 1 bit per entry),
    and its rows for a length T go straight into the packed product."""

    def __init__(self, attention: nn.Module):
        super().__init__()
        self.heads = attention.heads
        self.q_proj, self.k_proj = attention.q_proj, attention.k_proj
        self.v_proj, self.out_proj = attention.v_proj, attention.out_proj
        self.linear_pos = attention.linear_pos
        self.core = attention.core
        if not isinstance(self.linear_pos, PackedLinear) or self.linear_pos.bias is not None \
                or self.linear_pos.unsigned_input:
            raise kernels.DeployError("a packed position table needs a binarized linear_pos "
                                      "with signed inputs and without bias")
        table = attention.position_table.detach()
        self.table_shape = tuple(table.shape)
        signs = kernels.input_bits(table + self.linear_pos.input_offset, None, unsigned=False)
        self.register_buffer("position_signs", compact_signs(signs))
        self.register_buffer("position_words", None, persistent=False)
        self._unpack()

    def _unpack(self) -> None:
        self.position_words = kernels.pack_rows(expand_signs(self.position_signs,
                                                             self.table_shape))

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._unpack()

    def _position_rows(self, time: int, dtype: torch.dtype) -> torch.Tensor:
        """Packed signs of the rows for relative positions T-1 ... -(T-1), (2T - 1, W); rows
        beyond the table computed as ``relative_position_rows`` does, then binarized."""
        max_len = (self.table_shape[0] + 1) // 2
        if time <= max_len:
            return self.position_words[max_len - time: max_len + time - 1]
        beyond = torch.arange(time - 1, max_len - 1, -1, device=self.position_words.device)
        dim = self.table_shape[1]
        offset = self.linear_pos.input_offset
        above = kernels.pack_rows(sinusoids(beyond, dim).to(dtype), offset)
        below = kernels.pack_rows(sinusoids(-beyond.flip(0), dim).to(dtype), offset)
        return torch.cat([above, self.position_words, below])

    def forward(self, x: torch.Tensor,
                key_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        q, k, v = project_heads(self, x)
        rows = self._position_rows(x.size(1), x.dtype)
        pos = self.linear_pos
        p = split_heads(pos._product(rows, x.dtype, None)[None], self.heads)
        return self.out_proj(merge_heads(self.core(q, k, v, p, key_padding_mask)))
