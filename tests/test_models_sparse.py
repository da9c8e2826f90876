"""Sparse Transformer fixed pattern; blocked, fused (flash, FlexAttention) and dense-masked
attention agree."""
import warnings

import pytest
import torch
from torch.nn.attention.flex_attention import flex_attention
from torch.utils._python_dispatch import TorchDispatchMode

import profiler
from models import sparse_flash, sparse_flex
from models.bit import ElasticBinarizer
from models.sparseformer import (
    BlockedSparseAttention,
    FixedSparsePattern,
    MaskedSparseAttention,
    QuantizedBlockedSparseAttention,
    QuantizedMaskedSparseAttention,
)


def test_pattern_on_a_small_case():
    allowed = FixedSparsePattern(block=4, summary=1).allowed(8)
    # query 1 (block 0) sees keys 0-3 of its block and key 7, the summary of block 1
    assert allowed[1].nonzero().flatten().tolist() == [0, 1, 2, 3, 7]
    # query 6 (block 1) sees keys 4-7 and key 3, the summary of block 0
    assert allowed[6].nonzero().flatten().tolist() == [3, 4, 5, 6, 7]


@pytest.mark.parametrize("time,block,summary,pairs", [
    # full blocks: nb blocks of l queries, each seeing l + (nb - 1) c keys
    (64, 32, 8, 2 * 32 * (32 + 8)),
    (499, 32, 8, 15 * 32 * (32 + 14 * 8) + 19 * (19 + 15 * 8)),  # last block: 19 frames, no summary
    (70, 32, 8, 2 * 32 * (32 + 8) + 6 * (6 + 16)),
    (8, 4, 4, 8 * 8),          # every column is a summary: dense
    (8, 4, 0, 2 * 4 * 4),      # no summaries: block-diagonal
    (5, 32, 8, 5 * 5),         # shorter than one block
])
def test_attended_pairs_closed_form(time, block, summary, pairs):
    pattern = FixedSparsePattern(block, summary)
    assert pattern.attended_pairs(time) == pairs
    assert int(pattern.allowed(time).sum()) == pairs


def test_effective_attention_macs():
    q = torch.empty(2, 4, 499, 64, device="meta")
    pattern = FixedSparsePattern(32, 8)
    pairs = 15 * 32 * (32 + 14 * 8) + 19 * (19 + 15 * 8)
    for core in (MaskedSparseAttention(pattern), BlockedSparseAttention(pattern),
                 QuantizedMaskedSparseAttention(pattern), QuantizedBlockedSparseAttention(pattern)):
        # Q.K^T and A.V, each pair once per product, all heads, whole batch
        assert core.effective_attention_macs(q, q, q, None) == 2 * 2 * 4 * 64 * pairs


@pytest.mark.parametrize("time,block,summary", [(64, 32, 8), (499, 32, 8), (5, 32, 8), (50, 8, 0),
                                                (50, 8, 8), (33, 4, 1)])
def test_blocked_equals_masked(time, block, summary):
    torch.manual_seed(0)
    pattern = FixedSparsePattern(block, summary)
    q, k, v = (torch.randn(2, 3, time, 16, requires_grad=True) for _ in range(3))
    padding = torch.zeros(2, time, dtype=torch.bool)
    padding[1, (2 * time) // 3:] = True
    valid = (~padding)[:, None, :, None].float()
    masked = MaskedSparseAttention(pattern)
    blocked = BlockedSparseAttention(pattern, chunk_elements=3000)  # several chunks
    for key_padding_mask in (None, padding):
        a, b = masked(q, k, v, key_padding_mask), blocked(q, k, v, key_padding_mask)
        if key_padding_mask is None:
            assert (a - b).abs().max() < 1e-5
        else:  # padded query rows are don't-cares
            assert ((a - b) * valid).abs().max() < 1e-5
        grads_a = torch.autograd.grad((a * valid).sum(), (q, k, v))
        grads_b = torch.autograd.grad((b * valid).sum(), (q, k, v))
        for ga, gb in zip(grads_a, grads_b):
            assert (ga - gb).abs().max() < 1e-5


def test_blocked_equals_masked_binarized():
    torch.manual_seed(1)
    pattern = FixedSparsePattern(8, 2)
    q, k, v = (torch.randn(2, 2, 45, 8) for _ in range(3))
    masked, blocked = (QuantizedMaskedSparseAttention(pattern),
                       QuantizedBlockedSparseAttention(pattern))
    masked.train(), blocked.train()  # first-batch alpha initialization must agree too
    a, b = masked(q, k, v), blocked(q, k, v)
    assert masked.binarizers.probs.alpha.item() == pytest.approx(
        blocked.binarizers.probs.alpha.item())
    assert (a - b).abs().max() < 1e-5
    assert a.abs().sum() > 0  # not trivially zero: the probability binarizer kept some pairs


def test_binarized_cores_declare_one_bit_activations():
    for core in (QuantizedMaskedSparseAttention(FixedSparsePattern()),
                 QuantizedBlockedSparseAttention(FixedSparsePattern())):
        assert core.activation_bits == 1
        assert (isinstance(core.binarizers.probs, ElasticBinarizer)
                and not core.binarizers.probs.signed)


def test_cores_run_on_meta():
    q = torch.empty(1, 4, 8000, 64, device="meta")
    padding = torch.zeros(1, 8000, dtype=torch.bool, device="meta")
    for core in (MaskedSparseAttention(FixedSparsePattern()),
                 BlockedSparseAttention(FixedSparsePattern())):
        assert core(q, q, q, padding).shape == (1, 4, 8000, 64)


@pytest.mark.parametrize("block,summary", [(0, 0), (4, 5), (4, -1)])
def test_invalid_pattern(block, summary):
    with pytest.raises(ValueError):
        FixedSparsePattern(block, summary)


def _reference_attention(q, k, v, block, summary):
    """Dense softmax attention with the pattern written out pair by pair from its
    definition (own block, or a summary column j mod l >= l - c)."""
    time = q.shape[2]
    allowed = torch.tensor([[i // block == j // block or j % block >= block - summary
                             for j in range(time)] for i in range(time)])
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    return torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1) @ v


