"""Counting conventions: how raw counts become the columns of a Table-1 style report.

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

from .errors import UsageError

GIB = 2 ** 30


@dataclass(frozen=True)
class Convention:
    name: str
    summary: str
    columns: Callable[[Mapping[str, float]], dict]
    float_bits: Callable[[object], int]  # model config -> float width to build with
    default_estimate: str


def _bayesian_bits(t: Mapping[str, float]) -> dict:
    return {
        "storage_mb": t["storage_bytes"] / 1e6,
        "flop_g": t["flops"] / 1e9,
        "bop_nonq_g": t["bop_nonq"] / 1e9,
        # Every sub-float BOP: binarized and k-bit quantized (W2A2, W1A4...) alike.
        "bop_bq_g": (t["bop_bq"] + t["bop_q"]) / 1e9,
    }


def _paper(t: Mapping[str, float]) -> dict:
    return {
        "storage_mb": t["storage_bytes"] / 1e6,
        "flop_g": t["flops"] / 1e9,
        "bop_nonq_g": t["flops"] * 16 / GIB,
        "bop_bq_g": t["macs_bq"] / GIB,
    }


CONVENTIONS = {
    "bayesian-bits": Convention(
        "bayesian-bits",
        "BOPs = MACs x weight bits x activation bits (Bayesian Bits), G = 1e9",
        _bayesian_bits, lambda config: 32, "roofline"),
    "paper": Convention(
        "paper",
        "Table 1's scaling: FP16 vanilla rows, BOP_NonQ = FLOPs x 16 / 2^30, "
        "BOP_BQ = binarized MACs / 2^30",
        _paper, lambda config: getattr(config, "paper_float_bits", 32), "paper"),
}


def get_convention(name: str) -> Convention:
    try:
        return CONVENTIONS[name]
    except KeyError:
        raise UsageError(f"unknown convention {name!r}; known: {', '.join(CONVENTIONS)}") from None
