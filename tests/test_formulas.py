"""Per-op counts against closed forms written out here (exact integers)."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import profiler


def totals(model, *inputs, device="meta", **kwargs):
    return profiler.profile(model, inputs, device=device, kwargs=kwargs or None).totals


class Fn(nn.Module):
    """Wraps a function of the inputs so that it can be profiled."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args, **kwargs):
        return self.fn(*args, **kwargs)


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_linear_2d_and_3d(device):
    lin = nn.Linear(64, 32)
    t = totals(lin, torch.randn(3, 64), device=device)
    assert t["macs"] == 3 * 64 * 32 == 6144
    assert t["elementwise_flops"] == 3 * 32  # bias
    assert t["flops"] == 2 * 6144 + 96
    assert t["bop_nonq"] == 6144 * 32 * 32
    t = totals(lin, torch.randn(2, 5, 64), device=device)
    assert t["macs"] == 2 * 5 * 64 * 32 == 20480
    assert t["elementwise_flops"] == 2 * 5 * 32


def test_linear_without_bias_has_no_elementwise_work():
    t = totals(nn.Linear(64, 32, bias=False), torch.randn(3, 64))
    assert (t["macs"], t["elementwise_flops"]) == (6144, 0)


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_conv1d_plain_grouped_depthwise(device):
    x = torch.randn(2, 8, 100)
    # L_out = floor((100 + 2*2 - 5) / 2) + 1 = 50
    t = totals(nn.Conv1d(8, 16, 5, stride=2, padding=2), x, device=device)
    assert t["macs"] == 2 * 50 * 16 * 8 * 5 == 64000
    assert t["elementwise_flops"] == 2 * 16 * 50
    t = totals(nn.Conv1d(8, 16, 5, stride=2, padding=2, groups=4, bias=False), x, device=device)
    assert t["macs"] == 2 * 50 * 16 * (8 // 4) * 5 == 16000
    assert t["elementwise_flops"] == 0
    t = totals(nn.Conv1d(8, 8, 31, padding=15, groups=8, bias=False), x, device=device)
    assert t["macs"] == 2 * 100 * 8 * 1 * 31 == 49600


def test_conv2d_and_transposed_conv():
    t = totals(nn.Conv2d(3, 6, 3), torch.randn(1, 3, 10, 10))
    assert t["macs"] == 1 * 8 * 8 * 6 * 3 * 9 == 10368
    assert t["elementwise_flops"] == 6 * 8 * 8
    # Transposed: every input position meets C_out/groups * k weights per input channel.
    t = totals(nn.ConvTranspose1d(8, 4, 4, stride=2), torch.randn(2, 8, 10))
    assert t["macs"] == 2 * 10 * 8 * 4 * 4 == 2560
    assert t["elementwise_flops"] == 2 * 4 * ((10 - 1) * 2 + 4)


def test_bmm_matmul_einsum():
    a, b = torch.randn(4, 5, 6), torch.randn(4, 6, 7)
    assert totals(Fn(torch.bmm), a, b)["macs"] == 4 * 5 * 6 * 7
    assert (totals(Fn(lambda x, y: x @ y), torch.randn(2, 5, 6), torch.randn(6, 7))["macs"]
            == 2 * 5 * 6 * 7)
    assert (totals(Fn(torch.matmul), torch.randn(3, 2, 5, 6), torch.randn(3, 2, 6, 7))["macs"]
            == 6 * 5 * 6 * 7)
    q, k = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 6, 4)
    einsum = Fn(lambda x, y: torch.einsum("bhld,bhmd->bhlm", x, y))
    t = totals(einsum, q, k)
    assert t["macs"] == 2 * 3 * 5 * 6 * 4 == 720
    assert t["elementwise_flops"] == 0


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_hand_written_attention(device):
    def attention(q, k, v):
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
        return scores.softmax(dim=-1) @ v

    q = torch.randn(2, 3, 5, 4)
    t = totals(Fn(attention), q, q, q, device=device)
    assert t["macs"] == 2 * (2 * 3 * 5 * 5 * 4) == 1200
    assert t["elementwise_flops"] == 2 * 3 * 5 * 5 * 2  # the division and the softmax
    assert profiler.profile(Fn(attention), (q, q, q)).by_bits["A32A32"]["macs"] == 1200


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_scaled_dot_product_attention(device):
    b, h, lq, lk, e = 2, 4, 10, 7, 16
    q, k = torch.randn(b, h, lq, e), torch.randn(b, h, lk, e)
    t = totals(Fn(F.scaled_dot_product_attention), q, k, k, device=device)
    assert t["macs"] == 2 * b * h * lq * lk * e == 17920
    # The reference path scales q and k by sqrt(1/sqrt(e)) each, then softmax over scores.
    assert t["elementwise_flops"] == b * h * lq * e + b * h * lk * e + b * h * lq * lk
    t = totals(Fn(F.scaled_dot_product_attention), q, q, q, device=device, is_causal=True)
    assert t["macs"] == 2 * b * h * lq * lq * e


MHA_MACS = 2 * 10 * 64 * 192 + 2 * (2 * 4 * 10 * 10 * 16) + 2 * 10 * 64 * 64  # in, QK+AV, out


class SelfAttention(nn.Module):
    def __init__(self, **options):
        super().__init__()
        self.attn = nn.MultiheadAttention(64, 4, batch_first=True, dropout=0.0)
        self.options = options

    def forward(self, x):
        return self.attn(x, x, x, **self.options)[0]


