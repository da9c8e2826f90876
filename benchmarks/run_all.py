"""Runs every benchmark that yields a README figure, with repeats, and writes
``reports/benchmarks.json``, ``reports/benchmarks.md`` and the README's Benchmarks block.

    python benchmarks/run_all.py                       # all, 3 repeats (about an hour on 2 cores)
    python benchmarks/run_all.py --only sparse,cold --repeats 5
    python benchmarks/run_all.py --resume              # finish an interrupted run
    python benchmarks/run_all.py --quick --repeats 1   # tiny settings: a smoke test
    python benchmarks/run_all.py --only suite          # the test suite's time (not by default)

Each repeat of each benchmark is a fresh process of its script, and the repeats go round
the benchmarks (profilers, cold, sparse, ..., then profilers again), so that a slow drift
of the machine hits all of them alike; scripts that compare two contenders also interleave
them inside (bench_profilers runs each tool in its own process, one after the other). A
run's figures are stored as soon as it finishes: ``--resume`` keeps the stored runs and
runs only the missing repeats. Before each run the script samples /proc/stat for 2 s: when
other processes used more than ``--load-threshold`` % of the cores, it warns on stderr and
marks the run, its figures and the report "measured under load" (the load average is
recorded before and after too, but a benchmark raises it itself, so it cannot tell the next
one's conditions). Figures and targets: ``benchmarks/benchmark_report.py``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_estimate import DEPLOYED_HEADING  # noqa: E402
from benchmark_report import LOAD_RULE, ROOT, build_report, write_report  # noqa: E402

from profiler.option_values import split_list  # noqa: E402

TMP = "{tmp}"   # in a benchmark's arguments: the run's own temporary folder


@dataclass(frozen=True)
class Benchmark:
    argv: tuple[str, ...]        # after the interpreter; TMP for the run's temporary folder
    quick: tuple[str, ...]       # the same, with tiny settings
    parse: Callable              # (stdout, folder, seconds) -> ({figure: value}, details)
    default: bool = True
    # at most this many processes, whatever --repeats says: benchmarks whose every figure
    # is already a median over rows timed several times each, and that run for minutes
    most_repeats: int | None = None


def _number(pattern: str, text: str, what: str, group: int = 1, *, text_value: bool = False):
    found = re.findall(pattern, text, re.M)
    if not found:
        raise ValueError(f"no {what} in the output")
    last = found[-1]
    value = last[group - 1] if isinstance(last, tuple) else last
    return value if text_value else float(value)


def parse_profilers(stdout: str, folder: Path, _: float):
    rows = json.loads((folder / "profilers.json").read_text())
    if isinstance(rows, dict):   # a newer layout: the per-tool rows under one key
        rows = next(v for v in rows.values() if isinstance(v, list))
    times = {r["tool"]: r["profile_s"] for r in rows if "error" not in r}
    peers = {tool: s for tool, s in times.items() if not tool.startswith("ours")}
    fastest = min(peers, key=peers.get)
    return ({"profile_call_vs_fastest_peer": peers[fastest] / times["ours"]},
            {"ours_s": times["ours"], "fastest_peer": fastest, "fastest_peer_s": peers[fastest]})


def parse_cold(stdout: str, folder: Path, _: float):
    line = next(line for line in reversed(stdout.splitlines()) if "Table-1 rows" in line)
    table = _number(r"Table-1 rows\D*?([\d.]+) s", line, "cold table time")
    deepspeed = _number(r"DeepSpeed[^;]*?([\d.]+) s", line, "DeepSpeed time")
    return {"cold_table_vs_deepspeed": table / deepspeed}, {"table_s": table,
                                                            "deepspeed_s": deepspeed}


def parse_sparse(stdout: str, folder: Path, _: float):
    # the last line "blocked vs dense at N frames: R x" where the script prints one, else the
    # dense/blocked column of the attention row of the longest input
    said = re.findall(r"blocked vs dense at (\d+) frames:\s*([\d.]+)x", stdout)
    if said:
        return {"sparse_blocked_vs_dense_8000": float(said[-1][1])}, {"frames": int(said[-1][0])}
    rows = re.findall(r"^\s*(\d+)\s+attention\s+(?:[\d.]+\s+){4}[\d.]+x\s+([\d.]+)x", stdout, re.M)
    if not rows:
        raise ValueError("no attention row in the output")
    return {"sparse_blocked_vs_dense_8000": float(rows[-1][1])}, {"frames": int(rows[-1][0])}


def parse_training(stdout: str, folder: Path, _: float):
    ratio = _number(r"transformers / ours \(min\):\s*([\d.]+)", stdout, "training ratio")
    mins = dict(re.findall(r"^(ours|transformers)\s+[\d,]+\s+([\d.]+)", stdout, re.M))
    return {"training_step_vs_transformers": ratio}, {f"{k}_min_s": float(v)
                                                      for k, v in mins.items()}


def parse_estimate(stdout: str, folder: Path, _: float):
    # the report bench_estimate wrote: its default (reports/) or the --out it was given
    text = (ROOT / _number(r"^wrote (.+)$", stdout, "report path", text_value=True)).read_text()
    values = {}
    summary = (r"rows, kernel: Spearman rank correlation ([-\d.]+|nan), median relative "
               r"error ([\d.]+) %")
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        threads = re.match(r"(\d+) threads?,", section)
        full, _, deployed = section.partition(DEPLOYED_HEADING)
        for prefix, part in (("estimate", full), ("estimate_bq", deployed)):
            found = re.search(summary, part)
            if threads and found:
                n = int(threads.group(1))
                suffix = f"{n}_thread{'s' if n > 1 else ''}"
                values[f"{prefix}_spearman_{suffix}"] = float(found.group(1))
                values[f"{prefix}_error_{suffix}"] = float(found.group(2))
    if not values:
        raise ValueError("no kernel-estimate summary in the report it wrote")
    return values, {}


def parse_binary(stdout: str, folder: Path, _: float):
    values = {f"packed_w1a1_vs_{dtype}": float(ratio) for dtype, ratio in re.findall(
        r"packed W1A1 >= [\d.]+x (float32|bfloat16) at 500x768x3072: ([\d.]+)x", stdout)}
    for threads, ratio in re.findall(r"bq-vanilla deployed >= [\d.]+x float32 at [\d.]+ s, "
                                     r"(\d+) thread\(s\): ([\d.]+)x", stdout):
        values[f"deployed_bq_vanilla_{threads}_thread{'s' if threads != '1' else ''}"] = \
            float(ratio)
    slowest = re.search(r"^slowest deployed BQ model vs its float32 twin: ([\d.]+)x \((.*)\)",
                        stdout, re.M)
    if slowest:
        values["deployed_bq_slowest_vs_float32"] = float(slowest.group(1))
    if not values:
        raise ValueError("no verdict lines in the output")
    return values, {}


def parse_sweep(stdout: str, folder: Path, _: float):
    points = _number(r"^(\d+) points, \d+ workers", stdout, "sweep summary")
    total = _number(r"^\d+ points, .*?: ([\d.]+) s in all", stdout, "sweep time")
    return {"sweep_1000_points": total * 1000 / points}, {"points": points, "total_s": total}


def parse_suite(stdout: str, folder: Path, seconds: float):
    return {"test_suite": seconds}, {"summary": stdout.strip().splitlines()[-1:]}


BENCHMARKS = {
    "profilers": Benchmark(
        ("benchmarks/bench_profilers.py", "--json", f"{TMP}/profilers.json"),
        ("benchmarks/bench_profilers.py", "--tools", "ours,flop_counter", "--seconds", "1",
         "--repeats", "1", "--json", f"{TMP}/profilers.json"), parse_profilers),
    "cold": Benchmark(
        ("benchmarks/bench_profilers.py", "--tools", "ours", "--seconds", "1", "--repeats", "1",
         "--cold", "1"),
        ("benchmarks/bench_profilers.py", "--tools", "ours", "--seconds", "1", "--repeats", "1",
         "--cold", "1"), parse_cold),
    "sparse": Benchmark(("benchmarks/bench_sparse_attention.py", "--frames", "8000"),
                        ("benchmarks/bench_sparse_attention.py", "--frames", "1000",
                         "--repeats", "1"), parse_sparse),
    "training": Benchmark(("benchmarks/bench_training_step.py",),
                          ("benchmarks/bench_training_step.py", "--seconds", "1",
                           "--repeats", "1"), parse_training),
    "estimate": Benchmark(
        ("benchmarks/bench_estimate.py",),
        ("benchmarks/bench_estimate.py", "--threads", "1", "--seconds", "1", "--models",
         "conformer-s,squeezeformer-xs", "--bq-models", "bq-squeezeformer-xs", "--bq-seconds",
         "1", "--duration", "0.2", "--repeats", "1",
         "--out", f"{TMP}/measured_vs_estimated_cpu.md"), parse_estimate, most_repeats=1),
    "binary": Benchmark(
        ("benchmarks/bench_binary.py", "--lengths", "1,10", "--threads", "1,2"),
        ("benchmarks/bench_binary.py", "--lengths", "1", "--threads", "1", "--rounds", "2",
         "--models", "bq-vanilla"), parse_binary, most_repeats=2),
    "sweep": Benchmark(("benchmarks/bench_sweep.py",),
                       ("benchmarks/bench_sweep.py", "--points", "20", "--workers", "1"),
                       parse_sweep, most_repeats=1),
    "suite": Benchmark(("-m", "pytest", "-q", "-p", "no:cacheprovider"),
                       ("-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_layers.py"),
                       parse_suite, default=False),
}


@dataclass
class Sample:
    """The machine's state just before a run."""
    load: tuple[float, float, float]
    other_cpu_percent: float | None    # other processes' use of all cores, None: unknown
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)

    def under_load(self, threshold_percent: float) -> bool:
        if self.other_cpu_percent is not None:
            return self.other_cpu_percent > threshold_percent
        return self.load[0] > 0.5 * self.cores


