"""``profile-encoder sweep``: a grid of encoder family x shape x bit pair, profiled on meta
tensors, held against stated budgets, written as CSV/JSON with a Pareto-front figure."""
from __future__ import annotations

import os

from .arguments import checked_by, comma_list, positive_int
from .table import add_common_table_options

# Strings, so that argparse reads them with the option's own type, and only when the
# sweep runs: the parser of every command is built without importing the zoo (see cli.py).
DEFAULT_LAYERS, DEFAULT_DIMS, DEFAULT_HEADS = "4,8,16", "144,256", "4"
DEFAULT_BITS = "W32A32,W1A1"
DEFAULT_OUT = "sweep"
DEFAULT_WORKERS = max(1, min(2, os.cpu_count() or 1))
_ints = comma_list(positive_int, "positive whole numbers")


def _bit_pair(text: str):
    from models.quantization import Quantization

    return Quantization.parse(text)


def add_parser(sub) -> None:
    from ..budgets import EXAMPLE, Budget

    p = sub.add_parser(
        "sweep", help="design-space sweep: family x layers x width x heads x bits, budgets, "
                      "Pareto front",
        description="Profile every point of a grid of encoder family x layers x width x "
                    "heads x bit pair (x the Sparseformer's block size) on meta tensors, "
                    "hold each against the --budget limits and write sweep.csv, sweep.json "
                    "and pareto.png (storage against estimated time) into --out. "
                    "Combinations that cannot build are skipped and counted.",
    )
    p.add_argument("--family", type=comma_list(str, "encoder families"), metavar="NAMES",
                   help="encoder families, comma-separated (default: every family of the "
                        "zoo: transformer, conformer, squeezeformer, sparseformer)")
    p.add_argument("--layers", type=_ints, default=DEFAULT_LAYERS, metavar="N[,N...]",
                   help=f"encoder layers (default {DEFAULT_LAYERS})")
    p.add_argument("--dim", type=_ints, default=DEFAULT_DIMS, metavar="D[,D...]",
                   help=f"model width (default {DEFAULT_DIMS}); the FFN keeps the family's "
                        "ratio (4x)")
    p.add_argument("--heads", type=_ints, default=DEFAULT_HEADS, metavar="H[,H...]",
                   help=f"attention heads (default {DEFAULT_HEADS})")
    p.add_argument("--bits", type=comma_list(checked_by(_bit_pair), "bit pairs"),
                   default=DEFAULT_BITS, metavar="WkAm[,...]",
                   help=f"weight/activation bit pairs (default {DEFAULT_BITS}); W1A1 is the "
                        "family's BiT (bq-) model")
    p.add_argument("--block-size", type=_ints, metavar="B[,B...]",
                   help="the Sparseformer's block size (default: the zoo's, 32); other "
                        "families are profiled once, without one")
    p.add_argument("--budget", action="append", default=[], type=checked_by(Budget.parse),
                   metavar="LIMIT",
                   help=f"a cost limit every reported point is held against, e.g. {EXAMPLE}; "
                        "repeatable; a time without @CATALOG is on --catalog (default: none)")
    add_common_table_options(p)
    p.add_argument("--workers", type=positive_int, default=DEFAULT_WORKERS,
                   help="processes profiling points in parallel (default: min(2, CPU "
                        f"count) = {DEFAULT_WORKERS})")
    p.add_argument("--accuracy", metavar="STUDY",
                   help="a study folder (profile-encoder study --out): join its measured "
                        "SUPERB values to the points it trained (default: none)")
    p.add_argument("--out", default=DEFAULT_OUT,
                   help=f"folder for sweep.csv, sweep.json and pareto.png (default {DEFAULT_OUT})")
    p.set_defaults(run=run)


def run(args) -> int:
    import sys

    from models.encoders import FAMILIES

    from ..catalog import load_catalog
    from ..conventions import get_convention
    from ..errors import UsageError
    from ..sweep import (
        Grid,
        SweepSettings,
        check_families,
        check_outputs,
        join_accuracy,
        judge,
        profile_points,
        summary,
        write_outputs,
    )
    from ..table import check_estimate

    grid = Grid(check_families(args.family or list(FAMILIES)), tuple(args.layers),
                tuple(args.dim), tuple(args.heads), tuple(args.bits),
                tuple(args.block_size) if args.block_size else None)
    convention = get_convention(args.convention)
    estimate = args.estimate or convention.default_estimate
    check_estimate(estimate, args.convention)
    catalog = load_catalog(args.catalog)   # a bad one fails here, before any work
    check_outputs(args.out)
    others = tuple(dict.fromkeys(b.catalog for b in args.budget
                                 if b.catalog not in (None, args.catalog)))
    for reference in others:
        load_catalog(reference)
    points, skipped = grid.points()
    if not points:
        reasons = "; ".join(f"{n} {why}" for why, n in skipped.most_common())
        raise UsageError(f"empty grid: no combination builds ({reasons or 'nothing given'})")
    settings = SweepSettings(args.seconds, args.convention, args.catalog, estimate, others)
    rows = profile_points(points, settings, workers=args.workers,
                          progress=sys.stderr.isatty())
    judge(rows, args.budget, args.catalog)
    record = {"settings": {"families": list(grid.families), "layers": list(grid.layers),
                           "dims": list(grid.dims), "heads": list(grid.heads),
                           "bits": [b.label for b in grid.bits],
                           "block_sizes": list(grid.block_sizes or []),
                           "seconds": args.seconds, "convention": args.convention,
                           "estimate": estimate, "catalog": catalog.name,
                           "budgets": [b.text for b in args.budget]},
              "skipped": dict(skipped)}
    text = ""
    if args.accuracy:
        rows, joined = join_accuracy(rows, study_accuracy(args.accuracy))
        record["settings"]["accuracy"] = str(args.accuracy)
        text += f"accuracy from {args.accuracy}: {joined} of {len(rows)} points measured\n"
    paths = write_outputs(rows, args.out, record, args.budget, args.catalog)
    sys.stdout.write(summary(rows, skipped, args.budget) + text
                     + "wrote " + ", ".join(str(p) for p in paths) + "\n")
    return 0


def study_accuracy(folder: str) -> dict:
    """Mean measured value (over seeds) of each SUPERB task, ``<task>_<metric>``, by the
    sweep key of each model a study trained: its ``fp`` variant and its ``bq`` (W1A1) one."""
    # The trainer is a later layer than the sweep: imported only when --accuracy is given.
    import models
    from models.trainer.study.collect import load_study
    from models.trainer.study.report import zoo_name

    from ..sweep import point_key

    study = load_study(folder)     # a DataError is one line and exit 2 through cli.main
    overrides = study.record.get("recipe", {}).get("overrides", {})
    found: dict = {}
    for (model, variant, task), by_seed in study.results.items():
        if variant not in ("fp", "bq") or not by_seed:
            continue
        config = models.config(zoo_name(model, variant), **overrides)
        values = [float(r["value"]) for r in by_seed.values()]
        metric = next(iter(by_seed.values())).get("metric", "value")
        found.setdefault(point_key(config), {})[f"{task}_{metric}"] = sum(values) / len(values)
    return found
