"""Packed W1A1 products and deployed BQ models against torch, in one run (issue 20).

    PYTHONPATH=. python benchmarks/bench_binary.py [--lengths 1,10,60] [--threads 1,2]
        [--models bq-vanilla,...]

1. Products at the zoo's shapes (M frames x K inputs x N outputs): the packed product
   (weights packed once; the activation's packing timed with it and apart) against torch's
   float32, bfloat16 and int8 (``torch._int_mm``) products.
2. Each deployed BQ model against its float32 twin (and the bfloat16 twin for vanilla, up
   to 10 s: at 60 s one bfloat16 pass took over 2 minutes on a CPU without a bfloat16
   unit) and against itself with the unfused attention (``unfused_attention``) at each
   length and thread count, and against the training-time simulation of the same model
   (fake-quantized float products: what ``superb`` extracts from without ``--deployed``),
   with the deployed time split into packing, packed products, the fused attention cores
   and the float rest (front end, norms, glue).
3. The issue's targets, PASS or MISS, and for a miss what bounds it (the measured split).
The deployed BQ rows measured against their estimates (roofline and kernel) are in
``benchmarks/bench_estimate.py`` (reports/measured_vs_estimated_cpu.md).

Contenders run interleaved (one call each per round), best and median of the rounds;
``uptime`` is printed before and after: on a shared machine the figures are only as good
as the load they ran under. The targets were written for a CPU with AVX-512 VPOPCNTDQ and
AMX bfloat16; on a CPU without them read the verdicts with that in mind.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import torch
from benchmark_report import BY_NAME  # a sibling: the scripts run from benchmarks/

import models
from models.constants import float_name, is_binarized
from models.deployment import kernels, unfused_attention
from profiler.calibration import interleaved_times
from profiler.measure import (
    _utterance,
    deploy_for_timing,
)
from profiler.option_values import split_list

SHAPES = [(500, 768, 3072), (500, 3072, 768), (500, 768, 768), (500, 144, 576),
          (500, 576, 144)]
BQ = [name for name in models.names() if is_binarized(name)]
BFLOAT16_MAX_SECONDS = 10.0


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def interleaved(contenders: dict, rounds: int) -> dict:
    """name -> (best, median) seconds of calls interleaved round by round."""
    return {name: (min(t), statistics.median(t))
            for name, t in interleaved_times(contenders, rounds).items()}


def product_contenders(m: int, k: int, n: int) -> dict:
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(m, k, generator=g), torch.randn(n, k, generator=g)
    words = kernels.pack_rows(w)[None]
    bits = kernels.pack_rows(x)[None]
    xb, wb = x.bfloat16(), w.bfloat16()
    x8 = torch.randint(-128, 128, (m, k), dtype=torch.int8, generator=g)
    w8 = torch.randint(-128, 128, (k, n), dtype=torch.int8, generator=g)
    calls = {"packed product": lambda: kernels.binary_matmul(bits, words, k),
             "pack + product": lambda: kernels.binary_matmul(kernels.pack_rows(x)[None], words, k),
             "float32": lambda: x @ w.t(), "bfloat16": lambda: xb @ wb.t()}
    try:
        torch._int_mm(x8, w8)
        calls["int8 _int_mm"] = lambda: torch._int_mm(x8, w8)
    except RuntimeError as error:  # shapes or build without it
        print(f"  int8 _int_mm unavailable at {m}x{k}x{n}: {str(error).splitlines()[0]}")
    return calls


def bench_products(rounds: int) -> dict:
    results = {}
    for m, k, n in SHAPES:
        got = interleaved(product_contenders(m, k, n), rounds)
        results[(m, k, n)] = got
        line = ", ".join(f"{name} {best * 1e3:.2f}/{med * 1e3:.2f} ms "
                         f"({2 * m * k * n / best / 1e9:.0f} G/s)"
                         for name, (best, med) in got.items())
        print(f"{m}x{k}x{n} (best/median): {line}")
    return results


class _Split:
    """Times the extension's calls (packing, products) during one forward pass."""

    def __init__(self):
        self.seconds = defaultdict(float)
        self.extension = kernels.extension()

    def __getattr__(self, name):
        call = getattr(self.extension, name)

        def timed(*args):
            start = time.perf_counter()
            out = call(*args)
            self.seconds[name] += time.perf_counter() - start
            return out
        return timed

    def __enter__(self):
        kernels._extension = self
        return self

    def __exit__(self, *exc):
        kernels._extension = self.extension