def _eager_flex(q, k, v, block_mask):
    with warnings.catch_warnings():  # "called without torch.compile()": on purpose here
        warnings.simplefilter("ignore", UserWarning)
        return flex_attention(q, k, v, block_mask=block_mask)


class _Watching(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("time,block,summary", [(64, 32, 8), (499, 32, 8), (5, 32, 8),
                                                (200, 32, 8), (50, 8, 0), (50, 8, 8),
                                                (33, 4, 1)])
def test_flex_layout_equals_dense_reference(time, block, summary):
    # FlexAttention run eagerly: the same keys, layout and block mask the compiled kernel
    # gets, without compiling (which takes seconds per length).
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, time, 16) for _ in range(3))
    expected = _reference_attention(q, k, v, block, summary)
    got = sparse_flex.sparse_flex_attention(q, k, v, FixedSparsePattern(block, summary),
                                            kernel=_eager_flex)
    assert (got - expected).abs().max() < 1e-5


def test_flex_block_mask_reads_the_patterns_keys():
    # 8000 frames, block 32, 8 summaries: each 64-query tile reads its own 64 keys and the
    # 2000 gathered summaries (32 tiles of 64, the last one of 16): 33 of the 157 key tiles.
    mask = sparse_flex.block_mask(FixedSparsePattern(32, 8), 8000, torch.device("cpu"))
    tiles = mask.kv_num_blocks + mask.full_kv_num_blocks
    assert mask.shape[-2:] == (8000, 8000 + 2000)
    assert tiles.shape[-1] == 125
    assert (tiles == 33).all()


@pytest.mark.parametrize("time,block,summary", [(64, 32, 8), (499, 32, 8), (5, 32, 8),
                                                (200, 32, 8), (50, 8, 0), (50, 8, 8),
                                                (33, 4, 1), (1, 4, 1), (3, 4, 1)])
def test_flash_path_equals_dense_reference(time, block, summary):
    # 5 < l - c + 1 and 3 frames of a (4, 1) pattern: no summary column exists yet; (50, 8,
    # 8): every key a summary, no leading keys; 499 and 33: a partial last block.
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, time, 16) for _ in range(3))
    expected = _reference_attention(q, k, v, block, summary)
    got = sparse_flash.flash_sparse_attention(q, k, v, FixedSparsePattern(block, summary))
    assert got.shape == expected.shape
    assert (got - expected).abs().max() < 1e-5


def test_flash_path_in_half_precision_is_close_to_float():
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 2, 100, 16) for _ in range(3))
    expected = _reference_attention(q, k, v, 32, 8)
    got = sparse_flash.flash_sparse_attention(*(x.bfloat16() for x in (q, k, v)),
                                              FixedSparsePattern(32, 8))
    assert got.dtype == torch.bfloat16
    # bfloat16 keeps 8 bits of mantissa: outputs of magnitude <= ~3 within a few 1e-2
    assert (got.float() - expected).abs().max() < 5e-2


