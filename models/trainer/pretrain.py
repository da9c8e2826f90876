"""HuBERT pre-training of any zoo model (binarized ones included), on one process or many.

The recipe follows fairseq's HuBERT Base (``hubert_base_librispeech.yaml``) where it can:
masked prediction of k-means units with cosine logits at temperature 0.1, the loss over
masked frames only (``pred_masked_weight=1``, ``pred_nomask_weight=0``) summed and divided
by the number of masked frames in the whole (global) batch; AdamW with betas (0.9, 0.98),
eps 1e-6, weight decay 0.01, peak lr 5e-4, linear warm-up then polynomial (power 1) decay
to 0; gradient norm clipped at 10; random crops of at most 250 000 samples and each batch
cut to its shortest utterance (fairseq's ``pad_audio=false``). Not reproduced: fairseq's
feature penalty (the zoo's model does not return it), fp16, and layer drop.

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
import json
import math
import platform
import random
import socket
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, NamedTuple, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import checkpoint as ckpt
from . import distributed as dist_utils
from .datasets import PAD_LABEL, PretrainDataset, collate
from ..constants import ENCODER_RECEPTIVE_FIELD, SAMPLE_RATE
from .errors import DataError
from .features import encoder_frames
from .fileio import PathLike, write_text_atomic
from .synth import CorpusSizes

# The corpus `train --tiny` synthesizes when no --data is given: bigger than the "tiny"
# synthesis preset (whose 12 keyword-spotting test clips cannot tell 2x chance from luck),
# about 1 300 utterances, 25-40 s to render on two cores.
TRAIN_TINY_CORPUS = CorpusSizes(
    pretrain_train=240, pretrain_valid=16,
    ks_per_class_train=30, ks_per_class_valid=10, ks_per_class_test=10,
    sid_speakers=8, sid_train_per_speaker=12, sid_valid_per_speaker=3, sid_test_per_speaker=5,
    pr_train=120, pr_valid=20, pr_test=20)


@dataclass
class PretrainSettings:
    """Everything that defines a pre-training run (recorded in ``metadata.json``).

    The defaults are HuBERT Base's first iteration (fairseq) per process; ``tiny=True``
    replaces the unset ones with :data:`TINY` (minutes on two CPU cores). ``batch_size``
    is utterances per micro-batch and process: one optimizer step sees
    ``batch_size x world_size x accumulate`` utterances.
    """

    model: str
    out: str
    data: Optional[str] = None
    overrides: Dict[str, Any] = field(default_factory=dict)
    tiny: bool = False
    steps: int = 250_000
    batch_size: int = 8
    accumulate: int = 1
    crop_seconds: float = 250_000 / SAMPLE_RATE
    lr: float = 5e-4
    warmup_steps: int = 32_000
    weight_decay: float = 0.01
    betas: Sequence[float] = (0.9, 0.98)
    eps: float = 1e-6
    clip_norm: float = 10.0
    masked_weight: float = 1.0       # fairseq pred_masked_weight
    unmasked_weight: float = 0.0     # fairseq pred_nomask_weight (HuBERT Base: 0)
    decay_power: float = 1.0
    seed: int = 0
    iteration: int = 1
    targets_from: Optional[str] = None
    label_layer: Optional[int] = None
    clusters: int = 100
    kmeans_max_frames: int = 250_000
    save_every: int = 10_000
    log_every: int = 100
    valid_every: int = 10_000
    keep: int = 1
    workers: int = 0
    deepspeed: Optional[str] = None
    device: Optional[str] = None
    progress: bool = True


# Unset settings under --tiny. The model keeps its real size. Two changes to the recipe,
# both measured on sparseformer-dn-s (16 post-LN layers) on the synthetic corpus:
# - lr 3e-4: at 1e-3 (and 3e-3) the stack collapses to predicting the unit prior;
# - the unmasked frames count too (fairseq's pred_nomask_weight = 1): with the masked term
#   alone the validation unit accuracy stays at the most frequent unit's rate for the
#   whole budget, and such an upstream is worse than a random one for keyword spotting.
TINY: Dict[str, Any] = dict(steps=250, batch_size=8, crop_seconds=2.0, lr=3e-4, warmup_steps=25,
                            unmasked_weight=1.0, clusters=50, kmeans_max_frames=60_000,
                            save_every=50, log_every=5, valid_every=50)
# Iteration 2 (HuBERT Base: 500 units of layer 6 of 12, 400k steps).
ITERATION_2: Dict[str, Any] = dict(clusters=500, steps=400_000)

# Settings that may differ between a run and its resumption.
_TRANSIENT = ("progress", "device", "out", "resume", "workers")


def resolve_settings(model: str, out: PathLike, *, tiny: bool = False, iteration: int = 1,
                     **given: Any) -> PretrainSettings:
    """Settings from the defaults, the ``--tiny`` preset and the given (non-None) values."""
    values: Dict[str, Any] = {}
    if iteration == 2:
        values.update(ITERATION_2)
    if tiny:
        values.update(TINY)
    values.update({k: v for k, v in given.items() if v is not None})
    known = {f.name for f in dataclasses.fields(PretrainSettings)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise TypeError(f"unknown settings {unknown}")
    return PretrainSettings(model=model, out=str(out), tiny=tiny, iteration=iteration, **values)


def check_settings(s: PretrainSettings) -> None:
    """Raise :class:`DataError` (one clear line) for settings that cannot run."""
    import models

    if "num_classes" in s.overrides:
        raise DataError("the number of units is set with --clusters (it fixes num_classes), "
                        "not with an override")
    try:
        models.config(s.model, **s.overrides)
    except (ValueError, TypeError) as error:
        raise DataError(str(error)) from None
    positive = ("steps", "batch_size", "accumulate", "save_every", "log_every", "valid_every",
                "keep", "clusters", "kmeans_max_frames")
    for name in positive:
        value = getattr(s, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise DataError(f"{name} must be a positive integer, got {value!r}")
    for name in ("lr", "crop_seconds", "eps", "clip_norm"):
        value = getattr(s, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise DataError(f"{name} must be a positive number, got {value!r}")
    if s.crop_seconds * SAMPLE_RATE < 2 * ENCODER_RECEPTIVE_FIELD:
        raise DataError(f"crop_seconds must be at least 0.05 s, got {s.crop_seconds}")
    if not isinstance(s.warmup_steps, int) or s.warmup_steps < 0:
        raise DataError(f"warmup_steps must be a whole number >= 0, got {s.warmup_steps!r}")
    if isinstance(s.workers, bool) or not isinstance(s.workers, int) or s.workers < 0:
        raise DataError(f"workers must be a whole number >= 0, got {s.workers!r}")
    for name in ("masked_weight", "unmasked_weight"):
        value = getattr(s, name)
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
            raise DataError(f"{name} must be a number >= 0, got {value!r}")
    if s.masked_weight == 0 and s.unmasked_weight == 0:
        raise DataError("masked_weight and unmasked_weight cannot both be 0")
    if s.clusters < 2:
        raise DataError(f"clusters must be at least 2, got {s.clusters}")
    if s.iteration not in (1, 2):
        raise DataError(f"iteration must be 1 or 2, got {s.iteration!r}")
    if s.iteration == 2 and not s.targets_from:
        raise DataError("iteration 2 needs the run folder of an iteration-1 model "
                        "(--targets-from RUN)")
    if s.iteration == 1 and s.targets_from:
        raise DataError("--targets-from is for iteration 2 (add --iteration 2)")
    if not isinstance(s.seed, int) or s.seed < 0:
        raise DataError(f"seed must be a whole number >= 0, got {s.seed!r}")


def lr_factor(step: int, warmup_steps: int, total_steps: int, power: float = 1.0) -> float:
    """fairseq's polynomial_decay schedule as a factor of the peak lr: linear warm-up over
    ``warmup_steps`` then (1 - progress)^power down to 0 at ``total_steps``."""
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    if step >= total_steps:
        return 0.0
    remaining = (total_steps - step) / max(1, total_steps - warmup_steps)
    return float(remaining ** power)


# ---------------------------------------------------------------------------------- loss
class LossParts(NamedTuple):
    loss: torch.Tensor               # weighted sum over the frames that count (differentiable)
    sample_size: torch.Tensor        # how many frames the loss sums over (the normalizer)
    masked_loss: torch.Tensor        # summed cross-entropy over masked frames (detached)
    masked: torch.Tensor             # number of masked frames
    masked_correct: torch.Tensor
    unmasked_loss: torch.Tensor
    unmasked: torch.Tensor
    unmasked_correct: torch.Tensor


def align_labels(labels: torch.Tensor, frames: int) -> torch.Tensor:
    """Cut or pad (with -100) (B, T_labels) frame labels to the model's T frames."""
    if labels.shape[1] >= frames:
        return labels[:, :frames]
    pad = labels.new_full((labels.shape[0], frames - labels.shape[1]), PAD_LABEL)
    return torch.cat([labels, pad], dim=1)


