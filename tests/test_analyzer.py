"""The analyzer's contract: attribution, bits, constants, sparse patterns, no side effects."""
import copy
import json

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import profiler
from profiler.result import QUANTITIES


class ToyBinaryLinear(nn.Linear):
    """A BiT-style binarized linear layer declaring its bits (profiler/bits.py)."""

    weight_bits = 1
    activation_bits = 1
    parameter_bits = {"weight": 1}

    def extra_storage_bits(self):
        return 32 * self.out_features  # one float scale per output row

    def forward(self, x):
        scale = self.weight.abs().mean(dim=1, keepdim=True)
        weight = scale * torch.sign(self.weight)
        return F.linear(torch.sign(x), weight, self.bias)


class ToyBinaryAttention(nn.Module):
    activation_bits = 1

    def forward(self, q, k, v):
        return (torch.sign(q) @ torch.sign(k).transpose(-2, -1)).softmax(-1) @ torch.sign(v)


class WindowAttention(nn.Module):
    """Dense scores with a band mask: each query may see keys within +-1 position."""

    def __init__(self, width=1):
        super().__init__()
        self.width = width

    def forward(self, q, k, v):
        n = q.shape[-2]
        i = torch.arange(n, device=q.device)
        allowed = (i[:, None] - i[None, :]).abs() <= self.width
        scores = (q @ k.transpose(-2, -1)).masked_fill(~allowed, float("-inf"))
        return scores.softmax(-1) @ v

    def effective_attention_macs(self, q, k, v):
        n, d = q.shape[-2], q.shape[-1]
        pairs = n + 2 * sum(max(n - j, 0) for j in range(1, self.width + 1))
        batch_heads = q.numel() // (n * d)
        return batch_heads * pairs * (d + v.shape[-1])


def test_binarized_linear_declares_bits_storage_and_folds_weight_work():
    layer = ToyBinaryLinear(64, 32)
    p = profiler.profile(layer, torch.randn(3, 64))
    t = p.totals
    assert t["macs"] == t["macs_bq"] == 3 * 64 * 32
    assert t["bop_bq"] == 6144 * 1 * 1 and t["bop_nonq"] == 0
    assert dict(p.by_bits) == {"W1A1": {"macs": 6144, "bops": 6144, "class": "bq"}}
    # sign(x) and the bias add stay in float; binarized MACs are not FLOPs
    assert t["flops"] == t["elementwise_flops"] == 3 * 64 + 3 * 32
    # |W|, its row means, sign(W), scale * sign: work on weights only, precomputable
    assert t["foldable_flops"] == 4 * 2048
    # 2048 one-bit weights, 32 float biases, 32 float scales
    assert t["storage_bytes"] == (2048 * 1 + 32 * 32 + 32 * 32) / 8 == 512


def test_activation_products_use_activation_bits():
    q = torch.randn(1, 2, 6, 4)
    p = profiler.profile(ToyBinaryAttention(), (q, q, q))
    assert dict(p.by_bits) == {"A1A1": {"macs": 2 * (2 * 6 * 6 * 4), "bops": 576, "class": "bq"}}


def test_float16_operands_give_16_bit_pairs():
    lin = nn.Linear(8, 4).half()
    p = profiler.profile(lin, torch.randn(2, 8, dtype=torch.float16))
    assert dict(p.by_bits) == {"W16A16": {"macs": 64, "bops": 64 * 256, "class": "nonq"}}
    assert p.totals["storage_bytes"] == (32 + 4) * 2


def test_quantized_declarations_land_in_bop_q():
    class W4A8(nn.Linear):
        weight_bits, activation_bits = 4, 8

    t = profiler.profile(W4A8(8, 4), torch.randn(2, 8)).totals
    assert (t["macs_q"], t["bop_q"], t["bop_nonq"], t["bop_bq"]) == (64, 64 * 32, 0, 0)


def test_declarations_do_not_leak_to_children():
    class Block(nn.Module):
        weight_bits, activation_bits = 1, 1

        def __init__(self):
            super().__init__()
            self.float_head = nn.Linear(8, 4)

        def forward(self, x):
            return self.float_head(x)

    p = profiler.profile(Block(), torch.randn(2, 8))
    assert set(p.by_bits) == {"W32A32"}


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_sparse_pattern_reports_executed_and_effective(device):
    q = torch.randn(1, 1, 10, 4)
    p = profiler.profile(WindowAttention(), (q, q, q), device=device)
    t = p.totals
    assert t["macs"] == 2 * 10 * 10 * 4  # dense scores, as executed
    pairs = 10 + 2 * 9
    assert t["effective_macs"] == pairs * (4 + 4) == 224
    assert t["effective_flops"] == t["flops"] - 2 * (800 - 224)
    assert t["effective_bop_nonq"] == 224 * 32 * 32


