"""reports/figures/: the data behind the figures (data.json) and the figures drawn from it.

Storage against BOPs, cost by component, and cost against input length; every number
is computed from the zoo on meta tensors.
"""
from __future__ import annotations

import json
from pathlib import Path

from models.constants import is_binarized

from .conventions import GIGA, get_convention
from .formats import display_name
from .option_values import DEFAULT_CONVENTION
from .reference import table1
from .table import profile_zoo_model

LENGTHS = (1, 2, 5, 10, 20, 30, 45, 60)  # seconds of input for cost_vs_length


def write_figures(folder: Path, names, rows_paper, profiled, write) -> list[Path]:
    """data.json through ``write`` (the report's writer), then the three figures in
    ``folder``; returns the figures' paths."""
    from . import figures

    paper = table1()
    points = [{"model": display_name(r["model"]), "storage_mb": round(r["storage_mb"], 4),
               "bops_g": round(r["bop_nonq_g"] + r["bop_bq_g"], 4),
               "wer": paper[r["model"]]["asr_wer"], "binarized": is_binarized(r["model"])}
              for r in rows_paper]
    shares = {}
    for m in names:
        prof = profiled[m].profile
        parts: dict = {}
        for module, row in prof.modules.items():
            component = figures.component_of(module)
            parts[component] = parts.get(component, 0) + row["bops"]
        shares[display_name(m)] = {k: v for k, v in sorted(parts.items()) if v}
    convention = get_convention(DEFAULT_CONVENTION)
    series = {}
    for m in [n for n in names if not is_binarized(n)]:
        data = {"seconds": list(LENGTHS), "gflop": [], "effective_gflop": [], "attention_share": []}
        for seconds in LENGTHS:
            prof = profile_zoo_model(m, float(seconds), convention).profile
            t = prof.totals
            attention = sum(macs for pair, macs in prof.pairs.items() if pair.kind == "aa")
            data["gflop"].append(round(t["flops"] / GIGA, 4))
            data["effective_gflop"].append(round(t["effective_flops"] / GIGA, 4))
            data["attention_share"].append(round(attention / t["macs"], 6))
        series[display_name(m)] = data
    write("figures/data.json", json.dumps({"storage_vs_bops": points, "module_breakdown": shares,
                                           "cost_vs_length": series}, indent=1) + "\n")
    folder.mkdir(parents=True, exist_ok=True)
    figures.storage_vs_bops(points, folder / "storage_vs_bops.png")
    figures.module_breakdown(shares, folder / "module_breakdown.png")
    figures.cost_vs_length(series, folder / "cost_vs_length.png")
    return [folder / "storage_vs_bops.png", folder / "module_breakdown.png",
            folder / "cost_vs_length.png"]
