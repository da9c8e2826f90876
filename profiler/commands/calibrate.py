"""``profile-encoder calibrate``: a catalog measured on this machine."""
from __future__ import annotations


def add_parser(sub) -> None:
    from ..calibration import DEFAULT_COPY_MB, DEFAULT_DURATION_S, DEFAULT_MATRIX_SIZE
    from .arguments import add_device_option, add_timing_options, positive_float, positive_int

    p = sub.add_parser(
        "calibrate", help="measure this machine's peaks and write a catalog",
        description="Measure matrix-multiply throughput per precision this machine runs fast "
                    "(fp32; bf16, fp16 and int8 where they are at least as fast) and memory "
                    "bandwidth (a large tensor copy), then the kernels the kernel estimate prices "
                    "(matrix-multiply efficiency by shape, convolutions, time per element of "
                    "elementwise, reduction, softmax, normalization and copy kernels), and "
                    "write them as a catalog usable with "
                    "--catalog FILE.yaml. Each figure is the best of repeated runs (the "
                    "kernels' the median) and the file says how it was measured. The default "
                    "run takes about half a minute; a longer --duration gets closer to the "
                    "peak on a busy machine.",
    )
    p.add_argument("--output", required=True, metavar="FILE.yaml", help="catalog to write")
    add_device_option(p, "cpu", "cpu")
    p.add_argument("--duration", type=positive_float, default=DEFAULT_DURATION_S,
                   help=f"seconds of timed runs per figure (default {DEFAULT_DURATION_S:g})")
    p.add_argument("--matrix-size", type=positive_int, default=DEFAULT_MATRIX_SIZE,
                   help=f"side of the square matrices (default {DEFAULT_MATRIX_SIZE})")
    p.add_argument("--copy-mb", type=positive_int, default=DEFAULT_COPY_MB,
                   help=f"MiB copied for the bandwidth (default {DEFAULT_COPY_MB}; keep it "
                        "above the last-level cache)")
    p.add_argument("--quick", action="store_true",
                   help="a smaller grid of kernel shapes and sizes (seconds; for tests) "
                        "(default: the full grid)")
    add_timing_options(p)
    p.set_defaults(run=run)


def run(args) -> int:
    import sys

    from ..calibration import calibrate
    from ..files import atomic_write, check_writable
    from .arguments import use_timing_options

    output = check_writable(args.output)  # before the measuring, not after it
    use_timing_options(args, args.device)
    result = calibrate(args.device, duration_s=args.duration, matrix_size=args.matrix_size,
                       copy_mb=args.copy_mb, clock=args.clock, quick_kernels=args.quick,
                       progress=lambda line: print(line, file=sys.stderr))
    text = result.to_yaml()
    result.catalog()  # what is written must load
    atomic_write(output, text)
    print(f"wrote {output} (use it with --catalog {output})", file=sys.stderr)
    return 0
