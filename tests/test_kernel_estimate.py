"""The kernel-aware estimate: kernels traced with their shapes, priced by hand from a catalog's
kernels section; the section validated; calibrate writes one and measure compares with it."""
import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from profiler.catalog import CatalogError, load_catalog, parse_catalog
from profiler.files import REPORTS
from profiler.kernel_estimate import Kernel, kernel_seconds, kernel_time, trace_kernels

# fp32 peak 1 T operations/s; efficiency 0.5 at every size but M = 10 (0.25) and K = 1000
# (0.125, interpolated in log size below it); per element 1 ns for small tensors, 4 for large.
KERNELS = """
name: Test CPU
kind: cpu
memory_bandwidth_gbs: 10
peaks: {fp32: 1}
op_overhead_us: 20
kernels:
  matmul:
    sizes: [10, 100, 1000]
    reference_efficiency: 0.5
    m: [0.25, 0.5, 0.5]
    n: [0.5, 0.5, 0.5]
    k: [0.5, 0.5, 0.125]
  conv1d_factor: 0.5
  depthwise_conv1d_ns_per_mac: 3
  op_us: 2
  module_overhead_us: 5
  per_element_ns:
    elements: [1000, 1000000]
    plain: [1, 4]
    transcendental: [2, 8]
    reduction: [1, 4]
    softmax: [3, 12]
    norm: [2, 8]
    copy: [1, 4]
    output: [0.5, 2]
"""
# The deployed kernels: int1 peak 10 T operations/s, packed efficiency 0.5 everywhere but
# K = 10 bits (0.25); packing 0.5 ns per value small, 1 ns large; 0.1 ns per depthwise MAC;
# the fused attention core 2 ns per score at head width 64, 4 ns at 128.
PACKED = KERNELS.replace("peaks: {fp32: 1}", "peaks: {fp32: 1, int1: 10}") + """\
  packed:
    matmul:
      sizes: [10, 100, 1000]
      reference_efficiency: 0.5
      m: [0.5, 0.5, 0.5]
      n: [0.5, 0.5, 0.5]
      k: [0.25, 0.5, 0.5]
    elements: [1000, 1000000]
    packing_ns: [0.5, 1]
    depthwise_ns_per_mac: 0.1
    attention_ns_per_score: [2, 4]
"""


def catalog():
    return parse_catalog(KERNELS, source="k.yaml", key="k")


def test_each_kernel_is_priced_by_its_kind_and_shape():
    c = catalog()
    # 2 x 100^3 operations at 0.5 x 1e12: 4 us
    assert kernel_seconds(Kernel("mm", "matmul", (1, 100, 100, 100)), c) == pytest.approx(4e-6)
    # M = 10: 0.25 x 0.5 x 0.5 / 0.5^2 = 0.25 of the peak, 8 batches
    assert kernel_seconds(Kernel("bmm", "matmul", (8, 10, 100, 100)), c) == pytest.approx(
        8 * 2 * 10 * 100 * 100 / 0.25e12)
    # K = sqrt(100 x 1000) is halfway in log size: efficiency (0.5 + 0.125) / 2
    k = round((100 * 1000) ** 0.5)
    assert kernel_seconds(Kernel("mm", "matmul", (1, 100, 100, k)), c) == pytest.approx(
        2 * 100 * 100 * k / (0.3125e12), rel=1e-3)
    # a dense convolution at the conv factor times its matrix multiply's efficiency
    assert kernel_seconds(Kernel("conv1d", "conv", (1, 100, 100, 100)), c) == pytest.approx(8e-6)
    assert kernel_seconds(Kernel("conv1d", "depthwise", (1000,)), c) == pytest.approx(3e-6)
    # per element: 1 ns below 1000 elements, 4 ns above 1e6, log-linear between
    assert kernel_seconds(Kernel("add", "plain", (500,)), c) == pytest.approx(500e-9)
    assert kernel_seconds(Kernel("gelu", "transcendental", (10 ** 7,)), c) == pytest.approx(
        10 ** 7 * 8e-9)
    assert kernel_seconds(Kernel("softmax", "softmax", (31623,)), c) == pytest.approx(
        31623 * 7.5e-9, rel=1e-3)
    # fused attention's scores at the cached (smallest size's) rate, however many
    assert kernel_seconds(Kernel("sdpa", "cached-softmax", (10 ** 7,)), c) == pytest.approx(
        10 ** 7 * 3e-9)
    assert kernel_seconds(Kernel("mm", "output", (10 ** 6,)), c) == pytest.approx(2e-3)
    assert kernel_seconds(Kernel("view", "view", ()), c) == 0
    # plus the kernels section's 2 us per op counted and 5 us per module call (the
    # roofline's op_overhead_us, 20, is not used)
    kernels = [Kernel("add", "plain", (500,)), Kernel("view", "view", ())]
    assert kernel_time(kernels, c, op_calls=3, module_calls=2) == pytest.approx(
        500e-9 + 6e-6 + 10e-6)


