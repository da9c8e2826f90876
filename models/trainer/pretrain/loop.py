"""HuBERT pre-training of any zoo model (binarized ones included), on one process or many.

The recipe follows fairseq's HuBERT Base (``hubert_base_librispeech.yaml``) where it can:
masked prediction of k-means units (:mod:`.loss`); AdamW with betas (0.9, 0.98), eps 1e-6,
weight decay 0.01, peak lr 5e-4, linear warm-up then polynomial (power 1) decay to 0;
gradient norm clipped at 10; random crops of at most 250 000 samples and each batch cut to
its shortest utterance (fairseq's ``pad_audio=false``). Not reproduced: fairseq's feature
penalty (the zoo's model does not return it), fp16, and layer drop.

The pre-training modules, one job each: :mod:`.settings` (every option, defined once),
:mod:`.loss` (the masked-prediction loss), :mod:`.batches` (the data pipeline),
:mod:`.run_setup` (data and targets, model, optimizer, engine, restore) and this one
(the loop: steps, validation, logging, checkpoints).

Determinism. The data order of step ``s`` is a function of (seed, epoch) and the random
numbers of each micro-batch (span masks, dropout) come from generators seeded by
(seed, step, micro-batch index). So:

* a run killed at any point and resumed from its last checkpoint ends with exactly the
  same weights as an uninterrupted run (on the CPU, with the same thread count);
* N processes under torchrun (DDP) with ``batch_size`` B compute the same update as one
  process with ``accumulate=N`` and the same B: both see the same N micro-batches with
  the same masks, and the loss is normalized by the global masked-frame count.

BiT's binarizers initialize their scales from the first micro-batch of step 0, on every
rank, before training starts, so that replicas agree.

Multi-device: started by ``torchrun --nproc_per_node=N -m profiler train ...`` every
process joins the group (gloo on the CPU, NCCL on GPUs) and the model is wrapped in
DistributedDataParallel; with ``deepspeed=CONFIG`` a DeepSpeed engine does the
data-parallel work, gradient accumulation, clipping and (optionally) ZeRO stages 1-2.
"""
from __future__ import annotations

import contextlib
import dataclasses
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import torch
from torch import nn

from ..autocast import autocast
from ..data.datasets import PretrainDataset, collate
from ..fileio import append_log, write_json
from . import checkpoint as ckpt
from . import distributed as dist_utils
from .accuracy import accuracy_over_prior
from .batches import crop_to_shortest, derived_seed, seeded, step_batches
from .loss import LossTotals, labelled_frames, masked_prediction_loss
from .run_setup import Run, rng_state, setup_run
from .settings import PretrainSettings


@dataclass
class PretrainResult:
    out: Path
    step: int
    loss: Optional[float]
    valid: Optional[Dict[str, float]]
    wall_seconds: float
    checkpoint: Optional[Path]
    rank_checksums: List[str]