def test_rows_sum_to_totals_at_every_depth():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv1d(1, 8, 10, 5), nn.GroupNorm(8, 8), nn.GELU(),
        nn.Sequential(nn.Conv1d(8, 8, 3, 2, groups=8), nn.ReLU()),
    )
    p = profiler.profile(model, torch.randn(2, 1, 400))
    for depth in (None, 0, 1, 2):
        frame = p.to_dataframe(depth=depth)
        for key in QUANTITIES:
            assert frame[key].sum() == p.totals[key], (depth, key)
    # each op lands in the innermost module that ran it
    assert p.modules["0"]["macs"] == 2 * 79 * 8 * 1 * 10
    assert p.modules["3.0"]["macs"] == 2 * 39 * 8 * 1 * 3
    assert p.modules["3"]["macs"] == 0
    assert p.to_dataframe(depth=0)["macs"].tolist() == [p.totals["macs"]]


def test_meta_and_cpu_agree_everywhere_and_repeat_exactly():
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
    model = nn.Sequential(nn.Linear(16, 32), nn.TransformerEncoder(
        layer, 2, enable_nested_tensor=False)).eval()
    x = torch.randn(2, 12, 16)
    first = profiler.profile(model, x).to_dict()
    again = profiler.profile(model, x).to_dict()
    cpu = profiler.profile(model, x, device="cpu").to_dict()
    assert first["totals"] == again["totals"] == cpu["totals"]
    assert first["modules"] == cpu["modules"]


def test_profiling_leaves_model_outputs_and_torch_untouched():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.BatchNorm1d(8), nn.Dropout(0.5)).train()
    x = torch.randn(16, 8)
    state = copy.deepcopy(model.state_dict())
    functions = (F.linear, F.softmax, torch.matmul, torch.Tensor.__matmul__, torch.Tensor.add)
    torch.manual_seed(123)
    expected = torch.rand(3)
    for device in ("cpu", "meta"):
        torch.manual_seed(123)
        profiler.profile(model, x, device=device)
        assert torch.equal(torch.rand(3), expected), "the random stream moved"
    for key, value in model.state_dict().items():
        assert torch.equal(value, state[key]), f"{key} changed (running statistics?)"
    assert (F.linear, F.softmax, torch.matmul, torch.Tensor.__matmul__,
            torch.Tensor.add) == functions
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert torch._C._len_torch_dispatch_stack() == 0
    model.eval()
    before = model(x)
    profiler.profile(model, x, device="cpu")
    assert torch.equal(model(x), before)


def test_meta_profile_of_a_very_long_input_allocates_nothing():
    model = nn.Sequential(nn.Conv1d(1, 64, 400, 320), nn.GELU(), nn.Conv1d(64, 64, 3, padding=1))
    hour = torch.empty(1, 1, 16_000 * 3600, device="meta")
    p = profiler.profile(model, hour)
    frames = (16_000 * 3600 - 400) // 320 + 1
    assert p.totals["macs"] == frames * 64 * 400 + frames * 64 * 64 * 3


def test_unsupported_ops_are_listed_with_counts_never_silently_zero():
    class Spectral(nn.Module):
        def forward(self, x):
            return torch.linalg.svdvals(x) + torch.linalg.svdvals(x)

    p = profiler.profile(Spectral(), torch.randn(4, 4), device="cpu")
    assert dict(p.unsupported) == {"aten._linalg_svd": 2}


def test_user_formula_for_one_call_and_registry():
    class Spectral(nn.Module):
        def forward(self, x):
            return torch.linalg.svdvals(x)

    def svd_cost(x, *args, out_shape=None, **kwargs):
        return 7 * x[-1] ** 3

    aten = torch.ops.aten
    p = profiler.profile(Spectral(), torch.randn(4, 4), device="cpu",
                         formulas={aten._linalg_svd: svd_cost})
    assert p.totals["elementwise_flops"] == 7 * 64 and not p.unsupported
    # the per-call table did not leak into the registry
    assert profiler.profile(Spectral(), torch.randn(4, 4), device="cpu").unsupported


def test_shared_parameters_are_counted_once():
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(4, 4, bias=False)
            self.b = nn.Linear(4, 4, bias=False)
            self.b.weight = self.a.weight

        def forward(self, x):
            return self.b(self.a(x))

    t = profiler.profile(Tied(), torch.randn(1, 4)).totals
    assert t["params"] == 16 and t["macs"] == 32