def test_packed_kernels_are_priced_at_the_int1_peak():
    c = parse_catalog(PACKED, source="k.yaml", key="k")
    # 2 x 100^3 bit operations at 0.5 x 10e12
    assert kernel_seconds(Kernel("binary_matmul", "packed-matmul", (1, 100, 100, 100)),
                          c) == pytest.approx(2 * 100 ** 3 / 5e12)
    # K = 10 bits: 0.5 x 0.5 x 0.25 / 0.5^2 = 0.25 of the peak, 3 batches
    assert kernel_seconds(Kernel("binary_matmul", "packed-matmul", (3, 100, 100, 10)),
                          c) == pytest.approx(3 * 2 * 100 * 100 * 10 / 2.5e12)
    assert kernel_seconds(Kernel("pack_rows", "packing", (500,)), c) == pytest.approx(250e-9)
    assert kernel_seconds(Kernel("pack_rows", "packing", (10 ** 7,)), c) == pytest.approx(1e-2)
    assert kernel_seconds(Kernel("binary_depthwise", "packed-depthwise", (1000,)),
                          c) == pytest.approx(1e-7)
    # a catalog calibrated without the packed kernels refuses, saying what to do
    with pytest.raises(CatalogError, match="calibrate"):
        kernel_seconds(Kernel("pack_rows", "packing", (500,)), catalog())


def test_the_fused_packed_attention_is_priced_per_score_by_the_words_it_costs():
    from profiler.kernel_estimate import kernels_of

    c = parse_catalog(PACKED, source="k.yaml", key="k")
    # 2 x 4 heads, 100 queries and keys, head width 10 bits (1 word), 10 value dims
    meta = dict(device="meta", dtype=torch.int64)
    q, k, v_t = (torch.empty(8, 100, 1, **meta), torch.empty(8, 100, 1, **meta),
                 torch.empty(8, 10, 2, **meta))
    out = torch.empty(8, 100, 10, device="meta")
    # a score costs 1 query word + 10/64 of a value word; the calibration's points cost 2
    # words (width 64: 2 ns) and 4 (width 128: 4 ns), so 1.15625 ns on their line
    scores = 8 * 100 * 100 * 1.15625e-9
    # the 8 000 output values written at the rate log-interpolated between 1 000 (0.5 ns)
    # and 1e6 (2 ns): 8 000 is log10(8) / 3 of the way
    written = 8000 * (0.5 + 1.5 * math.log10(8) / 3) * 1e-9
    plain = kernels_of("encoder_binary::binary_attention", (q, k, v_t, 10, None), {}, out)
    assert sum(kernel_seconds(kernel, c) for kernel in plain) == pytest.approx(scores + written)
    # the relative-position core adds its (Q + v) P^T: K = 10 bits, 0.25 of the int1 peak
    relative = kernels_of("encoder_binary::binary_attention", (q, k, v_t, 10, q), {}, out)
    assert sum(kernel_seconds(kernel, c) for kernel in relative) == pytest.approx(
        scores + written + 8 * 2 * 100 * 100 * 10 / 2.5e12)
    # width 128 sits on the second point; a width far below the first is floored at a
    # quarter of it
    wide = kernels_of("encoder_binary::binary_attention", (torch.empty(8, 100, 2, **meta),
                                           torch.empty(8, 100, 2, **meta),
                                           torch.empty(8, 128, 2, **meta), 128, None), {}, out)
    assert kernel_seconds(wide[0], c) == pytest.approx(8 * 100 * 100 * 4e-9)
    from profiler.kernel_estimate import attention_ns_per_score
    assert attention_ns_per_score({"attention_ns_per_score": [2, 40]}, 1, 1) == 0.5


