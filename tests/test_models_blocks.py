"""Encoder blocks: parameter counts against closed forms, relative positions, rates."""
import math

import pytest
import torch

from models.conformer import (
    ConformerLayer,
    RelPositionAttentionCore,
    relative_position_rows,
    relative_shift,
    relative_sinusoids,
)
from models.quantization import FULL_PRECISION, W1A1
from models.squeezeformer import (
    SqueezeformerBlock,
    TimeRecovery,
    TimeReduction,
    squeezeformer_encoder,
)
from models.transformer import transformer_layer


def _params(module):
    return sum(p.numel() for p in module.parameters())


# Closed forms. D model width, F feed-forward width, K depthwise kernel, M table positions.
def transformer_layer_params(D, F):
    attention = 4 * (D * D + D)
    feed_forward = D * F + F + F * D + D
    norms = 2 * 2 * D
    return attention + feed_forward + norms


def conformer_layer_params(D, F, K, M):
    feed_forwards = 2 * (2 * D + D * F + F + F * D + D)              # each with its pre-LN
    # LN, qkvo, pos, u/v, table
    attention = 2 * D + 4 * (D * D + D) + D * D + 2 * D + (2 * M - 1) * D
    # LN pw1 dw BN pw2
    convolution = 2 * D + (D * 2 * D + 2 * D) + (D * K + D) + 2 * D + (D * D + D)
    return feed_forwards + attention + convolution + 2 * D          # final LN


def squeezeformer_block_params(D, F, K, M):
    attention = 4 * (D * D + D) + D * D + 2 * D + (2 * M - 1) * D
    convolution = (D * 2 * D + 2 * D) + (D * K + D) + 2 * D + (D * D + D)
    feed_forwards = 2 * (D * F + F + F * D + D)
    adaptive_scales = 4 * 2 * D
    post_norms = 4 * 2 * D
    return attention + convolution + feed_forwards + adaptive_scales + post_norms


@pytest.mark.parametrize("D,H,F", [(16, 4, 64), (768, 12, 3072)])
def test_transformer_layer_params(D, H, F):
    with torch.device("meta"):
        layer = transformer_layer(D, H, F)
    assert _params(layer) == transformer_layer_params(D, F)
    if D == 768:
        assert _params(layer) == 7_087_872  # HuBERT-Base layer


def test_binarized_transformer_layer_params():
    D, F = 16, 64
    layer = transformer_layer(D, 4, F, activation_name="relu", quantization=W1A1)
    # each BinaryLinear adds an input offset (in_features) and a scale alpha; the attention
    # core has four binarizers (Q, K, V, probabilities)
    extra = 4 * (D + 1) + (D + 1) + (F + 1) + 4
    assert _params(layer) == transformer_layer_params(D, F) + extra


@pytest.mark.parametrize("D,H,F,K,M", [(16, 4, 64, 7, 50), (144, 4, 576, 31, 5000)])
def test_conformer_layer_params(D, H, F, K, M):
    with torch.device("meta"):
        layer = ConformerLayer(D, H, F, kernel_size=K, max_len=M)
    assert _params(layer) == conformer_layer_params(D, F, K, M)
    if D == 144:
        assert _params(layer) == 1_946_592
        assert layer.attention.position_table.shape == (9999, 144)


def test_binarized_conformer_layer_params():
    D, F, K, M = 16, 64, 7, 50
    layer = ConformerLayer(D, 4, F, kernel_size=K, max_len=M, activation_name="relu",
                           quantization=W1A1)
    linears = 2 * ((D + 1) + (F + 1)) + 5 * (D + 1)  # FFNs; q, k, v, out, linear_pos
    convs = 3 * (D + 1)                               # pw1, depthwise (D channels after GLU), pw2
    attention_binarizers = 6                          # q+u, q+v, k, v, p, probabilities
    assert _params(layer) == (conformer_layer_params(D, F, K, M) + linears + convs
                              + attention_binarizers)


@pytest.mark.parametrize("D,H,F,K,M", [(16, 4, 64, 7, 50), (144, 4, 576, 31, 5000)])
def test_squeezeformer_block_params(D, H, F, K, M):
    with torch.device("meta"):
        block = SqueezeformerBlock(D, H, F, kernel_size=K, max_len=M)
    assert _params(block) == squeezeformer_block_params(D, F, K, M)
    # the same layout as a Conformer layer, less its fifth LayerNorm, plus 4 adaptive scales
    assert _params(block) == conformer_layer_params(D, F, K, M) - 2 * D + 8 * D


def test_time_reduction_and_recovery_params():
    D = 144
    reduction, recovery = TimeReduction(D), TimeRecovery(D)
    assert _params(reduction) == (5 * D + D) + (D * D + D)
    assert _params(recovery) == D * D + D
    # the paper's Squeezeformer-XS minus Conformer-S: 0.17 MB
    assert (_params(reduction) + _params(recovery)) * 4 / 1e6 == pytest.approx(0.1705, abs=1e-4)


