"""Every SUPERB task on one trained upstream beside a random-init upstream of the same shape.

    python benchmarks/superb_all_tasks.py --upstream RUN --out runs/superb-all
    python benchmarks/superb_all_tasks.py --upstream RUN --out runs/superb-all --report

Runs ``profile-encoder superb --task T`` for the ten tasks on ``--upstream`` (a run folder
of ``profile-encoder train``) and on ``--random-init`` of the same model and overrides
(resumable: a task whose results.json exists is skipped), then writes
``reports/superb_all_tasks.md``: value, 95 % interval, test-set size and chance per task
and upstream, and whether the two intervals overlap. Corpora: the upstream's own where it
holds the task, else the task's ``small`` preset, which the trained run synthesizes and the
random one reuses.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # a checkout not installed

from models.trainer.superb.task_table import SUPERB_TASKS  # noqa: E402
from profiler.cli import main  # noqa: E402
from profiler.option_values import split_list  # noqa: E402

TASKS = tuple(SUPERB_TASKS)


def _config(run: Path) -> dict:
    return json.loads((run / "config.json").read_text(encoding="utf-8"))


def evaluate(upstream: Path, out: Path, tasks, steps) -> None:
    """The trained upstream first; the random one then reads the same corpus folder."""
    config = _config(upstream)
    sets = [f"{key}={value}" for key, value in config.get("overrides", {}).items()
            if key != "num_classes"]
    extra = ["--steps", str(steps)] if steps else []
    for task in tasks:
        for kind in ("trained", "random"):
            folder = out / kind / task
            if (folder / "results.json").is_file():
                continue
            if kind == "trained":
                source = ["--upstream", str(upstream)]
            else:
                trained = json.loads((out / "trained" / task / "results.json").read_text())
                source = ["--random-init", config["name"], "--data", trained["data"]["folder"],
                          *[arg for item in sets for arg in ("--set", item)]]
            status = main(["superb", "--task", task, "--out", str(folder), *source, *extra,
                           "--quiet"])
            if status:
                raise SystemExit(f"superb --task {task} ({kind}) failed with status {status}")


def report(upstream: Path, out: Path, tasks, path: Path) -> None:
    lines = ["# Every SUPERB task: a trained upstream against a random-init one",
             "",
             f"Written by `python benchmarks/superb_all_tasks.py --upstream {upstream} "
             f"--report`. Small scale on synthetic speech (the tasks' `small` corpora; `er` is a "
             f"prosody-class proxy, not emotion recognition): not comparable with the "
             f"paper's Table 2.",
             "",
             "| task | metric | trained | 95 % interval | random init | 95 % interval | "
             "test items | chance | intervals overlap |",
             "| --- | --- | ---: | --- | ---: | --- | ---: | ---: | --- |"]
    for task in tasks:
        found = {}
        for kind in ("trained", "random"):
            results = out / kind / task / "results.json"
            if results.is_file():
                found[kind] = json.loads(results.read_text(encoding="utf-8"))
        if not found:
            lines.append(f"| {task} | - | - | - | - | - | - | - | - |")
            continue
        any_result = next(iter(found.values()))

        def cell(kind):
            if kind not in found:
                return "-", "-"
            low, high = found[kind]["interval"]
            return f"{found[kind]['value']:.3f}", f"[{low:.3f}, {high:.3f}]"

        trained, random = cell("trained"), cell("random")
        overlap = "-"
        if len(found) == 2:
            (a, b), (c, d) = found["trained"]["interval"], found["random"]["interval"]
            overlap = "yes: no difference" if a <= d and c <= b else "no"
        items = any_result.get("interval_method", "").split(" over the ")[-1].split(" ")[0]
        lines.append(f"| {task} | {any_result['metric']} | {trained[0]} | {trained[1]} | "
                     f"{random[0]} | {random[1]} | {items} | {any_result['chance']:.3f} | "
                     f"{overlap} |")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def run(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", type=Path, required=True, help="trained run folder")
    parser.add_argument("--out", type=Path, required=True, help="evaluation folder")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma list (default: all ten)")
    parser.add_argument("--steps", type=int, default=None,
                        help="head training steps (default: each task's)")
    parser.add_argument("--report", action="store_true", help="only write the report")
    parser.add_argument("--output", type=Path, default=ROOT / "reports" / "superb_all_tasks.md")
    args = parser.parse_args(argv)
    tasks = split_list(args.tasks)
    if not args.report:
        evaluate(args.upstream, args.out, tasks, args.steps)
    report(args.upstream, args.out, tasks, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(run())
