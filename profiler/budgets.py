"""Cost budgets a design point must meet: ``storage<=20MB``, ``time<=2ms@h100-sxm``,
``flops<=50G``, ``bops<1.5T``, parsed once into a :class:`Budget`.

A budget is an upper bound on one cost of a report row (:mod:`profiler.columns`), stated in
units a person writes: storage in B, KB, MB or GB (decimal, as the storage column's MB);
time in s, ms or us, estimated on the catalog named after ``@`` (the sweep's own
``--catalog`` when none is named); FLOPs and BOPs as plain counts or with K, M, G or T
(decimal, as the columns' G). ``bops`` is the sum of the full-precision and the quantized
BOPs. No torch at import: the command line parses budgets before anything is built.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Optional

# quantity -> (unit -> factor to the row's unit, the row's unit, the row keys summed)
_COUNT_UNITS = {"": 1e-9, "k": 1e-6, "m": 1e-3, "g": 1.0, "t": 1e3}
QUANTITIES = {
    "storage": ({"b": 1e-6, "kb": 1e-3, "mb": 1.0, "gb": 1e3}, "MB", ("storage_mb",)),
    "time": ({"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6}, "s", ("est_time_s",)),
    "flops": (_COUNT_UNITS, "G", ("flop_g",)),
    "bops": (_COUNT_UNITS, "G", ("bop_nonq_g", "bop_bq_g")),
}
_ALIASES = {"flop": "flops", "bop": "bops", "storage_mb": "storage", "latency": "time"}
_SYNTAX = re.compile(r"^\s*([a-z_]+)\s*(<=|<)\s*([0-9][0-9_.]*(?:e[-+]?[0-9]+)?)\s*([a-zµ]*)"
                     r"\s*(?:@\s*(\S+))?\s*$", re.IGNORECASE)
EXAMPLE = '"storage<=20MB", "time<=2ms@h100-sxm", "flops<=50G" or "bops<1.5T"'


@dataclass(frozen=True)
class Budget:
    quantity: str                  # a key of QUANTITIES
    limit: float                   # in the row's unit (MB, s, G)
    strict: bool = False           # "<" rather than "<="
    catalog: Optional[str] = None  # time only: the catalog named after "@" (None: the sweep's)
    text: str = ""                 # as the user wrote it

    @classmethod
    def parse(cls, text: str) -> "Budget":
        """``"time<=2ms@h100-sxm"`` -> ``Budget("time", 0.002, catalog="h100-sxm")``; a
        ``ValueError`` with one line saying what is expected otherwise."""
        match = _SYNTAX.match(text)
        if not match:
            raise ValueError(f"budget {text!r}: expected QUANTITY<=VALUE[UNIT][@CATALOG], "
                             f"e.g. {EXAMPLE}")
        name, operator, number, unit, catalog = match.groups()
        quantity = _ALIASES.get(name.lower(), name.lower())
        if quantity not in QUANTITIES:
            raise ValueError(f"budget {text!r}: unknown quantity {name!r}; known: "
                             f"{', '.join(QUANTITIES)}")
        units, _, _ = QUANTITIES[quantity]
        if unit.lower() not in units:
            known = ", ".join(u for u in units if u) + (" or none" if "" in units else "")
            raise ValueError(f"budget {text!r}: unit {unit!r} is not one of {known} for "
                             f"{quantity}")
        if catalog is not None and quantity != "time":
            raise ValueError(f"budget {text!r}: only a time budget names a catalog (@)")
        try:
            value = float(number)
        except ValueError:
            raise ValueError(f"budget {text!r}: {number!r} is not a number") from None
        return cls(quantity, value * units[unit.lower()], operator == "<", catalog,
                   text.strip())

    def column(self, sweep_catalog: str) -> str:
        """The row key this budget reads (a time on another catalog: ``est_time_s@NAME``)."""
        keys = QUANTITIES[self.quantity][2]
        if self.quantity == "time" and self.catalog not in (None, sweep_catalog):
            return time_column(self.catalog)
        return "+".join(keys)

    def value(self, row: Mapping[str, float], sweep_catalog: str) -> float:
        column = self.column(sweep_catalog)
        return sum(float(row[key]) for key in column.split("+"))

    def met(self, row: Mapping[str, float], sweep_catalog: str) -> bool:
        value = self.value(row, sweep_catalog)
        return value < self.limit if self.strict else value <= self.limit

    @property
    def label(self) -> str:
        """``storage <= 20 MB``, ``time <= 0.002 s on h100-sxm``: for captions."""
        unit = QUANTITIES[self.quantity][1]
        where = f" on {self.catalog}" if self.catalog else ""
        return f"{self.quantity} {'<' if self.strict else '<='} {self.limit:g} {unit}{where}"


def time_column(catalog: str) -> str:
    """The row key of the estimated time on a catalog other than the sweep's."""
    return f"est_time_s@{catalog}"
