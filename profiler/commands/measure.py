"""``profile-encoder measure``: real forward-pass times beside the estimates."""
from __future__ import annotations


def add_parser(sub) -> None:
    from .arguments import non_negative_int, positive_float, positive_int

    p = sub.add_parser(
        "measure", help="time real forward passes and print them beside the estimates",
        description="Build zoo models with real weights, time forward passes (median after "
                    "warm-up; CUDA events on a GPU) and print the measured time beside the "
                    "paper and roofline estimates. On a GPU the name and board power come from "
                    "nvidia-ml-py; without one those are skipped.",
    )
    p.add_argument("--model", action="append", metavar="NAMES",
                   help="zoo names (comma-separated, repeatable) or 'all'")
    p.add_argument("--seconds", type=positive_float, default=10.0,
                   help="utterance length (default 10)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if present)")
    p.add_argument("--warmup", type=non_negative_int, default=2, help="untimed passes (2)")
    p.add_argument("--repeats", type=positive_int, default=5, help="timed passes (5)")
    p.add_argument("--catalog", default=None,
                   help="catalog for the estimates (default: the one matching the GPU; none "
                        "on CPU)")
    p.add_argument("--output", help="also write the table (markdown) to this file")
    p.set_defaults(run=run)


def run(args) -> int:
    import sys

    import torch
    from tabulate import tabulate

    from ..catalog import catalog_for_device_name, load_catalog
    from ..conventions import get_convention
    from ..errors import UsageError
    from ..estimator import paper_time, roofline_time
    from ..files import atomic_write
    from ..measure import gpu_info, measure
    from ..table import profile_zoo_model, resolve_models

    if not args.model:
        raise UsageError("give --model NAME (or --model all)")
    names = resolve_models(args.model)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA device is available")
    if not (device == "cpu" or device.startswith("cuda")):
        raise UsageError(f"--device {device!r}: expected cpu or cuda")
    catalog = load_catalog(args.catalog) if args.catalog else None
    if catalog is None and device.startswith("cuda"):
        name, _, _ = gpu_info()
        catalog = catalog_for_device_name(name or torch.cuda.get_device_name())
    rows, device_name, notes = [], "", set()
    bayesian, paper = get_convention("bayesian-bits"), get_convention("paper")
    for name in names:
        m = measure(name, seconds=args.seconds, device=device, warmup=args.warmup,
                    repeats=args.repeats)
        device_name = m.device_name
        notes.update(m.notes)
        row = {"model": name, "measured_ms": m.median_s * 1e3,
               "min_ms": min(m.times_s) * 1e3, "max_ms": max(m.times_s) * 1e3}
        if catalog is not None:
            fp = profile_zoo_model(name, args.seconds, bayesian).profile
            cols = paper.columns(profile_zoo_model(name, args.seconds, paper).profile.totals)
            row["roofline_ms"] = roofline_time(fp, catalog) * 1e3
            row["paper_formula_ms"] = paper_time(cols["bop_nonq_g"], cols["bop_bq_g"], catalog) * 1e3
        if m.power_w is not None:
            row["power_w"] = m.power_w
        rows.append(row)
        print(f"measured {name}: {row['measured_ms']:.2f} ms", file=sys.stderr)
    header = (f"Forward pass of one {args.seconds:g} s utterance (batch 1), {device_name}; "
              f"median of {args.repeats} after {args.warmup} warm-up passes.")
    if catalog is not None:
        header += f" Estimates on the {catalog.name} catalog."
    else:
        header += " No catalog matches this device: estimates omitted (give --catalog)."
    text = header + "\n\n" + tabulate(
        [[f"{v:.3f}" if isinstance(v, float) else v for v in r.values()] for r in rows],
        headers=list(rows[0].keys()), tablefmt="github", disable_numparse=True) + "\n"
    for note in sorted(notes):
        text += f"\nnote: {note}\n"
    print(text, end="")
    if args.output:
        atomic_write(args.output, text)
    return 0
