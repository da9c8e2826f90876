"""Counting conventions: how raw counts become the columns of a Table-1 style report.

Each convention has one formula per column that :mod:`profiler.columns` marks as computed
by a convention.

``bayesian-bits`` (the default): storage = parameter bits / 8; FLOPs = 2 x float MACs +
elementwise FLOPs; BOPs = MACs x weight bits x activation bits per op (van Baalen et al.,
"Bayesian Bits", 2020), full-precision and quantized (binarized included) apart; G = 1e9.

``paper``: reproduces the scaling of Table 1 of Jeon et al. (see reports/reproduction.md):
the rows the paper stores in FP16 (both vanilla rows) are built in float16;
BOP_NonQ[G] = FLOP[G] x 16 x 1e9 / 2^30 (the ratio 14.90 that every FP32 row shows);
BOP_BQ[G] = binarized MACs / 2^30 (no exact rule could be found: see the report);
storage and FLOPs as in ``bayesian-bits``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

from models.quantization import FULL_PRECISION_BITS, Quantization

from .columns import CONVENTION_KEYS
from .errors import UsageError
from .option_values import DEFAULT_CONVENTION, PAPER_CONVENTION, PAPER_ESTIMATE, ROOFLINE_ESTIMATE

GIB = 2 ** 30
MB = 1e6
GIGA = 1e9
# The paper convention's bit operations per float FLOP: 16 bits, and G read as 2^30 where
# the FLOP column's G is 1e9, so BOP_NonQ[G] / FLOP[G] = 16 x 1e9 / 2^30 = 14.90.
PAPER_BITS_PER_FLOP = 16
PAPER_BOP_PER_FLOP = PAPER_BITS_PER_FLOP * GIGA / GIB

# Float width Table 1 stores each zoo row at, where it is not FULL_PRECISION_BITS: the
# paper's vanilla model is FP16 (its BQ row only fits with the float parts at 16 bits too).
PAPER_FLOAT_BITS = {"vanilla": 16, "bq-vanilla": 16}


def paper_float_bits(name: str) -> int:
    """The float width Table 1 stores zoo model ``name`` at."""
    return PAPER_FLOAT_BITS.get(name, FULL_PRECISION_BITS)


def precision_label(quantization: Quantization, float_bits: int) -> str:
    """Table 1's precision column: ``FP32``, ``FP16`` for a float model, ``FP32-W1A1``,
    ``FP16-W1A1``, and any other quantized bit pair the same way (``FP32-W2A2``)."""
    return f"FP{float_bits}" + (f"-{quantization.label}" if quantization.quantized else "")


def is_quantized_precision(label: str) -> bool:
    """Whether a :func:`precision_label` names a quantized build (``FP32-W2A2``: yes)."""
    return "-W" in label


Formula = Callable[[Mapping[str, float]], float]  # a profile's totals -> one column's value


@dataclass(frozen=True)
class Convention:
    name: str
    summary: str
    formulas: Mapping[str, Formula]  # one per column whose source is CONVENTION
    float_bits: Callable[[str], int]  # zoo name -> float width to build and label it with
    default_estimate: str

    def __post_init__(self):
        if set(self.formulas) != set(CONVENTION_KEYS):
            raise ValueError(f"convention {self.name!r} computes {sorted(self.formulas)}; "
                             f"profiler.columns asks for {sorted(CONVENTION_KEYS)}")

    def columns(self, totals: Mapping[str, float]) -> dict:
        """The report columns this convention computes from a profile's totals."""
        return {key: self.formulas[key](totals) for key in CONVENTION_KEYS}


_bayesian_bits: dict[str, Formula] = {
    "storage_mb": lambda t: t["storage_bytes"] / MB,
    "flop_g": lambda t: t["flops"] / GIGA,
    "bop_nonq_g": lambda t: t["bop_nonq"] / GIGA,
    # Every sub-float BOP: binarized and k-bit quantized (W2A2, W1A4...) alike.
    "bop_bq_g": lambda t: (t["bop_bq"] + t["bop_q"]) / GIGA,
}

_paper: dict[str, Formula] = {
    **_bayesian_bits,  # storage and FLOPs as in bayesian-bits
    "bop_nonq_g": lambda t: t["flops"] * PAPER_BITS_PER_FLOP / GIB,
    "bop_bq_g": lambda t: t["macs_bq"] / GIB,
}


# Keyed by the names option_values gives them (the default first).
CONVENTIONS = {
    DEFAULT_CONVENTION: Convention(
        DEFAULT_CONVENTION,
        "BOPs = MACs x weight bits x activation bits (Bayesian Bits), G = 1e9",
        _bayesian_bits, lambda name: FULL_PRECISION_BITS, ROOFLINE_ESTIMATE),
    PAPER_CONVENTION: Convention(
        PAPER_CONVENTION,
        "Table 1's scaling: FP16 vanilla rows, BOP_NonQ = FLOPs x 16 / 2^30, "
        "BOP_BQ = binarized MACs / 2^30",
        _paper, paper_float_bits, PAPER_ESTIMATE),
}


def get_convention(name: str) -> Convention:
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise UsageError(f"unknown convention {name!r}; known: {', '.join(CONVENTIONS)}") from None
