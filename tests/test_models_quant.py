"""Quantizers at any weight/activation bit pair: levels, straight-through gradients, bits
declared to the analyzer, BOPs and storage against closed forms written here."""
import json
import math

import pytest
import torch

import models
import profiler
from models.bit import ElasticBinarizer, QuantizedLinear, quantize_weight
from models.quantization import Quantization
from profiler.bits import extra_storage_bits, parameter_storage_bits
from profiler.catalog import load_catalog
from profiler.estimator import peak_for, precision_of_bits

SAMPLES = 16_000
FRAMES = (SAMPLES - 400) // 320 + 1  # 25 ms window, 20 ms hop: 49 frames


def _integer_levels(values: torch.Tensor, scale: float) -> torch.Tensor:
    levels = values / scale
    assert torch.allclose(levels, levels.round(), atol=1e-4), "not on a uniform grid"
    return levels.round().unique()


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_statistics_weight_quantizer_uses_at_most_2_to_the_k_symmetric_levels(bits):
    weight = torch.randn(64, 256, generator=torch.Generator().manual_seed(bits))
    top = 2 ** (bits - 1) - 1
    step = weight.abs().max().item() / top  # BiT's SymQuantizer: max|W| on the top level
    levels = _integer_levels(quantize_weight(weight, bits), step)
    assert len(levels) <= 2 ** bits
    assert levels.min() >= -top and levels.max() <= top
    assert len(levels) > 2 ** (bits - 1)  # the grid is really used, not collapsed


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("signed", [True, False])
def test_elastic_activation_quantizer_uses_at_most_2_to_the_k_levels(bits, signed):
    x = torch.randn(20_000, generator=torch.Generator().manual_seed(bits))
    if not signed:
        x = x.relu()  # non-negative input, as after ReLU or softmax
    alpha = 3.0 / 2 ** (bits - 1)
    quantizer = ElasticBinarizer(signed=signed, bits=bits)
    quantizer.mark_initialized(alpha)
    levels = _integer_levels(quantizer(x), alpha)
    low, high = (-2 ** (bits - 1), 2 ** (bits - 1) - 1) if signed else (0, 2 ** bits - 1)
    assert len(levels) <= 2 ** bits
    assert levels.min() >= low and levels.max() <= high
    assert len(levels) > 2 ** (bits - 1)


@pytest.mark.parametrize("bits", [2, 4, 8])
def test_learned_weight_scale_uses_at_most_2_to_the_k_levels(bits):
    torch.manual_seed(bits)
    layer = QuantizedLinear(256, 64, quantization=Quantization(bits, 32, "learned")).train()
    layer(torch.randn(3, 256))  # the first training forward sets the scale from the weight
    scale = layer.weight_quantizer.alpha.item()
    top = 2 ** (bits - 1) - 1
    assert scale == pytest.approx(2 * layer.weight.abs().mean().item() / math.sqrt(top))
    levels = _integer_levels(layer._quantized_weight().detach(), scale)
    assert len(levels) <= 2 ** bits
    assert levels.min() >= -top - 1 and levels.max() <= top


def test_statistics_weight_quantizer_passes_the_gradient_straight_through():
    weight = torch.randn(5, 7, requires_grad=True)
    upstream = torch.randn(5, 7)
    quantize_weight(weight, 3).backward(upstream)
    assert torch.equal(weight.grad, upstream)


def test_signed_two_bit_quantizer_by_hand():
    x = torch.tensor([-2.0, -0.3, 0.2, 0.6, 1.0], requires_grad=True)
    quantizer = ElasticBinarizer(signed=True, bits=2)
    quantizer.mark_initialized(0.5)
    y = quantizer(x)
    # x / alpha = [-4, -0.6, 0.4, 1.2, 2]; levels -2 .. 1
    assert torch.allclose(y, torch.tensor([-1.0, -0.5, 0.0, 0.5, 0.5]))
    y.backward(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]))
    assert torch.equal(x.grad, torch.tensor([0.0, 2.0, 3.0, 0.0, 0.0]))  # inside [-2, 1] only
    # d alpha: below -> Qn = -2, inside -> round(q) - q = -0.4, -0.4, above -> Qp = 1;
    # (-2 * 1 - 0.4 * 2 - 0.4 * 3 + 1 * 4 + 1 * 5) / sqrt(5 * Qp) = 5 / sqrt(5)
    assert quantizer.alpha.grad.item() == pytest.approx(math.sqrt(5))