def test_a_model_that_raises_gives_a_profile_error():
    class Broken(nn.Module):
        def forward(self, x):
            raise ValueError("no thanks")

    with pytest.raises(profiler.ProfileError, match="Broken raised ValueError: no thanks"):
        profiler.profile(Broken(), torch.randn(2))


def test_data_dependent_model_on_meta_suggests_cpu():
    class DataDependent(nn.Module):
        def forward(self, x):
            return x * 2 if x.sum() > 0 else x

    with pytest.raises(profiler.ProfileError, match="device='cpu'"):
        profiler.profile(DataDependent(), torch.randn(3))
    # sum (3 inputs) + the comparison (1) + x * 2 (3)
    assert profiler.profile(DataDependent(), torch.ones(3),
                            device="cpu").totals["elementwise_flops"] == 7


def test_widened_half_precision_values_keep_their_16_bits():
    # PyTorch's math attention computes float16 inputs in float32; the values are still
    # 16-bit, and so are a fused kernel's operands.
    q = torch.randn(1, 2, 5, 4).half()
    for device in ("meta", "cpu"):
        p = profiler.profile(SdpaOnly(), (q, q, q), device=device)
        assert dict(p.by_bits) == {"A16A16": {"macs": 2 * 2 * 5 * 5 * 4, "bops": 400 * 256,
                                              "class": "nonq"}}
    # a half-precision activation widened into a float32 layer: 16-bit activations,
    # 32-bit weights, and the layer's output is a full float32 value again
    class Widening(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(8, 8), nn.Linear(8, 8)

        def forward(self, x):
            return self.b(self.a(x.float()))

    p = profiler.profile(Widening(), torch.randn(3, 8).half())
    assert {k: v["macs"] for k, v in p.by_bits.items()} == {"W32A16": 3 * 64, "W32A32": 3 * 64}


class SdpaOnly(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


# -- third-party setups as shipped (torch.nn, transformers) ------------------------------

def _inference_totals(prof):
    # foldable_* is work a forward did on constants only; a warm cache skips it
    return {k: v for k, v in prof.totals.items() if not k.startswith("foldable")}


def test_transformer_encoder_nested_fast_path_counts_the_padded_batch():
    # eval + a key padding mask + enable_nested_tensor (the defaults) packs the batch into a
    # nested tensor of real tokens on CPU; meta tensors cannot. Both count the padded batch.
    torch.manual_seed(0)
    layer = nn.TransformerEncoderLayer(64, 4, 128, dropout=0.0, batch_first=True)
    model = nn.TransformerEncoder(layer, 2, enable_nested_tensor=True).eval()
    x = torch.randn(2, 10, 64)
    mask = torch.zeros(2, 10, dtype=torch.bool)
    mask[1, 6:] = True
    before = model(x, src_key_padding_mask=mask)
    B, T, E, F_ = 2, 10, 64, 128
    per_layer = B * T * E * 3 * E + 2 * B * T * T * E + B * T * E * E + 2 * B * T * E * F_
    found = {}
    for device in ("meta", "cpu"):
        prof = profiler.profile(model, x, kwargs={"src_key_padding_mask": mask}, device=device)
        assert prof.totals["macs"] == 2 * per_layer and not prof.unsupported
        found[device] = prof.totals
    assert found["meta"] == found["cpu"]
    assert torch.allclose(model(x, src_key_padding_mask=mask), before, equal_nan=True)


@pytest.mark.parametrize("cls", [nn.GRU, nn.LSTM, nn.RNN])
def test_recurrent_layers_count_the_same_on_every_device(cls):
    # PyTorch's CPU kernel projects the whole input sequence through W_ih at once (one
    # matrix product per layer) and steps only through W_hh; meta must count the same
    # products, and so read the input weights once, not once per step.
    layers, steps, inputs, hidden = 2, 50, 80, 64
    model = cls(inputs, hidden, num_layers=layers, batch_first=True).eval()
    x = torch.randn(1, steps, inputs)
    gates = {nn.GRU: 3, nn.LSTM: 4, nn.RNN: 1}[cls] * hidden
    found = {}
    for device in ("meta", "cpu"):
        prof = profiler.profile(model, x, device=device)
        assert prof.by_operator["aten.addmm"]["calls"] == layers * (1 + steps)
        # the first step multiplies W_hh by the zero initial state: precomputable
        assert prof.totals["macs"] == (steps * gates * (inputs + hidden)
                                       + steps * gates * (hidden + hidden)
                                       - layers * gates * hidden)
        found[device] = prof.totals
    assert found["meta"] == found["cpu"]


def _rotary_conformer():
    import transformers
    config = transformers.Wav2Vec2ConformerConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 4), num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=4, conv_depthwise_kernel_size=7,
        position_embeddings_type="rotary")
    torch.manual_seed(0)
    return transformers.Wav2Vec2ConformerModel(config).eval()


