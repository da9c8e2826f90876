"""One training step of our HuBERT-Base against transformers' HubertModel at the same shape.

    python benchmarks/bench_training_step.py [--seconds 10] [--repeats 3]

Both models: 12 layers, D 768, 12 heads, FFN 3072, the wav2vec2 convolutional front end,
batch 1, in train mode with their own dropout defaults; transformers' LayerDrop and
SpecAugment masking are turned off so that both run every layer on the whole input. A step
is forward, a mean-square loss on the last hidden state, backward and zeroing the
gradients (no optimizer: the same for both). The steps are interleaved so that load from
other processes hits both alike; the minimum and the median over the repeats are reported,
with the ratio "transformers / ours" (above 1: ours is faster).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import warnings
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def build_ours():
    import models

    return models.build("vanilla", frontend="wav2vec2", seed=0).train()


def build_transformers():
    import torch
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(0)
    config = HubertConfig(layerdrop=0.0, mask_time_prob=0.0, mask_feature_prob=0.0)
    return HubertModel(config).train()


def step(model, wave, last_hidden) -> None:
    loss = last_hidden(model(wave)).pow(2).mean()
    loss.backward()
    model.zero_grad(set_to_none=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    import torch

    from models.constants import samples_in
    from profiler.calibration import interleaved_times

    wave = torch.randn(1, samples_in(args.seconds), generator=torch.Generator().manual_seed(0))
    contenders = {
        "ours": (build_ours(), lambda out: out.last_hidden_state),
        "transformers": (build_transformers(), lambda out: out.last_hidden_state),
    }
    times = interleaved_times({name: partial(step, model, wave, last)
                               for name, (model, last) in contenders.items()}, args.repeats)
    print(f"HuBERT-Base training step (forward + backward), {args.seconds:g} s of audio, batch 1, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}; "
          f"{args.repeats} interleaved steps after one warm-up each")
    print(f"{'model':14s} {'params':>12s} {'min s':>8s} {'median s':>9s}")
    for name, (model, _) in contenders.items():
        params = sum(p.numel() for p in model.parameters())
        print(f"{name:14s} {params:12,d} {min(times[name]):8.2f} "
              f"{statistics.median(times[name]):9.2f}")
    ratio = min(times["transformers"]) / min(times["ours"])
    print(f"transformers / ours (min): {ratio:.2f} "
          f"({'ours faster' if ratio > 1 else 'transformers faster'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