def test_unsigned_two_bit_quantizer_by_hand():
    x = torch.tensor([-0.1, 0.3, 0.5, 1.0], requires_grad=True)
    quantizer = ElasticBinarizer(signed=False, bits=2)
    quantizer.mark_initialized(0.25)
    y = quantizer(x)
    # x / alpha = [-0.4, 1.2, 2, 4]; levels 0 .. 3
    assert torch.allclose(y, torch.tensor([0.0, 0.25, 0.5, 0.75]))
    y.backward(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert torch.equal(x.grad, torch.tensor([0.0, 2.0, 3.0, 0.0]))
    # (0 * 1 - 0.2 * 2 + 0 * 3 + 3 * 4) / sqrt(4 * 3)
    assert quantizer.alpha.grad.item() == pytest.approx(11.6 / math.sqrt(12))


def test_k_bit_scale_initialization_follows_bit_width():
    x = torch.tensor([[-1.0, 3.0], [2.0, -2.0]])  # mean |x| = 2
    signed = ElasticBinarizer(signed=True, bits=4).train()
    unsigned = ElasticBinarizer(signed=False, bits=2).train()
    signed(x), unsigned(x)
    assert signed.alpha.item() == pytest.approx(2 * 2 / math.sqrt(7))    # Qp = 7
    assert unsigned.alpha.item() == pytest.approx(4 * 2 / math.sqrt(3))  # Qp = 3


@pytest.mark.parametrize("scale", ["statistics", "learned"])
def test_gradients_flow_through_a_quantized_model(scale):
    model = models.build("vanilla", layers=1, dim=32, heads=2, weight_bits=2, activation_bits=2,
                         weight_scale=scale, seed=0).train()
    waveforms = torch.randn(2, SAMPLES // 4, generator=torch.Generator().manual_seed(0))
    out = model.pretrain_forward(waveforms)
    out.logits.square().mean().backward()
    layer = model.encoder.layers[0]
    for linear in (layer.attention.q_proj, layer.feed_forward.fc1, layer.feed_forward.fc2):
        assert isinstance(linear, QuantizedLinear)
        assert linear.weight.grad.abs().sum() > 0
        assert linear.input_offset.bias.grad.abs().sum() > 0
        alphas = [linear.input_binarizer.alpha]
        if scale == "learned":
            alphas.append(linear.weight_quantizer.alpha)
        for alpha in alphas:
            assert alpha.grad is not None and math.isfinite(alpha.grad.item())
            assert alpha.grad.item() != 0


def test_quantized_layers_declare_their_bits():
    layer = QuantizedLinear(8, 4, quantization=Quantization(4, 8))
    assert (layer.weight_bits, layer.activation_bits) == (4, 8)
    assert parameter_storage_bits(layer, "weight", layer.weight) == 4
    assert parameter_storage_bits(layer, "bias", layer.bias) == 32
    assert extra_storage_bits(layer) == 32  # the statistics scale, one float32
    learned = QuantizedLinear(8, 4, quantization=Quantization(4, 8, "learned"))
    assert extra_storage_bits(learned) == 0  # its scale is a parameter, counted as one
    float_weights = QuantizedLinear(8, 4, quantization=Quantization(32, 4))
    assert float_weights.weight_bits is None and float_weights.activation_bits == 4
    assert extra_storage_bits(float_weights) == 0


def _encoder_shapes(layers, dim, heads, ffn_dim, time):
    weight_macs = layers * time * (4 * dim * dim + 2 * dim * ffn_dim)  # q, k, v, out; fc1, fc2
    activation_macs = layers * 2 * time * time * dim                   # Q.K^T and A.V
    return weight_macs, activation_macs


@pytest.mark.parametrize("weight_bits, activation_bits", [(2, 2), (1, 4)])
def test_bops_are_macs_times_weight_bits_times_activation_bits(weight_bits, activation_bits):
    layers, dim, heads, ffn_dim = 2, 64, 4, 256
    model = models.build("vanilla", layers=layers, dim=dim, heads=heads, ffn_dim=ffn_dim,
                         weight_bits=weight_bits, activation_bits=activation_bits,
                         device="meta").eval()
    prof = profiler.profile(model, torch.empty(1, SAMPLES, device="meta"))
    weight_macs, activation_macs = _encoder_shapes(layers, dim, heads, ffn_dim, FRAMES)
    by_bits = prof.by_bits
    weight_key = f"W{weight_bits}A{activation_bits}"
    activation_key = f"A{activation_bits}A{activation_bits}"
    assert by_bits[weight_key]["macs"] == weight_macs
    assert by_bits[weight_key]["bops"] == weight_macs * weight_bits * activation_bits
    assert by_bits[activation_key]["macs"] == activation_macs
    assert by_bits[activation_key]["bops"] == activation_macs * activation_bits ** 2
    assert prof.totals["bop_q"] == (weight_macs * weight_bits * activation_bits
                                    + activation_macs * activation_bits ** 2)
    assert prof.totals["bop_bq"] == 0
    assert prof.subtree("encoder")["macs"] == weight_macs + activation_macs


def test_every_conformer_encoder_mac_runs_at_the_bit_pair():
    model = models.build("conformer-s", layers=2, weight_bits=2, activation_bits=2,
                         device="meta").eval()
    prof = profiler.profile(model, torch.empty(1, SAMPLES, device="meta"))
    low_bit = {key: row for key, row in prof.by_bits.items() if "32" not in key}
    assert set(low_bit) == {"W2A2", "A2A2"}
    assert sum(row["macs"] for row in low_bit.values()) == prof.subtree("encoder")["macs"]
    assert prof.totals["bop_q"] == 4 * prof.subtree("encoder")["macs"]


def _storage_bytes(**overrides) -> float:
    model = models.build("vanilla", device="meta", **overrides).eval()
    return profiler.profile(model, torch.empty(1, 400, device="meta")).totals["storage_bytes"]


@pytest.mark.parametrize("activation_bits", [32, 2])
def test_vanilla_two_bit_weights_store_yeh_et_al_one_bit_difference(activation_bits):
    """Yeh et al. 2023 (arXiv 2301.00652): HuBERT-Base at 25.23 MB with 1-bit and 35.84 MB
    with 2-bit weights: one more bit on each transformer Linear weight."""
    one = _storage_bytes(weight_bits=1, activation_bits=activation_bits)
    two = _storage_bytes(weight_bits=2, activation_bits=activation_bits)
    linear_weights = 12 * (4 * 768 * 768 + 2 * 768 * 3072)
    assert linear_weights == pytest.approx(84.9e6, rel=1e-3)
    assert two - one == linear_weights / 8
    assert (two - one) / 1e6 == pytest.approx(35.84 - 25.23, rel=0.01)


def test_w1a1_build_of_a_float_name_is_the_bq_model():
    bq = models.build("bq-sparseformer-dn-s", layers=1, seed=3)
    w1a1 = models.build("sparseformer-dn-s", layers=1, weight_bits=1, activation_bits=1,
                        ffn_activation="relu", seed=3)
    assert [type(m).__name__ for m in bq.modules()] == [type(m).__name__ for m in w1a1.modules()]
    w1a1.load_state_dict(bq.state_dict())
    waveform = torch.randn(1, SAMPLES, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(bq.eval()(waveform).last_hidden_state,
                           w1a1.eval()(waveform).last_hidden_state)


def test_precision_labels():
    from profiler.conventions import precision_label

    def label(name, **bits):
        return precision_label(models.config(name, **bits).quantization, 32)

    assert label("vanilla") == "FP32"
    assert label("bq-vanilla") == "FP32-W1A1"
    assert label("conformer-s", weight_bits=2, activation_bits=2) == "FP32-W2A2"
    assert label("conformer-s", weight_bits=4) == "FP32-W4A32"


@pytest.mark.parametrize("field", ["weight_bits", "activation_bits"])
@pytest.mark.parametrize("bad", [0, 33, 2.5, "4", True, -1])
def test_bad_bits_are_rejected_with_a_clear_message(field, bad):
    with pytest.raises(ValueError, match=f"vanilla: {field} must be a whole number from 1 to 32"):
        models.build("vanilla", device="meta", **{field: bad})


def test_bq_models_stay_w1a1():
    with pytest.raises(ValueError, match="W1A1"):
        models.config("bq-vanilla", weight_bits=2)
    with pytest.raises(ValueError, match="weight_scale"):
        models.config("vanilla", weight_bits=2, weight_scale="max")


def test_estimator_picks_the_narrowest_peak_that_holds_the_bits():
    assert [precision_of_bits(*pair) for pair in ((1, 1), (2, 2), (1, 4), (4, 5), (8, 8),
                                                  (12, 2), (16, 16), (24, 1), (32, 32))] == [
        "int1", "int4", "int4", "int8", "int8", "fp16", "fp16", "fp32", "fp32"]
    assert peak_for(load_catalog("a100"), precision_of_bits(2, 2)) == ("int4", 1248e12)
    assert peak_for(load_catalog("h100-sxm"), precision_of_bits(2, 2))[0] == "int8"


def test_table_takes_the_bit_pair_on_the_command_line(cli):
    result = cli("table", "--format", "json", "--models", "vanilla", "--seconds", "1",
                 "--set", "weight_bits=2", "--set", "activation_bits=2")
    assert result.returncode == 0, result.stderr
    [row] = json.loads(result.stdout)
    assert row["precision"] == "FP32-W2A2"
    weight_macs, activation_macs = _encoder_shapes(12, 768, 12, 3072, FRAMES)
    assert row["bop_bq_g"] == pytest.approx(4 * (weight_macs + activation_macs) / 1e9, rel=1e-12)


def test_profile_takes_the_bit_pair_on_the_command_line(cli):
    result = cli("profile", "--model", "vanilla", "--seconds", "1", "--format", "json",
                 "--set", "weight_bits=1", "--set", "activation_bits=4")
    assert result.returncode == 0, result.stderr
    by_bits = json.loads(result.stdout)["by_bits"]
    weight_macs, activation_macs = _encoder_shapes(12, 768, 12, 3072, FRAMES)
    assert by_bits["W1A4"]["bops"] == 4 * weight_macs
    assert by_bits["A4A4"]["bops"] == 16 * activation_macs


def test_bad_bits_on_the_command_line_are_a_usage_error(cli):
    bad = cli("table", "--models", "vanilla", "--set", "weight_bits=0")
    assert bad.returncode == 2 and bad.stderr.startswith("profile-encoder: error: ")
    assert "weight_bits must be a whole number from 1 to 32" in bad.stderr
    assert "Traceback" not in bad.stderr