def test_a_malformed_packed_section_names_the_field():
    with pytest.raises(CatalogError, match=r"kernels\.packed\.packing_ns"):
        parse_catalog(PACKED.replace("packing_ns: [0.5, 1]", "packing_ns: [0.5]"),
                      source="k.yaml", key="k")


def test_a_reshape_is_a_copy_only_where_a_view_cannot_be_made():
    # Under inference_mode no result says whether it is a view: the strides decide.
    class Reshapes(nn.Module):
        def forward(self, x):  # (2, 10, 16)
            return x.reshape(20, 16), x.transpose(1, 2).reshape(2, 160)

    kernels = trace_kernels(Reshapes().to("meta"), torch.empty(2, 10, 16, device="meta"))
    assert [(k.op, k.kind, k.dims) for k in kernels if k.op == "reshape"] == [
        ("reshape", "view", ()), ("reshape", "copy", (320,))]


def test_a_catalog_without_kernels_is_refused_by_name():
    with pytest.raises(CatalogError, match="kernels section"):
        kernel_time([], load_catalog("epyc-7763"), 1)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(16, 32)
        self.norm = nn.LayerNorm(32)
        self.depthwise = nn.Conv1d(32, 32, 5, padding=2, groups=32)
        self.conv = nn.Conv1d(32, 8, 3)
        self.pointwise = nn.Conv1d(8, 4, 1)

    def forward(self, x):  # x: (batch 2, time 10, 16)
        h = self.norm(F.gelu(self.proj(x)))
        scores = torch.matmul(h, h.transpose(1, 2)).softmax(-1)  # (2, 10, 10)
        h = (scores @ h).transpose(1, 2)  # (2, 32, 10)
        attended = F.scaled_dot_product_attention(x[:, None], x[:, None], x[:, None])
        return self.pointwise(self.conv(self.depthwise(h))), attended


def test_the_trace_names_every_kernel_with_its_shape():
    kernels = trace_kernels(Block().to("meta"), torch.empty(2, 10, 16, device="meta"))
    found = [(k.op, k.kind, k.dims) for k in kernels if k.kind != "view"]
    assert found == [
        ("linear", "matmul", (1, 20, 32, 16)),       # M = 2 x 10 rows
        ("linear", "output", (640,)),
        ("gelu", "transcendental", (640,)),
        ("layer_norm", "norm", (640,)),
        ("matmul", "matmul", (2, 10, 10, 32)),
        ("matmul", "output", (200,)),
        ("softmax", "softmax", (200,)),
        ("matmul", "matmul", (2, 10, 32, 10)),
        ("matmul", "output", (640,)),
        ("scaled_dot_product_attention", "matmul", (2, 10, 10, 16)),
        ("scaled_dot_product_attention", "matmul", (2, 10, 16, 10)),
        ("scaled_dot_product_attention", "cached-softmax", (200,)),
        ("scaled_dot_product_attention", "output", (320,)),
        ("conv1d", "depthwise", (2 * 32 * 10 * 5,)),  # MACs: outputs x kernel
        ("conv1d", "output", (640,)),
        ("conv1d", "conv", (1, 16, 8, 96)),          # 2 x 8 positions, 32 x 3 per output
        ("conv1d", "output", (128,)),
        ("conv1d", "conv", (1, 16, 4, 8)),           # kernel 1: K = the 8 input channels
        ("conv1d", "output", (64,)),
    ]


