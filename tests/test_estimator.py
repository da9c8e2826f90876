"""Runtime estimates: the paper's formula against Table 1, and the roofline by hand."""
import csv
from pathlib import Path

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import profiler
from profiler.catalog import load_catalog, parse_catalog
from profiler.estimator import (
    fused_quantizers,
    paper_time,
    peak_for,
    roofline,
    roofline_time,
    times_by_row,
)

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


class SignQuantizer(nn.Module):
    """An input binarizer: ``alpha * sign(x)`` (two elementwise ops, 1 FLOP per element)."""

    def __init__(self):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return x.sign() * self.alpha


class ToyBinaryLinear(nn.Linear):
    weight_bits = 1
    activation_bits = 1
    parameter_bits = {"weight": 1}

    def __init__(self, n):
        super().__init__(n, n, bias=False)
        self.quantizer = SignQuantizer()

    def forward(self, x):
        return F.linear(self.quantizer(x), self.weight.sign())


# 1000 FLOP/s at fp32, 1e6 binary op/s, 1000 B/s: every term below is a round number.
TOY_PART = ("name: Toy\nkind: gpu\nmemory_bandwidth_gbs: 1.0e-6\n"
            "peaks: {fp32: 1.0e-9, int1: 1.0e-6}\n")


def test_deployed_roofline_of_a_float_then_binary_layer_by_hand():
    catalog = parse_catalog(TOY_PART, source="inline", key="toy")
    model = nn.Sequential(nn.Linear(16, 16, bias=False), ToyBinaryLinear(16))
    p = profiler.profile(model, torch.randn(4, 16))
    # Layer 0, float: 4 x 16 x 16 = 1024 MACs -> 2048 FLOPs / 1000 = 2.048 s; it reads
    # x (64 x 4 B) and W (256 x 4 B) and writes y (64 x 4 B): 1536 B -> 1.536 s. Compute-bound.
    # Quantizer: sign and mul, 64 FLOPs each -> 0.128 s; as simulated it reads x, writes
    # sign(x), reads it and alpha (4 B), writes the product: 1028 B -> 1.028 s; deployed, the
    # op producing x applies it on the way out: no traffic of its own.
    # Layer 1, binary: 1024 W1A1 MACs -> 2048 / 1e6 = 0.002048 s; it reads x at 1 bit (8 B)
    # and W at 1 bit (32 B) (sign(W) is precomputed: no traffic), writes y (256 B): 296 B ->
    # 0.296 s. Memory-bound.
    assert fused_quantizers(p) == {"1.quantizer"}
    deployed = {t.module: t for t in roofline(p, catalog)}
    assert deployed["0"].compute_s == pytest.approx(2.048)
    assert deployed["0"].memory_s == pytest.approx(1.536)
    assert deployed["0"].bound == "compute"
    assert deployed["1.quantizer"].compute_s == pytest.approx(0.128)
    assert deployed["1.quantizer"].memory_s == 0
    assert deployed["1"].compute_s == pytest.approx(0.002048)
    assert deployed["1"].memory_s == pytest.approx(0.296)
    assert deployed["1"].bound == "memory"
    assert roofline_time(p, catalog) == pytest.approx(2.048 + 0.128 + 0.296)
    simulated = {t.module: t for t in roofline(p, catalog, deployed=False)}
    assert simulated["1.quantizer"].memory_s == pytest.approx(1.028)
    assert roofline_time(p, catalog, deployed=False) == pytest.approx(2.048 + 1.028 + 0.296)
    # The full-precision twin: two float layers, 2 x 2.048 s, above the binarized model.
    twin = profiler.profile(nn.Sequential(nn.Linear(16, 16, bias=False),
                                          nn.Linear(16, 16, bias=False)), torch.randn(4, 16))
    assert roofline_time(twin, catalog) == pytest.approx(2 * 2.048)
    # Rows folded at depth 1: layer 1 with its quantizer, 0.128 s compute-bound against
    # 0.296 s memory-bound.
    rows = times_by_row(p, catalog, 1)
    assert rows["1"].seconds == pytest.approx(0.424) and rows["1"].bound == "memory"
    assert rows["0"].bound == "compute"


def test_profile_output_shows_time_and_bound_per_module(cli, tmp_path):
    part = tmp_path / "toy.yaml"
    part.write_text(TOY_PART)
    result = cli("profile", "--model", "bq-conformer-s", "--seconds", "1", "--depth", "1")
    assert result.returncode == 0, result.stderr
    header = next(line for line in result.stdout.splitlines() if line.startswith("module"))
    assert header.split()[-3:] == ["est.", "time", "bound"]
    assert "deployed roofline" in result.stdout and "A100" in result.stdout
    encoder = next(line for line in result.stdout.splitlines() if line.startswith("encoder "))
    assert encoder.split()[-1] in ("compute", "memory")
    simulated = cli("profile", "--model", "bq-conformer-s", "--seconds", "1", "--depth", "1",
                    "--estimate", "roofline-simulated", "--catalog", str(part))
    assert simulated.returncode == 0, simulated.stderr
    assert "simulation" in simulated.stdout and "Toy" in simulated.stdout


def test_every_binarized_zoo_row_is_estimated_below_its_twin_deployed():
    from profiler.conventions import get_convention
    from profiler.table import build_rows

    a100 = load_catalog("a100")
    pairs = [("vanilla", "bq-vanilla"), ("conformer-s", "bq-conformer-s"),
             ("squeezeformer-xs", "bq-squeezeformer-xs"),
             ("sparseformer-dn-s", "bq-sparseformer-dn-s"),
             ("sparseformer-sw-s", "bq-sparseformer-sw-s")]
    names = [n for pair in pairs for n in pair]
    convention = get_convention("bayesian-bits")
    rows = {r["model"]: r["est_time_s"] for r in build_rows(
        names, seconds=10, convention=convention, catalog=a100, estimate="roofline")}
    for fp, bq in pairs:
        assert rows[bq] < rows[fp], (fp, bq)


def test_a_fixed_time_per_op_adds_once_per_dispatched_op():
    catalog = parse_catalog(
        "name: T\nkind: cpu\nmemory_bandwidth_gbs: 1\npeaks: {fp32: 1.0e-9}\n"
        "op_overhead_us: 250000\n", source="inline", key="t")
    # F.linear without a bias dispatches two ops, a transpose (a view) and mm: 2 x 0.25 s
    # on top of the 0.2 s of the 200 FLOPs at 1000 FLOP/s.
    p = profiler.profile(nn.Linear(10, 10, bias=False), torch.randn(1, 10))
    assert roofline_time(p, catalog) == pytest.approx(0.2 + 2 * 0.25)
