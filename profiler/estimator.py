"""Runtime estimates from counts and a hardware catalog.

``paper``: the formula that reproduces all ten estimated times of the paper's Table 1
(see reports/reproduction.md): full-precision BOPs at the FP16 tensor-core peak and
binarized BOPs at the binary (INT1) peak, with "1 T = 1024 G"::

    time = BOP_NonQ[G] / (peak_fp16[T] * 1024) + BOP_BQ[G] / (peak_int1[T] * 1024)

It divides bit operations by operations per second, so it is a figure of merit rather
than a physical time; it is kept to compare with the paper.

Two rooflines, both per module the larger of its compute time (each MAC is 2 operations
at the peak of its operands' precision; elementwise FLOPs at the FP32 peak) and its memory
time (bytes moved / memory bandwidth), summed over modules. They differ in what a
quantized or binarized model moves:

``roofline`` (deployed, the default): the model as a deployed kernel library would run it.
Low-bit ops read their weights at storage bits and their activations at their bits (as the
analyzer counts the MAC operands). A module with no MACs of its own nested inside a module
whose MACs take low-bit activations is that module's input quantizer (offset, clipping,
sign, scale): a deployed kernel applies it in the epilogue of the op that produces its
input, so its memory traffic is dropped; its arithmetic stays (at the FP32 peak). The
producing op's own full-width write is kept, so this is an upper bound of the deployed
traffic when the quantizer is that output's only reader.

``roofline-simulated``: the model as PyTorch runs the simulation: the same, except that
the quantizers are separate full-width float ops, each reading and writing its tensor.

``kernel`` (:mod:`profiler.kernel_estimate`, ``profile-encoder measure --estimate kernel``):
each kernel of the pass at what a calibration measured for kernels of its kind and shape,
from a catalog's ``kernels`` section. The rooflines stay the documented lower bound: every
MAC at the peak of a large square matrix multiply, every byte at the copy bandwidth.

A catalog may add a fixed time per op (``op_overhead_us``: dispatch on a CPU, kernel
launch on a GPU); both rooflines then add it once for every op the forward pass runs. It
matters for short inputs, where the arithmetic of an op takes less than its dispatch.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from .catalog import Catalog, CatalogError
from .errors import UsageError
from .module_names import ancestor_at, is_within
from .option_values import PAPER_ESTIMATE, ROOFLINE_ESTIMATE, SIMULATED_ROOFLINE_ESTIMATE

if TYPE_CHECKING:  # the command line reads ESTIMATES without importing torch
    from .result import Profile

# Where a part lacks a precision, work runs at the next wider one it has.
_FALLBACK = {
    "int1": ("int1", "int4", "int8", "fp8", "fp16", "bf16", "fp32"),
    "int4": ("int4", "int8", "fp8", "fp16", "bf16", "fp32"),
    "int8": ("int8", "fp16", "bf16", "fp32"),
    "fp16": ("fp16", "bf16", "fp32"),
    "fp32": ("fp32",),
    "fp64": ("fp64_tensor", "fp64", "fp32"),
}


def peak_for(catalog: Catalog, precision: str) -> tuple[str, float]:
    """(precision used, operations per second) for work at ``precision``."""
    for candidate in _FALLBACK[precision]:
        if candidate in catalog.peaks_tera:
            return candidate, catalog.peak(candidate)
    raise CatalogError(f"{catalog.path or catalog.key}: no peak usable for {precision} work")


def precision_of_bits(bits_a: int, bits_b: int) -> str:
    """The narrowest precision whose operands hold both widths (2 bits run at INT4, 5 at
    INT8, 12 at FP16, 24 at FP32)."""
    widest = max(bits_a, bits_b)
    if widest >= 64:
        return "fp64"
    if widest > 16:
        return "fp32"
    if widest > 8:
        return "fp16"
    if widest > 4:
        return "int8"
    if widest > 1:
        return "int4"
    return "int1"


def paper_time(bop_nonq_g: float, bop_bq_g: float, catalog: Catalog) -> float:
    """The paper's estimated time in seconds from its G-scaled BOP columns."""
    _, fp16 = peak_for(catalog, "fp16")
    _, int1 = peak_for(catalog, "int1")
    return bop_nonq_g * 1e9 / (fp16 * 1.024) + bop_bq_g * 1e9 / (int1 * 1.024)


@dataclass(frozen=True)
class ModuleTime:
    module: str
    compute_s: float
    memory_s: float

    @property
    def seconds(self) -> float:
        return max(self.compute_s, self.memory_s)

    @property
    def bound(self) -> str:
        return "memory" if self.memory_s > self.compute_s else "compute"


ESTIMATES = {
    ROOFLINE_ESTIMATE: "deployed roofline (low-bit ops at their bits, input quantizers fused into "
                "the op producing their input)",
    SIMULATED_ROOFLINE_ESTIMATE: "roofline of the simulation as PyTorch runs it (quantizers as "
                          "separate full-width float ops)",
    PAPER_ESTIMATE: "the paper's formula (BOP_NonQ at the FP16 peak + BOP_BQ at the INT1 "
                    "peak)",
}


