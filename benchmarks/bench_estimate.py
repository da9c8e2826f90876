"""Measured against estimated forward-pass times on this CPU: the roofline, the kernel-aware
estimate, and PyTorch's RuntimeEstimator where it runs.

For each thread count: calibrates a catalog on this machine (`profile-encoder calibrate`,
kernels included), then times the five full-precision zoo models on 1, 10, 30 and 60 s of
audio (`profile-encoder measure --estimate roofline,kernel`) and the five BQ models deployed
on packed kernels (`models.deploy`, `measure --deployed`) on 1, 10 and 60 s, and compares
each time with both estimates on the calibrated catalog (for a deployed model the kernel
estimate prices its own packed kernels; the roofline is the deployed one). Also tries
``torch.distributed._tools.runtime_estimator.RuntimeEstimator`` in its roofline mode
(``operator-level-cost-model``) on the same rows, and says why where it cannot run. Writes
``reports/measured_vs_estimated_cpu.md`` (this script is its one writer) with the
conditions of the run, and the catalogs beside it
(``reports/measured_vs_estimated_cpu_<N>threads.yaml``).

One thread is timed on the CPU clock (other processes on a shared machine do not stretch
it); more threads on the wall clock (a CPU clock would add the threads' times up).

    python benchmarks/bench_estimate.py
    python benchmarks/bench_estimate.py --threads 1 --seconds 1,10 --preliminary "why"
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the profiler from a checkout that is not installed

from models.constants import BINARIZED_PREFIX  # noqa: E402
from profiler.option_values import split_list  # noqa: E402

FULL_PRECISION = ("vanilla", "conformer-s", "squeezeformer-xs", "sparseformer-dn-s",
                  "sparseformer-sw-s")
BINARIZED = tuple(BINARIZED_PREFIX + name for name in FULL_PRECISION)
DEPLOYED_HEADING = "### BQ models deployed on packed kernels"
LIMITS = """\
## What the estimates leave out

- The roofline is the documented lower bound: every multiply-accumulate at the calibrated
  peak of a large square `torch.mm`, every other op at the copy bandwidth. Convolutions,
  skinny matrix multiplies (attention with head width 36-64, the T x T products of long
  inputs), softmax and transcendental elementwise ops run below both on a CPU, and ops
  without arithmetic (copies, masks) are counted as moving no bytes.
- The kernel estimate prices each kernel PyTorch dispatches (traced on meta tensors, under
  `inference_mode`) by its calibrated efficiency (the median of repeated runs):
  matrix multiplies by a separable model of M, N and K measured in a `Linear`'s layout
  with its weight out of the core's caches (so a product of two activations already in
  cache, as in attention, is priced a little high at small M), convolutions as their
  unfolded matrix multiply times one measured factor (depthwise ones per MAC), the rest
  per element of their class at their size. It does not model a kernel's strides (a
  transposed input), the caches a kernel shares with the one before it, or how a fused
  attention kernel differs from its two products and softmax.
- A deployed BQ model's packed kernels are priced by the same separable shape model,
  measured on the packed product (K in bits), packing per value and the packed depthwise
  convolution per MAC; its fused attention core as its packed products plus its T x T
  scores at the cached rates of plain arithmetic, softmax and packing (the scores stay in
  cache, a tile of 16 query rows at a time); the float work between kernels at the float
  rates.
- The time per op is one figure for every op (measured on a stack of tiny layers); the
  Python a zoo module runs between its ops (shapes, masks, branches) is not in it.
- On a shared machine, other processes evict the caches and share the memory bus even
  when the CPU clock leaves their time out; a quiet machine gives steadier figures.
"""


def run(args: list[str]) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run([sys.executable, "-m", "profiler", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"profile-encoder {' '.join(args[:1])} failed: {done.stderr.strip()}")
    return done.stdout


def runtime_estimator_ms(name: str, seconds: float) -> float:
    """PyTorch's RuntimeEstimator, roofline mode, on zoo model ``name`` under FakeTensorMode
    (as its documentation prescribes); raises where it cannot run."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.distributed._tools.runtime_estimator import RuntimeEstimator

    import models
    from models.constants import samples_in

    estimator = RuntimeEstimator()
    with FakeTensorMode():
        model = models.build(name, seed=0).eval()
        wave = torch.randn(1, samples_in(seconds))
        with torch.no_grad(), estimator("operator-level-cost-model"):
            model(wave)
    return estimator.total_runtime