def _cpu_times() -> tuple[int, int] | None:
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return None
    return sum(fields), fields[3] + fields[4]        # all, idle + iowait


def sample_machine(seconds: float = 2.0) -> Sample:
    before = _cpu_times()
    time.sleep(seconds)
    after = _cpu_times()
    other = None
    if before and after and after[0] > before[0]:
        total = after[0] - before[0]
        other = 100.0 * (total - (after[1] - before[1])) / total
    return Sample(os.getloadavg(), other)


def warn_if_loaded(name: str, sample: Sample, threshold: float) -> bool:
    """True (after a warning on stderr) when the run is about to start under load."""
    if not sample.under_load(threshold):
        return False
    busy = ("" if sample.other_cpu_percent is None
            else f"other processes used {sample.other_cpu_percent:.0f} % of the cores, ")
    print(f"warning: {name} starts under load ({busy}load average {sample.load[0]:.2f}); "
          "its figures are marked 'measured under load'", file=sys.stderr, flush=True)
    return True


def machine() -> dict:
    import torch

    from profiler.calibration import cpu_flags, cpu_name

    wanted = sorted(f for f in cpu_flags() if f == "avx2" or f.startswith(("avx512", "amx")))

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else ""

    outputs = {"README.md", "reports/benchmarks.json", "reports/benchmarks.md"}
    changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no")
               .splitlines() if line[3:] not in outputs]
    commit = (git("rev-parse", "--short", "HEAD") or "unknown") + (
        " (with uncommitted changes)" if changed else "")
    return {"cpu": cpu_name(), "cpu_flags": wanted, "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "python": platform.python_version(), "platform": platform.platform(),
            "commit": commit}


