"""The report columns are declared once (profiler/columns.py) and every table reads them."""
import json
import math

import pytest

from profiler import columns, formats
from profiler.columns import COLUMNS, CONVENTION_KEYS, COSTS, KEYS, Column, column

# The JSON and CSV field names, in order: a contract with the README.
CONTRACT = ("model", "layers", "dim", "heads", "precision", "storage_mb", "flop_g",
            "bop_nonq_g", "bop_bq_g", "est_time_s")
COST_HEADERS = ["Storage (MB)", "FLOP (G)", "BOP_NonQ (G)", "BOP_BQ (G)", "Est. time (1e-4 s)"]


def fake_row(**changes) -> dict:
    row = {"model": "bq-conformer-s", "layers": 16, "dim": 144, "heads": 4,
           "precision": "FP32-W1A1", "storage_mb": 13.3456, "flop_g": 7.126,
           "bop_nonq_g": 106.2, "bop_bq_g": 5.72, "est_time_s": 0.000334}
    return {**row, **changes}


def test_the_keys_are_the_contract_and_unique():
    assert KEYS == CONTRACT
    assert len(set(KEYS)) == len(KEYS)
    assert [c.header for c in COSTS] == COST_HEADERS
    assert CONVENTION_KEYS == ("storage_mb", "flop_g", "bop_nonq_g", "bop_bq_g")


def test_a_column_is_looked_up_by_key():
    assert column("est_time_s").header == "Est. time (1e-4 s)"
    assert column("flop_g").paper == "flop_g"
    assert column("model").cost is False
    with pytest.raises(KeyError, match="no report column 'params_m'.*storage_mb"):
        column("params_m")


def test_cells_print_in_the_columns_units():
    assert column("est_time_s").text(0.001234) == "12.34"          # 1e-4 s
    assert column("storage_mb").text(13.3456) == "13.35"
    assert column("bop_bq_g").text(0.0) == "-"                     # a float model
    assert column("flop_g").text(0.0) == "0.00"
    assert column("flop_g").text(None) == "-"
    assert column("flop_g").text(math.nan) == "-"
    assert column("layers").text(12) == "12"
    assert column("precision").text("FP16") == "FP16"


def test_the_papers_values_come_back_in_our_units():
    paper = {"est_time_1e-4_s": 38.46, "bop_bq_g": None, "storage_mb": 184.42}
    assert column("est_time_s").paper_value(paper) == pytest.approx(0.003846, rel=1e-12)
    assert column("storage_mb").paper_value(paper) == 184.42
    assert column("bop_bq_g").paper_value(paper) is None
    assert column("flop_g").paper_value(None) is None
    assert column("model").paper_value(paper) is None


def test_every_column_a_formatter_emits_is_in_the_schema():
    rows = [fake_row(), fake_row(model="conformer-s", precision="FP32", bop_bq_g=0.0)]
    [data] = json.loads(formats.render(rows[:1], "json"))
    assert tuple(data) == KEYS
    assert tuple(formats.render(rows, "csv").splitlines()[0].split(",")) == KEYS
    header = formats.render(rows, "md").splitlines()[0]
    assert [cell.strip() for cell in header.strip("|").split("|")] == [c.header for c in COLUMNS]
    assert "Storage (MB) & FLOP (G)" in formats.render(rows, "latex")
    [compared] = json.loads(formats.render(rows[:1], "json", compare=True))
    extra = set(compared) - set(KEYS)
    assert extra == {f"{kind}_{c.key}" for c in COSTS for kind in ("paper", "diff")}


def test_a_column_added_to_the_schema_reaches_every_text_format(monkeypatch):
    params = Column("params_m", "Params (M)", columns.ZOO, cost=True)
    monkeypatch.setattr(formats, "COLUMNS", COLUMNS + (params,))
    rows = [fake_row(params_m=12.345)]
    markdown = formats.render(rows, "md")
    assert "Params (M)" in markdown and "12.35" in markdown   # 2 decimals, as a cost
    latex = formats.render(rows, "latex")
    assert "Params (M)" in latex and r"\begin{tabular}{lrrrlrrrrrr}" in latex


def test_each_convention_computes_exactly_its_columns():
    from profiler.conventions import CONVENTIONS, Convention

    totals = {"storage_bytes": 2e6, "flops": 4e9, "bop_nonq": 8e9, "bop_bq": 1e9,
              "bop_q": 0.0, "macs_bq": 2 ** 30}
    for convention in CONVENTIONS.values():
        assert tuple(convention.columns(totals)) == CONVENTION_KEYS
    assert CONVENTIONS["paper"].columns(totals) == {
        "storage_mb": 2.0, "flop_g": 4.0, "bop_nonq_g": 4e9 * 16 / 2 ** 30, "bop_bq_g": 1.0}
    with pytest.raises(ValueError, match="bop_bq_g"):
        Convention("short", "", {"storage_mb": len}, lambda name: 32, "roofline")


def test_a_row_has_the_schemas_columns_in_order():
    from profiler.catalog import load_catalog
    from profiler.conventions import get_convention
    from profiler.table import build_rows

    [row] = build_rows(["sparseformer-sw-s"], seconds=1.0,
                       convention=get_convention("bayesian-bits"),
                       catalog=load_catalog("a100"), estimate="roofline")
    assert tuple(row) == KEYS


def test_every_explained_column_is_in_the_schema():
    from profiler.reproduction import RULES

    assert {key for key, _, _ in RULES} <= {c.key for c in COSTS}


def test_the_studys_table1_reads_the_schema():
    from models.trainer.study.report import table1_lines

    class Study:
        models = ["conformer-s"]
        variants = ["fp"]
        gated = {}  # no evaluation gated

        def values(self, key):
            return []

    costs = {("conformer-s", "fp"): fake_row(model="conformer-s", precision="FP32",
                                              bop_bq_g=0.0)}
    lines = table1_lines(Study(), costs)
    header = next(line for line in lines if line.startswith("| Model"))
    assert header == ("| Model | Precision | " + " | ".join(COST_HEADERS) + " | ASR WER % (ours)"
                      " | SD DER % (ours) | ASR WER % (paper) | SD DER % (paper) |")
    assert lines[lines.index(header) + 1].count("---:") == 9
    row = next(line for line in lines if line.startswith("| conformer-s"))
    assert row == "| conformer-s | FP32 | 13.35 | 7.13 | 106.20 | - | 3.34 | - | - | 8.56 | 6.81 |"
