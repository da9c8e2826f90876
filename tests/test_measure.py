"""`profile-encoder measure`: real timings, and the GPU readings skipped cleanly without one."""
import torch

from profiler.measure import gpu_info, measure


def test_gpu_readings_are_skipped_cleanly_without_a_gpu():
    name, handle, note = gpu_info()
    if torch.cuda.is_available():
        assert name and handle is not None
    else:
        assert name is None and handle is None and note


def test_cpu_measurement_times_each_repeat():
    m = measure("sparseformer-sw-s", seconds=0.5, device="cpu", warmup=1, repeats=3,
                overrides={"layers": 1})
    assert len(m.times_s) == 3 and all(t > 0 for t in m.times_s)
    assert m.median_s == sorted(m.times_s)[1]
    assert m.power_w is None and "threads" in m.device_name


def test_measure_cli_prints_measured_beside_estimates(cli):
    result = cli("measure", "--model", "sparseformer-sw-s", "--seconds", "0.5", "--warmup", "0",
                 "--repeats", "1", "--device", "cpu", "--catalog", "epyc-7763")
    assert result.returncode == 0, result.stderr
    assert "measured_ms" in result.stdout and "roofline_ms" in result.stdout
    bad = cli("measure", "--model", "sparseformer-sw-s", "--device", "tpu")
    assert bad.returncode == 2 and "expected cpu or cuda" in bad.stderr