def masked_prediction_loss(logits: torch.Tensor, labels: torch.Tensor, mask_indices: torch.Tensor,
                           padding_mask: Optional[torch.Tensor] = None, *,
                           masked_weight: float = 1.0, unmasked_weight: float = 0.0) -> LossParts:
    """HuBERT's loss: cross-entropy of the logits against the frame's unit, summed over the
    masked frames (times ``masked_weight``) and the unmasked ones (``unmasked_weight``).

    ``logits`` (B, T, C); ``labels`` (B, T') with -100 for no label (cut or padded to T);
    ``mask_indices`` and ``padding_mask`` (B, T) bool. Frames under padding or without a
    label never count. ``sample_size`` is the number of frames of the weighted terms, the
    normalizer fairseq divides by.
    """
    labels = align_labels(labels.to(logits.device), logits.shape[1])
    valid = labels != PAD_LABEL
    if padding_mask is not None:
        valid = valid & ~padding_mask.to(valid.device)
    masked = mask_indices.to(valid.device) & valid
    unmasked = ~mask_indices.to(valid.device) & valid
    zero = logits.sum() * 0.0

    def term(select: torch.Tensor, weight: float):
        if not bool(select.any()):
            return zero, zero.detach(), 0
        picked, targets = logits[select], labels[select]
        if weight > 0:
            loss = F.cross_entropy(picked.float(), targets, reduction="sum")
        else:
            with torch.no_grad():
                loss = F.cross_entropy(picked.float(), targets, reduction="sum")
        correct = (picked.detach().argmax(dim=-1) == targets).sum()
        return loss, loss.detach(), correct

    masked_loss, masked_value, masked_correct = term(masked, masked_weight)
    unmasked_loss, unmasked_value, unmasked_correct = term(unmasked, unmasked_weight)
    loss = zero
    sample_size = torch.zeros((), dtype=torch.long, device=logits.device)
    if masked_weight > 0:
        loss = loss + masked_weight * masked_loss
        sample_size = sample_size + masked.sum()
    if unmasked_weight > 0:
        loss = loss + unmasked_weight * unmasked_loss
        sample_size = sample_size + unmasked.sum()
    as_tensor = lambda v: torch.as_tensor(v, device=logits.device)  # noqa: E731
    return LossParts(loss, sample_size, masked_value, masked.sum(), as_tensor(masked_correct),
                     unmasked_value, unmasked.sum(), as_tensor(unmasked_correct))


