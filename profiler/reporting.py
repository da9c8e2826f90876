"""`profile-encoder report`: every generated artifact under reports/, from one command.

    table1.md / .tex / .csv             Table 1 under the paper's convention
    table1_bayesian_bits.md / .csv      the same models under the default convention
    reproduction.md                     every Table 1 cell: paper, ours, difference, why
    figures/*.png, figures/data.json    storage vs BOPs, cost by component, cost vs length

Everything is computed from the zoo on meta tensors; nothing here is typed in by hand
except the explanations, which name the measurements they rest on. Output is
deterministic, so a test can regenerate it and compare with what is committed.

This module writes the files; :mod:`profiler.reproduction` makes reproduction.md and
:mod:`profiler.figure_data` the figures and their data.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from .catalog import load_catalog
from .conventions import get_convention
from .errors import UsageError
from .figure_data import write_figures
from .files import atomic_write
from .formats import computed_with, render
from .option_values import DEFAULT_CONVENTION, PAPER_CONVENTION, PAPER_ESTIMATE, ROOFLINE_ESTIMATE
from .reference import PAPER_CATALOG, PAPER_SECONDS, table1
from .reproduction import reproduction_context, reproduction_markdown
from .table import build_rows, caption, paper_caption, paper_rows, profile_zoo_model


def build_report(out: Path, *, progress: bool = False) -> list[Path]:
    """Write every report under ``out`` (created if missing). Each file is written whole;
    if the run fails or is interrupted, the folders it created go again (all they hold was
    written by this run), so no empty or half-filled new folder is left behind."""
    created = [folder for folder in (out, *out.parents) if not folder.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create {out}: {error.strerror or error}") from None
    try:
        return _build_report(out, progress)
    except BaseException:
        if created:
            shutil.rmtree(created[-1], ignore_errors=True)
        raise


def _build_report(out: Path, progress: bool) -> list[Path]:
    names = list(table1())
    catalog = load_catalog(PAPER_CATALOG)
    paper_convention = get_convention(PAPER_CONVENTION)
    default_convention = get_convention(DEFAULT_CONVENTION)
    rows_paper = paper_rows(names, progress=progress)
    rows_default = build_rows(names, seconds=PAPER_SECONDS, convention=default_convention,
                              catalog=catalog, estimate=ROOFLINE_ESTIMATE, progress=progress)
    written = []

    def write(name: str, text) -> None:
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text)
        written.append(path)

    caption_paper = paper_caption()
    write("table1.md", render(rows_paper, "md", caption=caption_paper))
    write("table1.tex", render(rows_paper, "latex", caption=caption_paper))
    write("table1.csv", render(rows_paper, "csv",
                               context=computed_with(PAPER_SECONDS, PAPER_CONVENTION,
                                                     PAPER_ESTIMATE, catalog.key)))
    caption_default = caption(PAPER_SECONDS, DEFAULT_CONVENTION, ROOFLINE_ESTIMATE, catalog)
    write("table1_bayesian_bits.md", render(rows_default, "md", caption=caption_default))
    write("table1_bayesian_bits.csv", render(
        rows_default, "csv",
        context=computed_with(PAPER_SECONDS, DEFAULT_CONVENTION, ROOFLINE_ESTIMATE, catalog.key)))

    profiled = {m: profile_zoo_model(m, PAPER_SECONDS, paper_convention) for m in names}
    context = reproduction_context(rows_paper, profiled, paper_convention)
    write("reproduction.md", reproduction_markdown(context, names))
    written += write_figures(out / "figures", names, rows_paper, profiled, write)
    return written