@dataclass
class StepStats:
    """One optimizer step, over all micro-batches and processes (a line of log.jsonl)."""

    loss: float                 # mean cross-entropy per masked frame
    acc_masked: float           # unit accuracy on masked frames
    loss_unmasked: float
    acc_unmasked: float
    masked_frames: int
    utterances: int
    lr: float                   # the learning rate this step used
    grad_norm: float            # before clipping
    # Distillation runs only: per frame, the hidden-state error summed over layers and the
    # soft cross-entropy against the teacher.
    distill_hidden: Optional[float] = None
    distill_prediction: Optional[float] = None

    def record(self) -> Dict[str, float]:
        """The log.jsonl fields (the distillation ones only where there are any)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def pretrain(settings: PretrainSettings, *,
             on_step: Optional[Callable[[int], None]] = None,
             teacher: Optional[ckpt.TrainedRun] = None) -> PretrainResult:
    """Run (or with ``settings.resume`` continue) HuBERT pre-training into ``settings.out``.

    ``on_step(step)`` is called after every optimizer step (and its logging and saving).
    ``teacher`` is ``settings.teacher`` when the caller resolved it already.
    Raises :class:`DataError` for bad input, before anything in ``out`` is changed where
    the problem can be seen up front.
    """
    context = dist_utils.setup(settings.device, init_group=settings.deepspeed is None
                               or dist_utils.env_world()[1] > 1)
    try:
        started = time.perf_counter()
        return _train(setup_run(settings, context, teacher), on_step, started)
    finally:
        dist_utils.teardown(context)


def _save(run: Run, step: int, session_start: float) -> tuple[Path, List[str]]:
    """A checkpoint of ``step`` (rank 0 writes it); the ranks' weight checksums."""
    s, context, model = run.settings, run.context, run.model
    checksums = dist_utils.gather_checksums(model, context)
    if context.distributed and len(set(checksums)) != 1:
        raise RuntimeError(f"model replicas differ after step {step}: {checksums}")
    if run.engine is not None:
        run.engine.save_checkpoint(str(run.out / "deepspeed"), tag=ckpt.checkpoint_name(step),
                                   client_state={"step": step})
        training_state = {"engine": "deepspeed", "tag": ckpt.checkpoint_name(step)}
    else:
        training_state = {"optimizer": run.optimizer.state_dict(),
                          "scheduler": run.scheduler.state_dict(),
                          "rng": rng_state(context.device)}
    path = None
    if context.is_main:
        training_state.update(world_size=context.world_size, accumulate=s.accumulate)
        weights = {k: v.detach().cpu() if torch.is_tensor(v) else v
                   for k, v in model.state_dict().items()}
        path = ckpt.save_checkpoint(run.out, step, weights, training_state, keep=s.keep)
        run.metadata.update(step=step, rank_checksums=checksums,
                            wall_seconds=run.previous_wall_seconds
                            + time.perf_counter() - session_start)
        write_json(run.out / ckpt.METADATA, run.metadata)
    dist_utils.barrier(context)
    return path or run.out / ckpt.CHECKPOINTS / ckpt.checkpoint_name(step), checksums


def _train(run: Run, on_step: Optional[Callable[[int], None]], started: float) -> PretrainResult:
    from tqdm import tqdm

    s, context = run.settings, run.context
    log_path = run.out / ckpt.LOG
    bar = tqdm(total=s.steps, initial=run.start_step, desc=f"train {s.model}", unit="step",
               file=sys.stderr, dynamic_ncols=True,
               disable=not (s.progress and context.is_main and sys.stderr.isatty()))
    session_start = time.perf_counter()
    last_loss: Optional[float] = None
    last_valid: Optional[Dict[str, float]] = None
    saved: Optional[Path] = run.checkpoint
    checksums: List[str] = []
    try:
        mine = range(context.rank * s.accumulate, (context.rank + 1) * s.accumulate)
        batches = step_batches(run.train_set, run.plan, mine, run.start_step, s.steps, s.workers)
        for step, micro_batches in zip(range(run.start_step, s.steps), batches):
            t0 = time.perf_counter()
            stats = train_step(run, step, micro_batches)
            done = step + 1
            last_loss = stats.loss
            bar.update(1)
            bar.set_postfix(loss=f"{stats.loss:.3f}", acc=f"{stats.acc_masked:.3f}")
            if context.is_main and (done % s.log_every == 0 or done == s.steps or done == 1):
                append_log(log_path, {
                    "split": "train", "step": done, "epoch": run.plan.epoch(step),
                    **stats.record(),
                    "step_seconds": round(time.perf_counter() - t0, 4),
                    "elapsed_seconds": round(run.previous_wall_seconds
                                             + time.perf_counter() - session_start, 3)})
            if done % s.valid_every == 0 or done == s.steps:
                if context.is_main:
                    last_valid = validate(run.model, run.valid_set, s, context.device,
                                          most_frequent_unit(run.train_set))
                    append_log(log_path, {"split": "valid", "step": done, **last_valid})
            if done % s.save_every == 0 or done == s.steps:
                saved, checksums = _save(run, done, session_start)
            if on_step is not None:
                on_step(done)
    finally:
        bar.close()

    if context.is_main:
        run.metadata.update(finished=True, step=s.steps,
                            final_train_loss=last_loss, final_valid=last_valid,
                            wall_seconds=run.previous_wall_seconds
                            + time.perf_counter() - session_start)
        write_json(run.out / ckpt.METADATA, run.metadata)
    dist_utils.barrier(context)
    if not checksums:
        checksums = dist_utils.gather_checksums(run.model, context)
    return PretrainResult(run.out, s.steps, last_loss, last_valid, time.perf_counter() - started,
                          saved, checksums)


