"""Forward time of the Sparseformer's sparse attention (its blocked core's paths) against dense.

    python benchmarks/bench_sparse_attention.py [--frames 2000 8000] [--repeats 5]
        [--device cuda] [--json times.json]

Shapes are Sparseformer-DN-S's (batch 1, 4 heads of 64, fixed pattern with block 32 and 8
summary columns). Timed, in the same run and interleaved so that load from other processes
hits all of them alike, each after a warm-up call (the minimum over the repeats is printed;
``--json`` writes every repeat):

  masked     the dense-masked core (all T x T scores, disallowed pairs masked; what the
             paper's Sparseformer numbers reflect); it builds its T x T mask in every
             forward, as fairseq does: "mask" is that part of its time
  dense      plain dense attention through PyTorch's fused kernel
             (F.scaled_dot_product_attention, no mask; a different function, the fastest
             dense baseline)
  blocked    the blocked core, which computes only the pattern's pairs
  flash      the same core on its CPU path (models.sparse_flash): two calls of PyTorch's
             fused attention kernel (own block's leading keys; every summary key) merged by
             their log-sum-exps; on a GPU this path does not run (the core runs blocked)
  flex       the same core on its FlexAttention path (models.sparse_flex): the pattern's
             pairs through a compiled FlexAttention kernel. Its first call per length builds
             the block mask and compiles; that time is printed apart ("compile") and is not
             in the timings. Where compiling fails the core warns and runs blocked.

and the same inside one whole Sparseformer-DN-S layer (projections, attention,
feed-forward). Ratios are "baseline time / sparse time". The last line gives the fused dense
time over the fastest sparse path (blocked, flash or flex) at 8 000 frames, for scripts to
read.

On a small shared machine the absolute times move by tens of percent between runs (other
processes, page faults of the allocator); compare ratios within one run.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from models import sparse_flex  # noqa: E402
from models.sparseformer import BlockedSparseAttention, FixedSparsePattern, MaskedSparseAttention  # noqa: E402
from models.transformer import transformer_layer  # noqa: E402
from profiler.calibration import interleaved_times  # noqa: E402

HEADS, HEAD_DIM = 4, 64
DIM, FFN_DIM = HEADS * HEAD_DIM, 4 * HEADS * HEAD_DIM
HEADLINE_FRAMES = 8000
SPARSE = ("blocked", "flash", "flex")


class _DenseCore(torch.nn.Module):
    def forward(self, q, k, v, key_padding_mask=None):
        return F.scaled_dot_product_attention(q, k, v)


def _first_flex_call(core, q, k, v, wait):
    """Seconds of the flex path's first call at this length (block mask, compile, one run),
    and whether the compiled path ran (False: it failed and the core ran blocked)."""
    start = time.perf_counter()
    out = core(q, k, v)
    wait()
    seconds = time.perf_counter() - start
    reference = BlockedSparseAttention(core.pattern, path="blocked")(q, k, v)
    difference = (out - reference).abs().max().item()
    return seconds, sparse_flex.compile_failure() is None, difference


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[2000, HEADLINE_FRAMES])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--block", type=int, default=32)
    parser.add_argument("--summary", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--json", type=pathlib.Path, default=None,
                        help="write every repeat's seconds per contender to this file")
    args = parser.parse_args(argv)
    if args.json is not None and not args.json.parent.is_dir():
        print(f"--json: folder {args.json.parent} does not exist", file=sys.stderr)
        return 2
    if args.repeats < 1 or min(args.frames) < 1:
        print("--repeats and --frames must be >= 1", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    # On a GPU the kernels run asynchronously: wait for them before reading the clock.
    wait = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    torch.manual_seed(0)
    pattern = FixedSparsePattern(args.block, args.summary)
    cores = {"masked": MaskedSparseAttention(pattern), "dense": _DenseCore(),
             "blocked": BlockedSparseAttention(pattern, path="blocked"),
             "flash": BlockedSparseAttention(pattern, path="flash"),
             "flex": BlockedSparseAttention(pattern, path="flex")}
    layers = {name: transformer_layer(DIM, HEADS, FFN_DIM, dropout=0.0, attention_dropout=0.0,
                                      attention_core=core).eval().to(device)
              for name, core in cores.items()}
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"{torch.get_num_threads()} threads")
    print(f"torch {torch.__version__}, {where}; batch 1, {HEADS} heads x "
          f"{HEAD_DIM}, pattern block {pattern.block} / summary {pattern.summary}; "
          f"best of {args.repeats}, seconds")
    header = (f"{'frames':>6}  {'what':<10} {'masked':>8} {'(mask)':>8} {'dense':>8} "
              f"{'blocked':>8} {'flash':>8} {'flex':>8}  {'masked/best':>11} "
              f"{'dense/blocked':>13} {'dense/flash':>11} {'dense/flex':>10}  "
              f"{'keys/query':>10}")
    results = {"device": where, "torch": torch.__version__, "repeats": args.repeats,
               "pattern": {"block": pattern.block, "summary": pattern.summary}, "frames": {}}
    headline = None
    with torch.no_grad():
        for frames in args.frames:
            q, k, v = (torch.randn(1, HEADS, frames, HEAD_DIM, device=device) for _ in range(3))
            x = torch.randn(1, frames, DIM, device=device)
            compile_s, compiled, difference = _first_flex_call(cores["flex"], q, k, v, wait)
            print(f"{frames:>6}  flex first call (block mask + compile + one run): "
                  f"{compile_s:.1f} s; max |flex - blocked| {difference:.1e}"
                  + ("" if compiled else "; NOT COMPILED, flex ran the blocked core"))
            attention = {name: (lambda core=core: core(q, k, v)) for name, core in cores.items()}
            attention["mask"] = lambda: cores["masked"].pattern_bias(frames, q.dtype, q.device)
            rows = {
                "attention": attention,
                "layer": {name: (lambda layer=layer: layer(x)) for name, layer in layers.items()},
            }
            keys_per_query = pattern.attended_pairs(frames) / frames
            results["frames"][frames] = {"compile_s": compile_s, "compiled": compiled}
            print(header)
            for what, functions in rows.items():
                times = interleaved_times(functions, args.repeats, wait)
                results["frames"][frames][what] = times
                best = {name: min(seconds) for name, seconds in times.items()}
                sparse = min(best[name] for name in SPARSE)
                mask = f"{best['mask']:>8.3f}" if "mask" in best else f"{'':>8}"
                print(f"{frames:>6}  {what:<10} {best['masked']:>8.3f} {mask} "
                      f"{best['dense']:>8.3f} {best['blocked']:>8.3f} {best['flash']:>8.3f} "
                      f"{best['flex']:>8.3f}  {best['masked'] / sparse:>10.2f}x "
                      f"{best['dense'] / best['blocked']:>12.2f}x "
                      f"{best['dense'] / best['flash']:>10.2f}x "
                      f"{best['dense'] / best['flex']:>9.2f}x  {keys_per_query:>10.0f}")
                if what == "attention" and frames == HEADLINE_FRAMES:
                    headline = best["dense"] / sparse
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
    if headline is not None:
        print(f"blocked vs dense at {HEADLINE_FRAMES} frames: {headline:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
