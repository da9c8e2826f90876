"""``profile-encoder study``: zoo models x precision x seeds x SUPERB tasks, end to end.

The options are the fields of ``models.trainer.study.settings.StudySettings``; the jobs,
their shards and how a killed study resumes are described in
:mod:`models.trainer.study.plan`.
"""
from __future__ import annotations

import sys
from pathlib import Path

from models.trainer.study.settings import StudySettings

from ..training_commands import TRAINING_COMMANDS
from .settings_arguments import add_settings_arguments, settings_from_arguments


def add_parser(sub) -> None:
    p = sub.add_parser(
        "study", help=TRAINING_COMMANDS["study"],
        description="Pre-train each model in full precision (fp), distill it to its BiT "
                    "binarized version (bq; optionally a from-scratch control and one-module-"
                    "type ablations), evaluate every run on the SUPERB tasks, for each seed. "
                    "Rerun the same command to resume after any interruption; --shard I/N "
                    "splits the study between machines; --report writes reports/study/ and "
                    "its committed copy of every evaluation, reports/study/runs/.",
    )
    add_settings_arguments(p, StudySettings)
    p.set_defaults(run=run)


def run(args) -> int:
    # The trainer's DataError is one line and exit status 2 through cli.main.
    given = {k: v for k, v in settings_from_arguments(args, StudySettings).items()
             if v is not None}
    settings = StudySettings(**given)
    if settings.report:
        from models.trainer.study.report import write_report

        path = write_report(Path(settings.out), Path(settings.reports))
        print(f"wrote {path}")
        return 0
    if settings.dry_run:
        from models.trainer.study.runner import dry_run

        dry_run(settings)
        return 0
    from models.trainer.study.runner import run_study

    from ..adapters import job_backend

    outcome = run_study(settings, backend=job_backend(settings.backend))
    if settings.progress:
        print(f"shard {settings.shard}: ran {len(outcome['ran'])} jobs, {outcome['skipped']} "
              f"were done, in {outcome['wall_seconds'] / 60:.1f} min; reports: "
              f"profile-encoder study --out {settings.out} --report", file=sys.stderr)
    return 0



