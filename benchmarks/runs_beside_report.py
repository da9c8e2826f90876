"""A report rebuilt from the runs copied beside it: run (or, with ``--from-runs``, only
rebuild), recording the machine's load around the runs in ``<report>/load.txt``."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Callable

from profiler.files import atomic_write


def runs_beside(report: Path) -> Path:
    """Where a report's runs are copied: ``reports/x.md`` -> ``reports/x/runs``."""
    return report.with_suffix("") / "runs"


def run_or_rebuild(parser, report: Path, from_runs: bool, out, what: str,
                   run: Callable[[], None], copy: Callable[[Path], None]) -> str:
    """With ``from_runs``, the load text saved beside ``report``; else ``run()``, then
    ``copy(folder)`` of its results beside the report, and the load text, saved. Bad
    arguments end through ``parser.error`` (one line, exit 2)."""
    copied = runs_beside(report)
    load_file = copied.parent / "load.txt"
    if from_runs:
        if not copied.is_dir():
            parser.error(f"{copied}: no runs to rebuild from")
        return load_file.read_text().strip() if load_file.is_file() else ""
    if out is None:
        parser.error(f"give --out {what} (or --from-runs)")
    before = os.getloadavg()
    run()
    after = os.getloadavg()
    shutil.rmtree(copied, ignore_errors=True)
    copy(copied)
    text = (f"Load average (1 min) when the runs began {before[0]:.2f}, when they ended "
            f"{after[0]:.2f}, on {os.cpu_count()} cores.")
    atomic_write(load_file, text + "\n")
    return text


def load_arms(folders: dict, where) -> dict:
    """arm -> (``results.json``, ``per_item.json``'s (items, numerators, denominators)) of
    each arm's evaluation folder; arms that scored other test items end the report."""
    from models.trainer.study.collect import read_per_item
    from models.trainer.superb.settings import RESULTS

    loaded = {arm: (json.loads((folder / RESULTS).read_text()), read_per_item(folder))
              for arm, folder in folders.items()}
    if len({tuple(parts[0]) for _, parts in loaded.values()}) > 1:
        raise SystemExit(f"{where}: the arms scored different test items")
    return loaded


def paired_cells(pairs: list) -> str:
    """The cells 'difference | 95 % interval | items only | t over seeds | p' of one
    comparison, in points: ``pairs`` holds each seed's (first arm's per-item parts, second
    arm's, second - first as a fraction), the study's hierarchical bootstrap over them."""
    from models.trainer.study.hierarchical import Arm, hierarchical_difference
    from models.trainer.study.stats import seed_t_interval
    from models.trainer.study.verdicts import p_cell, points, span

    estimate = hierarchical_difference([Arm([p[0] for p in pairs], [p[1] for p in pairs])])
    t = seed_t_interval([(1.0, [p[2] for p in pairs])])
    return (f"{points(estimate.value)} | {span(estimate.interval)} | "
            f"{span(estimate.interval_items)} | {span(t)} | {p_cell(estimate.p)}")
