"""Setting up a pre-training run: data and targets, model, optimizer, engine, restore.

:func:`setup_run` does everything before the first step, in this order: rank 0 checks the
run folder and the data (synthesizing a corpus and building the k-means targets when
needed) while the other ranks wait; every rank builds the model from the seed, restores
the newest checkpoint when resuming (else initializes BiT's scales from the first
micro-batch), wraps the loss module in DDP or a DeepSpeed engine, and rank 0 writes
``config.json`` and ``metadata.json``.
"""
from __future__ import annotations

import dataclasses
import os
import platform
import random
import socket
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch
from torch import nn

from ..data import CORPUS_FILE, OWN_DATA, PRETRAIN_SPLITS
from ..data.corpora import check_manifest_audio, find_pretrain_folder
from ..data.datasets import PretrainDataset
from ..data.manifest import manifest_path
from ..data.synth import is_complete_corpus, synthesize_corpus
from ..data.synth_plan import QUICK_CORPUS_SIZE, SynthOptions
from ..errors import DataError
from ..fileio import PathLike, check_output_folder, read_json, write_json
from . import checkpoint as ckpt
from . import distributed as dist_utils
from .batches import StepPlan, derived_seed, load_shard, pretrain_splits, seeded
from .distillation import (
    DistillationWeights,
    DistilledPrediction,
    adopt_teacher,
    bit_parameter_groups,
    copy_teacher_targets,
    student_from_teacher,
    teacher_record,
)
from .loss import MaskedPrediction
from .settings import (
    PHONE_TARGETS,
    SMALL,
    TINY,
    PretrainSettings,
    check_settings,
    parse_targets,
    settings_record,
)
from .targets import (
    build_phone_targets,
    build_run_targets,
    check_label_layer,
    require_phone_labels,
)

TARGETS = "targets"


@dataclass
class Run:
    """A pre-training run ready for its first (or next) step."""

    settings: PretrainSettings
    context: dist_utils.Context
    out: Path
    model: nn.Module                 # the HuBERT model (what checkpoints hold)
    wrapped: nn.Module               # what a step calls: the loss module, in DDP or DeepSpeed
    optimizer: Any                   # torch's, or DeepSpeed's
    scheduler: Any
    engine: Any                      # the DeepSpeed engine, or None
    train_set: PretrainDataset
    valid_set: PretrainDataset
    plan: StepPlan
    start_step: int
    checkpoint: Optional[Path]       # the checkpoint resumed from
    metadata: Dict[str, Any]         # metadata.json as written at the start
    previous_wall_seconds: float     # training time of earlier sessions of this run