def command_line(benchmark: Benchmark, quick: bool) -> str:
    argv = benchmark.quick if quick else benchmark.argv
    return "python " + shlex.join(argv).replace(TMP, "TMP")


def run_once(name: str, benchmark: Benchmark, quick: bool, repeat: int,
             threshold: float) -> dict:
    sample = sample_machine()
    loaded = warn_if_loaded(name, sample, threshold)
    env = dict(os.environ, PYTHONWARNINGS="ignore",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    record = {"benchmark": name, "repeat": repeat, "command": command_line(benchmark, quick),
              "started": datetime.datetime.now().isoformat(timespec="seconds"),
              "load_before": list(sample.load), "other_cpu_percent": sample.other_cpu_percent,
              "under_load": loaded, "values": {}, "details": {}}
    with tempfile.TemporaryDirectory(prefix="run_all.") as folder:
        argv = [a.replace(TMP, folder) for a in (benchmark.quick if quick else benchmark.argv)]
        start = time.perf_counter()
        done = subprocess.run([sys.executable, *argv], cwd=ROOT, env=env, capture_output=True,
                              text=True)
        record["seconds"] = time.perf_counter() - start
        record["load_after"] = list(os.getloadavg())
        if done.returncode != 0:
            last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:]
            record["error"] = f"exit status {done.returncode}: {' '.join(last)[:300]}"
            return record
        try:
            record["values"], record["details"] = benchmark.parse(done.stdout, Path(folder),
                                                                  record["seconds"])
        except (ValueError, KeyError, OSError, StopIteration, json.JSONDecodeError) as error:
            record["error"] = f"could not read its result: {error!r}"[:300]
    return record