def runtime_estimator_section(rows: list[tuple[str, float]]) -> list[str]:
    lines = ["## PyTorch's RuntimeEstimator (roofline mode)", ""]
    try:
        values = [(name, seconds, runtime_estimator_ms(name, seconds)) for name, seconds in rows]
    except Exception as error:  # its own refusal, reported as it says it
        text = str(error).strip().splitlines()[0] if str(error).strip() else repr(error)
        return lines + [
            f"Not run on this CPU: `{type(error).__name__}: {text}`. Its roofline takes the peak "
            "and the memory bandwidth from `torch._inductor.utils.get_device_tflops` and "
            "`get_gpu_dram_gbps`, which read a CUDA device; it has no CPU figures (and no "
            "way to pass a catalog). On a machine with a GPU this section lists its "
            "estimates for the same rows.", ""]
    lines += ["| model | audio_s | RuntimeEstimator_ms |", "|---|---|---|"]
    lines += [f"| {n} | {s:g} | {ms:.3f} |" for n, s, ms in values]
    return lines + [""]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", default="1,10,30,60", help="audio lengths (1,10,30,60)")
    parser.add_argument("--models", default=",".join(FULL_PRECISION))
    parser.add_argument("--bq-seconds", default="1,10,60",
                        help="audio lengths of the deployed BQ rows (1,10,60)")
    parser.add_argument("--bq-models", default=",".join(BINARIZED),
                        help="BQ models timed deployed (all five; empty: none)")
    parser.add_argument("--threads", default="1,2", help="torch thread counts (1,2)")
    parser.add_argument("--duration", default="1", help="calibration seconds per figure (1)")
    parser.add_argument("--repeats", default="3")
    parser.add_argument("--preliminary", metavar="WHY",
                        help="mark the report preliminary, saying why")
    parser.add_argument("--out", type=Path,
                        default=ROOT / "reports" / "measured_vs_estimated_cpu.md")
    args = parser.parse_args()

    import torch

    from profiler.calibration import cpu_name
    from profiler.files import atomic_write, check_writable

    check_writable(args.out)
    sections = []
    for threads in [int(t) for t in split_list(args.threads)]:
        clock = "cpu" if threads == 1 else "wall"
        catalog = args.out.with_name(f"{args.out.stem}_{threads}threads.yaml")
        run(["calibrate", "--output", str(catalog), "--clock", clock, "--duration",
             args.duration, "--threads", str(threads)])
        load_before = os.getloadavg()
        table = run(["measure", "--models", args.models, "--seconds", args.seconds, "--device",
                     "cpu", "--catalog", str(catalog), "--clock", clock, "--warmup", "1",
                     "--repeats", args.repeats, "--threads", str(threads),
                     "--estimate", "roofline,kernel"])
        deployed = run(["measure", "--models", args.bq_models, "--deployed", "--seconds",
                        args.bq_seconds, "--device", "cpu", "--catalog", str(catalog),
                        "--clock", clock, "--warmup", "1", "--repeats", args.repeats,
                        "--threads", str(threads), "--estimate", "roofline,kernel"]
                       ) if args.bq_models else ""
        load_after = os.getloadavg()
        print(table + deployed)
        sections += [
            f"## {threads} thread{'s' if threads > 1 else ''}, {clock} clock", "",
            f"- Load average before the timings: {load_before[0]:.2f} (1 min), "
            f"{load_before[1]:.2f} (5 min); after: {load_after[0]:.2f}, {load_after[1]:.2f}.",
            f"- Catalog: calibrated in the same run, `{os.path.relpath(catalog, ROOT)}` "
            "(each figure with how it was measured).", "", table.rstrip(), ""]
        if deployed:
            sections += [DEPLOYED_HEADING, "", deployed.rstrip(), ""]
    rows = [(name, float(s)) for name in split_list(args.models) for s in split_list(args.seconds)]
    lines = ["# Measured against estimated forward-pass times on this CPU", ""]
    if args.preliminary:
        lines += [f"**Preliminary:** {args.preliminary}", ""]
    lines += [
        "Written by `python benchmarks/bench_estimate.py` (see its docstring to rerun).",
        "Estimates: `roofline` (the deployed roofline, a lower bound) and `kernel` (each "
        "kernel at its calibrated efficiency; see `profiler/kernel_estimate.py`).",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores visible; Linux "
        f"{platform.release()}; Python {platform.python_version()}, torch {torch.__version__}. "
        "One thread is timed on the CPU clock (this process's CPU time: other processes "
        "do not add to it), more threads on the wall clock.",
        "",
        *sections,
        *runtime_estimator_section(rows),
        LIMITS,
    ]
    atomic_write(args.out, "\n".join(lines))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