@pytest.mark.parametrize("time", [1, 2, 3, 4, 5, 6, 499])
def test_time_reduction_halves_the_rate(time):
    reduction = TimeReduction(8)
    padding_mask = torch.zeros(2, time, dtype=torch.bool)
    y, reduced_mask = reduction(torch.randn(2, time, 8), padding_mask)
    assert y.shape == (2, math.ceil(time / 2), 8)
    assert reduced_mask.shape == (2, math.ceil(time / 2))


def test_squeezeformer_rates_and_full_rate_hidden_states():
    encoder = squeezeformer_encoder(4, 16, 4, 64, reduce_index=1, recover_index=3,
                                    kernel_size=7, max_len=64, dropout=0.0).eval()
    seen = []
    for index, layer in enumerate(encoder.layers):
        layer.register_forward_pre_hook(
            lambda module, args, index=index: seen.append(args[0].size(1)))
    with torch.no_grad():
        outputs = encoder(torch.randn(2, 25, 16))
    assert seen == [25, 13, 13, 25]
    assert [o.shape for o in outputs] == [(2, 25, 16)] * 4
    # half-rate outputs come back by repetition
    assert torch.equal(outputs[1][:, 0], outputs[1][:, 1])


def test_relative_sinusoids_rows():
    table = relative_sinusoids(max_len=10, dim=4)
    assert table.shape == (19, 4)
    # row r encodes relative position 9 - r; position 0 is row 9
    assert torch.allclose(table[9], torch.tensor([0.0, 1.0, 0.0, 1.0]))
    position, frequency = 3.0, 10000 ** (-2 / 4)
    expected = torch.tensor([math.sin(position), math.cos(position),
                             math.sin(position * frequency), math.cos(position * frequency)])
    assert torch.allclose(table[9 - 3], expected, atol=1e-6)
    assert torch.allclose(table[9 + 3], expected * torch.tensor([-1.0, 1.0, -1.0, 1.0]), atol=1e-6)


def test_relative_positions_beyond_the_stored_table_are_computed():
    # ESPnet extends its table for long inputs; the rows must be those of a table built
    # for the full length (the closed form tested above), the stored table unchanged.
    table = relative_sinusoids(max_len=10, dim=6)
    stored = table.clone()
    for time in (4, 10, 11, 23):
        rows = relative_position_rows(table, time)
        assert rows.shape == (2 * time - 1, 6)
        assert torch.allclose(rows, relative_sinusoids(max_len=time, dim=6), atol=1e-5)
    assert torch.equal(table, stored)
    meta = relative_position_rows(torch.empty(19, 6, device="meta", dtype=torch.float16), 30)
    assert meta.shape == (59, 6) and meta.is_meta and meta.dtype == torch.float16


def test_relative_shift_against_definition():
    T = 5
    scores = torch.randn(2, 3, T, 2 * T - 1)
    shifted = relative_shift(scores)
    for i in range(T):
        for j in range(T):
            assert torch.equal(shifted[..., i, j], scores[..., i, T - 1 - i + j])


def test_relative_position_scores_use_position_i_minus_j():
    torch.manual_seed(0)
    B, H, T, d = 1, 2, 6, 4
    core = RelPositionAttentionCore(H, d).eval()
    q, k, v = (torch.randn(B, H, T, d) for _ in range(3))
    p = torch.randn(1, H, 2 * T - 1, d)  # row r: relative position T - 1 - r
    out = core(q, k, v, p)
    scores = torch.empty(B, H, T, T)
    for i in range(T):
        for j in range(T):
            row = (T - 1) - (i - j)
            scores[..., i, j] = (
                ((q[..., i, :] + core.pos_bias_u[None, :, :]) * k[..., j, :]).sum(-1)
                + ((q[..., i, :] + core.pos_bias_v[None, :, :]) * p[..., row, :]).sum(-1))
    expected = torch.softmax(scores / math.sqrt(d), dim=-1) @ v
    assert torch.allclose(out, expected, atol=1e-5)


def test_positional_table_storage_bits():
    from profiler.bits import parameter_storage_bits
    for quantization, bits in ((FULL_PRECISION, 32), (W1A1, 1)):
        attention = ConformerLayer(16, 4, 64, kernel_size=7, max_len=50,
                                   quantization=quantization).attention
        assert parameter_storage_bits(attention, "position_table", attention.position_table) == bits


def test_no_module_sees_a_bare_parameter_view():
    """Under no_grad a slice of a parameter requires grad but has no grad_fn, which breaks
    tools that hook module outputs (torch's FlopCounterMode among them)."""
    layer = ConformerLayer(16, 4, 64, kernel_size=7, max_len=50).eval()
    bad = []

    def check(module, args, output):
        for tensor in (*args, output):
            if isinstance(tensor, torch.Tensor) and tensor.requires_grad and tensor.grad_fn is None:
                bad.append(type(module).__name__)

    for module in layer.modules():
        module.register_forward_hook(check)
    with torch.no_grad():
        layer(torch.randn(1, 9, 16))
    assert bad == []
