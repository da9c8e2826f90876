"""The README's Benchmarks table quotes reports/benchmarks.json, and the report writer and
runner of benchmarks/run_all.py summarize, mark and resume as they say (hand-made results:
no benchmark runs here)."""
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import benchmark_report  # noqa: E402
import run_all  # noqa: E402
from benchmark_report import BEGIN, END  # noqa: E402


def table_rows(block: str) -> dict:
    """First cell -> the other cells, for each row of the block's table."""
    rows = {}
    for line in block.splitlines():
        if line.startswith("| ") and not line.startswith(("| figure", "| ---")):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            rows[cells[0]] = cells[1:]
    return rows


def close_to_shown(cell: str, value: float) -> bool:
    """The number in ``cell`` is ``value`` rounded to the digits the cell shows."""
    shown = re.search(r"-?\d+(?:\.(\d+))?", cell)
    digits = len(shown.group(1) or "")
    return abs(float(shown.group(0)) - value) <= 0.5 * 10 ** -digits + 1e-12


def test_the_readme_quotes_the_committed_report():
    report = json.loads((ROOT / "reports" / "benchmarks.json").read_text())
    readme = (ROOT / "README.md").read_text()
    assert readme.count(BEGIN) == 1 and readme.count(END) == 1
    block = benchmark_report.readme_block(readme)
    rows = table_rows(block)
    assert len(rows) == len(report["figures"]) > 0
    for item in report["figures"]:
        title = next(t for t in rows if t.startswith(item["title"]))
        if report["quick"]:     # a smoke run's numbers are not quoted
            assert rows[title][0] == "not measured", title
            continue
        median, spread, runs, target = rows[title]
        assert int(runs) == len(item["repeats"]), title
        assert close_to_shown(median, item["median"]), (title, median, item["median"])
        low, high = spread.split(" - ")
        assert close_to_shown(low, item["min"]) and close_to_shown(high, item["max"]), title
        assert ("(missed)" in target) == (item["met"] is False), title
        assert ("(under load)" in title) == item["under_load"], title
    if report["quick"]:
        assert "Not measured yet" in block
    else:
        assert report["generated"] in block and report["machine"]["cpu"] in block
    assert block == benchmark_report.render_readme_block(report), (
        "README's benchmarks block is stale: rerun benchmarks/run_all.py (it rewrites it)")
    # the figures typed from single runs under load are gone
    assert not re.search(r"\d\.\d+x faster", readme)


def run(benchmark: str, repeat: int, values: dict, under_load: bool = False) -> dict:
    return {"benchmark": benchmark, "repeat": repeat, "command": f"python {benchmark}.py",
            "started": "2026-12-03T10:00:00", "seconds": 10.0 + repeat,
            "load_before": [0.2, 0.3, 0.4], "load_after": [0.9, 0.5, 0.4],
            "other_cpu_percent": 40.0 if under_load else 1.0, "under_load": under_load,
            "values": values, "details": {}}


MACHINE = {"cpu": "Test CPU 9000", "cpu_flags": ["avx2"], "cores": 2, "torch_threads": 2,
           "torch": "2.13.0", "python": "3.11.7", "platform": "Linux", "commit": "abc1234"}
SETTINGS = {"quick": False, "repeats": 3, "load_threshold": 10.0, "date": "2026-12-03"}


@pytest.fixture
def hand_made():
    runs = [run("sparse", 0, {"sparse_blocked_vs_dense_8000": 1.5}),
            run("cold", 0, {"cold_table_vs_deepspeed": 0.5}),
            run("sparse", 1, {"sparse_blocked_vs_dense_8000": 2.5}),
            run("cold", 1, {"cold_table_vs_deepspeed": 0.3}, under_load=True),
            run("sparse", 2, {"sparse_blocked_vs_dense_8000": 2.1}),
            run("cold", 2, {"cold_table_vs_deepspeed": 0.4})]
    return benchmark_report.build_report(MACHINE, SETTINGS, runs, {"sparse": "python s.py"})


