"""`profile-encoder measure`: real timings, and the GPU readings skipped cleanly without one."""
import pytest
import torch

from profiler.measure import build_for_timing, gpu_info, time_forward


def test_gpu_readings_are_skipped_cleanly_without_a_gpu():
    name, handle, note = gpu_info()
    if torch.cuda.is_available():
        assert name and handle is not None
    else:
        assert name is None and handle is None and note


def test_cpu_measurement_times_each_repeat():
    model = build_for_timing("sparseformer-sw-s", "cpu", {"layers": 1})
    m = time_forward(model, "sparseformer-sw-s", seconds=0.5, device="cpu", warmup=1,
                     repeats=3)
    assert len(m.times_s) == 3 and all(t > 0 for t in m.times_s)
    assert m.median_s == sorted(m.times_s)[1]
    assert m.power_w is None and "threads" in m.device_name


def test_measure_cli_prints_measured_beside_estimates(cli):
    result = cli("measure", "--model", "sparseformer-sw-s", "--seconds", "0.5", "--warmup", "0",
                 "--repeats", "1", "--device", "cpu", "--catalog", "epyc-7763")
    assert result.returncode == 0, result.stderr
    assert "measured_ms" in result.stdout and "estimated_ms" in result.stdout
    bad = cli("measure", "--model", "sparseformer-sw-s", "--device", "tpu")
    assert bad.returncode == 2 and "expected cpu or cuda" in bad.stderr


def test_rank_correlation_and_median_error_by_hand():
    from profiler.measure import median_relative_error, rank_correlation

    # ranks 1 2 3 4 against 2 1 3 4: d^2 sums to 2, rho = 1 - 6 * 2 / (4 * (16 - 1)) = 0.8
    assert rank_correlation([1, 2, 3, 4], [2, 1, 3, 4]) == pytest.approx(0.8)
    assert rank_correlation([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    # |1.5 - 1| / 1 = 0.5, |2 - 2| / 2 = 0, |3 - 4| / 4 = 0.25: the median is 0.25
    assert median_relative_error([1, 2, 4], [1.5, 2, 3]) == pytest.approx(0.25)


def test_measure_cli_compares_several_models_and_lengths(cli, tmp_path):
    catalog = tmp_path / "cpu.yaml"
    catalog.write_text("name: Test CPU\nkind: cpu\nmemory_bandwidth_gbs: 10\n"
                       "peaks: {fp32: 0.05}\nop_overhead_us: 5\n")
    out = tmp_path / "measured.md"
    result = cli("measure", "--models", "sparseformer-sw-s,sparseformer-dn-s", "--seconds",
                 "0.5,1", "--warmup", "0", "--repeats", "1", "--device", "cpu", "--threads",
                 "1", "--clock", "cpu", "--catalog", catalog, "--output", out)
    assert result.returncode == 0, result.stderr
    table = [line for line in out.read_text().splitlines() if line.startswith("| sparse")]
    assert len(table) == 4  # two models x two lengths
    assert "measured/estimated" in result.stdout and "Spearman rank correlation" in result.stdout
    assert "cpu clock" in result.stdout and "load average" in result.stdout
    old = cli("measure", "--model", "sparseformer-sw-s", "--seconds", "0.5", "--warmup", "0",
              "--repeats", "1", "--device", "cpu")
    assert old.returncode == 0 and "--model is deprecated; use --models" in old.stderr
    assert "estimates omitted" in old.stdout


def test_an_output_it_cannot_write_is_refused_before_any_timing(tmp_path, capsys):
    from profiler.cli import main

    (tmp_path / "file").write_text("")
    assert main(["measure", "--models", "vanilla", "--device", "cpu",
                 "--output", str(tmp_path / "file" / "m.md")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "is not a folder" in captured.err


def test_the_cpu_clock_beside_more_threads_is_refused(capsys):
    """The CPU clock adds the threads' times up: on two threads it is no forward's time."""
    from profiler.cli import main

    assert main(["measure", "--models", "vanilla", "--device", "cpu", "--clock", "cpu",
                 "--threads", "2"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1
    assert "use --threads 1, not 2" in captured.err
