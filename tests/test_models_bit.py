"""BiT binarization against values worked out by hand."""
import math

import pytest
import torch

import models
from models.bit import (
    BinaryConv1d,
    BinaryLinear,
    ElasticBinarizer,
    binarize_weight,
    per_channel_depthwise_scales,
)
from profiler.bits import extra_storage_bits, parameter_storage_bits


def _binarizer(signed, alpha):
    binarizer = ElasticBinarizer(signed=signed)
    binarizer.mark_initialized(alpha)
    return binarizer


def test_weight_binarization_forward_and_straight_through_backward():
    weight = torch.tensor([[1.0, -2.0], [3.0, -4.0]], requires_grad=True)
    # mean(W) = -0.5, so the signs are those of [[1.5, -1.5], [3.5, -3.5]]; mean|W| = 2.5
    binary = binarize_weight(weight)
    assert torch.equal(binary, torch.tensor([[2.5, -2.5], [2.5, -2.5]]))
    grad = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    binary.backward(grad)
    assert torch.equal(weight.grad, grad)  # BWN: the gradient passes unchanged


def test_weight_binarization_per_channel():
    weight = torch.tensor([[1.0, -3.0], [0.5, 1.5]])
    # row 0: mean -1, scale 2 -> [+, -]; row 1: mean 1, scale 1 -> [-, +]
    assert torch.equal(binarize_weight(weight, per_channel=True),
                       torch.tensor([[2.0, -2.0], [-1.0, 1.0]]))


def test_signed_elastic_binarizer_forward_backward():
    x = torch.tensor([-1.0, -0.2, 0.3, 0.7], requires_grad=True)
    binarizer = _binarizer(signed=True, alpha=0.5)
    y = binarizer(x)
    assert torch.equal(y, torch.tensor([-0.5, -0.5, 0.5, 0.5]))
    y.backward(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    # x / alpha = [-2, -0.4, 0.6, 1.4]: gradient passes only inside [-1, 1]
    assert torch.equal(x.grad, torch.tensor([0.0, 2.0, 3.0, 0.0]))
    # d alpha = sum(sign(x) * g) / sqrt(numel) = (-1 - 2 + 3 + 4) / 2
    assert binarizer.alpha.grad.item() == pytest.approx(2.0)


def test_signed_binarizer_maps_zero_to_plus_one():
    assert torch.equal(_binarizer(True, 1.5)(torch.zeros(3)), torch.full((3,), 1.5))


def test_unsigned_elastic_binarizer_forward_backward():
    x = torch.tensor([-0.3, 0.2, 0.3, 0.9], requires_grad=True)
    binarizer = _binarizer(signed=False, alpha=0.5)
    y = binarizer(x)
    # x / alpha = [-0.6, 0.4, 0.6, 1.8] -> round(clip(., 0, 1)) = [0, 0, 1, 1]
    assert torch.allclose(y, torch.tensor([0.0, 0.0, 0.5, 0.5]))
    y.backward(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert torch.equal(x.grad, torch.tensor([0.0, 2.0, 3.0, 0.0]))
    # d alpha: below 0 -> 0; inside -> round(q) - q = -0.4 and 0.4; above 1 -> 1
    # (0 * 1 - 0.4 * 2 + 0.4 * 3 + 1 * 4) / sqrt(4) = 2.2
    assert binarizer.alpha.grad.item() == pytest.approx(2.2)


def test_alpha_initialization_on_first_training_batch():
    x = torch.tensor([[-1.0, 3.0], [2.0, -2.0]])  # mean |x| = 2
    signed, unsigned = ElasticBinarizer(signed=True), ElasticBinarizer(signed=False)
    signed.train(), unsigned.train()
    signed(x), unsigned(x)
    assert signed.alpha.item() == pytest.approx(4.0)   # 2 * mean|x|
    assert unsigned.alpha.item() == pytest.approx(8.0)  # 4 * mean|x|
    signed(10 * x)
    assert signed.alpha.item() == pytest.approx(4.0)  # only once


def test_probability_binarizer_initializes_over_nonzero_entries():
    probs = torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.25, 0.75, 0.0, 0.0]])
    binarizer = ElasticBinarizer(signed=False, init_over_nonzero=True).train()
    binarizer(probs)
    assert binarizer.alpha.item() == pytest.approx(4 * 2.0 / 4)  # sum / nonzero count = 0.5


def test_no_initialization_in_eval_mode_no_grad_or_on_meta():
    binarizer = ElasticBinarizer(signed=True).eval()
    binarizer(torch.full((4,), 3.0))
    assert binarizer.alpha.item() == 1.0 and not binarizer.initialized
    binarizer.train()
    binarizer(torch.empty(4, device="meta"))
    with torch.no_grad():
        binarizer(torch.full((4,), 3.0))
    assert not binarizer.initialized and binarizer.alpha.item() == 1.0


def test_initialized_flag_survives_state_dict_round_trip():
    trained = _binarizer(True, 0.25)
    fresh = ElasticBinarizer(signed=True)
    fresh.load_state_dict(trained.state_dict())
    assert fresh.initialized and fresh.alpha.item() == 0.25