# Estimates that need the model's kernels, not only its counts: `measure` offers them.
KERNEL_ESTIMATES = {
    "kernel": "kernel-aware: each kernel at its calibrated efficiency for its kind and shape "
              "(matrix multiplies by M, N, K; convolutions; time per element of the others), "
              "plus the time per op",
}


def fused_quantizers(profile: Profile) -> set[str]:
    """Modules a deployed model fuses into the op producing their input: those that move
    data but do no MACs of their own, inside a module whose own MACs take an activation
    below float width."""
    from . import bits as bitspec

    modules = profile.modules  # a fresh read-only view on each access: taken once
    low_bit = [name for name in modules
               if any(pair.bits_b < bitspec.FLOAT_BITS for pair in profile.module_pairs(name))]
    fused = set()
    for owner in low_bit:
        fused.update(name for name in modules
                     if is_within(name, owner) and name != owner
                     and not profile.module_pairs(name) and modules[name]["bytes_moved"])
    return fused


def roofline(profile: Profile, catalog: Catalog, *, deployed: bool = True) -> list[ModuleTime]:
    """Per-module roofline times (own ops of each module); ``deployed=False`` is the
    simulation's roofline (see the module docstring)."""
    _, vector = peak_for(catalog, "fp32")
    fused = fused_quantizers(profile) if deployed else set()
    times = []
    for name, row in profile.modules.items():
        compute = row["elementwise_flops"] / vector
        for pair, macs in profile.module_pairs(name).items():
            _, peak = peak_for(catalog, precision_of_bits(pair.bits_a, pair.bits_b))
            compute += 2 * macs / peak
        memory = 0.0 if name in fused else row["bytes_moved"] / catalog.memory_bandwidth
        if compute or memory:
            times.append(ModuleTime(name, compute, memory))
    return times


def roofline_time(profile: Profile, catalog: Catalog, *, deployed: bool = True) -> float:
    """The modules' roofline times, plus the catalog's fixed time per op (``op_overhead_us``,
    measured by ``profile-encoder calibrate``) for each op the model runs, where it has one."""
    seconds = sum(t.seconds for t in roofline(profile, catalog, deployed=deployed))
    if catalog.op_overhead_us:
        seconds += op_calls(profile) * catalog.op_overhead_us * 1e-6
    return seconds


def op_calls(profile: Profile) -> int:
    """ATen ops the forward pass dispatches (a fused kernel counts once)."""
    return sum(op["calls"] for op in profile.by_operator.values())


def module_calls(profile: Profile) -> int:
    """Module forward calls of the pass (each a Python call the kernel estimate prices)."""
    return sum(row["calls"] for row in profile.modules.values())


def estimate_time(estimate: str, profile: Profile, catalog: Catalog,
                  paper_columns: Optional[dict] = None) -> float:
    """Seconds by the estimate named ``estimate`` (a key of :data:`ESTIMATES`); ``paper``
    needs the convention's ``bop_nonq_g`` and ``bop_bq_g`` columns."""
    if estimate == PAPER_ESTIMATE:
        if paper_columns is None:
            raise ValueError("the paper estimate needs the BOP columns of a convention")
        return paper_time(paper_columns["bop_nonq_g"], paper_columns["bop_bq_g"], catalog)
    if estimate in (SIMULATED_ROOFLINE_ESTIMATE, ROOFLINE_ESTIMATE):
        return roofline_time(profile, catalog, deployed=estimate == ROOFLINE_ESTIMATE)
    raise UsageError(f"unknown estimate {estimate!r}; known: {', '.join(ESTIMATES)}")


def describe_estimate(estimate: str, catalog: Catalog) -> str:
    """One line for a table's footer: which estimate, on which part."""
    return f"Estimated time: {ESTIMATES[estimate]}, on {catalog.name}."


@dataclass(frozen=True)
class RowTime:
    """Roofline time of a row of a per-module table, split by what bounds each module."""
    module: str
    compute_bound_s: float
    memory_bound_s: float

    @property
    def seconds(self) -> float:
        return self.compute_bound_s + self.memory_bound_s

    @property
    def bound(self) -> str:
        return "memory" if self.memory_bound_s > self.compute_bound_s else "compute"


def times_by_row(profile: Profile, catalog: Catalog, depth: Optional[int], *,
                 deployed: bool = True) -> dict[str, RowTime]:
    """Roofline times of the rows of ``Profile.to_dataframe(depth=...)``: modules deeper than
    ``depth`` add to their ancestor at ``depth``, so the rows sum to the total, and a row is
    memory-bound when its memory-bound modules take more of its time than the others."""
    rows: dict[str, list[float]] = {}
    for t in roofline(profile, catalog, deployed=deployed):
        name = t.module if depth is None else ancestor_at(t.module, depth)
        split = rows.setdefault(name, [0.0, 0.0])
        split[t.bound == "memory"] += t.seconds
    return {name: RowTime(name, c, m) for name, (c, m) in rows.items()}