class MaskedPrediction(nn.Module):
    """The model plus its loss as one module, so that DDP and DeepSpeed wrap a ``forward``."""

    def __init__(self, model: nn.Module, masked_weight: float = 1.0, unmasked_weight: float = 0.0):
        super().__init__()
        self.model = model
        self.masked_weight = masked_weight
        self.unmasked_weight = unmasked_weight

    def forward(self, waveforms, lengths, labels, generator: Optional[torch.Generator] = None):
        out = self.model.pretrain_forward(waveforms, lengths, generator=generator)
        return masked_prediction_loss(out.logits, labels, out.mask_indices, out.padding_mask,
                                      masked_weight=self.masked_weight,
                                      unmasked_weight=self.unmasked_weight)


# ---------------------------------------------------------------------------------- data
def derived_seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


@contextlib.contextmanager
def seeded(seed: int, device: torch.device):
    """Run the body with the global torch RNG (dropout) seeded, then restore it."""
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def crop_to_shortest(batch: dict) -> dict:
    """fairseq's ``pad_audio=false``: cut every utterance of a batch to the shortest one
    (from its start; the dataset already took a random, frame-aligned crop)."""
    shortest = int(batch["lengths"].min())
    out = dict(batch)
    out["waveforms"] = batch["waveforms"][:, :shortest]
    out["lengths"] = torch.full_like(batch["lengths"], shortest)
    if "frame_labels" in batch:
        out["frame_labels"] = batch["frame_labels"][:, :encoder_frames(shortest)]
    return out


