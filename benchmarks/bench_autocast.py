"""One pre-training step of the study's preset, and one extraction call, in float32
against the same under ``--autocast bf16`` (bfloat16 products and convolutions, float32
weights and optimizer).

    python benchmarks/bench_autocast.py [--models conformer-s,sparseformer-dn-s] [--repeats 8]

The step is what ``train --small`` runs on the paper preset's corpus: 8 utterances of
1.5 s (its crops are at most 2 s and each batch is cut to its shortest utterance, 1.5 s on
average over random batches of that corpus), masked prediction (span
masks, cosine logits, cross-entropy on the masked frames), backward, gradient clipping at
10 and an AdamW update, in train mode (dropout on). The extraction call is what
``superb --autocast`` runs: 4 utterances of 9 s in eval mode without gradients, every
hidden state returned. The two precisions alternate step by
step so that load from other processes hits both alike; the first two steps of each are
warm-up. Reported: the median and minimum seconds per step and the ratio float32 /
bfloat16 of the medians (above 1: autocast is faster). Target: at least 1.1x on a CPU with
AVX-512 BF16 or AMX (``--check`` fails below it there); elsewhere the ratio is reported
only, since without bfloat16 instructions autocast emulates them and can be slower.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

from models.trainer.autocast import cpu_has_bfloat16
from profiler.option_values import split_list

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TARGET_RATIO = 1.1
BATCH, SECONDS = 8, 1.5


def make_step(name: str, precision):
    import torch

    from models.constants import samples_in
    from models.registry import build
    from models.trainer.autocast import autocast

    model = build(name).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4, betas=(0.9, 0.98), eps=1e-6)
    generator = torch.Generator().manual_seed(0)
    waves = torch.randn(BATCH, samples_in(SECONDS), generator=generator)
    count = [0]

    def step() -> None:
        with autocast(precision, "cpu"):
            out = model.pretrain_forward(waves, generator=torch.Generator().manual_seed(count[0]))
        labels = torch.randint(0, out.logits.shape[-1], out.logits.shape[:2], generator=generator)
        loss = torch.nn.functional.cross_entropy(out.logits[out.mask_indices].float(),
                                                 labels[out.mask_indices])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        count[0] += 1

    return step


def make_extraction(name: str, precision):
    import torch

    from models.constants import samples_in
    from models.registry import build
    from models.trainer.autocast import autocast

    model = build(name).eval()
    waves = torch.randn(4, samples_in(9.0), generator=torch.Generator().manual_seed(0))

    def call() -> None:
        with torch.no_grad(), autocast(precision, "cpu"):
            model(waves)

    return call


def paired_times(calls, repeats: int):
    """Medians and minima of interleaved calls, the first two of each left out."""
    from profiler.calibration import interleaved_times

    times = interleaved_times(calls, repeats, warmup=2)
    return ({key: statistics.median(values) for key, values in times.items()},
            {key: min(values) for key, values in times.items()})


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="conformer-s,sparseformer-dn-s")
    parser.add_argument("--repeats", type=int, default=8, help="timed steps per precision")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--check", action="store_true",
                        help=f"exit 1 if a ratio is under {TARGET_RATIO} on a bfloat16 CPU")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    native = cpu_has_bfloat16()
    print(f"load average {os.getloadavg()[0]:.2f}; {args.threads} threads; bfloat16 "
          f"instructions: {'yes' if native else 'no'}; {BATCH} x {SECONDS:g} s per step")
    failed = False
    for name in split_list(args.models):
        for what, make in (("training step", make_step), ("extraction", make_extraction)):
            median, least = paired_times({"float32": make(name, None),
                                          "bf16": make(name, "bf16")}, args.repeats)
            ratio = median["float32"] / median["bf16"]
            print(f"{name} {what}: float32 {median['float32']:.3f} s (min "
                  f"{least['float32']:.3f}), bf16 {median['bf16']:.3f} s (min "
                  f"{least['bf16']:.3f}); float32 / bf16 = {ratio:.2f}", flush=True)
            failed |= native and ratio < TARGET_RATIO
    if args.check and failed:
        print(f"below the target of {TARGET_RATIO}x on a CPU with bfloat16 instructions")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
