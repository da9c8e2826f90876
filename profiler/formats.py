"""Table 1 style output: markdown (tabulate), LaTeX (booktabs), CSV (pandas), JSON."""
from __future__ import annotations

import json
import math
from typing import Mapping, Optional, Sequence

from .table import COLUMNS

NUMERIC = ("storage_mb", "flop_g", "bop_nonq_g", "bop_bq_g", "est_time_s")
HEADERS = {
    "model": "Model", "layers": "L", "dim": "D", "heads": "H", "precision": "Precision",
    "storage_mb": "Storage (MB)", "flop_g": "FLOP (G)", "bop_nonq_g": "BOP_NonQ (G)",
    "bop_bq_g": "BOP_BQ (G)", "est_time_s": "Est. time (1e-4 s)",
}
# The paper's column for each of ours (its time is printed in units of 1e-4 s).
PAPER_COLUMN = {"storage_mb": "storage_mb", "flop_g": "flop_g", "bop_nonq_g": "bop_nonq_g",
                "bop_bq_g": "bop_bq_g", "est_time_s": "est_time_1e-4_s"}


def paper_value(paper_row: Optional[dict], key: str) -> Optional[float]:
    if not paper_row:
        return None
    value = paper_row.get(PAPER_COLUMN[key])
    if value is None:
        return None
    return value * 1e-4 if key == "est_time_s" else value


def with_paper(rows: Sequence[dict]) -> list[dict]:
    """Each row plus ``paper_<key>`` and ``diff_<key>`` (relative, ours vs paper)."""
    from .reference import table1

    paper = table1()
    out = []
    for row in rows:
        extended = dict(row)
        for key in NUMERIC:
            value = paper_value(paper.get(row["model"]), key)
            extended[f"paper_{key}"] = value
            extended[f"diff_{key}"] = (row[key] - value) / value if value else None
        out.append(extended)
    return out


def display_name(model: str) -> str:
    from .reference import table1

    row = table1().get(model)
    return row["encoder"] if row else model


def _cell(key: str, value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if key == "est_time_s":
        return f"{value * 1e4:.2f}"
    if key in NUMERIC:
        return "-" if value == 0 and key == "bop_bq_g" else f"{value:.2f}"
    return str(value)


def _text_rows(rows: Sequence[dict], compare: bool) -> list[list[str]]:
    table = []
    for row in rows:
        cells = []
        for key in COLUMNS:
            if key == "model":
                cells.append(display_name(row["model"]))
                continue
            text = _cell(key, row[key])
            if compare and key in NUMERIC and row.get(f"paper_{key}") is not None:
                diff = row[f"diff_{key}"]
                text += f" ({_cell(key, row[f'paper_{key}'])}, {diff:+.1%})"
            cells.append(text)
        table.append(cells)
    return table


def to_markdown(rows: Sequence[dict], *, caption: str = "", compare: bool = False) -> str:
    from tabulate import tabulate

    text = tabulate(_text_rows(rows, compare), headers=[HEADERS[k] for k in COLUMNS],
                    tablefmt="github", disable_numparse=True)
    return text + (f"\n\n{caption}\n" if caption else "\n")


def _latex_escape(text: str) -> str:
    for char, escaped in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"),
                          ("_", r"\_"), ("#", r"\#"), ("$", r"\$")):
        text = text.replace(char, escaped)
    return text


def to_latex(rows: Sequence[dict], *, caption: str = "", compare: bool = False) -> str:
    align = "l" + "r" * 3 + "l" + "r" * len(NUMERIC)
    lines = [r"% needs \usepackage{booktabs} in the preamble (\toprule, \midrule, \bottomrule)",
             r"\begin{table}[t]", r"\centering", r"\small", rf"\begin{{tabular}}{{{align}}}",
             r"\toprule",
             " & ".join(_latex_escape(HEADERS[k]) for k in COLUMNS) + r" \\", r"\midrule"]
    previous_binarized = None
    for row, cells in zip(rows, _text_rows(rows, compare)):
        binarized = "W1A1" in row["precision"]
        if previous_binarized is False and binarized:
            lines.append(r"\midrule")
        previous_binarized = binarized
        lines.append(" & ".join(_latex_escape(c) for c in cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if caption:
        lines.append(rf"\caption{{{_latex_escape(caption)}}}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def to_csv(rows: Sequence[dict]) -> str:
    import pandas as pd

    return pd.DataFrame(list(rows)).to_csv(index=False, float_format="%.6g")


def to_json(rows: Sequence[dict]) -> str:
    return json.dumps(list(rows), indent=2) + "\n"


def computed_with(seconds: float, convention: str, estimate: str, catalog: str) -> dict:
    """What a table was computed with: the keys each JSON row and CSV row carries."""
    return {"seconds": seconds, "convention": convention, "estimate": estimate,
            "catalog": catalog}


def render(rows: Sequence[dict], fmt: str, *, caption: str = "", compare: bool = False,
           context: Optional[Mapping] = None) -> str:
    """``context`` (see :func:`computed_with`) is added to every row of the data formats
    (JSON, CSV), which have no caption; markdown and LaTeX say it in ``caption``."""
    rows = with_paper(rows) if compare else list(rows)
    if fmt in ("csv", "json") and context:
        rows = [{**row, **context} for row in rows]
    if fmt == "md":
        return to_markdown(rows, caption=caption, compare=compare)
    if fmt == "latex":
        return to_latex(rows, caption=caption, compare=compare)
    if fmt == "csv":
        return to_csv(rows)
    if fmt == "json":
        return to_json(rows)
    raise ValueError(f"unknown format {fmt!r}")
