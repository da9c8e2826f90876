"""Our analyzer against DeepSpeed's flops profiler, fvcore, ptflops and FlopCounterMode.

Every tool profiles the same HuBERT-Base-shaped model (12 layers, D 768, 12 heads, FFN
3072, the standard wav2vec2 CNN) on one utterance, each in a fresh process so that peak
memory is its own. Reported per tool: the profiling call's wall time (median of the
repeats, after the model is built), the process's peak resident memory, and both as ratios
to ours, all measured in this run. Ours builds the model on the meta device (no weights)
and profiles on meta tensors; the peers need a real model and a real forward pass.

    python benchmarks/bench_profilers.py                 # 10 s input, all tools
    python benchmarks/bench_profilers.py --hour          # ours on a one-hour input
    python benchmarks/bench_profilers.py --cold 3        # also: the ten Table-1 rows cold

``--cold N`` times whole processes, N of each, interleaved: ``profile-encoder table`` (the ten
Table-1 rows, cache off, from a cold start: import, build on meta, profile, render) against
DeepSpeed's profiler on one HuBERT-Base (import, build a real model, one profile), and prints
the ratio of the medians and whether it meets the target (<= 1/3). ``--tools ''`` skips the
per-tool table; ``--json PATH`` then writes ``{"tools": [...], "cold": {...}}`` with every
repeat's seconds for both (``table_s``, ``deepspeed_s``) and the load average around the run.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

from benchmark_report import BY_NAME  # a sibling: the scripts run from benchmarks/

from profiler.option_values import split_list

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("ours", "ours-real-model", "deepspeed", "deepspeed-defaults", "fvcore", "ptflops",
         "flop_counter")
PEERS = ("deepspeed", "deepspeed-defaults", "fvcore", "ptflops", "flop_counter")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(tool: str, seconds: float, repeats: int) -> dict:
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)
    sys.path.insert(0, str(ROOT))
    import torch

    import models
    import profiler
    from models.constants import samples_in
    from profiler.peers import PEER_COUNTS

    samples = samples_in(seconds)
    meta = tool == "ours"
    model = models.build("vanilla", frontend="wav2vec2", seed=0,
                         **({"device": "meta"} if meta else {})).eval()
    wave = torch.empty(1, samples, device="meta") if meta else torch.randn(1, samples)
    rss_before = peak_rss_mb()

    def run_once():
        if tool in ("ours", "ours-real-model"):
            return profiler.profile(model, wave).totals["macs"]
        if tool == "deepspeed-defaults":
            # get_model_profile as its documentation shows it: gradients on, one warm-up
            from deepspeed.profiling.flops_profiler import get_model_profile
            with contextlib.redirect_stdout(io.StringIO()):
                _, macs, _ = get_model_profile(model, args=[wave], print_profile=False,
                                               detailed=False, as_string=False)
            return macs
        # The peers' calls as profile --crosscheck makes them (profiler.peers), without
        # its deep copy of the model, so each tool's time is its own call's.
        with torch.no_grad(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            return PEER_COUNTS[tool](model, (wave,), {}).macs

    times, macs = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        macs = run_once()
        times.append(time.perf_counter() - start)
    return {"tool": tool, "seconds_of_audio": seconds, "macs": int(macs),
            "profile_s": statistics.median(times), "profile_s_all": times,
            "peak_rss_mb": peak_rss_mb(), "rss_after_build_mb": rss_before}


def run_worker(tool: str, seconds: float, repeats: int) -> dict:
    command = [sys.executable, __file__, "--worker", tool, "--seconds", str(seconds),
               "--repeats", str(repeats)]
    env = dict(os.environ, PYTHONWARNINGS="ignore", PROFILE_ENCODER_CACHE="off")
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        return {"tool": tool, "error": done.stderr.strip().splitlines()[-1:]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def whole_process(command: list[str]) -> float:
    env = dict(os.environ, PYTHONWARNINGS="ignore", PROFILE_ENCODER_CACHE="off",
               PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(command)} failed: {done.stderr.strip()[-300:]}")
    return elapsed


# the ten Table-1 rows cold against DeepSpeed on one HuBERT-Base (the report's target)
COLD_TARGET = BY_NAME["cold_table_vs_deepspeed"].target[1]


def cold_comparison(repeats: int) -> dict:
    """Whole processes, interleaved so that a change in the machine's load reaches both: every
    repeat's seconds for each, their medians, the ratio of the medians and the target."""
    table = [sys.executable, "-m", "profiler", "table"]
    deepspeed = [sys.executable, __file__, "--worker", "deepspeed", "--seconds", "10",
                 "--repeats", "1"]
    times = {"table": [], "deepspeed": []}
    load_before = os.getloadavg()
    for _ in range(repeats):
        times["table"].append(whole_process(table))
        times["deepspeed"].append(whole_process(deepspeed))
    ours, peer = statistics.median(times["table"]), statistics.median(times["deepspeed"])
    ratio = ours / peer
    meets = ratio <= COLD_TARGET
    print(f"cold, whole process, median of {repeats}: the ten Table-1 rows {ours:.2f} s; "
          f"DeepSpeed on one HuBERT-Base {peer:.2f} s; ratio {ratio:.2f} "
          f"(target <= {COLD_TARGET:.2f}): {'meets' if meets else 'misses'} the target")
    return {"repeats": repeats, "table_s": times["table"], "deepspeed_s": times["deepspeed"],
            "table_median_s": ours, "deepspeed_median_s": peer, "ratio": ratio,
            "target_ratio": COLD_TARGET, "meets_target": meets,
            "load_average_1_5_15": {"before": list(load_before), "after": list(os.getloadavg())}}


