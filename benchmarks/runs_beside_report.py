"""A report rebuilt from the runs copied beside it: run (or, with ``--from-runs``, only
rebuild), recording the machine's load around the runs in ``<report>/load.txt``."""
from __future__ import annotations

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
