"""Measuring this machine for a catalog: matrix-multiply throughput per precision and memory
bandwidth, written in the shipped catalog format (see :mod:`profiler.catalog`).

Every figure is the best of repeated runs after one warm-up: the closest a run gets to the
part's peak, so a loaded machine gives lower figures, never higher. The kernels section is
the exception: its figures are medians (see :mod:`profiler.kernel_calibration`). How each
figure was measured goes into the catalog's ``sources``.

Matrix multiply: ``torch.mm`` of two square matrices (``torch._int_mm`` for int8, where
PyTorch has it for the device), 2 n^3 operations per call. A precision other than fp32 is
kept only where it is fast: a probe at half the size first (float16 matrix
multiplies on a CPU without native support run a hundred times slower than float32), then
the full measurement, kept when it reaches the fp32 figure; otherwise the catalog says why
it left it out and work at that precision falls back to a wider one that is listed.

On a CPU, ``int1``: the packed W1A1 product that ``models.deploy`` runs (see
:func:`_calibrate_int1`); the deployed roofline times W1A1 products at it.

Time per op (``op_overhead_us``): forward passes of a stack of tiny layers (LayerNorm,
Linear, GELU on 8 features), whose arithmetic is negligible, divided by the ops the
analyzer counts in one pass: the fixed cost of dispatching one op from a module, the same
count the estimator multiplies it with.

Memory bandwidth: ``dst.copy_(src)`` of a large float32 tensor (larger than the caches),
counting the bytes read and the bytes written.

Kernels (the catalog's ``kernels`` section, for the kernel estimate): see
:mod:`profiler.kernel_calibration`.
"""
from __future__ import annotations

import datetime
import functools
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Optional

from .catalog import ATTENTION_HEAD_DIMS, Catalog, parse_catalog

DEFAULT_DURATION_S = 0.3
DEFAULT_MATRIX_SIZE = 1024
DEFAULT_COPY_MB = 256
# torch dtype names of the precisions below fp32 that calibration tries.
_LOW_PRECISIONS = {"bf16": "bfloat16", "fp16": "float16", "int8": "int8"}