def bench_models(lengths, thread_counts, names=BQ) -> tuple[dict, dict]:
    """{(name, seconds, threads): {contender: (best, median)}}, {(name, s, t): split}."""
    results, splits = {}, {}
    for name in names:
        twin_name = float_name(name)
        # The training-time simulation (what train and superb run without --deployed),
        # its binarizers initialized by deploy_for_timing as the deployed copy's are.
        simulated = models.build(name, seed=0).eval()
        deployed = deploy_for_timing(simulated, 1.0)
        twin = models.build(twin_name, seed=0).eval()
        twin_bf16 = models.build(twin_name, seed=0).eval().bfloat16() \
            if twin_name == "vanilla" else None
        for seconds in lengths:
            wave = _utterance(seconds)
            rounds = 5 if seconds <= 1 else (3 if seconds <= 10 else 2)
            for threads in thread_counts:
                torch.set_num_threads(threads)

                def unfused():
                    with unfused_attention(deployed):
                        deployed(wave)

                calls = {"deployed": lambda: deployed(wave), "float32": lambda: twin(wave),
                         "unfused attention": unfused, "simulated": lambda: simulated(wave)}
                if twin_bf16 is not None and seconds <= BFLOAT16_MAX_SECONDS:
                    calls["bfloat16"] = lambda: twin_bf16(wave.bfloat16())
                with torch.inference_mode():
                    got = interleaved(calls, rounds)
                    with _Split() as split:
                        start = time.perf_counter()
                        deployed(wave)
                        total = time.perf_counter() - start
                results[(name, seconds, threads)] = got
                s = {"total": total, "packing": split.seconds["pack_rows"],
                     "products": split.seconds["binary_matmul"] + split.seconds["binary_depthwise"],
                     "attention": split.seconds["binary_attention"]}
                s["float rest"] = total - s["packing"] - s["products"] - s["attention"]
                splits[(name, seconds, threads)] = s
                d, f = got["deployed"][1], got["float32"][1]
                u, sim = got["unfused attention"][1], got["simulated"][1]
                extra = f", bfloat16 {got['bfloat16'][1]:.3f} s" if "bfloat16" in got else ""
                print(f"{name} {seconds:g} s, {threads} thread(s): deployed {d:.3f} s, float32 "
                      f"{f:.3f} s ({f / d:.2f}x){extra}, unfused attention {u:.3f} s "
                      f"({u / d:.2f}x), simulated {sim:.3f} s ({sim / d:.2f}x); deployed "
                      f"split: packing {s['packing']:.3f}, products "
                      f"{s['products']:.3f}, fused attention {s['attention']:.3f}, float rest "
                      f"{s['float rest']:.3f} s", flush=True)
    return results, splits