@pytest.mark.parametrize("device", ["meta", "cpu"])
@pytest.mark.parametrize("train", [False, True])
def test_multihead_attention_both_paths(device, train):
    # eval + no grad on CPU takes the fused torch._native_multi_head_attention kernel.
    model = SelfAttention().train(train)
    t = totals(model, torch.randn(2, 10, 64), device=device)
    assert t["macs"] == MHA_MACS == 353280
    # in-proj bias, q scaling, softmax, head-averaged weights, out-proj bias
    assert t["elementwise_flops"] == 20 * 192 + 20 * 64 + 800 + 800 + 20 * 64
    t = totals(SelfAttention(need_weights=False).train(train), torch.randn(2, 10, 64),
               device=device)
    assert t["macs"] == MHA_MACS
    assert t["elementwise_flops"] == 20 * 192 + 2 * 20 * 64 + 800 + 20 * 64


def encoder(norm_first=False, activation="relu"):
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(64, 4, 256, dropout=0.0, batch_first=True,
                                       norm_first=norm_first, activation=activation)
    return nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)


@pytest.mark.parametrize("device", ["meta", "cpu"])
@pytest.mark.parametrize("train", [False, True])
def test_transformer_encoder_both_paths(device, train):
    # eval + no grad on CPU takes torch._transformer_encoder_layer_fwd per layer.
    t = totals(encoder().train(train), torch.randn(2, 10, 64), device=device)
    per_layer_macs = MHA_MACS + 2 * (20 * 64 * 256)
    assert t["macs"] == 2 * per_layer_macs == 2017280
    per_layer_elementwise = (
        20 * 192 + 2 * 20 * 64 + 800 + 20 * 64   # attention as in need_weights=False
        + 2 * 20 * 64                             # two residual adds
        + 2 * 5 * 20 * 64                         # two affine LayerNorms
        + 20 * 256 + 20 * 256 + 20 * 64           # linear1 bias, ReLU, linear2 bias
    )
    assert t["elementwise_flops"] == 2 * per_layer_elementwise == 70720


def test_layer_group_batch_norm_softmax_gelu():
    x = torch.randn(2, 10, 64)
    assert totals(nn.LayerNorm(64), x)["elementwise_flops"] == 5 * 1280
    assert totals(nn.LayerNorm(64, elementwise_affine=False), x)["elementwise_flops"] == 4 * 1280
    y = torch.randn(2, 8, 100)
    assert totals(nn.GroupNorm(4, 8), y)["elementwise_flops"] == 5 * 1600
    assert totals(nn.BatchNorm1d(8).eval(), y)["elementwise_flops"] == 2 * 1600
    assert totals(nn.BatchNorm1d(8).train(), y)["elementwise_flops"] == 5 * 1600
    z = torch.randn(3, 7)
    assert totals(nn.Softmax(-1), z)["elementwise_flops"] == 21
    assert totals(nn.GELU(), z)["elementwise_flops"] == 21
    assert totals(nn.GLU(-1), torch.randn(3, 8))["elementwise_flops"] == 2 * 3 * 4


def test_residual_add_and_scalar_ops():
    t = totals(Fn(lambda a, b: (a + b) * 0.5 - a.exp()), torch.randn(4, 5), torch.randn(4, 5))
    assert t["elementwise_flops"] == 4 * 20
    # broadcasting counts output elements
    assert totals(Fn(torch.add), torch.randn(4, 5), torch.randn(5))["elementwise_flops"] == 20


def test_lstm_counts_the_same_on_cpu_and_meta():
    lstm = nn.LSTM(16, 32, batch_first=True).eval()
    x = torch.randn(2, 5, 16)
    meta, cpu = totals(lstm, x), totals(lstm, x, device="cpu")
    assert meta == cpu
    # 5 steps of x W_ih and h W_hh (4 gates); the first step's h0 = 0 times W_hh is a
    # product of two constants, which a deployed model precomputes.
    assert meta["macs"] == 5 * 2 * 4 * 32 * (16 + 32) - 2 * 4 * 32 * 32
    assert meta["foldable_macs"] == 2 * 4 * 32 * 32


def test_each_convolution_op_reads_its_own_argument_layout():
    """cudnn_convolution has no bias and puts benchmark where convolution has transposed;
    the slow convolutions put kernel_size where it has the bias. A (1, 4, 10) input, an
    (8, 4, 3) weight, stride 2: 4 output frames x 8 x 4 x 3 = 384 MACs, by hand."""
    from profiler.formulas import lookup

    aten = torch.ops.aten

    x, w, out = (1, 4, 10), (8, 4, 3), (1, 8, 4)
    cudnn = lookup(aten.cudnn_convolution.default).fn
    cost = cudnn(x, w, [0], [2], [1], 1, True, False, False, out_shape=out)
    assert [mac.count for mac in cost.macs] == [384] and cost.elementwise == 0
    x2, w2, out2 = (1, 4, 10, 1), (8, 4, 3, 1), (1, 8, 4, 1)
    slow = lookup(aten._slow_conv2d_forward.default).fn
    without = slow(x2, w2, [3, 1], None, [2, 1], [0, 0], out_shape=out2)
    with_bias = slow(x2, w2, [3, 1], (8,), [2, 1], [0, 0], out_shape=out2)
    assert [mac.count for mac in without.macs] == [384] and without.elementwise == 0
    assert with_bias.elementwise == 32                          # one add per output
    plain = lookup(aten.convolution.default).fn
    assert plain(x, w, (8,), [2], [0], [1], False, [0], 1, out_shape=out).elementwise == 32
