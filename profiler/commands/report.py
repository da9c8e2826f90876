"""``profile-encoder report``: regenerate every artifact under reports/."""
from __future__ import annotations

from pathlib import Path

from ..files import REPORTS

DEFAULT_OUT = REPORTS


def add_parser(sub) -> None:
    p = sub.add_parser(
        "report", help="regenerate reports/: Table 1 (md, tex, csv), reproduction.md, figures",
        description="Profile the zoo and write Table 1 in markdown, LaTeX and CSV under both "
                    "conventions, reproduction.md (every Table 1 cell against the paper, with "
                    "the reasons for each difference) and the figures.",
    )
    p.add_argument("--out", default=str(DEFAULT_OUT),
                   help=f"folder to write (default {DEFAULT_OUT})")
    p.set_defaults(run=run)


def run(args) -> int:
    import sys

    from ..errors import UsageError
    from ..reporting import build_report

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    written = build_report(out, progress=sys.stderr.isatty())
    for path in written:
        print(path)
    return 0
