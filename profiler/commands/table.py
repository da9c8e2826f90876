"""``profile-encoder table``: Table 1 of the paper for any subset of the zoo."""
from __future__ import annotations

FORMATS = ("md", "latex", "csv", "json")


def add_common_table_options(p) -> None:
    from ..cli import positive_float

    p.add_argument("--seconds", type=positive_float, default=10.0,
                   help="utterance length in seconds at 16 kHz (default 10, as in the paper)")
    p.add_argument("--catalog", default="a100",
                   help="hardware catalog: a shipped name (a100, a100-80gb, h100-sxm, h200, "
                        "epyc-7763) or a path to a YAML file (default a100)")
    p.add_argument("--convention", choices=("bayesian-bits", "paper"), default="bayesian-bits",
                   help="bayesian-bits (default): BOPs = MACs x bits x bits, G = 1e9; "
                        "paper: Table 1's own scaling (see the README)")
    p.add_argument("--estimate", choices=("paper", "roofline"),
                   help="runtime model (default: paper under --convention paper, else roofline)")


def add_parser(sub) -> None:
    from .arguments import add_set_option

    p = sub.add_parser(
        "table", help="Table 1 (storage, FLOPs, BOPs, estimated time) for zoo models",
        description="Profile zoo models on one utterance and print Table 1 of Jeon et al. "
                    "(2023) for them. Models are built on the meta device: the whole table "
                    "takes seconds.",
    )
    p.add_argument("--models", action="append", metavar="NAMES",
                   help="comma-separated zoo names, or 'all' (default); repeatable")
    add_set_option(p, "override a zoo config field of every listed model (weight_bits=2, "
                      "activation_bits=4, layers=4...)")
    add_common_table_options(p)
    p.add_argument("--format", choices=FORMATS, default="md", help="output format (md)")
    p.add_argument("--compare-paper", action="store_true",
                   help="put the paper's value and the relative difference beside each cell")
    p.add_argument("--output", help="write to this file instead of stdout")
    p.set_defaults(run=run)


def caption(args, catalog, estimate: str) -> str:
    return (f"Input: {args.seconds:g} s at 16 kHz, batch 1. Convention: {args.convention}. "
            f"Estimated time: {estimate} model on {catalog.name}.")


def run(args) -> int:
    import sys

    from ..catalog import load_catalog
    from ..conventions import get_convention
    from ..files import atomic_write
    from ..formats import render
    from ..table import build_rows, resolve_models
    from .arguments import parse_set

    names = resolve_models(args.models)
    overrides = parse_set(args.set)
    catalog = load_catalog(args.catalog)
    convention = get_convention(args.convention)
    estimate = args.estimate or convention.default_estimate
    rows = build_rows(names, seconds=args.seconds, convention=convention, catalog=catalog,
                      estimate=estimate, progress=sys.stderr.isatty(), overrides=overrides)
    text = render(rows, args.format, caption=caption(args, catalog, estimate),
                  compare=args.compare_paper)
    if args.output:
        atomic_write(args.output, text)
    else:
        sys.stdout.write(text)
    return 0
