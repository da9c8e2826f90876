"""``profile-encoder measure``: real forward-pass times beside the estimates."""
from __future__ import annotations

from ..reference import PAPER_SECONDS


def add_parser(sub) -> None:
    from ..estimator import ESTIMATES, KERNEL_ESTIMATES
    from ..option_values import ROOFLINE_ESTIMATE
    from .arguments import (
        add_catalog_option,
        add_deprecated_alias,
        add_device_option,
        add_estimate_option,
        add_models_option,
        add_output_option,
        add_seconds_option,
        add_timing_options,
        non_negative_int,
        parse_model_list,
        positive_int,
    )

    p = sub.add_parser(
        "measure", help="time real forward passes and compare them with an estimate",
        description="Build zoo models with real weights, time forward passes (median after "
                    "warm-up; CUDA events on a GPU) on utterances of each length, and print "
                    "the measured time, the estimated time and their ratio, then, across all "
                    "rows, Spearman's rank correlation and the median relative error of the "
                    "estimate. Calibrate the catalog first on a CPU: `profile-encoder "
                    "calibrate --output cpu.yaml`, then --catalog cpu.yaml. On a GPU the name "
                    "and board power come from nvidia-ml-py; without one those are skipped.",
    )
    add_models_option(p, "the models to time", default="none; give at least one")
    add_deprecated_alias(p, "--model", "--models", dest="models", append=True,
                         type=parse_model_list, metavar="NAMES")
    add_seconds_option(p, f"utterance lengths in seconds, comma-separated (default "
                          f"{PAPER_SECONDS:g})", default=[PAPER_SECONDS], several=True)
    add_device_option(p, None, "cuda if present")
    p.add_argument("--warmup", type=non_negative_int, default=2, help="untimed passes (2)")
    p.add_argument("--repeats", type=positive_int, default=5, help="timed passes (5)")
    add_catalog_option(p, default=None, help_default="the shipped one matching the GPU; "
                                                     "none on a CPU, where estimates are then "
                                                     "left out")
    add_estimate_option(p, (*ESTIMATES, *KERNEL_ESTIMATES), [ROOFLINE_ESTIMATE],
                        f"{ROOFLINE_ESTIMATE}, a lower bound; kernel needs a catalog from "
                        "`profile-encoder calibrate`", several=True)
    add_timing_options(p)
    add_output_option(p, "the table (markdown)", also_printed=True)
    p.add_argument("--deployed", action="store_true",
                   help="time BQ models deployed (models.deploy: W1A1 products on packed bits, "
                        "CPU; C++ kernels compiled on first use). Their binarizers are first "
                        "initialized by one training-mode forward (seed 0) on the measured "
                        "utterance (default: the simulated models)")
    p.set_defaults(run=run)


