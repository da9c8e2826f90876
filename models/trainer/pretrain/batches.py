"""The pre-training data pipeline: which utterances each micro-batch of each step holds.

The data order of step ``s`` is a function of (seed, epoch) alone, and each micro-batch
gets its own random-number seeds from (seed, step, micro-batch index); nothing depends
on what ran before in the process. That is what makes a resumed run exact, and N
processes under DDP equal to one process accumulating the same N micro-batches.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import List, Sequence

import numpy as np
import torch

from ...constants import samples_in
from ..data.datasets import PretrainDataset, collate
from ..data.features import encoder_frames
from ..data.manifest import UNIT_LABELS, labels_path, manifest_path
from ..errors import DataError


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


def pretrain_splits(pretrain_folder: Path, targets_folder: Path, crop_seconds: float,
                    seed: int) -> tuple[PretrainDataset, PretrainDataset]:
    """The train (random crops) and valid (crops from the start) splits with their units."""
    crop = samples_in(crop_seconds)
    train = PretrainDataset(manifest_path(pretrain_folder, "train"),
                            labels=labels_path(targets_folder, "train", UNIT_LABELS),
                            max_samples=crop,
                            random_crop=True, seed=seed)
    valid = PretrainDataset(manifest_path(pretrain_folder, "valid"),
                            labels=labels_path(targets_folder, "valid", UNIT_LABELS),
                            max_samples=crop,
                            random_crop=False, seed=seed)
    return train, valid


class StepPlan:
    """Which utterances each micro-batch of each step holds (a pure function of the step)."""

    def __init__(self, num_items: int, batch_size: int, shards: int, seed: int):
        self.num_items, self.batch_size = num_items, batch_size
        self.shards, self.seed = shards, seed
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
