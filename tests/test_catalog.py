"""Hardware catalogs: the shipped ones load, and every malformed one is one clear error."""
import os
import time
from pathlib import Path

import pytest

from profiler.catalog import CatalogError, list_catalogs, load_catalog, parse_catalog

GOOD = """
name: Test GPU
kind: gpu
memory_bandwidth_gbs: 1000
peaks:
  fp32: 10
  fp16: 100
"""


def test_shipped_catalogs_load_with_the_datasheet_figures():
    assert {"a100", "a100-80gb", "h100-sxm", "h200", "epyc-7763"} <= set(list_catalogs())
    a100 = load_catalog("a100")
    assert a100.peaks_tera["fp16"] == 312 and a100.peaks_tera["int1"] == 4992
    assert a100.memory_bandwidth == 1555e9
    assert load_catalog("a100-80gb").memory_bandwidth_gbs == 2039
    h100 = load_catalog("h100-sxm")
    assert h100.peaks_tera["fp16"] == 989.4 and "int1" not in h100.peaks_tera
    assert load_catalog("h200").memory_bandwidth_gbs == 4800
    for key in list_catalogs():
        assert load_catalog(key).sources, f"{key} names no source"


def test_a_catalog_by_path(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text(GOOD)
    catalog = load_catalog(str(path))
    assert catalog.name == "Test GPU" and catalog.peak("fp16") == 100e12


@pytest.mark.parametrize("text, message", [
    ("name: [unclosed", "malformed YAML"),
    ("- just\n- a list\n", "mapping of fields"),
    (GOOD.replace("name: Test GPU\n", ""), "missing field 'name'"),
    (GOOD.replace("fp16: 100", "fp16: -3"),
     "field 'peaks.fp16': expected a positive number, got -3"),
    (GOOD.replace("fp16: 100", "fp16: fast"),
     "field 'peaks.fp16': expected a positive number, got 'fast'"),
    (GOOD.replace("fp16: 100", "fp17: 100"), "field 'peaks.fp17': unknown precision"),
    (GOOD.replace("  fp32: 10\n", ""), "missing field 'peaks.fp32'"),
    (GOOD.replace("memory_bandwidth_gbs: 1000", "memory_bandwidth_gbs: 0"),
     "'memory_bandwidth_gbs': expected a positive number"),
    (GOOD.replace("kind: gpu", "kind: tpu"), "'kind': expected gpu or cpu"),
    (GOOD + "peak_fp16: 3\n", "unknown field 'peak_fp16'"),
    (GOOD.replace("memory_bandwidth_gbs: 1000\n", ""), "missing field 'memory_bandwidth_gbs'"),
])
def test_malformed_catalogs_name_the_file_and_field(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CatalogError) as info:
        load_catalog(str(path))
    assert str(path) in str(info.value)
    assert message in str(info.value)


def test_unknown_catalog_name_lists_the_shipped_ones():
    with pytest.raises(CatalogError, match="unknown catalog 'tpu-v9'.*a100"):
        load_catalog("tpu-v9")
    with pytest.raises(CatalogError, match="does not exist"):
        load_catalog("nowhere/else.yaml")


def test_calibrated_figures_are_operations_and_bytes_over_the_best_time(monkeypatch):
    from profiler import calibration

    # Every timed call "takes" 1 ms: the figures follow from the sizes alone.
    monkeypatch.setattr(calibration, "best_time", lambda *args: (1e-3, 7))
    # the kernels section has tests of its own (test_kernel_estimate.py)
    result = calibration.calibrate("cpu", duration_s=0.01, matrix_size=64, copy_mb=1,
                                   kernels=False)
    assert result.peaks_tera["fp32"] == pytest.approx(2 * 64 ** 3 / 1e-3 / 1e12)
    assert result.memory_bandwidth_gbs == pytest.approx(2 * 2 ** 20 / 1e-3 / 1e9)
    assert "64x64 float32" in result.sources["fp32"] and "best of 7 runs" in result.sources["fp32"]
    assert "1 MiB" in result.sources["memory_bandwidth_gbs"]
    if "int1" in result.peaks_tera:  # the packed W1A1 product, where its kernels build
        assert result.peaks_tera["int1"] == pytest.approx(2 * 64 ** 3 / 1e-3 / 1e12)
        assert "64x64 sign matrices" in result.sources["int1"]
    else:
        assert result.sources["int1"].startswith("left out: ")
    catalog = result.catalog()
    assert catalog.kind == "cpu" and catalog.peaks_tera["fp32"] == pytest.approx(5.243e-4)
    assert catalog.memory_bandwidth_gbs == pytest.approx(2.097)


@pytest.mark.parametrize("timer, low, high", [("best_time", 0.01, 0.05),
                                              ("median_time", 0.05, 0.2)])
def test_best_and_median_time_are_the_fastest_and_middle_of_at_least_three_runs(timer, low,
                                                                                high):
    from profiler import calibration

    durations = iter([0.0, 0.2, 0.01, 0.05])  # warm-up first: never counted

    def run():
        import time
        time.sleep(next(durations))

    seconds, runs = getattr(calibration, timer)(run, 0.0, lambda: None)
    assert runs == 3 and low <= seconds < high


def test_calibrate_writes_a_catalog_that_loads(cli, tmp_path):
    out = tmp_path / "here.yaml"
    result = cli("calibrate", "--output", out, "--duration", "0.02", "--matrix-size", "128",
                 "--copy-mb", "8", "--quick")
    assert result.returncode == 0, result.stderr
    catalog = load_catalog(str(out))
    assert catalog.peaks_tera["fp32"] > 0 and catalog.memory_bandwidth_gbs > 0
    assert set(catalog.sources) >= {"fp32", "memory_bandwidth_gbs"}
    assert out.read_text().startswith("# Calibrated by `profile-encoder calibrate`")
    assert [p.name for p in tmp_path.iterdir()] == ["here.yaml"]  # no temporary file left
    bad = cli("calibrate", "--output", tmp_path / "missing" / "x.yaml")
    assert bad.returncode == 2
    assert bad.stderr.startswith("profile-encoder: error: cannot write")
    assert len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("where", ["a file", "read-only"])
def test_calibrate_refuses_an_output_it_cannot_write_before_measuring(cli, tmp_path, where):
    if where == "a file":
        (tmp_path / "notes").write_text("x")
        out, why = tmp_path / "notes" / "x.yaml", "is not a folder"
    else:
        if os.geteuid() == 0:
            # root writes into a mode-555 folder; sysfs takes no new file from anyone
            folder = Path("/sys")
        else:
            folder = tmp_path / "locked"
            folder.mkdir(mode=0o555)
        out, why = folder / "x.yaml", "cannot write"
    started = time.monotonic()
    # a long --duration: the refusal must come before the measuring, not after it
    bad = cli("calibrate", "--output", out, "--duration", "60")
    assert bad.returncode == 2
    assert bad.stderr.count("\n") == 1 and why in bad.stderr
    assert bad.stderr.startswith(f"profile-encoder: error: cannot write {out}")
    assert time.monotonic() - started < 30
    assert not out.exists()


def test_a_negative_time_per_op_is_an_error():
    with pytest.raises(CatalogError, match="op_overhead_us"):
        parse_catalog(GOOD + "op_overhead_us: -1\n", source="x.yaml", key="x")


def test_a_catalog_path_that_is_a_folder_says_so(tmp_path):
    folder = tmp_path / "catalogs"
    folder.mkdir()
    with pytest.raises(CatalogError, match="is a folder, not a YAML file"):
        load_catalog(str(folder))
