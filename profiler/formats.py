"""Table 1 style output: markdown (tabulate), LaTeX (booktabs), CSV (pandas), JSON.

The columns, their headers and how each cell prints come from :mod:`profiler.columns`."""
from __future__ import annotations

import json
from typing import Mapping, Optional, Sequence

from .columns import COLUMNS, COSTS, Column, relative_difference
from .conventions import is_quantized_precision


def with_paper(rows: Sequence[dict]) -> list[dict]:
    """Each row plus ``paper_<key>`` and ``diff_<key>`` (relative, ours vs paper)."""
    from .reference import table1

    paper = table1()
    out = []
    for row in rows:
        extended = dict(row)
        for cost in COSTS:
            key = cost.key
            value = cost.paper_value(paper.get(row["model"]))
            extended[f"paper_{key}"] = value
            extended[f"diff_{key}"] = relative_difference(row[key], value)
        out.append(extended)
    return out


def display_name(model: str) -> str:
    from .reference import table1

    row = table1().get(model)
    return row["encoder"] if row else model


def _text_rows(rows: Sequence[dict], compare: bool,
               columns: Optional[Sequence[Column]] = None) -> list[list[str]]:
    columns = COLUMNS if columns is None else columns
    table = []
    for row in rows:
        cells = []
        for col in columns:
            key = col.key
            if key == "model":
                cells.append(display_name(row["model"]))
                continue
            if compare and col.cost:
                cells.append(col.compared_text(row[key], row.get(f"paper_{key}"),
                                               row.get(f"diff_{key}")))
            else:
                cells.append(col.text(row[key]))
        table.append(cells)
    return table


def to_markdown(rows: Sequence[dict], *, caption: str = "", compare: bool = False,
                columns: Optional[Sequence[Column]] = None) -> str:
    from tabulate import tabulate

    columns = COLUMNS if columns is None else columns
    text = tabulate(_text_rows(rows, compare, columns), headers=[c.header for c in columns],
                    tablefmt="github", disable_numparse=True)
    return text + (f"\n\n{caption}\n" if caption else "\n")


def _latex_escape(text: str) -> str:
    for char, escaped in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"),
                          ("_", r"\_"), ("#", r"\#"), ("$", r"\$")):
        text = text.replace(char, escaped)
    return text


def to_latex(rows: Sequence[dict], *, caption: str = "", compare: bool = False,
             columns: Optional[Sequence[Column]] = None) -> str:
    columns = COLUMNS if columns is None else columns
    align = "".join(c.align for c in columns)
    lines = [r"% needs \usepackage{booktabs} in the preamble (\toprule, \midrule, \bottomrule)",
             r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{align}}}",
             r"\toprule",
             " & ".join(_latex_escape(c.header) for c in columns) + r" \\", r"\midrule"]
    previous_quantized = None      # a rule between the float rows and the quantized ones
    for row, cells in zip(rows, _text_rows(rows, compare, columns)):
        quantized = is_quantized_precision(row["precision"])
        if previous_quantized is False and quantized:
            lines.append(r"\midrule")
        previous_quantized = quantized
        lines.append(" & ".join(_latex_escape(c) for c in cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        lines.append(rf"\caption{{{_latex_escape(caption)}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def to_csv(rows: Sequence[dict]) -> str:
    import pandas as pd

    # 10 significant digits: every digit a markdown cell shows (54090.68, not 54090.7)
    return pd.DataFrame(list(rows)).to_csv(index=False, float_format="%.10g")


def to_json(rows: Sequence[dict]) -> str:
    return json.dumps(list(rows), indent=2) + "\n"


def computed_with(seconds: float, convention: str, estimate: Optional[str],
                  catalog: Optional[str]) -> dict:
    """What a table was computed with: the keys each JSON row and CSV row carries (no
    estimate and catalog for a table without times)."""
    return {key: value for key, value in (("seconds", seconds), ("convention", convention),
                                          ("estimate", estimate), ("catalog", catalog))
            if value is not None}


def render(rows: Sequence[dict], fmt: str, *, caption: str = "", compare: bool = False,
           context: Optional[Mapping] = None,
           columns: Optional[Sequence[Column]] = None) -> str:
    """``context`` (see :func:`computed_with`) is added to every row of the data formats
    (JSON, CSV), which have no caption; markdown and LaTeX say it in ``caption``.
    ``columns``: Table 1's (None) or another view's (``columns.TRAIN_COLUMNS``)."""
    rows = with_paper(rows) if compare else list(rows)
    if fmt in ("csv", "json") and context:
        rows = [{**row, **context} for row in rows]
    if fmt == "md":
        return to_markdown(rows, caption=caption, compare=compare, columns=columns)
    if fmt == "latex":
        return to_latex(rows, caption=caption, compare=compare, columns=columns)
    if fmt == "csv":
        return to_csv(rows)
    if fmt == "json":
        return to_json(rows)
    raise ValueError(f"unknown format {fmt!r}")
