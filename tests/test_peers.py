"""Cross-checks with DeepSpeed, fvcore, ptflops, FlopCounterMode, calflops and thop:
agreement where each peer is right, and each documented way a peer is wrong."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import profiler

pytest.importorskip("deepspeed", reason="the peers are part of the dev install")


def conv_net():
    # No biases, activations or norms: work every peer counts the same way.
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv1d(1, 16, 10, 5, bias=False), nn.Conv1d(16, 32, 3, 2, groups=2, bias=False),
        nn.Flatten(), nn.Linear(32 * 49, 10, bias=False),
    ).eval()


CONV_NET_MACS = 2 * (99 * 16 * 1 * 10 + 49 * 32 * 8 * 3 + 32 * 49 * 10)


def test_all_peers_agree_on_a_plain_conv_net():
    check = profiler.crosscheck(conv_net(), torch.randn(2, 1, 500))
    assert check.ours_macs == CONV_NET_MACS
    for row in check.rows:
        assert row.error is None, row
        assert abs(row.diff) <= 0.01, row
        assert not row.flagged


class SdpaBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.qkv = nn.Linear(64, 192, bias=False)

    def forward(self, x):
        q, k, v = self.qkv(x).view(2, 10, 3, 4, 16).permute(2, 0, 3, 1, 4)
        return F.scaled_dot_product_attention(q, k, v)


PROJ_MACS = 2 * 10 * 64 * 192
ATTN_MACS = 2 * (2 * 4 * 10 * 10 * 16)


def test_fvcore_and_flop_counter_miss_cpu_sdpa_deepspeed_does_not():
    check = profiler.crosscheck(SdpaBlock().eval(), torch.randn(2, 10, 64),
                                peers=("deepspeed", "fvcore", "flop_counter"))
    assert check.ours_macs == PROJ_MACS + ATTN_MACS
    assert check.row("deepspeed").macs == PROJ_MACS + ATTN_MACS
    for tool in ("fvcore", "flop_counter"):
        row = check.row(tool)
        assert row.macs == PROJ_MACS, tool  # the attention products are missing
        assert row.flagged and row.explained
    assert "aten::scaled_dot_product_attention" in " ".join(check.row("fvcore").peer_notes)
    assert any("flash_attention_for_cpu" in c for c in check.row("flop_counter").causes)


def test_flop_counter_counts_nothing_in_the_fused_transformer_fast_path():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(64, 4, 256, dropout=0.0, batch_first=True)
    model = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False).eval()
    check = profiler.crosscheck(model, torch.randn(2, 10, 64), peers=("flop_counter",))
    assert check.ours_macs == 2017280  # closed form in test_formulas
    row = check.row("flop_counter")
    assert row.macs == 0 and row.flagged and row.explained
    assert any("fast-path" in c for c in row.causes)


def test_deepspeed_misses_the_multihead_attention_fast_path_and_einsum_macs():
    mha = nn.MultiheadAttention(64, 4, batch_first=True).eval()

    class Attend(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = mha

        def forward(self, x):
            return self.mha(x, x, x)[0]

    check = profiler.crosscheck(Attend().eval(), torch.randn(2, 10, 64), peers=("deepspeed",))
    row = check.row("deepspeed")
    assert check.ours_macs == 353280
    assert row.macs == 0 and row.explained

    class Einsum(nn.Module):
        def forward(self, a, b):
            return torch.einsum("bij,bjk->bik", a, b)

    check = profiler.crosscheck(Einsum(), (torch.randn(2, 5, 6), torch.randn(2, 6, 7)),
                                peers=("deepspeed",))
    assert check.ours_macs == 2 * 5 * 6 * 7
    row = check.row("deepspeed")
    # DeepSpeed puts einsum into FLOPs only (numpy's einsum_path estimate), with no MACs
    assert row.macs == 0 and row.flops > 0
    assert any("einsum" in c for c in row.causes)


class Scores(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(16, 16, bias=False)

    def forward(self, x):
        h = self.proj(x)
        return h @ h.transpose(1, 2)


SCORES_PROJ, SCORES_PRODUCT = 2 * 8 * 16 * 16, 2 * 8 * 8 * 16


def test_ptflops_misses_the_matmul_operator():
    check = profiler.crosscheck(Scores(), torch.randn(2, 8, 16), peers=("ptflops",))
    assert check.ours_macs == SCORES_PROJ + SCORES_PRODUCT
    row = check.row("ptflops")
    assert row.macs == SCORES_PROJ
    assert row.flagged and any("@ operator" in c for c in row.causes)


def test_crosscheck_table_names_each_tool():
    text = str(profiler.crosscheck(conv_net(), torch.randn(1, 1, 500),
                                   peers=("fvcore", "flop_counter")))
    assert "fvcore" in text and "flop_counter" in text and "agrees" in text


def test_crosscheck_refuses_meta_models_and_unknown_peers():
    with pytest.raises(ValueError, match="unknown peer"):
        profiler.crosscheck(conv_net(), torch.randn(1, 1, 500), peers=("nvprof",))
    with pytest.raises(ValueError, match="real tensors"):
        profiler.crosscheck(conv_net(), torch.empty(1, 1, 500, device="meta"))


def test_peers_count_weight_only_products_that_we_report_as_foldable():
    class PositionTable(nn.Module):
        def __init__(self):
            super().__init__()
            self.table = nn.Parameter(torch.randn(10, 16))
            self.proj = nn.Linear(16, 16, bias=False)
            self.inp = nn.Linear(16, 16, bias=False)

        def forward(self, x):
            return self.inp(x) + self.proj(self.table)  # the table's projection needs no input

    check = profiler.crosscheck(PositionTable().eval(), torch.randn(10, 16),
                                peers=("deepspeed", "flop_counter"))
    assert check.ours_macs == 10 * 16 * 16
    for row in check.rows:
        assert row.macs == 2 * 10 * 16 * 16
        assert row.flagged and row.explained
        assert any("precomputable" in c for c in row.causes)


@pytest.mark.parametrize("name", ["conformer-s", "squeezeformer-xs"])
def test_deepspeed_counts_the_relative_position_builds_as_we_do_plus_precomputable(name):
    # reproduction.md rests the Conformer/Squeezeformer FLOP gap to the paper on this:
    # DeepSpeed's MACs equal ours plus the weight-only work we report apart, to the MAC.
    import models

    model = models.build(name, seed=0).eval()
    wave = torch.randn(1, 32_000)
    ours = profiler.profile(model, wave, device="cpu")
    check = profiler.crosscheck(model, wave, peers=("deepspeed",))
    row = check.row("deepspeed")
    assert row.error is None, row
    assert ours.totals["foldable_macs"] > 0
    assert row.macs == ours.totals["macs"] + ours.totals["foldable_macs"]
    assert row.flagged and row.explained


def test_crosscheck_verdicts_wrap_to_the_line_width():
    # the fast-path causes alone run past 150 characters on one line
    layer = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True)
    model = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False).eval()
    check = profiler.crosscheck(model, torch.randn(2, 6, 32), peers=("flop_counter",))
    row = check.row("flop_counter")
    assert row.flagged and len("; ".join(row.causes)) > 150
    text = str(check)
    assert max(len(line) for line in text.splitlines()) <= 100, text
    assert " ".join(text.split()).count(" ".join(row.causes[-1].split())) == 1


def test_deepspeed_counts_a_bit_linear_once():
    # BiT's QuantizeLinear calls F.linear once, on a binarized copy of its weight; building
    # the copy and binarizing the input are MAC-free for DeepSpeed (reports/reproduction.md,
    # "The BOP_BQ column": one mechanism ruled out for the paper's BOP_BQ).
    from models.bit import linear
    from models.quantization import W1A1

    torch.manual_seed(0)
    layer = linear(48, 96, quantization=W1A1).eval()
    check = profiler.crosscheck(layer, torch.randn(3, 7, 48), peers=("deepspeed",))
    assert check.ours_macs == 3 * 7 * 48 * 96
    assert check.row("deepspeed").macs == 3 * 7 * 48 * 96



def test_calflops_misses_the_matmul_operator_and_sdpa_thop_counts_both():
    check = profiler.crosscheck(Scores(), torch.randn(2, 8, 16), peers=("calflops", "thop"))
    assert check.ours_macs == SCORES_PROJ + SCORES_PRODUCT
    assert check.row("thop").macs == SCORES_PROJ + SCORES_PRODUCT
    assert not check.row("thop").flagged
    row = check.row("calflops")
    assert row.macs == SCORES_PROJ
    assert row.flagged and row.explained and any("@ operator" in c for c in row.causes)

    check = profiler.crosscheck(SdpaBlock().eval(), torch.randn(2, 10, 64),
                                peers=("calflops", "thop"))
    assert check.row("thop").macs == PROJ_MACS + ATTN_MACS
    row = check.row("calflops")
    assert row.macs == PROJ_MACS  # the attention products are missing
    assert row.flagged and row.explained
    assert any("scaled_dot_product_attention" in c for c in row.causes)


def test_calflops_shares_deepspeeds_fast_path_einsum_and_rnn_blind_spots():
    class Attend(nn.Module):
        def __init__(self):
            super().__init__()
            self.mha = nn.MultiheadAttention(64, 4, batch_first=True)

        def forward(self, x):
            return self.mha(x, x, x)[0]

    check = profiler.crosscheck(Attend().eval(), torch.randn(2, 10, 64), peers=("calflops",))
    row = check.row("calflops")
    assert check.ours_macs == 353280
    assert row.macs == 0 and row.explained and any("fast path" in c for c in row.causes)

    class Einsum(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(()))  # calflops needs a parameter

        def forward(self, a, b):
            return torch.einsum("bij,bjk->bik", a, b)

    check = profiler.crosscheck(Einsum(), (torch.randn(2, 5, 6), torch.randn(2, 6, 7)),
                                peers=("calflops", "thop"))
    assert check.ours_macs == 2 * 5 * 6 * 7
    assert check.row("thop").macs == 2 * 5 * 6 * 7
    row = check.row("calflops")
    assert row.macs == 0 and row.flops > 0
    assert row.explained and any("einsum" in c for c in row.causes)

    lstm = nn.LSTM(8, 16, batch_first=True).eval()
    row = profiler.crosscheck(lstm, torch.randn(2, 5, 8), peers=("calflops",)).row("calflops")
    assert row.macs == 0 and row.flops > 0
    assert row.explained and any("RNN" in c for c in row.causes)


def test_calflops_refuses_a_model_without_parameters():
    class Product(nn.Module):
        def forward(self, a, b):
            return a @ b

    check = profiler.crosscheck(Product(), (torch.randn(2, 3), torch.randn(3, 4)),
                                peers=("calflops",))
    assert check.row("calflops").macs is None
    assert "needs a model with parameters" in check.row("calflops").error


def test_thop_misses_functional_convolutions():
    class FunctionalConv(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(8, 4, 3))

        def forward(self, x):
            return F.conv1d(x, self.weight)

    check = profiler.crosscheck(FunctionalConv(), torch.randn(2, 4, 20),
                                peers=("calflops", "thop", "ptflops"))
    assert check.ours_macs == 2 * 8 * 18 * 4 * 3
    assert check.row("calflops").macs == check.ours_macs  # calflops patches F.conv1d
    row = check.row("thop")
    assert row.macs == 0 and row.flagged and row.explained
    assert any("functional convolutions" in c for c in row.causes)
    row = check.row("ptflops")  # ptflops too (F.conv* is torch.conv*, a C++ function)
    assert row.macs == 0 and row.flagged and row.explained
    assert any("F.conv*" in c for c in row.causes)


def test_thop_adds_norm_and_bias_work_to_its_macs():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(4, 8, 3), nn.BatchNorm1d(8), nn.ReLU()).eval()
    check = profiler.crosscheck(model, torch.randn(2, 4, 20), peers=("calflops", "thop"))
    assert check.ours_macs == 2 * 8 * 18 * 4 * 3
    assert check.row("calflops").macs == check.ours_macs
    row = check.row("thop")
    assert row.macs > check.ours_macs and row.flagged and row.explained
    assert any("norms" in c for c in row.causes)