def test_the_writer_summarizes_and_judges_by_hand(hand_made, tmp_path):
    figures = {item["name"]: item for item in hand_made["figures"]}
    assert list(figures) == ["cold_table_vs_deepspeed", "sparse_blocked_vs_dense_8000"]
    sparse, cold = figures["sparse_blocked_vs_dense_8000"], figures["cold_table_vs_deepspeed"]
    assert sparse["repeats"] == [1.5, 2.5, 2.1]
    assert (sparse["min"], sparse["median"], sparse["max"]) == (1.5, 2.1, 2.5)
    assert sparse["spread"] == pytest.approx(1.0) and sparse["spread_is"] == "max - min"
    assert sparse["target"] == ">= 2x" and sparse["met"] is True
    assert sparse["command"] == "python s.py"
    assert cold["median"] == 0.4 and cold["spread"] == pytest.approx(0.2)
    assert cold["target"] == "<= 0.333" and cold["met"] is False      # 0.4 > 1/3

    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\nbefore\n\n{BEGIN}\nold\n{END}\n\nafter\n")
    benchmark_report.write_report(hand_made, tmp_path / "b.json", tmp_path / "b.md", readme)
    assert json.loads((tmp_path / "b.json").read_text()) == hand_made
    markdown = (tmp_path / "b.md").read_text()
    row = next(line for line in markdown.splitlines() if line.startswith("| ten Table-1"))
    assert row.split("|")[2:9] == [" 0.40 ", " 0.30 ", " 0.50 ", " 0.20 ", " 3 ", " <= 0.333 ",
                                   " **missed** "]
    text = readme.read_text()
    assert text.startswith("# x\n\nbefore\n\n") and text.endswith(f"{END}\n\nafter\n")
    rows = table_rows(benchmark_report.readme_block(text))
    assert rows["blocked sparse attention vs fused dense attention, 8 000 frames"] == [
        "2.10x", "1.50x - 2.50x", "3", ">= 2x"]
    cold_title = next(t for t in rows if t.startswith("ten Table-1"))
    assert rows[cold_title] == ["0.40", "0.30 - 0.50", "3", "<= 0.333 (missed)"]
    assert not list(tmp_path.glob(".*.tmp"))    # the temporary files were renamed


def test_load_marks_the_run_its_figures_and_the_report(hand_made, capsys):
    assert hand_made["under_load"] is True
    marked = {item["name"]: item["under_load"] for item in hand_made["figures"]}
    assert marked == {"cold_table_vs_deepspeed": True, "sparse_blocked_vs_dense_8000": False}
    assert "Measured under load" in benchmark_report.render_markdown(hand_made)
    assert "(under load)" in benchmark_report.render_readme_block(hand_made)

    busy = run_all.Sample((0.3, 0.3, 0.3), other_cpu_percent=25.0, cores=2)
    quiet = run_all.Sample((1.4, 1.0, 0.5), other_cpu_percent=3.0, cores=2)
    assert run_all.warn_if_loaded("sparse", busy, threshold=10.0) is True
    assert "sparse starts under load (other processes used 25 %" in capsys.readouterr().err
    assert run_all.warn_if_loaded("sparse", quiet, threshold=10.0) is False  # its own load
    assert capsys.readouterr().err == ""
    # without /proc/stat: a 1-min load average above 0.5 per core
    assert run_all.Sample((1.1, 0, 0), None, cores=2).under_load(10.0) is True
    assert run_all.Sample((0.9, 0, 0), None, cores=2).under_load(10.0) is False