def test_a_cache_in_a_plain_attribute_is_left_as_it_was_in_either_order():
    # transformers' rotary embedding caches its table in a plain attribute on the first
    # forward: a meta profile must not leave a meta table there, and a table cached by a
    # real forward must not break a meta profile.
    x = torch.randn(1, 3200)
    expected = _rotary_conformer()(x).last_hidden_state
    fresh = _rotary_conformer()
    profiled_first = profiler.profile(fresh, x)
    assert torch.allclose(fresh(x).last_hidden_state, expected)
    warm = _rotary_conformer()
    warm(x)
    profiled_after = profiler.profile(warm, x)
    assert _inference_totals(profiled_after) == _inference_totals(profiled_first)
    assert torch.allclose(warm(x).last_hidden_state, expected)
    assert _inference_totals(profiler.profile(warm, x, device="cpu")) == \
        _inference_totals(profiled_first)


def test_zero_dim_cpu_tensors_are_scalars_on_meta():
    # SEW-D passes torch.tensor(finfo.min) (a 0-dim CPU tensor) as masked_fill's value.
    import transformers
    config = transformers.SEWDConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
        conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 4), squeeze_factor=2,
        num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=4)
    model = transformers.SEWDModel(config).eval()
    x = torch.randn(1, 3200)
    assert profiler.profile(model, x).totals == profiler.profile(model, x, device="cpu").totals


def test_a_model_that_reads_values_still_gets_the_cpu_hint():
    import transformers
    config = transformers.HubertConfig(
        hidden_size=32, num_hidden_layers=1, num_attention_heads=4, intermediate_size=64,
        conv_dim=(16, 16), conv_stride=(5, 4), conv_kernel=(10, 4), num_conv_pos_embeddings=8,
        num_conv_pos_embedding_groups=4, feat_extract_norm="layer")
    model = transformers.HubertModel(config).eval()
    x = torch.randn(2, 3200)
    mask = torch.ones(2, 3200, dtype=torch.long)
    mask[1, 2000:] = 0
    with pytest.raises(profiler.ProfileError, match="device='cpu'"):
        profiler.profile(model, x, kwargs={"attention_mask": mask})
    assert profiler.profile(model, x, kwargs={"attention_mask": mask}, device="cpu").totals["macs"]


def test_operand_pairs_are_labelled_on_output_and_read_back_from_a_saved_profile():
    from profiler.bits import OperandPair
    from profiler.result import Profile

    assert OperandPair("wa", 1, 4) == ("wa", 1, 4)
    assert [OperandPair(*key).label for key in (("wa", 1, 4), ("aa", 16, 16), ("cc", 32, 32))] \
        == ["W1A4", "A16A16", "C32C32"]
    assert OperandPair.parse("A1A1") == OperandPair("aa", 1, 1)
    assert OperandPair.parse("C32C32") == ("cc", 32, 32)
    # Bayesian Bits: a MAC of a w-bit by an a-bit operand counts w x a bit operations
    assert [OperandPair("wa", 1, 4).bops_per_mac, OperandPair("aa", 16, 16).bops_per_mac] \
        == [4, 256]
    for bad in ("W1", "A1W1", "X1A1", "W1A1 ", "FP32-W1A1"):
        with pytest.raises(ValueError, match="expected W<bits>A<bits>, A<bits>A<bits>"):
            OperandPair.parse(bad)

    class Mixed(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear, self.attention = ToyBinaryLinear(4, 4), ToyBinaryAttention()

        def forward(self, x):
            return self.attention(*[self.linear(x)] * 3)

    p = profiler.profile(Mixed(), torch.randn(1, 3, 4))
    # 3 frames x 4 x 4 weight MACs; Q.K^T and A.V: 2 x 3 x 3 x 4 activation MACs
    assert dict(p.module_pairs("linear")) == {("wa", 1, 1): 48}
    assert dict(p.module_bits("attention")) == {"A1A1": 72}
    assert dict(p.module_pairs("")) == {}
    assert list(p.by_bits) == ["A1A1", "W1A1"]  # equal width: by kind, "aa" before "wa"
    saved = p.to_json()
    loaded = Profile.from_dict(json.loads(saved))
    assert dict(loaded.module_pairs("attention")) == {("aa", 1, 1): 72}
    assert loaded.to_json() == saved
