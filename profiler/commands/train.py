"""``profile-encoder train``: HuBERT pre-training of a zoo model (bundled trainer by default).

Runs as one process, or as many under ``torchrun --nproc_per_node=N -m profiler train ...``
(DDP: gloo on the CPU, NCCL on GPUs), or with a DeepSpeed config (``--deepspeed``). The
options are the fields of ``models.trainer.pretrain.settings.PretrainSettings``.
"""
from __future__ import annotations

import argparse
import os
import sys

from models.trainer.pretrain.settings import PretrainSettings

from ..training_commands import TRAINING_COMMANDS
from .arguments import add_backend_option
from .settings_arguments import add_settings_arguments, settings_from_arguments


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train", help=TRAINING_COMMANDS["train"],
        description="Pre-train a zoo model with HuBERT's masked prediction loss. Without "
                    "--data a synthetic corpus is made first (into OUT/data). --tiny is a "
                    "preset that finishes in minutes on two CPU cores. Multi-device: "
                    "torchrun --nproc_per_node=N -m profiler train ..., or --deepspeed CONFIG.",
    )
    add_settings_arguments(p, PretrainSettings)
    add_backend_option(p, "training")
    # The deepspeed launcher passes --local_rank; torchrun uses the LOCAL_RANK variable.
    p.add_argument("--local_rank", "--local-rank", type=int, default=None,
                   help=argparse.SUPPRESS)
    p.set_defaults(run=run)


def run(args) -> int:
    from ..adapters import TrainRequest, get_backend

    request = TrainRequest(**settings_from_arguments(args, PretrainSettings))
    result = get_backend(args.backend).pretrain(request)
    if request.progress is not False and os.environ.get("RANK", "0") == "0":
        valid = result.valid or {}
        loss = f"{result.final_loss:.3f}" if result.final_loss is not None else "n/a"
        extra = (f", valid loss {valid['loss']:.3f}, masked-unit accuracy "
                 f"{valid['acc_masked']:.3f}") if valid else ""
        print(f"trained {result.steps} steps in {result.wall_seconds / 60:.1f} min: train loss "
              f"{loss}{extra}; run folder {result.out}", file=sys.stdout)
    return 0