def verdicts(products: dict, runs: dict, splits: dict) -> list[str]:
    lines = ["Targets (written for AVX-512 VPOPCNTDQ + AMX bfloat16; this CPU: "
             f"{', '.join(kernels.supported_paths())} kernel paths):"]
    got = products.get((500, 768, 3072))
    if got:
        packed = got["packed product"][0]
        for name in ("float32", "bfloat16"):
            need = BY_NAME[f"packed_w1a1_vs_{name}"].target[1]
            ratio = got[name][0] / packed
            lines.append(f"  {'PASS' if ratio >= need else 'MISS'} packed W1A1 >= {need}x {name} "
                         f"at 500x768x3072: {ratio:.2f}x")
    for (name, seconds, threads), got in sorted(runs.items()):
        ratio = got["float32"][1] / got["deployed"][1]
        need = BY_NAME["deployed_bq_vanilla_1_thread" if name == "bq-vanilla" and seconds == 10
                       else "deployed_bq_slowest_vs_float32"].target[1]
        verdict = "PASS" if ratio >= need else "MISS"
        line = (f"  {verdict} {name} deployed >= {need:g}x float32 at {seconds:g} s, "
                f"{threads} thread(s): {ratio:.2f}x")
        if "bfloat16" in got:
            winner = "deployed" if got["deployed"][1] < got["bfloat16"][1] else "bfloat16"
            line += f"; beside bfloat16 ({got['bfloat16'][1]:.3f} s) {winner} wins"
        if verdict == "MISS":
            s = splits[(name, seconds, threads)]
            line += (f"; bound by: packing {s['packing']:.3f} s, packed products "
                     f"{s['products']:.3f} s, fused attention {s['attention']:.3f} s, float "
                     f"rest (front end, norms) {s['float rest']:.3f} s of {s['total']:.3f} s")
        lines.append(line)
    for (name, seconds, threads), got in sorted(runs.items()):
        lines.append(f"  {name} deployed against its training-time simulation at {seconds:g} "
                     f"s, {threads} thread(s): "
                     f"{got['simulated'][1] / got['deployed'][1]:.2f}x (no target)")
    if runs:
        ratio, (name, seconds, threads) = min(
            (got["float32"][1] / got["deployed"][1], key) for key, got in runs.items())
        lines.append(f"slowest deployed BQ model vs its float32 twin: {ratio:.2f}x ({name}, "
                     f"{seconds:g} s, {threads} thread(s))")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", default="1,10,60")
    parser.add_argument("--threads", default="1,2")
    parser.add_argument("--rounds", type=int, default=7, help="rounds for the products")
    parser.add_argument("--models", default=",".join(BQ), help="BQ models (default: all five)")
    parser.add_argument("--report", type=Path, metavar="FILE.md",
                        help="also write what it prints to this markdown file")
    args = parser.parse_args()
    if args.report is not None:
        from profiler.files import check_writable

        check_writable(args.report)
        sys.stdout = _Recorded(sys.stdout)
    lengths = [float(v) for v in split_list(args.lengths)]
    thread_counts = [int(v) for v in split_list(args.threads)]
    names = split_list(args.models)
    if unknown := sorted(set(names) - set(BQ)):
        parser.error(f"unknown BQ model(s) {', '.join(unknown)}; known: {', '.join(BQ)}")
    print("before:", uptime())
    torch.set_num_threads(thread_counts[0])
    products = bench_products(args.rounds)
    runs, splits = bench_models(lengths, thread_counts, names)
    print("\n".join(verdicts(products, runs, splits)))
    print("after:", uptime())
    if args.report is not None:
        from profiler.files import atomic_write

        atomic_write(args.report, REPORT_HEADER.format(command=" ".join(sys.argv[1:]))
                     + "```\n" + sys.stdout.text() + "```\n")


REPORT_HEADER = """# Packed W1A1 products and deployed BQ models against torch on this CPU

Written by `python benchmarks/bench_binary.py {command}`: its whole output. Times in ms
(products) and s (models), best/median of interleaved rounds; a deployed model's time is
split into packing, the packed products, the fused attention cores and the float rest.

"""


class _Recorded:
    """stdout that also keeps what was printed."""

    def __init__(self, stream):
        self.stream, self.parts = stream, []

    def write(self, text: str) -> int:
        self.parts.append(text)
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()

    def text(self) -> str:
        return "".join(self.parts)


if __name__ == "__main__":
    main()
