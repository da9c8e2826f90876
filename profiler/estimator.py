"""Runtime estimates from counts and a hardware catalog.

``paper``: the formula that reproduces all ten estimated times of the paper's Table 1
(see reports/reproduction.md): full-precision BOPs at the FP16 tensor-core peak and
binarized BOPs at the binary (INT1) peak, with "1 T = 1024 G"::

    time = BOP_NonQ[G] / (peak_fp16[T] * 1024) + BOP_BQ[G] / (peak_int1[T] * 1024)

It divides bit operations by operations per second, so it is a figure of merit rather
than a physical time; it is kept to compare with the paper.

``roofline``: per module, the larger of its compute time (each MAC is 2 operations at the
peak of its operands' precision; elementwise FLOPs at the FP32 peak) and its memory time
(bytes moved / memory bandwidth), summed over modules.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from .catalog import Catalog, CatalogError
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


def roofline(profile: Profile, catalog: Catalog) -> list[ModuleTime]:
    """Per-module roofline times (own ops of each module)."""
    _, vector = peak_for(catalog, "fp32")
    times = []
    for name, row in profile.modules.items():
        compute = row["elementwise_flops"] / vector
        for key, macs in profile.module_bits(name).items():
            bits_a, bits_b = _bits_of(key)
            _, peak = peak_for(catalog, precision_of_bits(bits_a, bits_b))
            compute += 2 * macs / peak
        memory = row["bytes_moved"] / catalog.memory_bandwidth
        if compute or memory:
            times.append(ModuleTime(name, compute, memory))
    return times


def roofline_time(profile: Profile, catalog: Catalog) -> float:
    return sum(t.seconds for t in roofline(profile, catalog))


def _bits_of(key: str) -> tuple[int, int]:
    # "W1A1", "A32A32": two letters each followed by a number
    import re

    numbers = re.findall(r"\d+", key)
    return int(numbers[0]), int(numbers[1])
