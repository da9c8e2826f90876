"""Sparse Transformer fixed pattern; blocked and dense-masked attention agree."""
import pytest
import torch

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