class StepPlan:
    """Which utterances each micro-batch of each step holds (a pure function of the step)."""

    def __init__(self, num_items: int, batch_size: int, shards: int, seed: int):
        self.num_items, self.batch_size, self.shards, self.seed = num_items, batch_size, shards, seed
        self.per_step = batch_size * shards
        if num_items < self.per_step:
            raise DataError(f"the pre-training corpus has {num_items} utterances, fewer than one "
                            f"step's {self.per_step} (batch size {batch_size} x {shards} "
                            f"micro-batches); lower --batch-size or use more data")
        self.steps_per_epoch = num_items // self.per_step

    def epoch(self, step: int) -> int:
        return step // self.steps_per_epoch

    def shard(self, step: int, index: int) -> List[int]:
        epoch, position = divmod(step, self.steps_per_epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(self.num_items)
        start = position * self.per_step + index * self.batch_size
        return order[start:start + self.batch_size].tolist()


def load_shard(dataset: PretrainDataset, indices: List[int], epoch: int) -> dict:
    dataset.set_epoch(epoch)
    return crop_to_shortest(collate([dataset[i] for i in indices]))


class RankBatches(torch.utils.data.Dataset):
    """Item ``k``: this process's micro-batches of step ``start + k`` (a list of batches).

    A map-style dataset over steps, so that a DataLoader with worker processes can read
    and decode audio ahead of the training loop without changing what each step sees.
    """

    def __init__(self, dataset: PretrainDataset, plan: StepPlan, shards: Sequence[int],
                 start: int, stop: int):
        self.dataset, self.plan, self.shards = dataset, plan, list(shards)
        self.start, self.stop = start, stop

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __getitem__(self, k: int) -> List[dict]:
        step = self.start + k
        return [load_shard(self.dataset, self.plan.shard(step, shard), self.plan.epoch(step))
                for shard in self.shards]


def step_batches(dataset: PretrainDataset, plan: StepPlan, shards: Sequence[int], start: int,
                 stop: int, workers: int):
    """Iterate the micro-batches of steps ``start .. stop - 1`` (prefetched by ``workers``)."""
    steps = RankBatches(dataset, plan, shards, start, stop)
    if workers <= 0:
        return (steps[k] for k in range(len(steps)))
    return iter(torch.utils.data.DataLoader(steps, batch_size=None, shuffle=False,
                                            num_workers=workers, prefetch_factor=2,
                                            persistent_workers=False))


# ------------------------------------------------------------------------------- corpus
def find_pretrain_folder(data: PathLike) -> Path:
    """``DATA/pretrain`` (a corpus made by ``data synth``) or ``DATA`` itself if it holds
    ``train.tsv`` and ``valid.tsv``; :class:`DataError` otherwise."""
    data = Path(data)
    if not data.exists():
        raise DataError(f"{data}: no such data folder")
    if not data.is_dir():
        raise DataError(f"{data}: not a folder (expected a corpus folder)")
    for folder in (data / "pretrain", data):
        if (folder / "train.tsv").is_file():
            if not (folder / "valid.tsv").is_file():
                raise DataError(f"{folder}: has train.tsv but no valid.tsv")
            return folder
    if not any(data.iterdir()):
        raise DataError(f"{data}: empty data folder; make a corpus with "
                        f"'profile-encoder data synth --out {data}'")
    raise DataError(f"{data}: no pre-training manifests (expected pretrain/train.tsv and "
                    f"pretrain/valid.tsv, as 'profile-encoder data synth' writes)")


def check_audio_headers(manifest_path: PathLike) -> int:
    """Check every file of a manifest: readable, mono, 16 kHz, as long as listed. Cheap (headers
    only), so bad data fails before training starts. Returns the number of files."""
    from .audio import audio_info
    from .manifest import read_manifest

    manifest = read_manifest(manifest_path)
    for index in range(len(manifest)):
        path = manifest.audio_path(index)
        info = audio_info(path)
        if info.channels != 1:
            raise DataError(f"{path}: {info.channels} channels, expected mono audio")
        if info.sample_rate != SAMPLE_RATE:
            raise DataError(f"{path}: sample rate {info.sample_rate} Hz, expected {SAMPLE_RATE} Hz "
                            f"(resample the corpus first)")
        if info.num_samples != manifest.num_samples[index]:
            raise DataError(f"{path}: {info.num_samples} samples, but {manifest.path} says "
                            f"{manifest.num_samples[index]} (stale manifest?)")
    return len(manifest)


def corpus_complete(data: Path) -> bool:
    return (data / "corpus.json").is_file()


def synthesize_default_corpus(data: Path, tiny: bool, seed: int, progress: bool) -> None:
    from .synth import synthesize_corpus

    sizes = TRAIN_TINY_CORPUS if tiny else "default"
    overwrite = data.exists() and any(data.iterdir())  # an interrupted earlier attempt
    synthesize_corpus(data, seed=seed, sizes=sizes, overwrite=overwrite, workers=1,
                      progress=progress)


# ------------------------------------------------------------------------------ targets
TARGETS = "targets"


def build_iteration_targets(pretrain: Path, out: Path, s: PretrainSettings, *,
                            progress: bool) -> Dict[str, Any]:
    """k-means units for the run (MFCC for iteration 1, a hidden layer of ``targets_from``
    for iteration 2), written to ``OUT/targets`` so the corpus itself is never changed."""
    from .features import mfcc_features
    from .manifest import read_manifest, write_dictionary
    from .targets import fit_kmeans, hidden_layer_features, label_corpus, manifest_features, save_kmeans

    folder = out / TARGETS
    if s.iteration == 1:
        features_fn, source = mfcc_features, {"features": "mfcc-39 (Kaldi MFCC + deltas)"}
    else:
        run_dir, checkpoint = ckpt.resolve_upstream(s.targets_from)
        teacher, config, step = ckpt.load_run_model(run_dir, checkpoint)
        layers = teacher.config.layers
        layer = s.label_layer if s.label_layer is not None else max(1, layers // 2)
        if not 0 <= layer <= layers:
            raise DataError(f"label layer {layer} out of range: {config['name']} has "
                            f"{layers} layers (0 = encoder input)")
        features_fn = hidden_layer_features(teacher, layer)
        source = {"features": f"hidden layer {layer}", "run": str(Path(run_dir).resolve()),
                  "step": step, "model": config["name"]}
    info = {"iteration": s.iteration, "clusters": s.clusters, "seed": s.seed,
            "max_frames": s.kmeans_max_frames, **source}
    done = folder / "targets.json"
    if done.is_file():
        try:
            existing = json.loads(done.read_text(encoding="utf-8"))
        except ValueError:
            existing = None
        if existing == info:
            return info
    train = read_manifest(pretrain / "train.tsv")
    total = sum(encoder_frames(n) for n in train.num_samples)
    fraction = min(1.0, 1.5 * s.kmeans_max_frames / max(total, 1))
    kmeans = fit_kmeans(manifest_features(train, features_fn, progress=progress), s.clusters,
                        s.seed, max_frames=s.kmeans_max_frames, sample_fraction=fraction)
    save_kmeans(kmeans, folder / "km.npz")
    write_dictionary(folder / "dict.km.txt", [str(i) for i in range(s.clusters)])
    for split in ("train", "valid"):
        label_corpus(pretrain / f"{split}.tsv", features_fn, kmeans, folder / f"{split}.km",
                     progress=progress)
    write_text_atomic(done, json.dumps(info, indent=2, sort_keys=True) + "\n")
    return info


# --------------------------------------------------------------------------------- run
@dataclass
class PretrainResult:
    out: Path
    step: int
    loss: Optional[float]
    valid: Optional[Dict[str, float]]
    wall_seconds: float
    checkpoint: Optional[Path]
    rank_checksums: List[str]


def _on_main(context: dist_utils.Context, fn: Callable[[], Any]) -> Any:
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


def _settings_record(s: PretrainSettings) -> Dict[str, Any]:
    record = dataclasses.asdict(s)
    record["betas"] = list(s.betas)
    for key in _TRANSIENT:
        record.pop(key, None)
    return record


def settings_for_resume(out: PathLike, given: Dict[str, Any]) -> PretrainSettings:
    """The settings of an existing run, checked against explicitly given values."""
    metadata = ckpt.read_json(Path(out) / ckpt.METADATA, "run metadata")
    stored = metadata.get("settings")
    if not isinstance(stored, dict) or "model" not in stored:
        raise ckpt.CheckpointError(f"{Path(out) / ckpt.METADATA}: has no run settings")
    for key, value in given.items():
        if value is None or key in _TRANSIENT:
            continue
        old = stored.get(key)
        if isinstance(old, list):
            value = list(value)
        if key in stored and old != value:
            raise DataError(f"--resume: {key} was {old!r} in this run, not {value!r}; resume "
                            f"with the run's own settings or start a new run")
    known = {f.name for f in dataclasses.fields(PretrainSettings)}
    values = {k: v for k, v in stored.items() if k in known}
    values["betas"] = tuple(values.get("betas", (0.9, 0.98)))
    values.update({k: given[k] for k in ("progress", "device", "workers")
                   if given.get(k) is not None})
    return PretrainSettings(out=str(out), **values)


def _write_log(path: Path, entry: Dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
        handle.flush()


def read_log(path: PathLike) -> List[Dict[str, Any]]:
    entries = []
    path = Path(path)
    if not path.exists():
        return entries
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            entries.append(json.loads(line))
        except ValueError:
            break  # a line cut by a kill: everything after it is void
    return entries


def _truncate_log(path: Path, step: int) -> None:
    kept = [e for e in read_log(path) if int(e.get("step", 0)) <= step]
    write_text_atomic(path, "".join(json.dumps(e, sort_keys=True) + "\n" for e in kept))


def _rng_state(device: torch.device) -> Dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "python": list(random.getstate()[1])}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def _set_rng_state(state: Dict[str, Any], device: torch.device) -> None:
    if "torch" in state:
        torch.set_rng_state(state["torch"])
    if "python" in state:
        random.setstate((3, tuple(int(v) for v in state["python"]), None))
    if "cuda" in state and device.type == "cuda":
        torch.cuda.set_rng_state(state["cuda"], device)


def has_binarizers(model: nn.Module) -> bool:
    from models.bit import ElasticBinarizer

    return any(isinstance(m, ElasticBinarizer) and not m.initialized for m in model.modules())


@torch.no_grad()
def validate(model: nn.Module, dataset: PretrainDataset, s: PretrainSettings,
             device: torch.device) -> Dict[str, float]:
    """Masked-prediction loss and unit accuracy on the validation split (eval mode, fixed masks)."""
    was_training = model.training
    model.eval()
    generator = torch.Generator().manual_seed(derived_seed(s.seed, 0x7A11D))
    order = sorted(range(len(dataset)), key=lambda i: dataset.lengths[i])
    totals = np.zeros(6)
    try:
        for start in range(0, len(order), s.batch_size):
            batch = crop_to_shortest(collate([dataset[i] for i in order[start:start + s.batch_size]]))
            out = model.pretrain_forward(batch["waveforms"].to(device), batch["lengths"].to(device),
                                         generator=generator)
            parts = masked_prediction_loss(out.logits, batch["frame_labels"], out.mask_indices,
                                           out.padding_mask)
            totals += [float(parts.masked_loss), float(parts.masked), float(parts.masked_correct),
                       float(parts.unmasked_loss), float(parts.unmasked),
                       float(parts.unmasked_correct)]
    finally:
        model.train(was_training)
    return {"loss": totals[0] / max(totals[1], 1.0), "acc_masked": totals[2] / max(totals[1], 1.0),
            "loss_unmasked": totals[3] / max(totals[4], 1.0),
            "acc_unmasked": totals[5] / max(totals[4], 1.0)}


def pretrain(settings: PretrainSettings, *, resume: bool = False,
             on_step: Optional[Callable[[int], None]] = None) -> PretrainResult:
    """Run (or with ``resume=True`` continue) HuBERT pre-training into ``settings.out``.

    ``on_step(step)`` is called after every optimizer step (and its logging and saving).
    Raises :class:`DataError` for bad input, before anything in ``out`` is changed where
    the problem can be seen up front.
    """
    context = dist_utils.setup(settings.device, init_group=settings.deepspeed is None
                               or dist_utils.env_world()[1] > 1)
    try:
        return _pretrain(settings, context, resume, on_step)
    finally:
        dist_utils.teardown(context)


def _prepare(s: PretrainSettings, context: dist_utils.Context, resume: bool) -> Dict[str, Any]:
    """Rank 0: check the out folder and data, synthesize if needed, build targets."""
    out = Path(s.out)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder")
    if resume:
        ckpt.require_run_dir(out)
        checkpoint = ckpt.latest_checkpoint(out)
        if checkpoint is not None:  # fail now, not after the targets are rebuilt
            ckpt.load_state_file(checkpoint)
            ckpt.load_model_file(checkpoint)
    elif ckpt.is_run_dir(out) or (out / ckpt.CHECKPOINTS).exists():
        raise DataError(f"{out}: already holds a training run; pass --resume to continue it "
                        f"or choose another --out")
    if s.targets_from:
        run_dir, checkpoint = ckpt.resolve_upstream(s.targets_from)
        if checkpoint is None and ckpt.latest_checkpoint(run_dir) is None:
            raise DataError(f"{run_dir}: --targets-from run has no checkpoint yet")
    if s.deepspeed is not None:
        _read_deepspeed_config(s.deepspeed)
    synthesized = False
    if s.data is None:
        data = out / "data"
        if not corpus_complete(data):
            synthesize_default_corpus(data, s.tiny, s.seed, s.progress and sys.stderr.isatty())
            synthesized = True
        data_record = {"data": str(data.resolve()), "data_synthesized": True}
    else:
        data = Path(s.data)
        data_record = {"data": str(data.resolve()), "data_synthesized": False}
    pretrain_dir = find_pretrain_folder(data)
    counts = {split: check_audio_headers(pretrain_dir / f"{split}.tsv") for split in ("train", "valid")}
    out.mkdir(parents=True, exist_ok=True)
    targets = build_iteration_targets(pretrain_dir, out, s,
                                      progress=s.progress and sys.stderr.isatty())
    corpus = {}
    if (data / "corpus.json").is_file():
        try:
            corpus = json.loads((data / "corpus.json").read_text(encoding="utf-8")).get("tasks", {})
        except ValueError:
            corpus = {}
    return {**data_record, "pretrain_folder": str(pretrain_dir.resolve()), "utterances": counts,
            "targets": targets, "synthesized_now": synthesized,
            "corpus": {task: {k: v.get(k) for k in ("preset", "seed", "utterances")}
                       for task, v in corpus.items() if isinstance(v, dict)}}


def _read_deepspeed_config(path: PathLike) -> Dict[str, Any]:
    config = ckpt.read_json(path, "DeepSpeed config", error=DataError)
    stage = int(config.get("zero_optimization", {}).get("stage", 0) or 0)
    if stage >= 3:
        raise DataError(f"{path}: ZeRO stage 3 shards the weights, which the run's model.pt "
                        f"and resume logic do not gather; use stage 0, 1 or 2")
    return config


def _make_optimizer(params, s: PretrainSettings) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=s.lr, betas=tuple(s.betas), eps=s.eps,
                             weight_decay=s.weight_decay)


def _make_scheduler(optimizer, s: PretrainSettings):
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, s.warmup_steps, s.steps, s.decay_power))