def test_binary_linear_forward_by_hand():
    layer = BinaryLinear(2, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, -2.0], [3.0, -4.0]]))  # -> 2.5 * [[1, -1], [1, -1]]
        layer.bias.copy_(torch.tensor([0.5, -0.5]))
    layer.input_binarizer.mark_initialized(2.0)
    x = torch.tensor([[0.3, -7.0]])  # -> [2, -2]
    # [2, -2] . [2.5, -2.5] = 10
    assert torch.allclose(layer(x), torch.tensor([[10.5, 9.5]]))


def test_binary_linear_learnable_offset_moves_the_threshold():
    layer = BinaryLinear(1, 1, bias=False)
    with torch.no_grad():
        layer.weight.fill_(2.0)  # mean = 2, W - mean = 0 -> +1, scale 2
        layer.input_offset.bias.fill_(-1.0)
    layer.input_binarizer.mark_initialized(1.0)
    assert layer(torch.tensor([[0.5]])).item() == -2.0  # sign(0.5 - 1) = -1
    assert layer(torch.tensor([[1.5]])).item() == 2.0


def test_binary_linear_unsigned_input():
    layer = BinaryLinear(2, 1, bias=False, unsigned_input=True)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[1.0, 3.0]]))  # mean 2 -> [-1, +1] * 2
    layer.input_binarizer.mark_initialized(1.0)
    x = torch.tensor([[0.9, 0.2]])  # -> [1, 0]
    assert layer(x).item() == -2.0


def test_binary_conv1d_forward_by_hand():
    conv = BinaryConv1d(1, 1, 2, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[[0.5, -1.5]]]))  # mean -0.5 -> [+1, -1] * 1.0
    conv.input_binarizer.mark_initialized(1.0)
    x = torch.tensor([[[0.2, -0.1, 0.4]]])  # -> [1, -1, 1]
    assert torch.equal(conv(x), torch.tensor([[[2.0, -2.0]]]))


def test_binary_modules_declare_their_bits():
    for layer in (BinaryLinear(8, 4), BinaryConv1d(8, 4, 3)):
        assert layer.weight_bits == 1 and layer.activation_bits == 1
        assert parameter_storage_bits(layer, "weight", layer.weight) == 1
        assert parameter_storage_bits(layer, "bias", layer.bias) == 32
        assert extra_storage_bits(layer) == 32  # one float32 scale per weight tensor
    half = BinaryLinear(8, 4).half()
    assert extra_storage_bits(half) == 16
    per_row = BinaryLinear(8, 4, per_channel_scale=True)
    assert extra_storage_bits(per_row) == 4 * 32


def test_binary_linear_runs_on_meta():
    with torch.device("meta"):
        layer = BinaryLinear(16, 8)
        y = layer(torch.empty(2, 5, 16))
    assert y.shape == (2, 5, 8) and y.is_meta


def test_gradients_reach_weights_scales_and_offsets():
    layer = BinaryLinear(4, 3).train()
    x = torch.randn(5, 4)
    layer(x).square().sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0
    assert layer.input_binarizer.alpha.grad is not None
    assert layer.input_offset.bias.grad is not None
    assert math.isfinite(layer.input_binarizer.alpha.grad.item())


def test_per_channel_scales_for_binarized_depthwise_convolutions():
    depthwise = BinaryConv1d(2, 2, 3, groups=2, bias=False)
    pointwise = BinaryConv1d(2, 2, 1, bias=False)
    with torch.no_grad():
        depthwise.weight.copy_(torch.tensor([[[1.0, 2.0, 3.0]], [[0.5, -0.5, 0.5]]]))
    # Per tensor: mean 1.0833, mean|W| = 7.5 / 6 = 1.25 -> signs of W - 1.0833.
    assert torch.allclose(depthwise._quantized_weight().flatten(),
                          torch.tensor([-1.25, 1.25, 1.25, -1.25, -1.25, -1.25]))
    assert per_channel_depthwise_scales(torch.nn.Sequential(depthwise, pointwise)) == 1
    assert not pointwise.per_channel_scale
    # Channel 0: mean 2, scale 2 -> [-, +, +]; channel 1: mean 1/6, scale 0.5 -> [+, -, +].
    assert torch.allclose(depthwise._quantized_weight().flatten(),
                          torch.tensor([-2.0, 2.0, 2.0, 0.5, -0.5, 0.5]))
    assert extra_storage_bits(depthwise) == 2 * 32          # one float32 scale per channel


def test_depthwise_scale_option_of_the_zoo():
    small = dict(layers=1, dim=32, heads=2, ffn_dim=64, conv_kernel_size=3)
    default = models.build("bq-conformer-s", **small)
    channel = models.build("bq-conformer-s", depthwise_scale="channel", **small)
    assert not default.encoder.layers[0].conv.depthwise_conv.per_channel_scale
    assert channel.encoder.layers[0].conv.depthwise_conv.per_channel_scale
    assert not channel.encoder.layers[0].conv.pointwise_conv1.per_channel_scale
    with pytest.raises(ValueError, match="depthwise_scale must be one of"):
        models.build("bq-conformer-s", depthwise_scale="row", **small)
