"""Runtime estimates: the paper's formula against Table 1, and the roofline by hand."""
import csv
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import profiler
from profiler.catalog import load_catalog, parse_catalog
from profiler.estimator import paper_time, peak_for, roofline, roofline_time

PAPER_TABLE1 = Path(__file__).resolve().parents[1] / "profiler" / "reference" / "table1.csv"


def table1_rows():
    with open(PAPER_TABLE1) as handle:
        return [(r["model"], float(r["bop_nonq_g"]), float(r["bop_bq_g"] or 0),
                 float(r["est_time_1e-4_s"])) for r in csv.DictReader(handle)]


@pytest.mark.parametrize("model, nonq, bq, printed", table1_rows())
def test_paper_formula_reproduces_every_table1_time(model, nonq, bq, printed):
    seconds = paper_time(nonq, bq, load_catalog("a100"))
    assert round(seconds * 1e4, 2) == pytest.approx(printed, abs=0.006)


def test_binarized_work_falls_back_to_the_narrowest_peak_a_part_has():
    h100 = load_catalog("h100-sxm")
    assert peak_for(h100, "int1") == ("int8", 1978.9e12)
    assert peak_for(load_catalog("a100"), "int1") == ("int1", 4992e12)


def test_roofline_by_hand():
    catalog = parse_catalog(
        "name: T\nkind: gpu\nmemory_bandwidth_gbs: 1\npeaks: {fp32: 1.0e-9, fp16: 2.0e-9}\n",
        source="inline", key="t")
    # 1 GB/s, 1000 FLOP/s at fp32, 2000 at fp16
    lin = nn.Linear(10, 10, bias=False)
    p = profiler.profile(lin, torch.randn(1, 10))
    [only] = roofline(p, catalog)
    assert only.compute_s == pytest.approx(2 * 100 / 1000)
    # reads x (40 B) and W (400 B), writes y (40 B)
    assert only.memory_s == pytest.approx(480 / 1e9)
    assert only.bound == "compute"
    half = profiler.profile(lin.half(), torch.randn(1, 10, dtype=torch.float16))
    assert roofline_time(half, catalog) == pytest.approx(2 * 100 / 2000)