def _pretrain(s: PretrainSettings, context: dist_utils.Context, resume: bool,
              on_step: Optional[Callable[[int], None]]) -> PretrainResult:
    import models

    started = time.perf_counter()
    check_settings(s)
    out = Path(s.out)
    prepared = _on_main(context, lambda: _prepare(s, context, resume))
    shards = context.world_size * s.accumulate
    overrides = {**s.overrides, "num_classes": s.clusters}

    model = models.build(s.model, seed=s.seed, **overrides)
    metadata_path = out / ckpt.METADATA
    previous: Dict[str, Any] = {}
    if context.is_main:
        if resume and metadata_path.is_file():
            previous = ckpt.read_json(metadata_path, "run metadata")
        else:
            ckpt.write_json(out / ckpt.CONFIG, ckpt.config_record(s.model, overrides, model))
    dist_utils.barrier(context)

    targets = out / TARGETS
    pretrain_dir = Path(prepared["pretrain_folder"])
    crop = int(round(s.crop_seconds * SAMPLE_RATE))
    train_set = PretrainDataset(pretrain_dir / "train.tsv", labels=targets / "train.km",
                                max_samples=crop, random_crop=True, seed=s.seed)
    valid_set = PretrainDataset(pretrain_dir / "valid.tsv", labels=targets / "valid.km",
                                max_samples=crop, random_crop=False, seed=s.seed)
    plan = StepPlan(len(train_set), s.batch_size, shards, s.seed)

    device = context.device
    model.to(device)
    model.train()
    criterion = MaskedPrediction(model, s.masked_weight, s.unmasked_weight)
    optimizer = _make_optimizer(model.parameters(), s) if s.deepspeed is None else None
    scheduler = _make_scheduler(optimizer, s) if optimizer is not None else None

    start_step = 0
    checkpoint = ckpt.latest_checkpoint(out) if resume else None
    state = None
    if checkpoint is not None:
        weights = ckpt.load_model_file(checkpoint)
        ckpt.load_weights(model, weights["model"], checkpoint / ckpt.MODEL_FILE)
        state = ckpt.load_state_file(checkpoint)
        start_step = int(state["step"])
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
            _set_rng_state(state.get("rng", {}), device)
    elif has_binarizers(model):
        # BiT's scales start from data: all ranks use micro-batch 0 of step 0.
        batch = load_shard(train_set, plan.shard(0, 0), plan.epoch(0))
        with seeded(derived_seed(s.seed, 0, 0, 1), device), torch.enable_grad():
            generator = torch.Generator().manual_seed(derived_seed(s.seed, 0, 0, 0))
            model.pretrain_forward(batch["waveforms"].to(device), batch["lengths"].to(device),
                                   generator=generator)
        model.zero_grad(set_to_none=True)

    log_path = out / ckpt.LOG
    if context.is_main:
        if resume:
            _truncate_log(log_path, start_step)
        elif log_path.exists():
            log_path.unlink()

    engine = None
    wrapped: nn.Module = criterion
    if s.deepspeed is not None:
        engine, optimizer, scheduler = _deepspeed_engine(criterion, s, context, out,
                                                         start_step if checkpoint else None)
        wrapped = engine
    elif context.distributed:
        from torch.nn.parallel import DistributedDataParallel

        wrapped = DistributedDataParallel(
            criterion, device_ids=[device.index] if device.type == "cuda" else None,
            broadcast_buffers=False)

    metadata = {
        "format": ckpt.RUN_FORMAT, "model": s.model, "overrides": overrides,
        "settings": _settings_record(s), **{k: v for k, v in prepared.items() if k != "synthesized_now"},
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
    if context.is_main:
        ckpt.write_json(metadata_path, metadata)

    from tqdm import tqdm

    bar = tqdm(total=s.steps, initial=start_step, desc=f"train {s.model}", unit="step",
               file=sys.stderr, dynamic_ncols=True,
               disable=not (s.progress and context.is_main and sys.stderr.isatty()))
    session_start = time.perf_counter()
    last_loss: Optional[float] = None
    last_valid: Optional[Dict[str, float]] = None
    saved: Optional[Path] = checkpoint
    checksums: List[str] = []

    def save(step: int) -> Path:
        nonlocal checksums
        checksums = dist_utils.gather_checksums(model, context)
        if context.distributed and len(set(checksums)) != 1:
            raise RuntimeError(f"model replicas differ after step {step}: {checksums}")
        if engine is not None:
            engine.save_checkpoint(str(out / "deepspeed"), tag=ckpt.checkpoint_name(step),
                                   client_state={"step": step})
            training_state = {"engine": "deepspeed", "tag": ckpt.checkpoint_name(step)}
        else:
            training_state = {"optimizer": optimizer.state_dict(),
                              "scheduler": scheduler.state_dict(), "rng": _rng_state(device)}
        path = None
        if context.is_main:
            training_state.update(world_size=context.world_size, accumulate=s.accumulate)
            path = ckpt.save_checkpoint(out, step, {k: v.detach().cpu() if torch.is_tensor(v) else v
                                                    for k, v in model.state_dict().items()},
                                        training_state, keep=s.keep)
            metadata.update(step=step, rank_checksums=checksums,
                            wall_seconds=float(previous.get("wall_seconds", 0.0))
                            + time.perf_counter() - session_start)
            ckpt.write_json(metadata_path, metadata)
        dist_utils.barrier(context)
        return path or out / ckpt.CHECKPOINTS / ckpt.checkpoint_name(step)

    try:
        mine = range(context.rank * s.accumulate, (context.rank + 1) * s.accumulate)
        batches = step_batches(train_set, plan, mine, start_step, s.steps, s.workers)
        for step, micro_batches in zip(range(start_step, s.steps), batches):
            t0 = time.perf_counter()
            stats = _train_step(step, s, context, micro_batches, wrapped, model, optimizer,
                                scheduler, engine, device)
            done = step + 1
            last_loss = stats["loss"]
            bar.update(1)
            bar.set_postfix(loss=f"{stats['loss']:.3f}", acc=f"{stats['acc_masked']:.3f}")
            if context.is_main and (done % s.log_every == 0 or done == s.steps or done == 1):
                _write_log(log_path, {"split": "train", "step": done, "epoch": plan.epoch(step),
                                      **stats, "step_seconds": round(time.perf_counter() - t0, 4),
                                      "elapsed_seconds": round(
                                          float(previous.get("wall_seconds", 0.0))
                                          + time.perf_counter() - session_start, 3)})
            if done % s.valid_every == 0 or done == s.steps:
                if context.is_main:
                    last_valid = validate(model, valid_set, s, device)
                    _write_log(log_path, {"split": "valid", "step": done, **last_valid})
            if done % s.save_every == 0 or done == s.steps:
                saved = save(done)
            if on_step is not None:
                on_step(done)
    finally:
        bar.close()

    if context.is_main:
        metadata.update(finished=True, step=s.steps,
                        final_train_loss=last_loss, final_valid=last_valid,
                        wall_seconds=float(previous.get("wall_seconds", 0.0))
                        + time.perf_counter() - session_start)
        ckpt.write_json(metadata_path, metadata)
    dist_utils.barrier(context)
    if not checksums:
        checksums = dist_utils.gather_checksums(model, context)
    return PretrainResult(out, s.steps, last_loss, last_valid, time.perf_counter() - started,
                          saved, checksums)


def _train_step(step: int, s: PretrainSettings, context: dist_utils.Context,
                micro_batches: List[dict], wrapped: nn.Module, model: nn.Module,
                optimizer, scheduler, engine, device: torch.device) -> Dict[str, Any]:
    totals = np.zeros(8)   # sample_size, m_loss, m, m_correct, u_loss, u, u_correct, utterances
    first = context.rank * s.accumulate
    for position, batch in enumerate(micro_batches):
        shard = first + position
        generator = torch.Generator().manual_seed(derived_seed(s.seed, step, shard, 0))
        last = position == s.accumulate - 1
        sync = contextlib.nullcontext()
        if engine is None and context.distributed and not last:
            sync = wrapped.no_sync()
        with seeded(derived_seed(s.seed, step, shard, 1), device), sync:
            parts = wrapped(batch["waveforms"].to(device), batch["lengths"].to(device),
                            batch["frame_labels"].to(device), generator)
            if engine is not None:
                engine.backward(parts.loss / parts.sample_size.clamp(min=1))
                engine.step()
            else:
                parts.loss.backward()
        totals += [float(parts.sample_size), float(parts.masked_loss), float(parts.masked),
                   float(parts.masked_correct), float(parts.unmasked_loss), float(parts.unmasked),
                   float(parts.unmasked_correct), float(batch["waveforms"].shape[0])]
    totals = np.asarray(dist_utils.all_reduce_sum(totals.tolist(), context))
    sample_size = max(totals[0], 1.0)
    if engine is None:
        lr = optimizer.param_groups[0]["lr"]
        # DDP averaged the ranks' gradients of summed losses; make it the global mean.
        scale = context.world_size / sample_size
        for parameter in model.parameters():
            if parameter.grad is not None:
                parameter.grad.mul_(scale)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), s.clip_norm))
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    else:
        lr = float(engine.get_lr()[0]) if engine.get_lr() else float("nan")
        norm = engine.get_global_grad_norm()
        grad_norm = float(norm) if norm is not None else float("nan")
    return {"loss": totals[1] / max(totals[2], 1.0), "acc_masked": totals[3] / max(totals[2], 1.0),
            "loss_unmasked": totals[4] / max(totals[5], 1.0),
            "acc_unmasked": totals[6] / max(totals[5], 1.0), "masked_frames": int(totals[2]),
            "utterances": int(totals[7]), "lr": lr, "grad_norm": grad_norm}


def _deepspeed_engine(criterion: nn.Module, s: PretrainSettings, context: dist_utils.Context,
                      out: Path, resume_step: Optional[int]):
    """A DeepSpeed engine around the loss module, with the run's batch geometry filled in."""
    import os

    try:
        import deepspeed
    except ImportError:
        raise DataError("--deepspeed needs the 'deepspeed' package (pip install deepspeed)") from None
    config = _read_deepspeed_config(s.deepspeed)
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
    optimizer = None if "optimizer" in config else (lambda params: _make_optimizer(params, s))
    scheduler = None if "scheduler" in config else (lambda opt: _make_scheduler(opt, s))
    engine, optimizer, _, scheduler = deepspeed.initialize(
        model=criterion, model_parameters=[p for p in criterion.parameters() if p.requires_grad],
        optimizer=optimizer, lr_scheduler=scheduler, config=config)
    if resume_step is not None:
        path, _ = engine.load_checkpoint(str(out / "deepspeed"), tag=ckpt.checkpoint_name(resume_step))
        if path is None:
            raise ckpt.CheckpointError(f"{out / 'deepspeed'}: no DeepSpeed checkpoint "
                                       f"{ckpt.checkpoint_name(resume_step)} to resume from")
    return engine, optimizer, scheduler
