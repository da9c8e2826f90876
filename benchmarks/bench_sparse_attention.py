"""Forward time of the Sparseformer's blocked sparse attention against dense attention.

    python benchmarks/bench_sparse_attention.py [--frames 2000 8000] [--repeats 5] [--device cuda]

Shapes are Sparseformer-DN-S's (batch 1, 4 heads of 64, fixed pattern with block 32 and 8
summary columns). Timed, in the same run and interleaved so that load from other processes
hits all of them alike (the minimum over the repeats is reported):

  masked     the dense-masked core (all T x T scores, disallowed pairs masked; what the
             paper's Sparseformer numbers reflect); it builds its T x T mask in every
             forward, as fairseq does: "mask" is that part of its time
  dense      plain dense attention through PyTorch's fused kernel
             (F.scaled_dot_product_attention, no mask; a different function, the fastest
             dense baseline)
  blocked    the blocked core, which computes only the pattern's pairs

and the same three inside one whole Sparseformer-DN-S layer (projections, attention,
feed-forward). Ratios are "baseline time / blocked time".

On a small shared machine the absolute times move by tens of percent between runs (other
processes, page faults of the allocator); compare ratios within one run.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from models.sparseformer import BlockedSparseAttention, FixedSparsePattern, MaskedSparseAttention  # noqa: E402
from models.transformer import transformer_layer  # noqa: E402

HEADS, HEAD_DIM = 4, 64
DIM, FFN_DIM = HEADS * HEAD_DIM, 4 * HEADS * HEAD_DIM


class _DenseCore(torch.nn.Module):
    def forward(self, q, k, v, key_padding_mask=None):
        return F.scaled_dot_product_attention(q, k, v)


def _best_times(functions, repeats, device):
    # On a GPU the kernels run asynchronously: wait for them before reading the clock.
    wait = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for function in functions.values():
        function()  # warm-up (allocations, caches of the masked core)
    wait()
    best = {name: float("inf") for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            wait()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[2000, 8000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--block", type=int, default=32)
    parser.add_argument("--summary", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    pattern = FixedSparsePattern(args.block, args.summary)
    cores = {"masked": MaskedSparseAttention(pattern), "dense": _DenseCore(),
             "blocked": BlockedSparseAttention(pattern)}
    layers = {name: transformer_layer(DIM, HEADS, FFN_DIM, dropout=0.0, attention_dropout=0.0,
                                      attention_core=core).eval().to(device)
              for name, core in cores.items()}
    where = (torch.cuda.get_device_name(device) if device.type == "cuda"
             else f"{torch.get_num_threads()} threads")
    print(f"torch {torch.__version__}, {where}; batch 1, {HEADS} heads x "
          f"{HEAD_DIM}, pattern block {pattern.block} / summary {pattern.summary}; "
          f"best of {args.repeats}, seconds")
    header = (f"{'frames':>6}  {'what':<10} {'masked':>8} {'(mask)':>8} {'dense':>8} "
              f"{'blocked':>8}  "
              f"{'masked/blocked':>14} {'dense/blocked':>13}  {'keys/query':>10}")
    print(header)
    with torch.no_grad():
        for frames in args.frames:
            q, k, v = (torch.randn(1, HEADS, frames, HEAD_DIM, device=device) for _ in range(3))
            x = torch.randn(1, frames, DIM, device=device)
            attention = {name: (lambda core=core: core(q, k, v)) for name, core in cores.items()}
            attention["mask"] = lambda: cores["masked"].pattern_bias(frames, q.dtype, q.device)
            rows = {
                "attention": attention,
                "layer": {name: (lambda layer=layer: layer(x)) for name, layer in layers.items()},
            }
            keys_per_query = pattern.attended_pairs(frames) / frames
            for what, functions in rows.items():
                best = _best_times(functions, args.repeats, device)
                mask = f"{best['mask']:>8.3f}" if "mask" in best else f"{'':>8}"
                print(f"{frames:>6}  {what:<10} {best['masked']:>8.3f} {mask} "
                      f"{best['dense']:>8.3f} "
                      f"{best['blocked']:>8.3f}  {best['masked'] / best['blocked']:>13.2f}x "
                      f"{best['dense'] / best['blocked']:>12.2f}x  {keys_per_query:>10.0f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
