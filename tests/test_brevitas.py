"""Brevitas layers counted without user code: bit widths read from their quantizers, MACs
at the (weight, activation) pair, storage at the weight's width; closed forms by hand."""
import subprocess
import sys

import pytest
import torch
import torch.nn as nn

import profiler
from profiler.bits import OperandPair

qnn = pytest.importorskip("brevitas.nn", reason="brevitas is part of the dev install")
from brevitas.quant import Int8WeightPerChannelFloat  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def mlp(weight_bits, act_bits, *, per_channel=False):
    """QuantIdentity -> QuantLinear(16, 32, bias) -> QuantReLU -> QuantLinear(32, 8)."""
    torch.manual_seed(0)
    quant = {"weight_quant": Int8WeightPerChannelFloat} if per_channel else {}
    return nn.Sequential(
        qnn.QuantIdentity(bit_width=act_bits),
        qnn.QuantLinear(16, 32, bias=True, weight_bit_width=weight_bits, **quant),
        qnn.QuantReLU(bit_width=act_bits),
        qnn.QuantLinear(32, 8, bias=False, weight_bit_width=weight_bits, **quant),
    ).eval()


MLP_MACS = 3 * 16 * 32 + 3 * 32 * 8  # batch 3


@pytest.mark.parametrize("device", ["meta", "cpu"])
@pytest.mark.parametrize("w, a", [(4, 8), (2, 2)])
def test_quant_mlp_counts_at_its_quantizers_pair(device, w, a):
    prof = profiler.profile(mlp(w, a), torch.randn(3, 16), device=device)
    assert prof.pairs == {OperandPair("wa", w, a): MLP_MACS}
    assert prof.totals["macs_q"] == MLP_MACS and prof.totals["macs_nonq"] == 0
    assert prof.totals["bop_q"] == MLP_MACS * w * a
    assert prof.totals["bops"] == MLP_MACS * w * a


@pytest.mark.parametrize("per_channel, weight_scales", [(False, 1 + 1), (True, 32 + 8)])
def test_quant_mlp_storage_at_the_weight_width(per_channel, weight_scales):
    prof = profiler.profile(mlp(4, 8, per_channel=per_channel), torch.randn(3, 16))
    bits = (16 * 32 + 32 * 8) * 4  # weights at 4 bits
    bits += 32 * 32  # the first layer's bias: not quantized, float32
    bits += weight_scales * 32  # weight scales (recomputed from the weight): float32 each
    bits += 2 * 32  # QuantIdentity's and QuantReLU's learned activation scales: parameters
    assert prof.totals["storage_bytes"] == bits // 8


def test_w2a2_conv1d_per_channel():
    torch.manual_seed(0)
    model = nn.Sequential(
        qnn.QuantIdentity(bit_width=2),
        qnn.QuantConv1d(4, 8, 3, bias=False, weight_bit_width=2,
                        weight_quant=Int8WeightPerChannelFloat),
        qnn.QuantReLU(bit_width=2),
        qnn.QuantConv1d(8, 8, 3, groups=2, bias=False, weight_bit_width=2),
    ).eval()
    macs = 2 * 8 * 18 * (4 * 3) + 2 * 8 * 16 * (4 * 3)  # (batch, C_out, T_out, C_in/g x k)
    for device in ("meta", "cpu"):
        prof = profiler.profile(model, torch.randn(2, 4, 20), device=device)
        assert prof.pairs == {OperandPair("wa", 2, 2): macs}
        assert prof.totals["bop_q"] == macs * 2 * 2
    weights = 8 * 4 * 3 + 8 * 4 * 3
    scales = 8 + 1  # per output channel, then per tensor
    assert prof.totals["storage_bytes"] == (weights * 2 + scales * 32 + 2 * 32) // 8


def test_quant_multihead_attention_reads_each_quantizer():
    torch.manual_seed(0)
    mha = qnn.QuantMultiheadAttention(16, 2, batch_first=True, in_proj_weight_bit_width=4,
                                      out_proj_weight_bit_width=2).eval()
    x = torch.randn(2, 5, 16)
    prof = profiler.profile(mha, (x, x, x), device="cpu")
    # projections: (batch x length) x in x out; attention: two products per head
    in_proj, out_proj = 2 * 5 * 16 * 48, 2 * 5 * 16 * 16
    scores = 2 * (2 * 2 * 5 * 5 * 8)  # Q.K^T and A.V, 2 heads of 8
    assert prof.pairs == {OperandPair("wa", 4, 8): in_proj, OperandPair("wa", 2, 8): out_proj,
                          OperandPair("aa", 8, 8): scores}
    assert prof.totals["bops"] == in_proj * 32 + out_proj * 16 + scores * 64


def test_quant_tensors_on_meta_fail_with_the_cpu_advice():
    mha = qnn.QuantMultiheadAttention(16, 2, batch_first=True).eval()
    x = torch.randn(2, 5, 16)
    with pytest.raises(profiler.ProfileError, match="device='cpu'"):
        profiler.profile(mha, (x, x, x))


def test_an_unknown_brevitas_layer_is_counted_as_float_with_a_warning():
    torch.manual_seed(0)
    model = nn.Sequential(qnn.QuantIdentity(bit_width=8),
                          qnn.QuantConvTranspose1d(4, 4, 3, bias=False, weight_bit_width=4))
    with pytest.warns(UserWarning, match="QuantConvTranspose1d.*counted as float"):
        prof = profiler.profile(model.eval(), torch.randn(1, 4, 10), device="cpu")
    assert set(prof.pairs) == {OperandPair("wa", 32, 8)}


def test_a_learned_bit_width_is_counted_at_the_dtype_with_a_warning():
    layer = qnn.QuantLinear(8, 8, bias=False, weight_bit_width=4,
                            weight_bit_width_impl_type="parameter").eval()
    with pytest.warns(UserWarning, match="not a constant"):
        prof = profiler.profile(layer, torch.randn(2, 8))
    assert prof.pairs == {OperandPair("wa", 32, 32): 2 * 8 * 8}


def test_the_counting_core_does_not_import_brevitas():
    code = ("import sys, torch, profiler; from profiler.bits import declared_weight_bits; "
            "profiler.profile(torch.nn.Linear(4, 4), torch.randn(1, 4)); "
            "declared_weight_bits(torch.nn.Linear(4, 4)); "
            "assert 'brevitas' not in sys.modules, 'imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