@pytest.mark.parametrize("field, text", [
    ("kernels.matmul.sizes", "sizes: [100, 10, 1000]"),
    ("kernels.matmul.m", "m: [0.25, 0.5]"),
    ("kernels.matmul.k[2]", "k: [0.5, 0.5, -1]"),
    ("kernels.per_element_ns", "    copy: [1, 4]\n"),
])
def test_a_malformed_kernels_section_names_the_field(field, text):
    if field == "kernels.per_element_ns":
        bad = KERNELS.replace(text, "")
    else:
        key = text.split(":")[0]
        line = next(line for line in KERNELS.splitlines() if line.strip().startswith(key + ":"))
        bad = KERNELS.replace(line, "    " + text)
    with pytest.raises(CatalogError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_catalog(bad, source="k.yaml", key="k")


def test_calibrate_quick_writes_kernels_and_measure_compares_both_estimates(cli, tmp_path):
    out = tmp_path / "cpu.yaml"
    made = cli("calibrate", "--output", out, "--duration", "0.02", "--matrix-size", "128",
               "--copy-mb", "8", "--quick", "--threads", "1")
    assert made.returncode == 0, made.stderr
    kernels = load_catalog(str(out)).kernels
    assert kernels["matmul"]["sizes"] == [16, 64, 256]
    assert set(kernels["per_element_ns"]) == {"elements", "plain", "transcendental",
                                              "reduction", "softmax", "norm", "copy", "output"}
    assert kernels["op_us"] > 0 and kernels["module_overhead_us"] > 0
    result = cli("measure", "--models", "sparseformer-sw-s", "--seconds", "0.5,1", "--warmup",
                 "0", "--repeats", "1", "--device", "cpu", "--threads", "1", "--catalog", out,
                 "--estimate", "roofline,kernel")
    assert result.returncode == 0, result.stderr
    header = next(line for line in result.stdout.splitlines() if "measured_ms" in line)
    assert "roofline_ms" in header and "measured/kernel" in header
    assert result.stdout.count("Spearman rank correlation") == 2
    assert "rows, kernel: Spearman" in result.stdout


def test_a_model_of_two_inputs_is_estimated_as_with_the_second_held_inside():
    """model_kernel_time passes every input to the analyzer as well as to the tracer: a
    model of (x, y) costs what the same model holding y as a buffer costs on x."""
    from profiler.kernel_estimate import model_kernel_time

    class TwoInputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(64, 64)

        def forward(self, x, y):
            return self.linear(x) + y

    class HeldInside(TwoInputs):
        def __init__(self, y):
            super().__init__()
            self.register_buffer("y", y)

        def forward(self, x):
            return super().forward(x, self.y)

    catalog = load_catalog(str(REPORTS / "measured_vs_estimated_cpu_1threads.yaml"))
    x, y = torch.empty(8, 64, device="meta"), torch.empty(8, 64, device="meta")
    two = model_kernel_time(TwoInputs().to("meta"), x, y, catalog=catalog)
    assert math.isfinite(two) and two > 0
    assert two == pytest.approx(model_kernel_time(HeldInside(y).to("meta"), x, catalog=catalog))


def test_packed_ops_are_traced_with_their_namespace():
    """The deployed kernels are named NAMESPACE::op, so only they take the packed rules
    (another library's `linear` is no aten matmul): 3 rows of 100 values pack to 2 words."""
    import models.deployment.kernels  # noqa: F401  (registers the encoder_binary ops)

    ops = torch.ops.encoder_binary

    class Packed(nn.Module):
        def forward(self, a, b):
            rows = ops.pack_rows(a, None, 1.0, False)                      # (3, 2) words
            return ops.binary_matmul(rows[None], ops.pack_rows(b, None, 1.0, False)[None],
                                     100, 0, True)
    kernels = trace_kernels(Packed(), torch.empty(3, 100, device="meta"),
                            torch.empty(5, 100, device="meta"))
    assert [(k.op, k.kind, k.dims) for k in kernels if k.kind != "view"] == [
        ("encoder_binary::pack_rows", "packing", (300,)),
        ("encoder_binary::pack_rows", "packing", (500,)),
        ("encoder_binary::binary_matmul", "packed-matmul", (1, 3, 5, 100)),
        ("encoder_binary::binary_matmul", "output", (15,))]
