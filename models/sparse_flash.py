"""The Sparseformer's fixed pattern as two calls of PyTorch's fused CPU attention kernel,
merged by their log-sum-exps: ``BlockedSparseAttention``'s fast path on a CPU.

Each query reads two disjoint sets of keys: A, the l - c leading keys of its own block, and
B, the summary columns of every block (its own block's among them). A softmax over A and B
together is the two softmaxes' outputs weighted by exp(lse_A - lse) and exp(lse_B - lse),
with lse = log(exp(lse_A) + exp(lse_B)). The fused kernel (FlashAttention's tiling: the
scores never leave the cache) runs A as one batch of independent l x (l - c) problems, B as
one T x (about T c / l) problem, and returns each query's log-sum-exp beside its output; the
blocked core instead writes every score to memory, joins the two parts and runs a softmax
over them, which the memory traffic dominates on a CPU.

Nothing is compiled, so the first call at a new length costs no more than the others. The
kernel is ATen's private ``_scaled_dot_product_flash_attention_for_cpu`` (what
``F.scaled_dot_product_attention`` calls on a CPU, there without its log-sum-exp); it stops
the process with a floating-point exception when given no queries or no keys, so neither
call is ever made empty.
"""
from __future__ import annotations

import torch

# The dtypes the CPU kernel takes.
DTYPES = (torch.float32, torch.float64, torch.bfloat16, torch.float16)


def _kernel():
    return getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)


def can_run(q: torch.Tensor) -> bool:
    """Whether this path can take these operands: a non-empty CPU tensor of a dtype the
    kernel takes, in a PyTorch that has the kernel."""
    return (q.device.type == "cpu" and q.dtype in DTYPES and q.numel() > 0
            and _kernel() is not None)


def _attend(q, k, v):
    """(..., L, d) attention of q over k, v and each query's log-sum-exp (..., L), float32 or
    wider; any leading shape (the kernel takes (N, H, L, d))."""
    lead = q.shape[:-2]
    out, lse = _kernel()(q.reshape(-1, 1, *q.shape[-2:]), k.reshape(-1, 1, *k.shape[-2:]),
                         v.reshape(-1, 1, *v.shape[-2:]))
    return out.view(*lead, *q.shape[-2:]), lse.view(*lead, q.shape[-2])


def _own_block_attention(q, k, v, pattern):
    """Each query over the l - c leading keys of its own block (set A): outputs and
    log-sum-exps, (B, H, T, d) and (B, H, T); the last block may be partial."""
    block, local = pattern.block, pattern.block - pattern.summary
    time = q.shape[2]
    full = time // block * block
    outs, lses = [], []

    def blocks(x, keys):  # (B, H, full blocks, the first `keys` of each block, d)
        return x[:, :, :full].unflatten(2, (full // block, block))[:, :, :, :keys]

    if full:
        out, lse = _attend(blocks(q, block), blocks(k, local), blocks(v, local))
        outs.append(out.flatten(2, 3))
        lses.append(lse.flatten(2, 3))
    if full < time:  # the partial last block: its own leading keys that exist
        last = slice(full, min(time, full + local))
        out, lse = _attend(q[:, :, full:], k[:, :, last], v[:, :, last])
        outs.append(out)
        lses.append(lse)
    return torch.cat(outs, dim=2), torch.cat(lses, dim=2)


def flash_sparse_attention(q, k, v, pattern) -> torch.Tensor:
    """The pattern's attention over (B, H, T, d) q, k, v, scaled by 1 / sqrt(d)."""
    time = q.shape[2]
    summaries = pattern.summary_positions(time, q.device)
    if pattern.block == pattern.summary:  # every key is a summary: set A is empty
        return _attend(q, k[:, :, summaries], v[:, :, summaries])[0]
    local_out, local_lse = _own_block_attention(q, k, v, pattern)
    if not len(summaries):  # no summary columns (c = 0, or T shorter than l - c + 1)
        return local_out
    summary_out, summary_lse = _attend(q, k[:, :, summaries], v[:, :, summaries])
    lse = torch.logaddexp(local_lse, summary_lse)
    local_weight = torch.exp(local_lse - lse).unsqueeze(-1).to(q.dtype)
    summary_weight = torch.exp(summary_lse - lse).unsqueeze(-1).to(q.dtype)
    return local_out * local_weight + summary_out * summary_weight