def run(args) -> int:
    import sys

    import torch
    from tabulate import tabulate

    from ..catalog import catalog_for_device_name, load_catalog
    from ..errors import UsageError
    from ..estimator import ESTIMATES, KERNEL_ESTIMATES
    from ..files import atomic_write
    from ..measure import (
        build_for_timing,
        gpu_info,
        load_note,
        median_relative_error,
        rank_correlation,
        time_forward,
    )
    from ..table import resolve_models
    from .arguments import check_output, use_timing_options

    if not args.models:
        raise UsageError("give --models NAMES (or --models all)")
    names = resolve_models(args.models)
    check_output(args.output)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    use_timing_options(args, device)
    catalog = load_catalog(args.catalog) if args.catalog else None
    if catalog is None and device.startswith("cuda"):
        name, _, _ = gpu_info()
        catalog = catalog_for_device_name(name or torch.cuda.get_device_name())
    several = len(args.estimate) > 1
    rows, device_name, notes, loads = [], "", set(), []
    if args.deployed and device != "cpu":
        raise UsageError("--deployed runs the packed CPU kernels: use it with --device cpu")
    for name in names:
        model = build_for_timing(name, device)
        if args.deployed:
            model = _deployed(model, name, args.seconds[0])
        for seconds in args.seconds:
            m = time_forward(model, name, seconds=seconds, device=device, warmup=args.warmup,
                             repeats=args.repeats, clock=args.clock)
            device_name = m.device_name
            notes.update(m.notes)
            loads.append(load_note())
            label = f"{name} (deployed)" if args.deployed else name
            row = {"model": label, "audio_s": seconds, "measured_ms": m.median_s * 1e3,
                   "spread_ms": (max(m.times_s) - min(m.times_s)) * 1e3}
            if catalog is not None:
                for estimate in args.estimate:
                    estimated = _estimated_s(estimate, name, seconds, catalog,
                                             model if args.deployed else None)
                    row[f"{estimate}_ms" if several else "estimated_ms"] = estimated * 1e3
                    row[f"measured/{estimate}" if several else "measured/estimated"] = (
                        m.median_s / estimated)
            if m.power_w is not None:
                row["power_w"] = m.power_w
            rows.append(row)
            print(f"measured {label} at {seconds:g} s: {row['measured_ms']:.2f} ms",
                  file=sys.stderr)
        del model
    lengths = ", ".join(f"{s:g}" for s in args.seconds)
    header = (f"Forward pass of one utterance (batch 1) of {lengths} s, on {device_name}; "
              f"median of {args.repeats} after {args.warmup} warm-up passes, {args.clock} clock.")
    if catalog is not None:
        described = {**ESTIMATES, **KERNEL_ESTIMATES}
        what = "; ".join((f"{e}: {described[e]}" if several else described[e])
                         for e in args.estimate)
        header += f" Estimate{'s' if several else ''}: {what}, on the {catalog.name} catalog."
    else:
        header += " No catalog matches this device: estimates omitted (give --catalog)."
    text = header + "\n\n" + tabulate(
        [[_cell(v) for v in r.values()] for r in rows],
        headers=list(rows[0].keys()), tablefmt="github", disable_numparse=True) + "\n"
    if catalog is not None and len(rows) > 1:
        measured = [r["measured_ms"] for r in rows]
        for estimate in args.estimate:
            estimated = [r[f"{estimate}_ms" if several else "estimated_ms"] for r in rows]
            which = f", {estimate}" if several else ""
            text += (f"\nAcross the {len(rows)} rows{which}: Spearman rank correlation "
                     f"{rank_correlation(measured, estimated):.3f}, median relative error "
                     f"{100 * median_relative_error(measured, estimated):.1f} % "
                     "(|estimated - measured| / measured).\n")
    text += f"\nConditions: {loads[0]} at the start, {loads[-1]} at the end.\n"
    for note in sorted(notes):
        text += f"\nnote: {note}\n"
    print(text, end="")
    if args.output:
        atomic_write(args.output, text)
    return 0


def _deployed(model, name: str, seconds: float):
    from models.deployment import DeployError

    from ..errors import UsageError
    from ..measure import deploy_for_timing

    try:
        return deploy_for_timing(model, seconds)
    except (ValueError, DeployError) as error:
        raise UsageError(f"--deployed {name}: {error}") from None


def _estimated_s(estimate: str, name: str, seconds: float, catalog, deployed=None) -> float:
    """Seconds by ``estimate`` for zoo model ``name`` on ``seconds`` of audio; the kernel
    estimate of a ``deployed`` model traces that model's own kernels (on a meta copy)."""
    from ..conventions import get_convention
    from ..estimator import KERNEL_ESTIMATES, module_calls, op_calls
    from ..kernel_estimate import kernel_time
    from ..option_values import DEFAULT_CONVENTION, PAPER_CONVENTION, PAPER_ESTIMATE
    from ..table import profile_zoo_model, trace_zoo_kernels, zoo_estimate

    convention = get_convention(PAPER_CONVENTION if estimate == PAPER_ESTIMATE
                                else DEFAULT_CONVENTION)
    item = profile_zoo_model(name, seconds, convention)
    if estimate in KERNEL_ESTIMATES and deployed is not None:
        import copy

        import torch

        from models.constants import samples_in

        from ..kernel_estimate import model_kernel_time

        wave = torch.empty(1, samples_in(seconds), device="meta")
        return model_kernel_time(copy.deepcopy(deployed).to("meta"), wave, catalog=catalog)
    if estimate in KERNEL_ESTIMATES:
        return kernel_time(trace_zoo_kernels(name, seconds), catalog, op_calls(item.profile),
                           module_calls(item.profile))
    return zoo_estimate(item, convention, catalog, estimate)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:.1f}"
    return str(value)