# ------------------------------------------------------------------------ optimization
def lr_factor(step: int, warmup_steps: int, total_steps: int, power: float = 1.0) -> float:
    """fairseq's polynomial_decay schedule as a factor of the peak lr: linear warm-up over
    ``warmup_steps`` then (1 - progress)^power down to 0 at ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if step >= total_steps:
        return 0.0
    remaining = (total_steps - step) / max(1, total_steps - warmup_steps)
    return float(remaining ** power)


def parameter_groups(model: nn.Module, s: PretrainSettings) -> List[Dict[str, Any]]:
    """One group for a float model (fairseq: every parameter decays); BiT's three groups
    for a quantized one (its scales at ``scale_lr``; no decay on scales, biases, norms)."""
    from models.bit import ElasticBinarizer

    if any(isinstance(m, ElasticBinarizer) for m in model.modules()):
        return bit_parameter_groups(model, weight_decay=s.weight_decay, scale_lr=s.scale_lr)
    return [{"params": [p for p in model.parameters() if p.requires_grad]}]


# Devices where PyTorch has AdamW's fused kernel. Elsewhere its default runs: on a CPU that
# is a Python loop over the parameters, 133 ms a step for conformer-s's 636 tensors on 2
# cores against the fused kernel's 27, in a --small step of about 1.06 s (trainer README).
FUSED_ADAMW_DEVICES = ("cpu", "cuda")


def make_optimizer(groups, s: PretrainSettings) -> torch.optim.Optimizer:
    groups = list(groups)  # read twice: for the devices, then by AdamW
    params = [p for group in groups for p in (group["params"] if isinstance(group, dict)
                                               else [group])]
    fused = all(p.device.type in FUSED_ADAMW_DEVICES for p in params) or None
    return torch.optim.AdamW(groups, lr=s.lr, betas=tuple(s.betas), eps=s.eps,
                             weight_decay=s.weight_decay, fused=fused)


def make_scheduler(optimizer, s: PretrainSettings):
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, s.warmup_steps, s.steps, s.decay_power))


def read_deepspeed_config(path: PathLike) -> Dict[str, Any]:
    config = read_json(path, "DeepSpeed config")
    stage = int(config.get("zero_optimization", {}).get("stage", 0) or 0)
    if stage >= 3:
        raise DataError(f"{path}: ZeRO stage 3 shards the weights, which the run's model.pt "
                        f"and resume logic do not gather; use stage 0, 1 or 2")
    return config


def deepspeed_engine(criterion: nn.Module, groups, s: PretrainSettings,
                     context: dist_utils.Context, out: Path, resume_step: Optional[int]):
    """A DeepSpeed engine around the loss module, with the run's batch geometry filled in."""
    try:
        import deepspeed
    except ImportError:
        raise DataError("--deepspeed needs the 'deepspeed' package "
                        "(pip install deepspeed)") from None
    config = read_deepspeed_config(s.deepspeed)
    wanted = {"train_micro_batch_size_per_gpu": s.batch_size,
              "gradient_accumulation_steps": s.accumulate,
              "train_batch_size": s.batch_size * s.accumulate * context.world_size}
    for key, value in wanted.items():
        if key in config and int(config[key]) != value:
            raise DataError(f"{s.deepspeed}: {key} is {config[key]}, but the run's batch size "
                            f"{s.batch_size} x accumulate {s.accumulate} x {context.world_size} "
                            f"processes gives {value}; make them agree")
        config[key] = value
    config.setdefault("gradient_clipping", s.clip_norm)
    config.setdefault("steps_per_print", 10 ** 9)
    if not context.distributed:  # DeepSpeed always wants a process group
        for key, value in (("RANK", "0"), ("WORLD_SIZE", "1"), ("LOCAL_RANK", "0"),
                           ("MASTER_ADDR", "127.0.0.1")):
            os.environ.setdefault(key, value)
        if "MASTER_PORT" not in os.environ:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                os.environ["MASTER_PORT"] = str(probe.getsockname()[1])
    optimizer = None if "optimizer" in config else (lambda params: make_optimizer(params, s))
    scheduler = None if "scheduler" in config else (lambda opt: make_scheduler(opt, s))
    engine, optimizer, _, scheduler = deepspeed.initialize(
        model=criterion, model_parameters=groups,
        optimizer=optimizer, lr_scheduler=scheduler, config=config)
    if resume_step is not None:
        path, _ = engine.load_checkpoint(str(out / "deepspeed"),
                                         tag=ckpt.checkpoint_name(resume_step))
        if path is None:
            raise ckpt.CheckpointError(f"{out / 'deepspeed'}: no DeepSpeed checkpoint "
                                       f"{ckpt.checkpoint_name(resume_step)} to resume from")
    return engine, optimizer, scheduler


# --------------------------------------------------------------------------- RNG state
def rng_state(device: torch.device) -> Dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: Dict[str, Any], device: torch.device) -> None:
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "python" in state:
        random.setstate((3, tuple(int(v) for v in state["python"]), None))
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