def test_the_parsers_read_the_scripts_lines(tmp_path):
    cold = ("cold, whole process, median of 1: the ten Table-1 rows 6.72 s; DeepSpeed on one "
            "HuBERT-Base 3.36 s; ratio 2.00 (target <= 0.33)\n")
    assert run_all.parse_cold(cold, tmp_path, 0)[0] == {"cold_table_vs_deepspeed": 2.0}
    table = ("  8000  attention     1.000    0.200    0.580    0.500           2.00x         "
             "1.16x         72\n  8000  layer         2.000             1.500    1.400     "
             "1.43x          1.07x         72\n")
    assert run_all.parse_sparse(table, tmp_path, 0)[0] == {"sparse_blocked_vs_dense_8000": 1.16}
    said = table + "blocked vs dense at 8000 frames: 1.19x\n"
    assert run_all.parse_sparse(said, tmp_path, 0)[0] == {"sparse_blocked_vs_dense_8000": 1.19}
    verdicts = ("  MISS packed W1A1 >= 8.0x float32 at 500x768x3072: 5.25x\n"
                "  PASS packed W1A1 >= 1.5x bfloat16 at 500x768x3072: 1.75x\n"
                "  MISS bq-vanilla deployed >= 2.5x float32 at 10 s, 2 thread(s): 1.30x; ...\n"
                "slowest deployed BQ model vs its float32 twin: 0.95x (bq-conformer-s, 1 s, 2 "
                "thread(s))\n")
    assert run_all.parse_binary(verdicts, tmp_path, 0)[0] == {
        "packed_w1a1_vs_float32": 5.25, "packed_w1a1_vs_bfloat16": 1.75,
        "deployed_bq_vanilla_2_threads": 1.3, "deployed_bq_slowest_vs_float32": 0.95}
    summary = ("Across the {n} rows, kernel: Spearman rank correlation {r}, median relative "
               "error {e} % (|estimated - measured| / measured).\n")
    report = tmp_path / "estimate.md"
    report.write_text(
        "# Measured\n\n## 1 thread, cpu clock\n\n" + summary.format(n=20, r="0.990", e="9.9")
        + run_all.DEPLOYED_HEADING + "\n\n" + summary.format(n=15, r="0.950", e="20.5")
        + "## 2 threads, wall clock\n\n" + summary.format(n=20, r="0.985", e="11.0"))
    assert run_all.parse_estimate(f"...\nwrote {report}\n", tmp_path, 0)[0] == {
        "estimate_spearman_1_thread": 0.99, "estimate_error_1_thread": 9.9,
        "estimate_bq_spearman_1_thread": 0.95, "estimate_bq_error_1_thread": 20.5,
        "estimate_spearman_2_threads": 0.985, "estimate_error_2_threads": 11.0}
    sweep = "20 points, 1 workers, 10 s input: 12.0 s in all (4.0 s imports and grid, ...)\n"
    assert run_all.parse_sweep(sweep, tmp_path, 0)[0] == {"sweep_1000_points": 600.0}
    (tmp_path / "profilers.json").write_text(json.dumps([
        {"tool": "ours", "profile_s": 0.05}, {"tool": "ours-real-model", "profile_s": 0.01},
        {"tool": "deepspeed", "profile_s": 0.6}, {"tool": "fvcore", "error": ["boom"]},
        {"tool": "flop_counter", "profile_s": 0.5}]))
    values, details = run_all.parse_profilers("", tmp_path, 0)
    assert values["profile_call_vs_fastest_peer"] == pytest.approx(10.0)
    assert details["fastest_peer"] == "flop_counter"


def test_an_interrupted_run_resumes_with_the_missing_repeats(tmp_path, monkeypatch):
    calls = []

    def fake_run(name, benchmark, quick, repeat, threshold):
        if len(calls) == 3:
            raise KeyboardInterrupt
        calls.append((name, repeat))
        figure = {"training": "training_step_vs_transformers",
                  "sparse": "sparse_blocked_vs_dense_8000"}[name]
        return run(name, repeat, {figure: 100.0 + repeat})

    monkeypatch.setattr(run_all, "run_once", fake_run)
    monkeypatch.setattr(run_all, "machine", lambda: MACHINE)
    arguments = ["--only", "training,sparse", "--repeats", "2", "--out", str(tmp_path),
                 "--no-readme"]
    assert run_all.main(arguments) == 130
    assert calls == [("training", 0), ("sparse", 0), ("training", 1)]     # round the benchmarks
    stored = json.loads((tmp_path / "benchmarks.json").read_text())
    assert len(stored["runs"]) == 3
    calls.clear()
    assert run_all.main([*arguments, "--resume"]) == 0
    assert calls == [("sparse", 1)]
    figures = json.loads((tmp_path / "benchmarks.json").read_text())["figures"]
    assert {f["name"]: f["repeats"] for f in figures} == {
        "sparse_blocked_vs_dense_8000": [100.0, 101.0],
        "training_step_vs_transformers": [100.0, 101.0]}


def test_a_benchmark_runs_at_most_its_own_repeats(tmp_path, monkeypatch):
    # the sweep's one figure is a single minutes-long run: --repeats 3 runs it once
    calls = []
    monkeypatch.setattr(run_all, "run_once", lambda name, benchmark, quick, repeat, threshold:
                        calls.append((name, repeat)) or run(name, repeat,
                                                            {"sweep_1000_points": 100.0}))
    monkeypatch.setattr(run_all, "machine", lambda: MACHINE)
    assert run_all.main(["--only", "sweep", "--repeats", "3", "--out", str(tmp_path),
                         "--no-readme"]) == 0
    assert calls == [("sweep", 0)]


def test_bad_arguments_are_one_line_and_status_2(capsys):
    assert run_all.main(["--only", "profilers,nope"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "unknown benchmark nope; known: profilers, cold, sparse, training, estimate, binary, "
        "sweep, suite"]
