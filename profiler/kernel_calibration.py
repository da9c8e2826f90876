"""Measuring the kernels section of a catalog: what the kernel-aware estimate
(:mod:`profiler.kernel_estimate`) needs beyond a peak and a bandwidth.

- ``matmul``: the efficiency (fraction of the catalog's fp32 peak) of a product in a
  ``Linear``'s layout, M x K times the transpose of an N x K weight (``torch.mm(x, w.t())``
  into a result allocated once, since writing a fresh result is priced as ``output``; each
  call with another weight, out of the core's caches, as in a forward pass), as
  each of M, N and K sweeps ``sizes`` with the other two at the reference size (the middle
  of ``sizes``); ``reference_efficiency`` is the efficiency at the reference cube. The
  layout matters at small M: on a Xeon at M = 49 rows, N = K = 144, the transposed weight
  ran at half the efficiency of a plain ``torch.mm``, and linears carry most of every zoo
  model's multiply-accumulates.
- ``conv1d_factor``: a dense ``conv1d`` (the front end's shape class: 256 channels in and
  out, kernel 3) against the matrix multiply of its unfolded input (kernel-1 convolutions,
  which ATen runs on another path, ``_slow_conv2d_forward``, measured within 7 % of it
  on a Xeon); ``depthwise_conv1d_ns_per_mac``: a depthwise ``conv1d`` (256 channels,
  kernel 15).
- ``per_element_ns``: nanoseconds per element of each kernel class at each of ``elements``
  (a small tensor, cached; a large one, from memory): plain arithmetic (``a + b``),
  transcendental (GELU), reduction (a sum over rows of 256), softmax and layer norm over
  rows of 256, copy (a transposing ``contiguous``), output (a fresh tensor filled: the
  allocation and first touch every kernel's result pays).
- ``op_us``: the fixed time of an op called as a function (a stack of tiny LayerNorm,
  Linear and GELU calls on 8 features, per op the analyzer counts);
  ``module_overhead_us``: what calling an ``nn.Module`` adds to its ops (hooks, Python
  calls): the same stack as modules, minus the functions, per module call.

Every figure is the median of repeated runs (:mod:`profiler.calibration` passes its timing
function in): the estimate predicts the median pass that ``measure`` reports.
"""
from __future__ import annotations

import itertools
from typing import Callable

# Element sizes from cached to memory-bound, dense around the last-level cache's edge: on
# the 2-core EPYC an add of 2^21 float32 values (3 tensors, 24 MiB) still runs from cache at
# 0.18 ns per value and one of 2^23 from memory at 1.5; interpolating straight from 2^18
# to 2^23 priced the 1-3 million-value tensors of 10 s inputs (attention scores, 4x-wide
# feed-forward activations) several times too slow.
FULL = {"sizes": [16, 64, 256, 1024, 4096],
        "elements": [2 ** 14, 2 ** 16, 2 ** 18, 2 ** 20, 2 ** 21, 2 ** 22, 2 ** 23],
        "conv_length": 1024}
QUICK = {"sizes": [16, 64, 256], "elements": [2 ** 12, 2 ** 16], "conv_length": 128}
# The distinct weights a matrix multiply's calibration cycles through: many times a core's
# level-2 cache (2 MiB on the Xeon this was chosen on), so every call reads its weight from
# further out, as a forward pass does. On that Xeon, cached weights ran 1.3-2x faster at
# M = 16-64 rows (N = K = 256) than cycled ones, and 1.05-1.1x at M >= 256.
WEIGHT_POOL_BYTES = 32 << 20