def train_step(run: Run, step: int, micro_batches: List[dict]) -> StepStats:
    """One optimizer step over this process's micro-batches (accumulated, then all-reduced)."""
    s, context, device, engine = run.settings, run.context, run.context.device, run.engine
    totals = LossTotals()
    first = context.rank * s.accumulate
    for position, batch in enumerate(micro_batches):
        shard = first + position
        generator = torch.Generator().manual_seed(derived_seed(s.seed, step, shard, 0))
        last = position == s.accumulate - 1
        sync = contextlib.nullcontext()
        if engine is None and context.distributed and not last:
            sync = run.wrapped.no_sync()
        with seeded(derived_seed(s.seed, step, shard, 1), device), sync:
            with autocast(s.autocast, device):
                parts = run.wrapped(batch["waveforms"].to(device), batch["lengths"].to(device),
                                    batch["frame_labels"].to(device), generator)
            if engine is not None:
                engine.backward(parts.loss / parts.sample_size.clamp(min=1))
                engine.step()
            else:
                parts.loss.backward()
        totals.add(parts, batch["waveforms"].shape[0])
    totals = LossTotals.from_list(dist_utils.all_reduce_sum(totals.to_list(), context))
    if engine is None:
        lr = run.optimizer.param_groups[0]["lr"]
        # DDP averaged the ranks' gradients of summed losses; make it the global mean.
        scale = context.world_size / max(totals.sample_size, 1.0)
        for parameter in run.model.parameters():
            if parameter.grad is not None:
                parameter.grad.mul_(scale)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(run.model.parameters(), s.clip_norm))
        run.optimizer.step()
        run.scheduler.step()
        run.optimizer.zero_grad(set_to_none=True)
    else:
        lr = float(engine.get_lr()[0]) if engine.get_lr() else float("nan")
        norm = engine.get_global_grad_norm()
        grad_norm = float(norm) if norm is not None else float("nan")
    distillation = totals.distillation_rates() if s.teacher is not None else {}
    return StepStats(**totals.rates(), masked_frames=int(totals.masked),
                     utterances=int(totals.utterances), lr=lr, grad_norm=grad_norm,
                     **distillation)


@torch.no_grad()
def validate(model: nn.Module, dataset: PretrainDataset, s: PretrainSettings,
             device: torch.device, prior_unit: Optional[int] = None) -> Dict[str, float]:
    """Masked-prediction loss and unit accuracy on the validation split (eval mode, fixed
    masks); with ``prior_unit`` (the training split's most frequent unit) also the prior's
    accuracy on the same masked frames and utterance-bootstrap standard errors
    (:mod:`.accuracy`)."""
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(derived_seed(s.seed, 0x7A11D))
    order = sorted(range(len(dataset)), key=lambda i: dataset.lengths[i])
    totals = LossTotals()
    per_utterance: Dict[str, List[int]] = {"correct": [], "prior_correct": [], "masked": []}
    try:
        for start in range(0, len(order), s.batch_size):
            indices = order[start:start + s.batch_size]
            batch = crop_to_shortest(collate([dataset[i] for i in indices]))
            out = model.pretrain_forward(batch["waveforms"].to(device), batch["lengths"].to(device),
                                         generator=generator)
            parts = masked_prediction_loss(out.logits, batch["frame_labels"], out.mask_indices,
                                           out.padding_mask)
            totals.add(parts, batch["waveforms"].shape[0])
            if prior_unit is not None:
                labels, valid = labelled_frames(batch["frame_labels"].to(out.logits.device),
                                                out.logits.shape[1], out.padding_mask)
                masked = out.mask_indices & valid
                hits = (out.logits.argmax(dim=-1) == labels) & masked
                per_utterance["correct"] += hits.sum(dim=1).tolist()
                per_utterance["prior_correct"] += ((labels == prior_unit) & masked).sum(1).tolist()
                per_utterance["masked"] += masked.sum(dim=1).tolist()
    finally:
        model.train(was_training)
    rates = totals.rates()
    if prior_unit is not None:
        rates.update(accuracy_over_prior(per_utterance["correct"],
                                         per_utterance["prior_correct"],
                                         per_utterance["masked"], seed=s.seed))
    return rates


def most_frequent_unit(dataset: PretrainDataset) -> Optional[int]:
    """The unit that occurs most often in ``dataset``'s labels (ties: the smallest)."""
    if dataset.label_lines is None:
        return None
    counts = Counter(unit for line in dataset.label_lines for unit in line.split())
    return int(min(counts, key=lambda unit: (-counts[unit], int(unit)))) if counts else None
