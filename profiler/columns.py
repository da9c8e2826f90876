"""The columns of a Table-1 style report, declared once: key, header, units, format and
the paper's column.

The conventions compute the columns marked CONVENTION (:mod:`profiler.conventions`);
:func:`profiler.table.row_for` builds rows with these keys in this order
(tests/test_columns.py checks); the markdown, LaTeX, CSV and JSON output
(:mod:`profiler.formats`), the reproduction report (:mod:`profiler.reproduction`) and the
study's Table 1 (``models/trainer/study/report.py``) take headers, units and the paper's
values from here. Adding a column is one entry here plus
the code that computes its value.

The keys are the JSON and CSV field names, a contract with the README: model, layers,
dim, heads, precision, storage_mb, flop_g, bop_nonq_g, bop_bq_g, est_time_s.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

# Where a column's value comes from.
ZOO = "zoo"                  # the model's name, its configuration and its precision
CONVENTION = "convention"    # a counting convention, from the profile's totals
ESTIMATE = "estimate"        # the runtime estimate
TRAINING = "training"        # a training step's profile (table --mode train), G = 1e9


@dataclass(frozen=True)
class Column:
    key: str                 # the row's key; the JSON and CSV field name
    header: str              # the markdown and LaTeX header
    source: str              # ZOO, CONVENTION or ESTIMATE
    cost: bool = False       # a cost: printed to 2 decimals and compared with the paper's
    scale: float = 1.0       # printed value = value x scale (the time prints in 1e-4 s)
    paper: Optional[str] = None   # the paper's column in reference/table1.csv (printed units)
    blank_zero: bool = False      # 0 prints '-': a float model has no binarized work
    align: str = "r"              # LaTeX alignment

    def text(self, value) -> str:
        """One cell: '-' for a missing value, a cost to 2 decimals in printed units."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        if not self.cost:
            return str(value)
        if value == 0 and self.blank_zero:
            return "-"
        return f"{value * self.scale:.2f}"

    def compared_text(self, value, paper: Optional[float], difference: Optional[float]) -> str:
        """A cell with the paper's value and the relative difference beside ours, where the
        paper has one: ``133.58 (131.87, +1.3%)``."""
        if paper is None:
            return self.text(value)
        return f"{self.text(value)} ({self.text(paper)}, {difference_text(difference)})"

    def paper_value(self, paper_row: Optional[dict]) -> Optional[float]:
        """The paper's value of this column in our units, None where it has none."""
        if not paper_row or self.paper is None:
            return None
        value = paper_row.get(self.paper)
        if value is None:
            return None
        # x (1 / scale), not / scale: 1 / 1e4 is the double 1e-4, so the time comes out
        # to the bit as it always has.
        return value * (1 / self.scale) if self.scale != 1 else value


COLUMNS = (
    Column("model", "Model", ZOO, align="l"),
    Column("layers", "L", ZOO),
    Column("dim", "D", ZOO),
    Column("heads", "H", ZOO),
    Column("precision", "Precision", ZOO, align="l"),
    Column("storage_mb", "Storage (MB)", CONVENTION, cost=True, paper="storage_mb"),
    Column("flop_g", "FLOP (G)", CONVENTION, cost=True, paper="flop_g"),
    Column("bop_nonq_g", "BOP_NonQ (G)", CONVENTION, cost=True, paper="bop_nonq_g"),
    Column("bop_bq_g", "BOP_BQ (G)", CONVENTION, cost=True, paper="bop_bq_g",
           blank_zero=True),
    Column("est_time_s", "Est. time (1e-4 s)", ESTIMATE, cost=True, scale=1e4,
           paper="est_time_1e-4_s"),
)
# `table --mode train`: the per-step cost of a training step (a view of its own: the
# default table's columns stay Table 1's).
TRAIN_COLUMNS = (
    *COLUMNS[:5],
    Column("forward_flop_g", "Forward FLOP (G)", TRAINING, cost=True),
    Column("backward_flop_g", "Backward FLOP (G)", TRAINING, cost=True),
    Column("optimizer_flop_g", "AdamW FLOP (G)", TRAINING, cost=True),
    Column("train_flop_g", "Step FLOP (G)", TRAINING, cost=True),
    Column("bop_bq_g", "Forward BOP_BQ (G)", TRAINING, cost=True, blank_zero=True),
    Column("gradient_state_mb", "Grads + AdamW (MB)", TRAINING, cost=True),
    Column("peak_memory_mb", "Peak memory (MB)", TRAINING, cost=True),
)
KEYS = tuple(c.key for c in COLUMNS)
COSTS = tuple(c for c in COLUMNS if c.cost)
CONVENTION_KEYS = tuple(c.key for c in COLUMNS if c.source == CONVENTION)
_BY_KEY = {c.key: c for c in COLUMNS}


def relative_difference(ours: float, paper: Optional[float]) -> Optional[float]:
    """(ours - paper) / paper, the comparison every report makes with the paper's Table 1;
    None where the paper gives no value (or 0, which has no relative difference)."""
    return None if not paper else (ours - paper) / paper


def difference_text(difference: float) -> str:
    """A relative difference as the reports print it: signed percent, one decimal."""
    return f"{difference:+.1%}"


def column(key: str) -> Column:
    """The column named ``key``; a KeyError that lists the known ones otherwise."""
    try:
        return _BY_KEY[key]
    except KeyError:
        raise KeyError(f"no report column {key!r}; known: {', '.join(KEYS)}") from None
