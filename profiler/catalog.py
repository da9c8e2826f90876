"""Hardware catalogs: peak throughput per precision and memory bandwidth, from YAML.

A catalog is a YAML mapping (see ``catalogs/a100.yaml``)::

    name: NVIDIA A100 SXM4 40GB        # required, text
    kind: gpu                          # required: gpu or cpu
    match: ["A100-SXM4-40GB"]          # optional: names NVML reports for the part
    memory_bandwidth_gbs: 1555         # required, > 0, GB/s (1e9 bytes per second)
    tdp_w: 400                         # optional, > 0
    peaks:                             # required, dense, tera operations per second
      fp32: 19.5                       # required
      fp16: 312                        # optional: fp64 fp64_tensor fp32 tf32 fp16 bf16
      int1: 4992                       #           fp8 int8 int4 int1, each > 0
    op_overhead_us: 4.2                # optional, > 0: fixed time per op (dispatch, launch)
    sources: {datasheet: ...}          # optional: where the figures come from
    kernels: {...}                     # optional: measured per kernel kind by `calibrate`,
                                       # for the kernel estimate (see _check_kernels)

Every figure is validated on load; a problem is one :class:`CatalogError` naming the file
and the field.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

from .errors import UsageError
from .files import PROJECT_ROOT

PRECISIONS = ("fp64", "fp64_tensor", "fp32", "tf32", "fp16", "bf16", "fp8", "int8", "int4", "int1")
_FIELDS = {"name", "kind", "match", "memory_bandwidth_gbs", "tdp_w", "peaks", "op_overhead_us",
           "sources", "kernels"}
# The kernel classes timed per element (profiler.kernel_estimate prices each with its own).
# ``output``: writing a fresh result (allocation and first touch), what a matrix multiply or
# a convolution pays beside its arithmetic.
ELEMENT_CLASSES = ("plain", "transcendental", "reduction", "softmax", "norm", "copy", "output")
# The head widths (query and value) the fused packed attention core is calibrated at: one
# attention_ns_per_score figure each.
ATTENTION_HEAD_DIMS = (64, 128)


class CatalogError(UsageError):
    """A catalog file that is missing, malformed or has an invalid figure."""


@dataclass(frozen=True)
class Catalog:
    key: str
    name: str
    kind: str
    memory_bandwidth_gbs: float
    peaks_tera: Mapping[str, float]
    match: tuple[str, ...] = ()
    tdp_w: Optional[float] = None
    sources: Mapping[str, str] = field(default_factory=dict)
    path: Optional[str] = None
    op_overhead_us: Optional[float] = None
    kernels: Optional[Mapping] = None

    def peak(self, precision: str) -> float:
        """Operations per second at ``precision`` (KeyError when the part has none)."""
        return self.peaks_tera[precision] * 1e12

    @property
    def memory_bandwidth(self) -> float:
        """Bytes per second."""
        return self.memory_bandwidth_gbs * 1e9


def catalog_dir() -> Path:
    # catalogs/ sits beside the profiler package, in the source tree and once installed
    return PROJECT_ROOT / "catalogs"


def list_catalogs() -> list[str]:
    return sorted(p.name[:-5] for p in catalog_dir().iterdir() if p.name.endswith(".yaml"))


def load_catalog(name_or_path: str) -> Catalog:
    """A shipped catalog by name (``a100``) or any YAML file by path."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists() or "/" in name_or_path:
        if candidate.is_dir():
            raise CatalogError(f"catalog {name_or_path} is a folder, not a YAML file")
        if not candidate.is_file():
            raise CatalogError(f"catalog file {name_or_path} does not exist")
        return parse_catalog(candidate.read_text(encoding="utf-8", errors="replace"),
                             source=str(candidate), key=candidate.stem)
    shipped = catalog_dir() / f"{name_or_path}.yaml"
    if not shipped.is_file():
        raise CatalogError(f"unknown catalog {name_or_path!r}; shipped: "
                           f"{', '.join(list_catalogs())} (or give a path to a YAML file)")
    return parse_catalog(shipped.read_text(encoding="utf-8"),
                         source=f"catalogs/{name_or_path}.yaml", key=name_or_path)


