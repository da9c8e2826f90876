"""The Sparseformer's fixed pattern run through PyTorch's FlexAttention: the key layout, the
block masks, the compiled kernels, their caches, and whether it can run here. It is
``BlockedSparseAttention``'s fused path on a GPU (on a CPU, ``models.sparse_flash`` is
faster and takes no compile); the blocked core is its fallback.

FlexAttention skips whole tiles of (query, key) pairs that its block mask marks empty. In the
pattern's own key order no tile is empty: every block of l keys holds c summary columns that
every query reads. So keys and values are extended by a gathered copy of all summary keys,
[K | K[summary positions]]: a query of block b reads all of block b in the first part and the
summaries of every other block in the second part. Each pair the pattern allows is read
exactly once, every other tile is skipped, and about l + T c / l keys are read per query
(plus the part of a tile that the block edges leave unused).

The compiled kernel is specialized to one length (static shapes make the faster CPU kernel)
and kept per (T, device), as is the block mask, so repeated forwards compile nothing.
Each length gets its own function object for ``torch.compile``: TorchDynamo caches compiled
graphs per code object and, past a few lengths on one code object, would run FlexAttention
uncompiled (all T x T scores in memory). Compilation needs a compiler (inductor: a C++
compiler on a CPU, Triton on a GPU); if it fails, one warning says so and the blocked core
runs from then on.
"""
from __future__ import annotations

import functools
import types
import warnings

import torch
from torch.nn.attention.flex_attention import BlockMask, create_block_mask, flex_attention

# The block mask's tile (queries x keys). The CPU kernel multiplies one tile at a time, so a
# tile narrower than this starves its matrix multiplies, and a wider one computes more of the
# pairs the block edges leave unused; for the default pattern (block 32) this was the fastest.
TILE = 64

# Number of (length, device) entries kept: each holds a compiled kernel and a block mask.
# It also caps the lengths one process compiles: a workload of many lengths (a corpus's
# features, one utterance at a time; distillation's batches cut to their shortest item)
# would otherwise compile once per length, seconds each, for forwards of milliseconds.
# Lengths past the cap run the blocked core; those already compiled keep their kernel.
CACHED_LENGTHS = 16

_failure: list[str] = []  # why compiling failed, once it has; then the blocked core runs
_compiled: set = set()    # the (length, device) pairs this process has compiled for


def extended(x: torch.Tensor, pattern) -> torch.Tensor:
    """(B, H, T, d) keys or values -> (B, H, T + S, d): followed by their summary rows."""
    return torch.cat([x, x[:, :, pattern.summary_positions(x.shape[2], x.device)]], dim=2)


def pattern_mask_mod(pattern, time: int):
    """FlexAttention mask over [K | K_summary]: own block in the first part, the other
    blocks' summaries in the second (the k-th gathered summary belongs to block k // c)."""
    block, summary = pattern.block, pattern.summary

    def own_block(b, h, query, key):
        return (key < time) & (query // block == key // block)

    if summary == 0:
        return own_block

    def allowed(b, h, query, key):
        other_summary = (key >= time) & ((key - time) // summary != query // block)
        return own_block(b, h, query, key) | other_summary

    return allowed


@functools.lru_cache(maxsize=CACHED_LENGTHS)
def block_mask(pattern, time: int, device: torch.device) -> BlockMask:
    """The block mask of ``pattern`` over T queries and the T + S extended keys."""
    keys = time + len(pattern.summary_positions(time))
    return create_block_mask(pattern_mask_mod(pattern, time), None, None, time, keys,
                             device=device, BLOCK_SIZE=TILE)


def _flex(q, k, v, block_mask):
    return flex_attention(q, k, v, block_mask=block_mask)


@functools.lru_cache(maxsize=CACHED_LENGTHS)
def compiled_kernel(time: int, device: torch.device):
    """FlexAttention compiled for one length and device (see the module docstring for why
    each gets a function object of its own)."""
    name = f"flex_attention_{time}_{device.type}"
    function = types.FunctionType(_flex.__code__.replace(co_name=name), _flex.__globals__, name)
    return torch.compile(function, dynamic=False)


def sparse_flex_attention(q, k, v, pattern, kernel=None) -> torch.Tensor:
    """The pattern's attention over (B, H, T, d) q, k, v, scaled by 1 / sqrt(d).
    ``kernel`` defaults to the compiled kernel of this (T, device); FlexAttention's eager
    ``flex_attention`` computes the same function (slowly: all scores in memory)."""
    time, device = q.shape[2], q.device
    if kernel is None:
        kernel = compiled_kernel(time, device)
    return kernel(q, extended(k, pattern), extended(v, pattern), block_mask(pattern, time, device))


def can_run(q) -> bool:
    """Whether the compiled path can take these operands: a CPU or GPU tensor, compiling
    has not failed in this process, and their length has a kernel or the cap on compiled
    lengths (``CACHED_LENGTHS``) is not reached. (When a fused path may run at all, gradients
    and watched ops among the reasons it may not, is ``BlockedSparseAttention``'s call.)"""
    if q.device.type not in ("cpu", "cuda") or _failure:
        return False
    return (q.shape[2], q.device) in _compiled or len(_compiled) < CACHED_LENGTHS


def compile_failure() -> str | None:
    """Why compiling FlexAttention failed in this process, or None (not failed so far)."""
    return _failure[0] if _failure else None


def attention_or_none(q, k, v, pattern):
    """``sparse_flex_attention`` through the compiled kernel, or None when compiling or
    running it failed; the first failure warns once and turns the path off."""
    try:
        _compiled.add((q.shape[2], q.device))
        return sparse_flex_attention(q, k, v, pattern)
    except Exception as error:  # inductor raises many kinds (no compiler, unsupported dtype)
        first_line = (str(error).splitlines() or [""])[0]
        _failure.append(f"{type(error).__name__}: {first_line}")
        warnings.warn(f"FlexAttention could not be compiled here ({_failure[0]}); the "
                      f"Sparseformer's blocked attention core runs instead", RuntimeWarning,
                      stacklevel=2)
        return None
