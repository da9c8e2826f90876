"""Times a 1 000-point design-space sweep, cold (profile cache off), as `profile-encoder
sweep` runs it: every point built and profiled on meta tensors by --workers processes.
The target: under 10 minutes on 2 cores.

The grid: the four encoder families x layers {2, 4, 6, 8, 12, 16} x width {144, 192, 256,
384, 512} x heads {4, 8} x bit pairs {W32A32, W1A1, W4A4, W8A8} (x block size {16, 32} for
the Sparseformer), 1 000 of its points spread evenly over it, at --seconds.

    python benchmarks/bench_sweep.py                  # 1 000 points, 10 s input, 2 workers
    python benchmarks/bench_sweep.py --points 100 --workers 1
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from benchmark_report import BY_NAME  # a sibling: the scripts run from benchmarks/

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = BY_NAME["sweep_1000_points"].target[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1000, help="points (default 1000)")
    parser.add_argument("--workers", type=int, default=max(1, min(2, os.cpu_count() or 1)),
                        help="processes (default min(2, CPU count))")
    parser.add_argument("--seconds", type=float, default=10.0, help="input (default 10)")
    args = parser.parse_args()
    os.environ["PROFILE_ENCODER_CACHE"] = "off"   # cold: every point counted
    sys.path.insert(0, str(ROOT))
    started = time.perf_counter()
    from models.quantization import Quantization
    from profiler.commands.arguments import DEFAULT_CATALOG
    from profiler.option_values import DEFAULT_CONVENTION, ROOFLINE_ESTIMATE
    from profiler.sweep import Grid, SweepSettings, profile_points

    bits = tuple(Quantization.parse(b) for b in ("W32A32", "W1A1", "W4A4", "W8A8"))
    grid = Grid(("transformer", "conformer", "squeezeformer", "sparseformer"),
                (2, 4, 6, 8, 12, 16), (144, 192, 256, 384, 512), (4, 8), bits, (16, 32))
    points, skipped = grid.points()
    if len(points) < args.points:
        print(f"the grid has only {len(points)} points", file=sys.stderr)
        return 1
    points = [points[i * len(points) // args.points] for i in range(args.points)]
    ready = time.perf_counter()
    settings = SweepSettings(args.seconds, DEFAULT_CONVENTION, DEFAULT_CATALOG, ROOFLINE_ESTIMATE)
    rows = profile_points(points, settings, workers=args.workers)
    done = time.perf_counter()
    assert len(rows) == len(points)
    load = os.getloadavg()
    total = done - started
    print(f"{len(rows)} points, {args.workers} workers, {args.seconds:g} s input: "
          f"{total:.1f} s in all ({ready - started:.1f} s imports and grid, "
          f"{done - ready:.1f} s profiling), {len(rows) / (done - ready):.2f} points/s; "
          f"target {TARGET_SECONDS:.0f} s for 1 000: "
          f"{'met' if total * 1000 / len(rows) < TARGET_SECONDS else 'MISSED'}; "
          f"load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