def measure_kernels(device: str, seconds: Callable[[Callable[[], object]], float],
                    peak_fp32_tera: float, *, quick: bool = False,
                    say: Callable[[str], None] = lambda line: None) -> tuple[dict, str]:
    """(the catalog's ``kernels`` section, how it was measured); ``seconds(fn)`` times a
    call (the calibration's median of repeated runs)."""
    import torch
    import torch.nn.functional as F

    plan = QUICK if quick else FULL
    generator = torch.Generator().manual_seed(0)
    peak = peak_fp32_tera * 1e12

    def rand(*shape):
        return torch.randn(*shape, generator=generator).to(device)

    def matmul_efficiency(m: int, n: int, k: int) -> float:
        # into a result allocated once: the arithmetic alone, the output priced apart; each
        # call reads the next of several weights, none left in the core's caches by the
        # call before, as each Linear of a forward pass reads its own
        a, out = rand(m, k), torch.empty(m, n, device=device)
        weights = itertools.cycle([rand(n, k) for _ in
                                   range(max(2, WEIGHT_POOL_BYTES // (n * k * 4)))])

        def call():
            torch.mm(a, next(weights).t(), out=out)
        return 2 * m * n * k / seconds(call) / peak

    sizes = plan["sizes"]
    table = efficiency_sweep(matmul_efficiency, sizes)
    section = {"matmul": {**table, **{d: [round(v, 4) for v in table[d]] for d in "mnk"}}}
    say(f"matrix multiply efficiency at {sizes[len(sizes) // 2]}^3: "
        f"{table['reference_efficiency']:.3g} of the fp32 peak")

    from .kernel_estimate import matmul_efficiency as modelled

    channels, length = 256, plan["conv_length"]
    x, w = rand(1, channels, length), rand(channels, channels, 3)
    conv_s = seconds(lambda: F.conv1d(x, w, padding=1))
    conv_efficiency = 2 * length * channels * channels * 3 / conv_s / peak
    section["conv1d_factor"] = conv_efficiency / modelled(section, length, channels,
                                                         channels * 3)
    dw = rand(channels, 1, 15)
    dw_s = seconds(lambda: F.conv1d(x, dw, padding=7, groups=channels))
    section["depthwise_conv1d_ns_per_mac"] = dw_s / (channels * length * 15) * 1e9
    say(f"conv1d: {section['conv1d_factor']:.3g} of the matrix multiply model; depthwise "
        f"{section['depthwise_conv1d_ns_per_mac']:.3g} ns per MAC")

    section["op_us"], section["module_overhead_us"] = _call_overheads_us(device, seconds)
    say(f"time per op: {section['op_us']:.3g} us, per module call: "
        f"{section['module_overhead_us']:.3g} us")

    per_element = {"elements": plan["elements"]}
    for name, make in _ELEMENT_KERNELS.items():
        per_element[name] = []
        for elements in plan["elements"]:
            call = make(rand(elements // 256, 256), rand(elements // 256, 256))
            per_element[name].append(seconds(call) / elements * 1e9)
    section["per_element_ns"] = per_element
    say("ns per element (small, large): " + ", ".join(
        f"{name} {values[0]:.3g}/{values[-1]:.3g}" for name, values in per_element.items()
        if name != "elements"))
    how = (f"torch.mm(x, weight.t()) efficiency, each call reading the next of "
           f"{WEIGHT_POOL_BYTES >> 20} MiB of weights, sweeping M, N, K over {sizes} (others at "
           f"{sizes[len(sizes) // 2]}); conv1d of {channels} channels x {length} (kernel 3; "
           f"depthwise kernel 15); per element: a + b, GELU, sum, softmax, layer_norm over "
           f"rows of 256, transposing copy, at {plan['elements']} elements")
    return _rounded(section), how


def efficiency_sweep(efficiency: Callable[[int, int, int], float], sizes: list) -> dict:
    """A product's separable shape table (the kernel estimate's ``matmul_efficiency``):
    ``efficiency(M, N, K)`` as each of M, N and K sweeps ``sizes`` with the other two at the
    reference size (the middle one), and the efficiency at the reference cube."""
    reference = sizes[len(sizes) // 2]
    table = {"sizes": sizes, "m": [], "n": [], "k": []}
    for size in sizes:
        table["m"].append(efficiency(size, reference, reference))
        table["n"].append(efficiency(reference, size, reference))
        table["k"].append(efficiency(reference, reference, size))
    table["reference_efficiency"] = table["m"][len(sizes) // 2]
    return table


def tiny_stack(layers: int, device: str):
    """(model, input): ``layers`` blocks of LayerNorm, Linear and GELU on 8 features, one
    row: a pass whose time is the calls' overhead, not their arithmetic."""
    import torch
    from torch import nn

    model = nn.Sequential(*[nn.Sequential(nn.LayerNorm(8), nn.Linear(8, 8), nn.GELU())
                            for _ in range(layers)]).eval().to(device)
    return model, torch.randn(1, 8, device=device)


def _call_overheads_us(device: str, seconds) -> tuple[float, float]:
    """(time per op called as a function, time a module call adds), in microseconds."""
    import torch
    import torch.nn.functional as F

    model, x = tiny_stack(32, device)
    blocks = list(model)

    def modules():
        with torch.inference_mode():
            model(x)

    def functions():
        with torch.inference_mode():
            h = x
            for norm, linear, _ in blocks:
                h = F.gelu(F.linear(F.layer_norm(h, norm.normalized_shape, norm.weight,
                                                 norm.bias, norm.eps), linear.weight,
                                    linear.bias))

    from .analyzer import profile
    from .estimator import module_calls, op_calls

    counted = profile(model, x)
    ops, calls = op_calls(counted), module_calls(counted)
    by_function = seconds(functions)
    return (by_function / ops * 1e6,
            max(seconds(modules) - by_function, 0.0) / calls * 1e6 or 1e-3)


def _rounded(value):
    if isinstance(value, float):
        return float(f"{value:.4g}")
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_rounded(v) for v in value]
    return value


def _plain(a, b):
    return lambda: a + b


def _transcendental(a, b):
    import torch.nn.functional as F

    return lambda: F.gelu(a)


def _reduction(a, b):
    return lambda: a.sum(-1)


def _softmax(a, b):
    return lambda: a.softmax(-1)


def _norm(a, b):
    import torch.nn.functional as F

    return lambda: F.layer_norm(a, a.shape[-1:])


def _copy(a, b):
    return lambda: a.t().contiguous()


def _output(a, b):
    import torch

    return lambda: torch.empty_like(a).fill_(1.0)


# one per class of profiler.catalog.ELEMENT_CLASSES, in its order
_ELEMENT_KERNELS = {"plain": _plain, "transcendental": _transcendental,
                    "reduction": _reduction, "softmax": _softmax, "norm": _norm, "copy": _copy,
                    "output": _output}
