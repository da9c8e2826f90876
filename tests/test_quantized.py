"""torch.ao quantized modules declare their bits and storage without user code; each count
below is worked by hand from the layer sizes."""
import warnings

import pytest
import torch
from torch import nn

import profiler

# torch.ao.quantization warns that it is deprecated in favour of torchao: still shipped.
pytestmark = pytest.mark.filterwarnings("ignore")


def dynamic_model():
    import torch.ao.quantization as tq

    model = nn.Sequential(nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 4)).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tq.quantize_dynamic(model, {nn.Linear}, dtype=torch.qint8)


class Static(nn.Module):
    def __init__(self):
        import torch.ao.quantization as tq

        super().__init__()
        self.quant = tq.QuantStub()
        self.linear = nn.Linear(16, 8)
        self.conv = nn.Conv1d(8, 4, 3)
        self.dequant = tq.DeQuantStub()

    def forward(self, x):
        x = self.linear(self.quant(x))
        return self.dequant(self.conv(x.transpose(1, 2)))


def static_model():
    import torch.ao.quantization as tq

    model = Static().eval()
    model.qconfig = tq.QConfig(
        activation=tq.MinMaxObserver.with_args(dtype=torch.quint8),
        weight=tq.PerChannelMinMaxObserver.with_args(dtype=torch.qint8,
                                                     qscheme=torch.per_channel_symmetric))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tq.prepare(model, inplace=True)
        model(torch.randn(1, 10, 16))
        tq.convert(model, inplace=True)
    return model


def test_dynamic_quantization_int8_weights_float_activations():
    p = profiler.profile(dynamic_model(), torch.randn(2, 16), device="cpu")
    t = p.totals
    # MACs: 2 x 16 x 8 = 256 and 2 x 8 x 4 = 64, int8 weights x float32 inputs
    assert dict(p.by_bits) == {"W8A32": {"macs": 320, "bops": 320 * 8 * 32, "class": "q"}}
    assert t["bop_q"] == 81_920 and t["bop_nonq"] == 0 and t["macs_q"] == 320
    # storage: 128 weights x 8 bits + a per-tensor scale and zero point (64 bits) + 8 float
    # biases (256 bits) = 1344 bits = 168 B; then 32 x 8 + 64 + 4 x 32 = 448 bits = 56 B
    assert p.modules["0"]["storage_bytes"] == 168 and p.modules["2"]["storage_bytes"] == 56
    assert t["storage_bytes"] == 224
    # the biases (8 + 4 per row, 2 rows) and the ReLU (16 elements)
    assert t["elementwise_flops"] == 24 + 16
    assert not p.unsupported


def test_static_quantization_int8_weights_and_activations():
    p = profiler.profile(static_model(), torch.randn(1, 10, 16), device="cpu")
    t = p.totals
    # linear: 10 x 16 x 8 = 1280 MACs; conv1d 8 -> 4 channels, kernel 3, 10 -> 8 frames:
    # 8 x 4 x 8 x 3 = 768 MACs; quint8 activations x qint8 weights
    assert dict(p.by_bits) == {"W8A8": {"macs": 2048, "bops": 2048 * 64, "class": "q"}}
    # linear: 128 x 8 + 8 channels x 64 (per-channel scale, zero point) + 8 x 32 (bias)
    # + 64 (output scale, zero point) = 1856 bits = 232 B
    assert p.modules["linear"]["storage_bytes"] == 232
    # conv: 96 x 8 + 4 x 64 + 4 x 32 + 64 = 1216 bits = 152 B
    assert p.modules["conv"]["storage_bytes"] == 152
    assert t["storage_bytes"] == 384
    # linear moves its quint8 input (160 B), its int8 weight (128 B), its quint8 output (80 B)
    assert p.modules["linear"]["bytes_moved"] == 368
    assert not p.unsupported


def test_quantized_rows_are_low_bit_in_the_deployed_roofline():
    from profiler.catalog import load_catalog
    from profiler.estimator import fused_quantizers, roofline

    p = profiler.profile(static_model(), torch.randn(1, 10, 16), device="cpu")
    assert fused_quantizers(p) == set()  # no binarizer modules inside the quantized layers
    times = {t.module: t for t in roofline(p, load_catalog("a100"))}
    # 2 x 1280 operations at the A100's INT8 peak (624 T), the 80 bias FLOPs at FP32 (19.5 T)
    assert times["linear"].compute_s == pytest.approx(2 * 1280 / 624e12 + 80 / 19.5e12)


def test_bytes_moved_count_each_operand_at_its_own_width():
    # A Linear whose weight is declared 1-bit, its activation left float: the product
    # reads the (2, 4) float input (8 x 4 B), the 16 x 4 one-bit weight (64 bits = 8 B)
    # and writes the (2, 16) float output (32 x 4 B): 32 + 8 + 128 = 168 B. Reading each
    # operand at the other's width gave 1 + 256 + 128 = 385.
    layer = torch.nn.Linear(4, 16, bias=False)
    layer.weight_bits = 1
    p = profiler.profile(layer, torch.randn(2, 4))
    assert dict(p.by_bits)["W1A32"]["macs"] == 128
    assert p.modules[""]["bytes_moved"] == 32 + 8 + 128
