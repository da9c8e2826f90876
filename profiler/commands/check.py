"""``profile-encoder check``: compare the zoo's counts with the golden file."""
from __future__ import annotations

import argparse

from .arguments import add_models_option


def add_parser(sub) -> None:
    p = sub.add_parser(
        "check", help="compare the zoo's op counts with the golden file (exit 1 on drift)",
        description="Recount every zoo model and compare with reports/golden/op_counts.json. "
                    "Exit status 0: no drift; 1: some count moved (a diff is printed); "
                    "2: bad arguments or golden file.",
    )
    p.add_argument("--golden", help="golden file (default: reports/golden/op_counts.json)")
    p.add_argument("--tolerance", type=tolerance, default=0.0,
                   help="relative change allowed per count, e.g. 0.01 or 1%% (default 0: exact)")
    add_models_option(p, "check only these zoo models", default="all in the golden file")
    p.add_argument("--write", action="store_true",
                   help="(re)write the golden file from the current counts instead of checking; "
                        "with --models, only those models' entries (default: off)")
    p.set_defaults(run=run)


def tolerance(text: str) -> float:
    """``0.01`` or ``1%`` -> 0.01, a fraction in [0, 1)."""
    try:
        value = float(text.rstrip("%")) / (100 if text.endswith("%") else 1)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number like 0.01 or 1%, got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1), got {text!r}")
    return value


def run(args) -> int:
    import json
    import sys
    from pathlib import Path

    from .. import golden
    from ..errors import UsageError
    from ..files import atomic_write, check_writable
    from ..table import resolve_models

    path = Path(args.golden) if args.golden else golden.DEFAULT_PATH
    if args.write:
        check_writable(path)                 # before minutes of counting
        names = resolve_models(args.models)
        data = golden.compute(names, progress=sys.stderr.isatty())
        if args.models and path.is_file():   # the other models' counts stay as they were
            kept = golden.load(path)
            if float(kept["seconds"]) != float(data["seconds"]):
                raise UsageError(f"{path}: counted at {kept['seconds']} s, not "
                                 f"{data['seconds']} s: rewrite it whole (no --models)")
            data["models"] = {**kept["models"], **data["models"]}
        atomic_write(path, json.dumps(data, indent=1, sort_keys=False) + "\n")
        print(f"wrote {path} ({len(names)} models counted, {len(data['models'])} in the file)")
        return 0
    expected = golden.load(path)
    names = resolve_models(args.models) if args.models else list(expected["models"])
    expected["models"] = {k: v for k, v in expected["models"].items() if k in names}
    current = golden.compute(names, seconds=float(expected["seconds"]),
                             progress=sys.stderr.isatty())
    lines = golden.diff(expected, current, args.tolerance)
    if lines:
        print(f"op counts drifted from {path} ({len(lines)} changes):")
        print("\n".join("  " + line for line in lines))
        return 1
    print(f"op counts match {path}: {len(names)} models, tolerance {args.tolerance:g}")
    return 0