def parse_catalog(text: str, *, source: str, key: str) -> Catalog:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise CatalogError(f"{source}: malformed YAML{where}: {problem}") from None
    if not isinstance(data, dict):
        raise CatalogError(f"{source}: expected a mapping of fields at the top level")
    unknown = sorted(set(map(str, data)) - _FIELDS)
    if unknown:
        raise CatalogError(f"{source}: unknown field {unknown[0]!r} "
                           f"(known: {', '.join(sorted(_FIELDS))})")

    def fail(field_name: str, expected: str, value) -> CatalogError:
        return CatalogError(f"{source}: field {field_name!r}: expected {expected}, got {value!r}")

    def text_field(name: str) -> str:
        if name not in data:
            raise CatalogError(f"{source}: missing field {name!r}")
        value = data[name]
        if not isinstance(value, str) or not value.strip():
            raise fail(name, "text", value)
        return value

    def positive(name: str, value) -> float:
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value) or value <= 0):
            raise fail(name, "a positive number", value)
        return float(value)

    name = text_field("name")
    kind = text_field("kind")
    if kind not in ("gpu", "cpu"):
        raise fail("kind", "gpu or cpu", kind)
    if "memory_bandwidth_gbs" not in data:
        raise CatalogError(f"{source}: missing field 'memory_bandwidth_gbs'")
    bandwidth = positive("memory_bandwidth_gbs", data["memory_bandwidth_gbs"])
    tdp = positive("tdp_w", data["tdp_w"]) if data.get("tdp_w") is not None else None
    overhead = (positive("op_overhead_us", data["op_overhead_us"])
                if data.get("op_overhead_us") is not None else None)
    if "peaks" not in data:
        raise CatalogError(f"{source}: missing field 'peaks'")
    raw_peaks = data["peaks"]
    if not isinstance(raw_peaks, dict) or not raw_peaks:
        raise fail("peaks", "a mapping of precision to tera operations per second", raw_peaks)
    peaks = {}
    for precision, value in raw_peaks.items():
        if precision not in PRECISIONS:
            raise CatalogError(f"{source}: field 'peaks.{precision}': unknown precision "
                               f"(known: {', '.join(PRECISIONS)})")
        peaks[precision] = positive(f"peaks.{precision}", value)
    if "fp32" not in peaks:
        raise CatalogError(f"{source}: missing field 'peaks.fp32'")
    match = data.get("match") or []
    if isinstance(match, str):
        match = [match]
    if not isinstance(match, list) or not all(isinstance(m, str) for m in match):
        raise fail("match", "a list of names", match)
    sources = data.get("sources") or {}
    if not isinstance(sources, dict):
        raise fail("sources", "a mapping", sources)
    kernels = data.get("kernels")
    if kernels is not None:
        _check_kernels(kernels, fail, positive)
    return Catalog(key=key, name=name, kind=kind, memory_bandwidth_gbs=bandwidth,
                   peaks_tera=peaks, match=tuple(match), tdp_w=tdp,
                   sources={str(k): str(v) for k, v in sources.items()}, path=source,
                   op_overhead_us=overhead, kernels=kernels)


def _check_kernels(kernels, fail, positive) -> None:
    """The kernels section: ``matmul`` (``sizes``, increasing whole numbers; ``m``, ``n``,
    ``k``, an efficiency at each size; ``reference_efficiency``), ``conv1d_factor``,
    ``depthwise_conv1d_ns_per_mac``, ``op_us``, ``module_overhead_us`` and
    ``per_element_ns`` (``elements``, increasing whole numbers, and for each of
    :data:`ELEMENT_CLASSES` nanoseconds at each), all > 0; optionally ``packed``, the
    deployed kernels' figures: ``matmul`` as above, ``elements`` with ``packing_ns`` at each,
    ``depthwise_ns_per_mac`` and ``attention_ns_per_score`` (at
    :data:`ATTENTION_HEAD_DIMS`)."""
    if not isinstance(kernels, dict):
        raise fail("kernels", "a mapping", kernels)

    def entry(mapping, key: str, where: str):
        if not isinstance(mapping, dict) or key not in mapping:
            raise fail(where, f"a mapping with {key!r}", mapping)
        return mapping[key]

    def increasing(values, where: str) -> int:
        if (not isinstance(values, list) or not values
                or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                           for v in values)
                or any(b <= a for a, b in zip(values, values[1:]))):
            raise fail(where, "increasing positive whole numbers", values)
        return len(values)

    def series(values, count: int, where: str) -> None:
        if not isinstance(values, list) or len(values) != count:
            raise fail(where, f"a list of {count} numbers", values)
        for i, v in enumerate(values):
            positive(f"{where}[{i}]", v)

    def matmul_table(section, where: str) -> None:
        matmul = entry(section, "matmul", where)
        where = f"{where}.matmul"
        count = increasing(entry(matmul, "sizes", where), f"{where}.sizes")
        for dim in ("m", "n", "k"):
            series(entry(matmul, dim, where), count, f"{where}.{dim}")
        positive(f"{where}.reference_efficiency", entry(matmul, "reference_efficiency", where))

    matmul_table(kernels, "kernels")
    if "packed" in kernels:
        packed = kernels["packed"]
        matmul_table(packed, "kernels.packed")
        count = increasing(entry(packed, "elements", "kernels.packed"),
                           "kernels.packed.elements")
        series(entry(packed, "packing_ns", "kernels.packed"), count, "kernels.packed.packing_ns")
        positive("kernels.packed.depthwise_ns_per_mac",
                 entry(packed, "depthwise_ns_per_mac", "kernels.packed"))
        series(entry(packed, "attention_ns_per_score", "kernels.packed"),
               len(ATTENTION_HEAD_DIMS), "kernels.packed.attention_ns_per_score")
    for name in ("conv1d_factor", "depthwise_conv1d_ns_per_mac", "op_us", "module_overhead_us"):
        positive(f"kernels.{name}", entry(kernels, name, "kernels"))
    per_element = entry(kernels, "per_element_ns", "kernels")
    count = increasing(entry(per_element, "elements", "kernels.per_element_ns"),
                       "kernels.per_element_ns.elements")
    for name in ELEMENT_CLASSES:
        series(entry(per_element, name, "kernels.per_element_ns"), count,
               f"kernels.per_element_ns.{name}")


def catalog_for_device_name(device_name: str) -> Optional[Catalog]:
    """The shipped catalog whose ``match`` names the device (NVML's name), if any."""
    lowered = device_name.lower()
    for key in list_catalogs():
        catalog = load_catalog(key)
        if any(m.lower() in lowered for m in catalog.match):
            return catalog
    return None