@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset:
    """The instruction-set flags /proc/cpuinfo gives for this machine's CPU (avx2,
    avx512_bf16, amx_bf16...); empty where it cannot be read. Read once per process: the
    study's plan asks for each training job."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or platform.machine()


@dataclass
class Calibration:
    device: str
    device_name: str
    threads: int
    peaks_tera: dict = field(default_factory=dict)
    memory_bandwidth_gbs: float = 0.0
    op_overhead_us: Optional[float] = None
    sources: dict = field(default_factory=dict)
    kernels: Optional[dict] = None  # see profiler.kernel_calibration

    def to_yaml(self) -> str:
        import torch
        import yaml

        when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        header = (f"# Calibrated by `profile-encoder calibrate` on {when},\n# torch "
                  f"{torch.__version__}, {self.threads} threads. Each figure is the best of "
                  "repeated runs (a loaded\n# machine gives lower figures), the kernels "
                  "section's the median; how it was\n# measured is under sources.\n")
        data = {
            "name": f"{self.device_name} (calibrated, {self.threads} threads)",
            "kind": "gpu" if self.device.startswith("cuda") else "cpu",
            "match": [self.device_name],
            "memory_bandwidth_gbs": _round(self.memory_bandwidth_gbs),
            "peaks": {k: _round(v) for k, v in self.peaks_tera.items()},
        }
        if self.op_overhead_us is not None:
            data["op_overhead_us"] = _round(self.op_overhead_us)
        data["sources"] = self.sources
        if self.kernels is not None:
            data["kernels"] = self.kernels
        return header + yaml.safe_dump(data, sort_keys=False, width=200)

    def catalog(self, key: str = "calibrated") -> Catalog:
        return parse_catalog(self.to_yaml(), source="calibration", key=key)


def _round(value: float) -> float:
    return float(f"{value:.4g}")


def _run_times(fn: Callable[[], object], duration_s: float, synchronize: Callable[[], None],
               min_runs: int, clock: Callable[[], float]) -> list[float]:
    """Each run's seconds of ``clock`` over about ``duration_s`` of wall time (at least
    ``min_runs``), after an untimed warm-up."""
    fn()
    synchronize()
    times, start = [], time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < duration_s:
        began = clock()
        fn()
        synchronize()
        times.append(clock() - began)
    return times


def best_time(fn: Callable[[], object], duration_s: float, synchronize: Callable[[], None],
              min_runs: int = 3, clock: Callable[[], float] = time.perf_counter
              ) -> tuple[float, int]:
    """(fastest run in seconds of ``clock``, runs) of ``fn`` over about ``duration_s`` of wall
    time, after a warm-up."""
    times = _run_times(fn, duration_s, synchronize, min_runs, clock)
    return min(times), len(times)


def median_time(fn: Callable[[], object], duration_s: float, synchronize: Callable[[], None],
                min_runs: int = 3, clock: Callable[[], float] = time.perf_counter
                ) -> tuple[float, int]:
    """(median run in seconds of ``clock``, runs), as :func:`best_time` runs them."""
    times = _run_times(fn, duration_s, synchronize, min_runs, clock)
    return statistics.median(times), len(times)


def interleaved_times(calls: dict, rounds: int,
                      synchronize: Callable[[], None] = lambda: None, *,
                      warmup: int = 1) -> dict:
    """name -> every round's seconds of ``calls[name]()``: ``warmup`` untimed rounds of one
    call each first (allocations, caches), then ``rounds`` timed rounds, so that a change of
    the machine's load reaches every contender alike (the benchmarks' paired ratios)."""
    for _ in range(warmup):
        for call in calls.values():
            call()
            synchronize()
    times: dict = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            synchronize()
            times[name].append(time.perf_counter() - start)
    return times


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
CLOCK_HELP = ("wall (default): elapsed time; cpu: this process's CPU time, which other "
              "processes on a shared machine do not inflate (a time only on one thread: it "
              "implies --threads 1 and refuses more)")


def _matmul(precision: str, n: int, device: str) -> Optional[Callable[[], object]]:
    """A call multiplying two n x n matrices at ``precision``; None where the device has no
    kernel for it."""
    import torch

    generator = torch.Generator().manual_seed(0)
    if precision == "int8":
        if not hasattr(torch, "_int_mm"):
            return None
        a = torch.randint(-128, 128, (n, n), dtype=torch.int8, generator=generator).to(device)
        b = torch.randint(-128, 128, (n, n), dtype=torch.int8, generator=generator).to(device)
        call = lambda: torch._int_mm(a, b)  # noqa: E731
    else:
        dtype = getattr(torch, _LOW_PRECISIONS.get(precision, "float32"))
        a = torch.randn(n, n, generator=generator).to(device=device, dtype=dtype)
        b = torch.randn(n, n, generator=generator).to(device=device, dtype=dtype)
        call = lambda: torch.mm(a, b)  # noqa: E731
    try:
        call()
    except (RuntimeError, NotImplementedError):
        return None
    return call


def calibrate(device: str = "cpu", *, duration_s: float = DEFAULT_DURATION_S,
              matrix_size: int = DEFAULT_MATRIX_SIZE, copy_mb: int = DEFAULT_COPY_MB,
              clock: str = "wall", kernels: bool = True, quick_kernels: bool = False,
              progress: Optional[Callable[[str], None]] = None) -> Calibration:
    """The machine's figures; ``kernels`` adds the kernels section (``quick_kernels``: a
    smaller grid, for tests)."""
    import torch

    cuda = device.startswith("cuda")
    if clock == "cpu" and cuda:
        raise ValueError("the cpu clock times CPU work only")
    timer = CLOCKS[clock]
    synchronize = torch.cuda.synchronize if cuda else (lambda: None)
    name = torch.cuda.get_device_name(torch.device(device)) if cuda else cpu_name()
    result = Calibration(device, name, torch.get_num_threads())
    say = progress or (lambda line: None)
    n, probe_n = matrix_size, max(16, matrix_size // 2)
    if cuda:
        # fp32 means fp32 here: TF32 tensor cores would be a different precision.
        torch.backends.cuda.matmul.allow_tf32 = False

    def throughput(precision: str, size: int, duration: float,
                   min_runs: int = 3) -> Optional[tuple[float, int]]:
        call = _matmul(precision, size, device)
        if call is None:
            return None
        seconds, runs = best_time(call, duration, synchronize, min_runs, timer)
        return 2 * size ** 3 / seconds / 1e12, runs

    fp32, runs = throughput("fp32", n, duration_s)
    result.peaks_tera["fp32"] = fp32
    how = (f"torch.mm of two {n}x{n} {{dtype}} matrices on {device}, 2 x {n}^3 operations, "
           f"best of {{runs}} runs over {duration_s:g} s, {clock} clock")
    result.sources["fp32"] = how.format(dtype="float32", runs=runs)
    say(f"fp32 matrix multiply: {fp32:.4g} T operations/s")
    fp32_probe = throughput("fp32", probe_n, duration_s / 4, 1)[0]
    for precision in ("bf16", "fp16", "int8"):
        kernel = "torch._int_mm" if precision == "int8" else "torch.mm"
        probe = throughput(precision, probe_n, duration_s / 4, 1)
        if probe is None:
            result.sources[precision] = f"left out: no {kernel} kernel for it on {device}"
            continue
        if probe[0] < fp32_probe / 2:
            result.sources[precision] = (
                f"left out: slow ({probe[0]:.3g} T operations/s at {probe_n}x{probe_n} against "
                f"{fp32_probe:.3g} for fp32); its work is estimated at a wider precision")
            continue
        value, runs = throughput(precision, n, duration_s)
        if value < fp32:
            result.sources[precision] = (
                f"left out: {value:.3g} T operations/s, below fp32's; its work is estimated "
                "at a wider precision")
            continue
        result.peaks_tera[precision] = value
        dtype = ("int8 (int32 results)" if precision == "int8"
                 else _LOW_PRECISIONS[precision])
        text = how.format(dtype=dtype, runs=runs)
        result.sources[precision] = text.replace("torch.mm", kernel)
        say(f"{precision} matrix multiply: {value:.4g} T operations/s")

    if not cuda:
        _calibrate_int1(result, n, duration_s, timer, say)

    elements = copy_mb * 2 ** 20 // 4
    src = torch.ones(elements, device=device)
    dst = torch.empty_like(src)
    seconds, runs = best_time(lambda: dst.copy_(src), duration_s, synchronize, 3, timer)
    result.memory_bandwidth_gbs = 2 * src.numel() * 4 / seconds / 1e9
    result.sources["memory_bandwidth_gbs"] = (
        f"copy_ of a {copy_mb} MiB float32 tensor into another on {device}, bytes read + "
        f"bytes written, best of {runs} runs over {duration_s:g} s, {clock} clock")
    say(f"memory bandwidth: {result.memory_bandwidth_gbs:.4g} GB/s")
    src = dst = None  # free the copy buffers before the next measurement

    layers, ops, (seconds, runs) = _tiny_stack_time(device, duration_s, synchronize, timer)
    result.op_overhead_us = seconds / ops * 1e6
    result.sources["op_overhead_us"] = (
        f"forward pass of {layers} (LayerNorm, Linear, GELU) layers on 8 features on {device}, "
        f"{ops} ops counted by the analyzer, best of {runs} runs over {duration_s:g} s, "
        f"{clock} clock")
    say(f"time per op: {result.op_overhead_us:.3g} us")
    if kernels:
        from .kernel_calibration import measure_kernels

        # the median, not the best: the kernel estimate predicts the median pass that
        # `measure` reports, and the best run of a kernel timed alone is its luckiest
        def seconds(fn) -> float:
            return median_time(fn, duration_s / 4, synchronize, 5, timer)[0]

        result.kernels, how = measure_kernels(device, seconds, result.peaks_tera["fp32"],
                                              quick=quick_kernels, say=say)
        result.sources["kernels"] = (f"{how}; median of runs over {duration_s / 4:g} s each, "
                                     f"{clock} clock")
        if "int1" in result.peaks_tera:
            result.kernels["packed"], how = _calibrate_packed(
                seconds, result.peaks_tera["int1"] * 1e12, quick_kernels)
            result.sources["kernels"] += f"; packed: {how}"
    return result


def _calibrate_packed(seconds, peak_int1: float, quick: bool) -> tuple[dict, str]:
    """The kernels section's ``packed`` part, for deployed models: the packed product's
    efficiency (of the ``int1`` peak) as M, N and K (bits) sweep the float sizes with the
    others at the reference, packing's nanoseconds per value (rows of 256 with their
    offset) at the float element sizes, the packed depthwise convolution's per MAC, and the
    fused attention core's per score at two head widths."""
    import torch

    from models.deployment import kernels

    from .kernel_calibration import FULL, QUICK, _rounded, efficiency_sweep

    plan = QUICK if quick else FULL
    generator = torch.Generator().manual_seed(0)

    def efficiency(m: int, n: int, k: int) -> float:
        a = kernels.pack_rows(torch.randn((1, m, k), generator=generator))
        b = kernels.pack_rows(torch.randn((1, n, k), generator=generator))
        return 2 * m * n * k / seconds(lambda: kernels.binary_matmul(a, b, k)) / peak_int1

    sizes = plan["sizes"]
    table = efficiency_sweep(efficiency, sizes)
    packing = []
    offset = torch.randn(256, generator=generator)
    for elements in plan["elements"]:
        x = torch.randn((elements // 256, 256), generator=generator)
        packing.append(seconds(lambda: kernels.pack_rows(x, offset)) / elements * 1e9)
    channels, length, width = 256, plan["conv_length"], 15
    bits = kernels.pack_rows(torch.randn((channels, length + width - 1), generator=generator))
    weights = kernels.pack_rows(torch.randn((channels, width), generator=generator)).view(-1)
    depthwise_s = seconds(lambda: kernels.binary_depthwise(bits, None, weights, width, 1,
                                                           length))
    heads, frames = 4, sizes[-2]
    attention = []
    for dim in ATTENTION_HEAD_DIMS:
        q, k, v = (torch.randn((1, heads, frames, dim), generator=generator) for _ in range(3))
        operands = (kernels.pack_rows(q), kernels.pack_rows(k),
                    kernels.pack_rows(v.transpose(-2, -1)))
        attention.append(seconds(lambda: kernels.binary_attention(
            *operands, dim, content_scale=1.0, score_scale=dim ** -0.5, probs_alpha=0.01,
            out_scale=1.0)) / (heads * frames * frames) * 1e9)
    section = {"matmul": table, "elements": plan["elements"], "packing_ns": packing,
               "depthwise_ns_per_mac": depthwise_s / (channels * length * width) * 1e9,
               "attention_ns_per_score": attention}
    how = (f"models.deploy's packed product sweeping M, N, K (bits) over {sizes} (others at "
           f"{sizes[len(sizes) // 2]}); packing rows of 256 at {plan['elements']} values; "
           f"packed depthwise convolution of {channels} channels x {length}, kernel {width}; "
           f"the fused attention core, {heads} heads x {frames} frames, head widths "
           f"{' and '.join(map(str, ATTENTION_HEAD_DIMS))}")
    return _rounded(section), how


def _calibrate_int1(result: "Calibration", n: int, duration_s: float, timer, say) -> None:
    """The ``int1`` peak: models.deploy's packed W1A1 product (XOR-popcount, C++ built on
    first use) of two n x n sign matrices, 2 n^3 operations; left out, with the reason,
    where the kernels cannot be built."""
    import torch

    from models.deployment import DeployError, kernels

    try:
        generator = torch.Generator().manual_seed(0)
        a = kernels.pack_rows(torch.randn((1, n, n), generator=generator))
        b = kernels.pack_rows(torch.randn((1, n, n), generator=generator))
        path = kernels.supported_paths()[-1]
    except DeployError as error:
        result.sources["int1"] = f"left out: {error}"
        return
    seconds, runs = best_time(lambda: kernels.binary_matmul(a, b, n), duration_s,
                              lambda: None, 3, timer)
    result.peaks_tera["int1"] = 2 * n ** 3 / seconds / 1e12
    result.sources["int1"] = (
        f"models.deploy's packed W1A1 product (XOR-popcount, {path} kernel path) of two "
        f"{n}x{n} sign matrices on cpu, int32 results, 2 x {n}^3 operations, best of {runs} "
        f"runs over {duration_s:g} s")
    say(f"int1 packed product: {result.peaks_tera['int1']:.4g} T operations/s")


def _tiny_stack_time(device: str, duration_s: float, synchronize, timer):
    import torch

    from .analyzer import profile
    from .estimator import op_calls
    from .kernel_calibration import tiny_stack

    layers = 64
    model, x = tiny_stack(layers, device)
    ops = op_calls(profile(model, x))

    def forward():
        with torch.inference_mode():
            model(x)

    return layers, ops, best_time(forward, duration_s, synchronize, 3, timer)