def selected(only: str | None, skip: str | None) -> list[str]:
    def names(text: str) -> list[str]:
        given = split_list(text)
        if unknown := [n for n in given if n not in BENCHMARKS]:
            raise SystemExit(f"unknown benchmark {', '.join(unknown)}; known: "
                             f"{', '.join(BENCHMARKS)}")
        return given

    chosen = names(only) if only else [n for n, b in BENCHMARKS.items() if b.default]
    dropped = set(names(skip)) if skip else set()
    return [n for n in chosen if n not in dropped]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, help="processes per benchmark (3; --quick: 1)")
    parser.add_argument("--only", help=f"comma list of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--skip", help="comma list of benchmarks to leave out")
    parser.add_argument("--quick", action="store_true", help="tiny settings (a smoke test)")
    parser.add_argument("--resume", action="store_true",
                        help="keep the stored runs, run only the missing repeats")
    parser.add_argument("--load-threshold", type=float, default=10.0, metavar="PERCENT",
                        help="other processes' CPU use that marks a run as under load (10)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports",
                        help="folder of benchmarks.json and benchmarks.md (reports/)")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md",
                        help="README whose benchmarks block to rewrite (README.md)")
    parser.add_argument("--no-readme", action="store_true", help="leave the README alone")
    args = parser.parse_args(argv)
    try:
        names = selected(args.only, args.skip)
    except SystemExit as error:
        print(error, file=sys.stderr)
        return 2
    repeats = args.repeats or (1 if args.quick else 3)
    if repeats < 1 or not args.out.is_dir():
        print("--repeats must be at least 1" if repeats < 1 else
              f"--out {args.out} is not a folder", file=sys.stderr)
        return 2
    json_path, markdown_path = args.out / "benchmarks.json", args.out / "benchmarks.md"
    readme = None if args.no_readme else args.readme
    host = machine()
    runs = []
    if args.resume and json_path.exists():
        stored = json.loads(json_path.read_text())
        if stored.get("quick") != args.quick or stored["machine"]["cpu"] != host["cpu"]:
            kind = "a quick" if stored.get("quick") else "a full"
            print(f"cannot resume {json_path}: it was {kind} run on "
                  f"{stored['machine']['cpu']}", file=sys.stderr)
            return 2
        runs = [r for r in stored["runs"] if "error" not in r]
    done = {(r["benchmark"], r["repeat"]) for r in runs}
    todo = [(repeat, name) for repeat in range(repeats) for name in names
            if (name, repeat) not in done
            and repeat < (BENCHMARKS[name].most_repeats or repeats)]
    commands = {name: command_line(BENCHMARKS[name], args.quick) for name in BENCHMARKS}
    print(f"{len(todo)} runs to do ({len(done)} stored): {', '.join(names)}; {repeats} repeats"
          f"{', quick settings' if args.quick else ''}. Load rule: "
          f"{LOAD_RULE.format(threshold=args.load_threshold)}.", flush=True)
    def settings() -> dict:
        return {"quick": args.quick, "repeats": repeats, "load_threshold": args.load_threshold,
                "date": datetime.date.today().isoformat()}

    failed = 0
    try:
        for index, (repeat, name) in enumerate(todo, 1):
            print(f"[{index}/{len(todo)}] {name}, repeat {repeat + 1}/{repeats}: "
                  f"{command_line(BENCHMARKS[name], args.quick)}", flush=True)
            record = run_once(name, BENCHMARKS[name], args.quick, repeat, args.load_threshold)
            record["commit"] = host["commit"]
            runs.append(record)
            failed += "error" in record
            outcome = record.get("error") or ", ".join(
                f"{k} {v:.3g}" for k, v in record["values"].items())
            print(f"    {record['seconds']:.1f} s, load {record['load_before'][0]:.2f} -> "
                  f"{record['load_after'][0]:.2f}: {outcome}", flush=True)
            write_report(build_report(host, settings(), runs, commands), json_path,
                         markdown_path, readme)
        if not todo and runs:
            write_report(build_report(host, settings(), runs, commands), json_path,
                         markdown_path, readme)
    except KeyboardInterrupt:
        print(f"interrupted: the finished runs are in {json_path}; rerun with --resume",
              file=sys.stderr)
        return 130
    print(f"wrote {json_path} and {markdown_path}" + (f"; updated {readme}" if readme else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