# ------------------------------------------------------------------- data and targets
def on_main(context: dist_utils.Context, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on rank 0 and hand its result (or its DataError) to every rank."""
    result, error, original = None, None, None
    if context.is_main:
        try:
            result = fn()
        except DataError as exc:
            error, original = str(exc), exc
    result, error = dist_utils.broadcast_object((result, error), context)
    if original is not None:
        raise original
    if error is not None:
        raise DataError(error)
    return result


def _check_run_folder(s: PretrainSettings) -> Optional[ckpt.TrainedRun]:
    """Fails early for an unusable out folder or ``--targets-from`` run; returns the
    latter, resolved."""
    out = check_output_folder(s.out)
    if s.resume:
        ckpt.require_run_dir(out)
        checkpoint = ckpt.latest_checkpoint(out)
        if checkpoint is not None:  # fail now, not after the targets are rebuilt
            ckpt.load_state_file(checkpoint)
            ckpt.load_model_file(checkpoint)
    elif ckpt.is_run_dir(out) or (out / ckpt.CHECKPOINTS).exists():
        raise DataError(f"{out}: already holds a training run; pass --resume to continue it "
                        f"or choose another --out")
    targets_from = None
    if s.targets_from:
        targets_from = ckpt.resolve_run(s.targets_from)
        if targets_from.checkpoint is None and ckpt.latest_checkpoint(targets_from.run_dir) is None:
            raise DataError(f"{targets_from.run_dir}: --targets-from run has no checkpoint yet")
        check_label_layer(targets_from, s.label_layer)
    if parse_targets(s.targets)[0] == PHONE_TARGETS and s.data is not None:
        require_phone_labels(find_pretrain_folder(Path(s.data)))
    if s.deepspeed is not None:
        read_deepspeed_config(s.deepspeed)
    return targets_from


def prepare_data(s: PretrainSettings, teacher: Optional[ckpt.TrainedRun] = None
                 ) -> Dict[str, Any]:
    """Rank 0: check the out folder and data, synthesize if needed, build targets (or copy
    the ``teacher``'s, the resolved ``s.teacher``)."""
    import json

    targets_from = _check_run_folder(s)
    out = Path(s.out)
    show = s.progress and sys.stderr.isatty()
    synthesized = False
    if s.data is None:
        data = out / OWN_DATA
        if not is_complete_corpus(data):
            # Anything already there is an interrupted earlier attempt.
            sizes = QUICK_CORPUS_SIZE if s.tiny or s.small else "default"
            synthesize_corpus(data, seed=s.seed, sizes=sizes,
                              overwrite=data.exists() and any(data.iterdir()), workers=1,
                              progress=show,
                              options=SynthOptions(phones=s.targets == PHONE_TARGETS))
            synthesized = True
    else:
        data = Path(s.data)
    data_record = {"data": str(data.resolve()), "data_synthesized": s.data is None}
    pretrain_dir = find_pretrain_folder(data)
    counts = {split: check_manifest_audio(manifest_path(pretrain_dir, split))
              for split in PRETRAIN_SPLITS}
    out.mkdir(parents=True, exist_ok=True)
    if teacher is not None:
        targets = copy_teacher_targets(teacher, out / TARGETS)
    elif s.targets == PHONE_TARGETS:
        targets = build_phone_targets(pretrain_dir, out / TARGETS)
    else:
        targets = build_run_targets(pretrain_dir, out / TARGETS, iteration=s.iteration,
                                    clusters=s.clusters, seed=s.seed,
                                    max_frames=s.kmeans_max_frames,
                                    targets_from=targets_from, label_layer=s.label_layer,
                                    progress=show)
    corpus = {}
    if (data / CORPUS_FILE).is_file():
        try:
            corpus = json.loads((data / CORPUS_FILE).read_text(encoding="utf-8")).get("tasks", {})
        except ValueError:
            corpus = {}
    return {**data_record, "pretrain_folder": str(pretrain_dir.resolve()), "utterances": counts,
            "targets": targets, "synthesized_now": synthesized,
            "corpus": {task: {k: v.get(k) for k in ("preset", "seed", "utterances")}
                       for task, v in corpus.items() if isinstance(v, dict)}}


# ------------------------------------------------------------------------------ restore
def has_binarizers(model: nn.Module) -> bool:
    """Whether ``model`` has quantizers still waiting for their first batch."""
    from models.bit import uninitialized_binarizers

    return bool(uninitialized_binarizers(model))


def initialize_binarizers(model: nn.Module, train_set: PretrainDataset, plan: StepPlan,
                          seed: int, device: torch.device) -> None:
    """BiT's scales start from data: every rank uses micro-batch 0 of step 0."""
    batch = load_shard(train_set, plan.shard(0, 0), plan.epoch(0))
    with seeded(derived_seed(seed, 0, 0, 1), device), torch.enable_grad():
        generator = torch.Generator().manual_seed(derived_seed(seed, 0, 0, 0))
        model.pretrain_forward(batch["waveforms"].to(device), batch["lengths"].to(device),
                               generator=generator)
    model.zero_grad(set_to_none=True)


def _restore(checkpoint: Path, model: nn.Module, optimizer, scheduler, s: PretrainSettings,
             device: torch.device) -> int:
    """Load the checkpoint's weights (and, without DeepSpeed, the optimizer, schedule and
    RNG states); return its step."""
    weights = ckpt.load_model_file(checkpoint)
    ckpt.load_weights(model, weights["model"], checkpoint / ckpt.MODEL_FILE)
    state = ckpt.load_state_file(checkpoint)
    if s.deepspeed is None:
        if state.get("engine") == "deepspeed":
            raise DataError(f"{checkpoint}: written by a DeepSpeed run; resume it with "
                            f"--deepspeed")
        try:
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
        except (KeyError, ValueError, RuntimeError) as error:
            raise ckpt.CheckpointError(f"{checkpoint / ckpt.STATE_FILE}: optimizer state does "
                                       f"not fit ({error})") from None
        set_rng_state(state.get("rng", {}), device)
    return int(state["step"])


def _truncate_or_remove_log(s: PretrainSettings, out: Path, start_step: int) -> None:
    log_path = out / ckpt.LOG
    if s.resume:
        ckpt.truncate_log(log_path, start_step)
    elif log_path.exists():
        log_path.unlink()


# ------------------------------------------------------------------------------ the run
def setup_run(s: PretrainSettings, context: dist_utils.Context,
              teacher: Optional[ckpt.TrainedRun] = None) -> Run:
    """Everything before the first step; see the module docstring. ``teacher``: ``s.teacher``
    already resolved (by a distillation chain); else it is resolved here, once."""
    import models

    if teacher is None and s.teacher is not None:
        teacher = ckpt.resolve_run(s.teacher)
    s = adopt_teacher(s, teacher)
    check_settings(s)
    out = Path(s.out)
    prepared = on_main(context, lambda: prepare_data(s, teacher))
    if s.targets == PHONE_TARGETS:   # one unit per phone of the corpus's inventory
        s = dataclasses.replace(s, clusters=int(prepared["targets"]["clusters"]))
    shards = context.world_size * s.accumulate
    overrides = {**s.overrides, "num_classes": s.clusters}

    model = models.build(s.model, seed=s.seed, **overrides)
    metadata_path = out / ckpt.METADATA
    previous: Dict[str, Any] = {}
    if context.is_main:
        if s.resume and metadata_path.is_file():
            previous = ckpt.read_metadata(out)
        else:
            write_json(out / ckpt.CONFIG, ckpt.config_record(s.model, overrides, model))
    dist_utils.barrier(context)

    train_set, valid_set = pretrain_splits(Path(prepared["pretrain_folder"]), out / TARGETS,
                                           s.crop_seconds, s.seed)
    plan = StepPlan(len(train_set), s.batch_size, shards, s.seed)

    device = context.device
    model.to(device)
    model.train()
    if teacher is None:
        criterion = MaskedPrediction(model, s.masked_weight, s.unmasked_weight)
    else:
        weights = DistillationWeights(s.distill_hidden, s.distill_prediction, s.distill_hubert,
                                      s.distill_temperature)
        criterion = DistilledPrediction(model, teacher.model.to(device), weights,
                                        s.masked_weight, s.unmasked_weight)
    groups = parameter_groups(model, s)
    optimizer = make_optimizer(groups, s) if s.deepspeed is None else None
    scheduler = make_scheduler(optimizer, s) if optimizer is not None else None

    start_step = 0
    checkpoint = ckpt.latest_checkpoint(out) if s.resume else None
    if checkpoint is not None:
        start_step = _restore(checkpoint, model, optimizer, scheduler, s, device)
    else:
        if teacher is not None:
            student_from_teacher(model, teacher.model, scales=s.student_scales)
        if has_binarizers(model):
            initialize_binarizers(model, train_set, plan, s.seed, device)
    if context.is_main:
        _truncate_or_remove_log(s, out, start_step)

    engine = None
    wrapped: nn.Module = criterion
    if s.deepspeed is not None:
        engine, optimizer, scheduler = deepspeed_engine(criterion, groups, s, context, out,
                                                        start_step if checkpoint else None)
        wrapped = engine
    elif context.distributed:
        from torch.nn.parallel import DistributedDataParallel

        wrapped = DistributedDataParallel(
            criterion, device_ids=[device.index] if device.type == "cuda" else None,
            broadcast_buffers=False)

    metadata = {
        "format": ckpt.RUN_FORMAT, "model": s.model, "overrides": overrides,
        "settings": settings_record(s),
        **{k: v for k, v in prepared.items() if k != "synthesized_now"},
        "parameters": sum(p.numel() for p in model.parameters()),
        "world_size": context.world_size, "backend": context.backend or "single process",
        "device": str(device), "accumulate": s.accumulate,
        "global_batch_utterances": s.batch_size * shards,
        "deepspeed_config": str(Path(s.deepspeed).resolve()) if s.deepspeed else None,
        "torch": torch.__version__, "python": platform.python_version(),
        "host": socket.gethostname(), "torch_threads": torch.get_num_threads(),
        "step": start_step, "finished": False,
        "wall_seconds": float(previous.get("wall_seconds", 0.0)),
        "sessions": int(previous.get("sessions", 0)) + 1,
    }
    if s.tiny:
        metadata["tiny_preset"] = dict(TINY)
    if s.small:
        metadata["small_preset"] = dict(SMALL)
    if teacher is not None:
        metadata["teacher"] = teacher_record(teacher)
    if context.is_main:
        write_json(metadata_path, metadata)
    return Run(s, context, out, model, wrapped, optimizer, scheduler, engine, train_set,
               valid_set, plan, start_step, checkpoint, metadata,
               float(previous.get("wall_seconds", 0.0)))
