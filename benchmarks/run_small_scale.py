"""The small-scale study, now ``profile-encoder study`` (this script is a shortcut for it).

    python benchmarks/run_small_scale.py                 # the minimum study, preset small
    python benchmarks/run_small_scale.py --seeds 1 --tasks ks,sid,pr
    python benchmarks/run_small_scale.py --dry-run       # list the jobs

runs ``profile-encoder study --preset small ARGS`` (resumable: rerun it after any
interruption), then ``profile-encoder study --preset small ARGS --report``, which writes
reports/study_small/ (reports/study/ is the paper preset's study) unless ARGS give
``--reports``. Every option is the command's (``profile-encoder study --help``).
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # a checkout not installed

from profiler.cli import main  # noqa: E402

SMALL_REPORTS = "reports/study_small"


def run(arguments: list[str]) -> int:
    command = ["study", "--preset", "small", *arguments]
    if not any(word == "--reports" or word.startswith("--reports=") for word in arguments):
        command += ["--reports", SMALL_REPORTS]
    if "--dry-run" in arguments or "--report" in arguments:
        return main(command)
    return main(command) or main([*command, "--report"])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
