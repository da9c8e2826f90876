"""``profile-encoder train``: HuBERT pre-training of a zoo model (bundled trainer by default).

Runs as one process, or as many under ``torchrun --nproc_per_node=N -m profiler train ...``
(DDP: gloo on the CPU, NCCL on GPUs), or with a DeepSpeed config (``--deepspeed``).
"""
from __future__ import annotations

from ..errors import UsageError


def parse_override(text: str):
    """``key=value`` -> (key, value) with value read as int, float, bool or string."""
    key, sep, raw = text.partition("=")
    key = key.strip().replace("-", "_")
    if not sep or not key:
        raise UsageError(f"--override {text!r}: expected KEY=VALUE, e.g. layers=2")
    raw = raw.strip()
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return key, lowered == "true"
    if lowered in ("none", "null"):
        return key, None
    for kind in (int, float):
        try:
            return key, kind(raw)
        except ValueError:
            pass
    return key, raw


def overrides_from(items) -> dict:
    return dict(parse_override(item) for item in items or [])


def add_parser(sub) -> None:
    import argparse

    from .arguments import non_negative_int, positive_float, positive_int

    p = sub.add_parser(
        "train", help="HuBERT pre-training of a zoo model (masked prediction of k-means units)",
        description="Pre-train a zoo model with HuBERT's masked prediction loss. Without "
                    "--data a synthetic corpus is made first (into OUT/data). --tiny is a "
                    "preset that finishes in minutes on two CPU cores. Multi-device: "
                    "torchrun --nproc_per_node=N -m profiler train ..., or --deepspeed CONFIG.",
    )
    p.add_argument("--model", help="zoo name, e.g. sparseformer-dn-s (required unless --resume)")
    p.add_argument("--out", required=True, help="run folder (checkpoints, log.jsonl, metadata)")
    p.add_argument("--data", help="corpus folder from 'profile-encoder data synth' (or one with "
                                  "pretrain/train.tsv and valid.tsv); default: synthesize one "
                                  "into OUT/data")
    p.add_argument("--tiny", action="store_true",
                   help="small-scale preset: 250 steps of 8 x 2 s crops, 50 units, lr 3e-4, "
                        "unmasked frames count too; the model keeps its full size")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its newest checkpoint")
    p.add_argument("--steps", type=positive_int, help="optimizer steps (default 250000; --tiny 250)")
    p.add_argument("--batch-size", type=positive_int,
                   help="utterances per micro-batch and process (default 8)")
    p.add_argument("--accumulate", type=positive_int,
                   help="micro-batches per optimizer step (default 1)")
    p.add_argument("--crop-seconds", type=positive_float,
                   help="longest audio crop in seconds (default 15.625; --tiny 2)")
    p.add_argument("--lr", type=positive_float, help="peak learning rate (default 5e-4; --tiny 3e-4)")
    p.add_argument("--unmasked-weight", type=float, metavar="W",
                   help="weight of the loss on unmasked frames (fairseq pred_nomask_weight; "
                        "default 0 as HuBERT Base; --tiny 1)")
    p.add_argument("--warmup-steps", type=non_negative_int,
                   help="linear warm-up steps (default 32000; --tiny 25)")
    p.add_argument("--seed", type=non_negative_int, help="random seed (default 0)")
    p.add_argument("--iteration", type=int, choices=(1, 2), default=1,
                   help="1: k-means on MFCC; 2: k-means on a hidden layer of --targets-from")
    p.add_argument("--targets-from", metavar="RUN",
                   help="iteration 2: the iteration-1 run folder whose hidden layer is clustered")
    p.add_argument("--label-layer", type=non_negative_int,
                   help="iteration 2: which hidden state to cluster (default: half the depth)")
    p.add_argument("--clusters", type=positive_int,
                   help="k-means units (default 100; iteration 2: 500; --tiny 50)")
    p.add_argument("--save-every", type=positive_int, help="steps between checkpoints")
    p.add_argument("--log-every", type=positive_int, help="steps between log.jsonl lines")
    p.add_argument("--valid-every", type=positive_int, help="steps between validations")
    p.add_argument("--workers", type=non_negative_int,
                   help="data-loading processes per training process (default 0: load in "
                        "the training loop; 4-8 for full-scale runs on GPUs)")
    p.add_argument("--deepspeed", metavar="CONFIG", help="DeepSpeed JSON config (ZeRO stage 0-2)")
    p.add_argument("--override", action="append", metavar="KEY=VALUE",
                   help="model config override, e.g. layers=4 (recorded in config.json); "
                        "repeatable")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: this process's GPU if any)")
    p.add_argument("--backend", default="bundled", help="training backend (default: bundled)")
    p.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    # The deepspeed launcher passes --local_rank; torchrun uses the LOCAL_RANK variable.
    p.add_argument("--local_rank", "--local-rank", type=int, default=None,
                   help=argparse.SUPPRESS)
    p.set_defaults(run=run)


def run(args) -> int:
    import os
    import sys
    from pathlib import Path

    from ..adapters import TrainRequest, get_backend

    if args.iteration == 2 and not args.targets_from and not args.resume:
        raise UsageError("--iteration 2 needs --targets-from RUN (an iteration-1 run folder)")
    request = TrainRequest(
        out=Path(args.out), model=args.model, data=Path(args.data) if args.data else None,
        tiny=args.tiny, resume=args.resume, steps=args.steps, batch_size=args.batch_size,
        accumulate=args.accumulate, crop_seconds=args.crop_seconds, lr=args.lr,
        warmup_steps=args.warmup_steps, unmasked_weight=args.unmasked_weight, seed=args.seed,
        iteration=args.iteration,
        targets_from=Path(args.targets_from) if args.targets_from else None,
        label_layer=args.label_layer, clusters=args.clusters, save_every=args.save_every,
        log_every=args.log_every, valid_every=args.valid_every, workers=args.workers,
        deepspeed=Path(args.deepspeed) if args.deepspeed else None, device=args.device,
        overrides=overrides_from(args.override), progress=not args.quiet)
    result = get_backend(args.backend).pretrain(request)
    if not args.quiet and os.environ.get("RANK", "0") == "0":
        valid = result.valid or {}
        loss = f"{result.final_loss:.3f}" if result.final_loss is not None else "n/a"
        extra = (f", valid loss {valid['loss']:.3f}, masked-unit accuracy "
                 f"{valid['acc_masked']:.3f}") if valid else ""
        print(f"trained {result.steps} steps in {result.wall_seconds / 60:.1f} min: train loss "
              f"{loss}{extra}; run folder {result.out}", file=sys.stdout)
    return 0