def report_tools(results: list, args) -> None:
    ours = next((r for r in results if r.get("tool") == "ours" and "error" not in r), None)
    print(f"HuBERT-Base shape (wav2vec2 CNN), "
          f"{results[0].get('seconds_of_audio', args.seconds):g} s "
          f"of audio, batch 1; profile s: median of {args.repeats} calls after the model is "
          f"built; peak MB: the process's peak RSS; own MB: peak minus RSS after the build")
    print(f"{'tool':20s} {'MACs':>16s} {'profile s':>10s} {'peak MB':>8s} {'own MB':>7s} "
          f"{'time/ours':>10s} {'peak/ours':>10s}")
    for r in results:
        if "error" in r:
            print(f"{r['tool']:20s} failed: {r['error']}")
            continue
        ratio_t = r["profile_s"] / ours["profile_s"] if ours else float("nan")
        ratio_m = r["peak_rss_mb"] / ours["peak_rss_mb"] if ours else float("nan")
        print(f"{r['tool']:20s} {r['macs']:16,d} {r['profile_s']:10.3f} {r['peak_rss_mb']:8.0f} "
              f"{r['peak_rss_mb'] - r['rss_after_build_mb']:7.0f} {ratio_t:10.1f} {ratio_m:10.1f}")
    peers = [r for r in results if r.get("tool") in PEERS and "error" not in r]
    if ours and peers:
        fastest = min(peers, key=lambda r: r["profile_s"])
        leanest = min(peers, key=lambda r: r["peak_rss_mb"])
        print(f"fastest peer {fastest['tool']}: ours is "
              f"{fastest['profile_s'] / ours['profile_s']:.1f}x "
              f"faster (target {BY_NAME['profile_call_vs_fastest_peer'].target_text()})")
        print(f"leanest peer {leanest['tool']}: ours peaks at "
              f"{ours['peak_rss_mb'] / leanest['peak_rss_mb']:.2f} "
              f"of its memory (target <= 0.33); own memory "
              f"{ours['peak_rss_mb'] - ours['rss_after_build_mb']:.0f} MB "
              f"vs {leanest['peak_rss_mb'] - leanest['rss_after_build_mb']:.0f} MB")
    if args.hour and ours:
        print(f"one hour of audio: {ours['profile_s']:.2f} s, peak {ours['peak_rss_mb']:.0f} MB "
              f"(target < 10 s, < 1 GB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--tools", default=",".join(TOOLS),
                        help="comma list; empty (--tools '') with --cold N: the cold run only")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hour", action="store_true", help="ours only, on 3600 s of audio")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--cold", type=int, default=0, metavar="N",
                        help="also time the ten Table-1 rows cold against DeepSpeed, N each")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.seconds, args.repeats)))
        return
    if args.hour:
        results = [run_worker("ours", 3600.0, args.repeats)]
    else:
        results = [run_worker(t, args.seconds, args.repeats)
                   for t in split_list(args.tools)]
    if results:
        report_tools(results, args)
    cold = cold_comparison(args.cold) if args.cold else None
    if args.json:
        Path(args.json).write_text(json.dumps(results if cold is None else
                                              {"tools": results, "cold": cold}, indent=2))


if __name__ == "__main__":
    main()