def _count_calls(monkeypatch):
    """Record the lengths the flash and flex paths are called with (flex run eagerly)."""
    calls = {"flash": [], "flex": []}
    flash = sparse_flash.flash_sparse_attention

    def counted_flash(q, k, v, pattern):
        calls["flash"].append(q.shape[2])
        return flash(q, k, v, pattern)

    def kernel(time, device):
        calls["flex"].append(time)
        return _eager_flex

    monkeypatch.setattr(sparse_flash, "flash_sparse_attention", counted_flash)
    monkeypatch.setattr(sparse_flex, "compiled_kernel", kernel)
    monkeypatch.setattr(sparse_flex, "_compiled", set())  # no cap left over from other tests
    return calls


@pytest.mark.parametrize("path", ["auto", "flash", "flex"])
def test_blocked_core_takes_a_fused_path_only_where_allowed(monkeypatch, path):
    torch.manual_seed(0)
    calls = _count_calls(monkeypatch)
    taken = "flex" if path == "flex" else "flash"  # a CPU tensor: auto takes flash
    pattern = FixedSparsePattern(8, 2)
    core = BlockedSparseAttention(pattern, path=path).eval()
    q, k, v = (torch.randn(1, 2, 40, 8) for _ in range(3))
    expected = _reference_attention(q, k, v, 8, 2)
    with torch.no_grad():
        assert (core(q, k, v) - expected).abs().max() < 1e-5
    assert calls[taken] == [40] and sum(map(len, calls.values())) == 1
    padding = torch.zeros(1, 40, dtype=torch.bool)
    with torch.no_grad():
        core(q, k, v, padding)  # key padding: blocked
        BlockedSparseAttention(pattern, path="blocked")(q, k, v)
        QuantizedBlockedSparseAttention(pattern)(q, k, v)
        with _Watching():  # ops watched (the analyzer on a real device): blocked
            core(q, k, v)
        dropping = BlockedSparseAttention(pattern, dropout=0.5, path=path).train()
        dropping(q, k, v)  # dropout active: blocked
    core(q.requires_grad_(), k, v)  # gradients needed: blocked
    assert calls[taken] == [40] and sum(map(len, calls.values())) == 1


def test_flex_compiles_at_most_the_cap_of_lengths(monkeypatch):
    # a corpus of many lengths must not compile a kernel per length: past the cap (3 here),
    # new lengths run blocked and the lengths already compiled keep their kernel
    calls = _count_calls(monkeypatch)
    monkeypatch.setattr(sparse_flex, "CACHED_LENGTHS", 3)
    monkeypatch.setattr(sparse_flex, "_failure", [])
    core = BlockedSparseAttention(FixedSparsePattern(8, 2), path="flex").eval()
    torch.manual_seed(0)
    with torch.no_grad():
        for time in (16, 24, 32, 40, 48, 16):
            q, k, v = (torch.randn(1, 2, time, 8) for _ in range(3))
            expected = _reference_attention(q, k, v, 8, 2)
            assert (core(q, k, v) - expected).abs().max() < 1e-5
    assert calls["flex"] == [16, 24, 32, 16] and calls["flash"] == []


def test_unknown_blocked_path_is_refused():
    with pytest.raises(ValueError, match="unknown blocked attention path 'fast'"):
        BlockedSparseAttention(FixedSparsePattern(), path="fast")


def test_failed_compile_warns_once_and_runs_blocked(monkeypatch):
    def broken(time, device):
        raise RuntimeError("no compiler\nsecond line")

    monkeypatch.setattr(sparse_flex, "compiled_kernel", broken)
    monkeypatch.setattr(sparse_flex, "_failure", [])
    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 2, 40, 8) for _ in range(3))
    core = BlockedSparseAttention(FixedSparsePattern(8, 2), path="flex").eval()
    with torch.no_grad(), pytest.warns(RuntimeWarning, match="no compiler") as caught:
        first, second = core(q, k, v), core(q, k, v)
    assert len(caught) == 1
    expected = _reference_attention(q, k, v, 8, 2)
    assert (first - expected).abs().max() < 1e-5 and (second - expected).abs().max() < 1e-5


def test_profile_counts_the_blocked_core_on_a_real_device(monkeypatch):
    # profile() runs the model under its op counter (a dispatch mode): on a CPU tensor the
    # core must run blocked, as on meta, so that both count the same ops.
    calls = _count_calls(monkeypatch)
    q = torch.randn(1, 2, 70, 8)
    core = BlockedSparseAttention(FixedSparsePattern(32, 8)).eval()
    on_cpu, on_meta = (profiler.profile(core, (q, q, q), device=device).totals
                       for device in ("cpu", "meta"))
    assert calls == {"flash": [], "flex": []}
    assert on_cpu == on_meta
    # Q.K^T and A.V over the allowed pairs (2 * 32 * (32 + 8) + 6 * (6 + 16)), 2 heads of 8
    assert on_cpu["effective_macs"] == 2 * 2 * 8 * (2 * 32 * 40 + 6 * 22)
