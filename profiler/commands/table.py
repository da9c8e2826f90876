"""``profile-encoder table``: Table 1 of the paper for any subset of the zoo."""
from __future__ import annotations

from ..option_values import (
    CONVENTION_NAMES,
    DEFAULT_CONVENTION,
    PAPER_CONVENTION,
    ROOFLINE_ESTIMATE,
)
from ..reference import PAPER_SECONDS
from .arguments import (
    add_catalog_option,
    add_estimate_option,
    add_mode_option,
    add_models_option,
    add_output_option,
    add_seconds_option,
    check_output,
    write_output,
)

FORMATS = ("md", "latex", "csv", "json")


def add_common_table_options(p) -> None:
    add_seconds_option(p, "utterance length in seconds at the zoo's sample rate "
                          f"(default {PAPER_SECONDS:g}, as in the paper)", default=PAPER_SECONDS)
    add_catalog_option(p)
    p.add_argument("--convention", choices=CONVENTION_NAMES, default=DEFAULT_CONVENTION,
                   help=f"{DEFAULT_CONVENTION} (default): BOPs = MACs x bits x bits, G = 1e9; "
                        "paper: Table 1's own scaling (see the README)")
    from ..estimator import ESTIMATES

    add_estimate_option(p, tuple(ESTIMATES), None,
                        f"{PAPER_CONVENTION} under --convention {PAPER_CONVENTION}, else "
                        f"{ROOFLINE_ESTIMATE}")


def add_parser(sub) -> None:
    from .arguments import add_set_option

    p = sub.add_parser(
        "table", help="Table 1 (storage, FLOPs, BOPs, estimated time) for zoo models",
        description="Profile zoo models on one utterance and print Table 1 of Jeon et al. "
                    "(2023) for them. Models are built on the meta device: the whole table "
                    "takes seconds.",
    )
    add_models_option(p, "the rows")
    add_set_option(p, "override a zoo config field of every listed model (weight_bits=2, "
                      "activation_bits=4, layers=4...; default: none)")
    add_common_table_options(p)
    p.add_argument("--format", choices=FORMATS, default="md",
                   help=f"output format: {', '.join(FORMATS)} (default md)")
    p.add_argument("--compare-paper", action="store_true",
                   help="put the paper's value and the relative difference beside each cell "
                        "(default: off)")
    add_output_option(p, "the table")
    add_mode_option(p, "Table 1", "the cost of one training step (forward, backward, AdamW) "
                    "and its peak memory, a view of its own")
    p.set_defaults(run=run)


def train_caption(seconds: float) -> str:
    from ..train_step import ADAMW_FLOPS_PER_PARAMETER

    return (f"One training step on {seconds:g} s of audio, batch 1, train() mode: forward, "
            "backward (float: binarized layers train through straight-through estimators), "
            f"AdamW ({ADAMW_FLOPS_PER_PARAMETER} FLOPs per parameter). G = 1e9, MB = 1e6. "
            "Peak memory: weights, gradients, AdamW state and the live activations (see the "
            "README).")


def run(args) -> int:
    import sys

    from ..catalog import load_catalog
    from ..columns import TRAIN_COLUMNS
    from ..conventions import get_convention
    from ..errors import UsageError
    from ..formats import computed_with, render
    from ..table import build_rows, caption, check_estimate, resolve_models
    from .arguments import parse_set

    check_output(args.output)
    names = resolve_models(args.models)
    overrides = parse_set(args.set)
    catalog = load_catalog(args.catalog)
    convention = get_convention(args.convention)
    estimate = args.estimate or convention.default_estimate
    train = args.mode == "train"
    if train and (args.compare_paper or args.convention != DEFAULT_CONVENTION
                  or args.estimate):
        raise UsageError("--mode train: the paper has no training costs and the table no time "
                         f"estimate (no --compare-paper or --estimate, --convention "
                         f"{DEFAULT_CONVENTION} only)")
    if not train:
        check_estimate(estimate, args.convention)
    if args.compare_paper and not train and (args.convention != PAPER_CONVENTION or overrides
                                             or args.seconds != PAPER_SECONDS):
        raise UsageError(f"--compare-paper sets the paper's Table 1 beside the same models "
                         f"counted its way: give --convention {PAPER_CONVENTION}, "
                         f"--seconds {PAPER_SECONDS:g} (the default) and no --set")
    rows = build_rows(names, seconds=args.seconds, convention=convention, catalog=catalog,
                      estimate=estimate, progress=sys.stderr.isatty(), overrides=overrides,
                      mode=args.mode)
    text = render(rows, args.format, compare=args.compare_paper,
                  caption=train_caption(args.seconds) if train else
                  caption(args.seconds, args.convention, estimate, catalog),
                  context=computed_with(args.seconds, args.convention,
                                        *((None, None) if train else (estimate, catalog.key))),
                  columns=TRAIN_COLUMNS if train else None)
    write_output(text, args.output)
    return 0
