"""The committed reports are what `profile-encoder report` makes now, and they say why."""
import filecmp
from pathlib import Path

import pytest

REPORTS = Path(__file__).resolve().parents[1] / "reports"
TEXT_FILES = ["table1.md", "table1.tex", "table1.csv", "table1_bayesian_bits.md",
              "table1_bayesian_bits.csv", "reproduction.md", "figures/data.json"]
FIGURES = ["figures/storage_vs_bops.png", "figures/module_breakdown.png",
           "figures/cost_vs_length.png"]


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory):
    from tests.conftest import run_cli

    out = tmp_path_factory.mktemp("reports")
    result = run_cli("report", "--out", out)
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.parametrize("name", TEXT_FILES)
def test_committed_reports_are_not_stale(regenerated, name):
    assert (REPORTS / name).exists(), f"reports/{name} is missing: run `profile-encoder report`"
    assert filecmp.cmp(regenerated / name, REPORTS / name, shallow=False), (
        f"reports/{name} is stale: run `profile-encoder report` and commit the result")


def test_figures_are_drawn(regenerated):
    for name in FIGURES:
        data = (regenerated / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name
        assert (REPORTS / name).exists(), name


def test_every_difference_above_two_percent_is_explained():
    import re

    text = (REPORTS / "reproduction.md").read_text()
    assert "UNEXPLAINED" not in text
    table = "\n".join(line for line in text.splitlines() if line.startswith("| ") and "%" in line)
    assert table.count("\n") + 1 == 10
    notes = text.split("## Why the cells differ")[1].split("## Targets")[0]
    assert re.findall(r"\[(\d+)\]", table) == re.findall(r"^(\d+)\. ", notes, re.M)
    # every cell more than 2 % off carries a marker
    for cell in re.findall(r"\(([-\d.]+), ([+-][\d.]+)%\)( \[\d+\])?", table):
        assert abs(float(cell[1])) <= 2.0 or cell[2], cell


def test_table1_reproduces_storage_and_the_time_formula():
    import csv

    from profiler.reference import table1

    paper = table1()
    with open(REPORTS / "table1.csv") as handle:
        rows = {r["model"]: r for r in csv.DictReader(handle)}
    for model, row in rows.items():
        storage, target = float(row["storage_mb"]), paper[model]["storage_mb"]
        limit = 0.10 if model.startswith("bq-") else 0.03
        assert abs(storage - target) / target <= limit, model
        # est_time is the paper's formula on our own BOP columns
        expected = (float(row["bop_nonq_g"]) / (312 * 1024)
                    + float(row["bop_bq_g"]) / (4992 * 1024))
        assert float(row["est_time_s"]) == pytest.approx(expected, rel=1e-5), model


@pytest.mark.parametrize("when", ["profiling", "drawing"])
def test_an_interrupted_report_leaves_no_new_folder(tmp_path, monkeypatch, when):
    import profiler.figures
    import profiler.reporting
    from profiler.cli import main

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    if when == "profiling":
        monkeypatch.setattr(profiler.reporting, "build_rows", interrupt)
    else:  # after the tables and data.json are written
        monkeypatch.setattr(profiler.figures, "module_breakdown", interrupt)
    kept = tmp_path / "existing"
    kept.mkdir()
    (kept / "mine.txt").write_text("mine")
    assert main(["report", "--out", str(tmp_path / "new" / "reports")]) == 130
    assert main(["report", "--out", str(kept)]) == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing"]
    assert (kept / "mine.txt").read_text() == "mine"


def test_a_ctrl_c_after_the_command_prints_no_traceback(tmp_path):
    # A SIGINT while the interpreter tears down (after the command's output) used to print
    # a traceback from inside a WeakIdKeyDictionary callback.
    import subprocess
    import sys

    script = ("import os, signal, sys, time\n"
              "sys.argv = ['profile-encoder', 'table', '--models', 'sparseformer-sw-s']\n"
              "from profiler.cli import main\n"
              "status = main()\n"
              "os.kill(os.getpid(), signal.SIGINT)\n"
              "time.sleep(0.2)\n"
              "sys.exit(status)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1], timeout=300)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "KeyboardInterrupt" not in result.stderr
    assert "Sparseformer-SW-S" in result.stdout


def test_storage_vs_bops_labels_neither_overlap_nor_leave_the_axes(monkeypatch, tmp_path):
    import itertools
    import json

    from matplotlib.text import Text

    from profiler import figures

    points = json.loads((REPORTS / "figures" / "data.json").read_text())["storage_vs_bops"]
    boxes = {}

    def measure(fig, path, **savefig_options):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        ax = fig.axes[0]
        boxes["axes"] = ax.get_window_extent(renderer)
        # the text alone (an annotation's own extent includes its leader line)
        boxes["points"] = [Text.get_window_extent(t, renderer) for t in ax.texts]
        boxes["x"] = [t.get_window_extent(renderer) for t in ax.get_xticklabels(which="both")
                      if t.get_visible() and t.get_text()]
        boxes["y"] = [t.get_window_extent(renderer) for t in ax.get_yticklabels(which="both")
                      if t.get_visible() and t.get_text()]

    monkeypatch.setattr(figures, "save_png", measure)
    figures.storage_vs_bops(points, tmp_path / "storage_vs_bops.png")
    assert len(boxes["points"]) == len(points)
    for group in ("points", "x", "y"):
        for a, b in itertools.combinations(boxes[group], 2):
            assert not a.overlaps(b), (group, a, b)
    axes = boxes["axes"]
    for box in boxes["points"]:
        assert axes.x0 <= box.x0 and box.x1 <= axes.x1 and axes.y0 <= box.y0 and box.y1 <= axes.y1
