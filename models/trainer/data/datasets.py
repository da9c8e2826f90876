"""torch Datasets over fairseq manifests, a padding collate, and a length-bucketing sampler.

Items are dicts so that one :func:`collate` serves every task:

=====================  =========================================================
``PretrainDataset``    ``waveform`` (S,), ``frame_labels`` (encoder_frames(S),)
``ClassificationDataset``  ``waveform`` (S,), ``target`` (class index)
``PhonemeDataset``     ``waveform`` (S,), ``phonemes`` (L,) phoneme indices
=====================  =========================================================

All items also carry ``index`` (the manifest line). ``max_samples`` crops long
utterances (pre-training and classification only) to keep CPU memory small; a
pre-training crop starts on a 320-sample encoder frame boundary and takes the matching
span of frame labels, so labels stay aligned.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional, Sequence, Union

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ...constants import ENCODER_RECEPTIVE_FIELD, ENCODER_STRIDE
from ..errors import DataError
from ..fileio import PathLike
from .audio import read_audio
from .features import encoder_frames
from .manifest import (
    PHONEME_LABELS,
    UNIT_LABELS,
    Manifest,
    dictionary_path,
    read_dictionary,
    read_labels,
    read_manifest,
)

PAD_LABEL = -100   # torch.nn.CrossEntropyLoss's default ignore_index


class Vocabulary:
    """Symbols and their indices (the line order of a fairseq ``dict.*.txt``)."""

    def __init__(self, symbols: Sequence[str]) -> None:
        self.symbols = tuple(symbols)
        self._index = {symbol: i for i, symbol in enumerate(self.symbols)}
        if len(self._index) != len(self.symbols):
            raise DataError("vocabulary has repeated symbols")

    @classmethod
    def from_file(cls, path: PathLike) -> "Vocabulary":
        """Read a fairseq ``dict.*.txt``."""
        return cls(read_dictionary(path))

    def __len__(self) -> int:
        return len(self.symbols)

    def index(self, symbol: str) -> int:
        """Index of ``symbol``; :class:`DataError` if it is not in the vocabulary."""
        try:
            return self._index[symbol]
        except KeyError:
            raise DataError(f"symbol {symbol!r} is not in the vocabulary") from None

    def encode(self, symbols: Sequence[str]) -> list[int]:
        return [self.index(s) for s in symbols]

    def decode(self, indices: Sequence[int]) -> list[str]:
        return [self.symbols[int(i)] for i in indices]


class ManifestAudioDataset(Dataset):
    """Waveforms listed in a fairseq manifest, optionally cropped to ``max_samples``.

    Crops are random for training (``random_crop=True``, reproducible from ``seed`` and
    the epoch set with :meth:`set_epoch`) and start at sample 0 otherwise.
    """

    def __init__(self, manifest: Union[Manifest, PathLike], *, max_samples: Optional[int] = None,
                 random_crop: bool = True, seed: int = 0) -> None:
        self.manifest = manifest if isinstance(manifest, Manifest) else read_manifest(manifest)
        if max_samples is not None and max_samples < ENCODER_RECEPTIVE_FIELD:
            raise DataError(f"max_samples must be at least {ENCODER_RECEPTIVE_FIELD} (one encoder "
                            f"frame), got {max_samples}")
        self.max_samples = max_samples
        self.random_crop = random_crop
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.manifest)

    def set_epoch(self, epoch: int) -> None:
        """Choose the random crops of another epoch."""
        self.epoch = int(epoch)

    @property
    def lengths(self) -> list[int]:
        """Samples per item after cropping (for :class:`LengthBucketBatchSampler`)."""
        cap = self.max_samples
        return [n if cap is None else min(n, cap) for n in self.manifest.num_samples]

    def _waveform(self, index: int) -> np.ndarray:
        waveform = read_audio(self.manifest.audio_path(index))
        self.manifest.check_length(index, waveform.size)
        return waveform

    def _crop_frames(self, index: int, num_samples: int) -> int:
        """First encoder frame of the crop (0 when there is no crop)."""
        if self.max_samples is None or num_samples <= self.max_samples:
            return 0
        last = (num_samples - self.max_samples) // ENCODER_STRIDE
        if not self.random_crop:
            return 0
        return int(np.random.default_rng([self.seed, self.epoch, index]).integers(last + 1))

    def _cropped(self, index: int) -> tuple[torch.Tensor, int]:
        waveform = self._waveform(index)
        first = self._crop_frames(index, waveform.size)
        if self.max_samples is not None and waveform.size > self.max_samples:
            start = first * ENCODER_STRIDE
            waveform = waveform[start:start + self.max_samples]
        return torch.from_numpy(np.ascontiguousarray(waveform)), first

    def __getitem__(self, index: int) -> dict:
        waveform, _ = self._cropped(index)
        return {"index": index, "waveform": waveform}


class PretrainDataset(ManifestAudioDataset):
    """Waveforms with frame-level k-means units (``.km``), one per 50 Hz encoder frame.

    ``labels`` is the label file (default: the manifest's ``.km`` sibling); pass
    ``labels=False`` for audio only.
    """

    def __init__(self, manifest: Union[Manifest, PathLike],
                 labels: Union[PathLike, bool, None] = None,
                 **kwargs) -> None:
        super().__init__(manifest, **kwargs)
        if labels is False:
            self.label_lines = None
        else:
            path = self.manifest.label_path(UNIT_LABELS) if labels in (None, True) else Path(labels)
            self.label_lines = read_labels(path, expected=len(self.manifest))
            self.label_path = path

    def __getitem__(self, index: int) -> dict:
        waveform, first = self._cropped(index)
        item = {"index": index, "waveform": waveform}
        if self.label_lines is not None:
            units = self._units(index)
            item["frame_labels"] = units[first:first + encoder_frames(waveform.numel())]
        return item

    def _units(self, index: int) -> torch.Tensor:
        try:
            units = [int(u) for u in self.label_lines[index].split()]
        except ValueError:
            raise DataError(f"{self.label_path}:{index + 1}: labels must be integers") from None
        expected = encoder_frames(self.manifest.num_samples[index])
        if len(units) != expected:
            raise DataError(f"{self.label_path}:{index + 1}: {len(units)} labels for "
                            f"{self.manifest.num_samples[index]} samples, expected {expected} "
                            f"(one per 50 Hz encoder frame)")
        return torch.tensor(units, dtype=torch.long)


class ClassificationDataset(ManifestAudioDataset):
    """Waveforms with one class each: keyword spotting (``.ks``) or speaker ID (``.sid``).

    The class vocabulary is ``dict.<label>.txt`` next to the manifest unless given.
    """

    def __init__(self, manifest: Union[Manifest, PathLike], label: str,
                 vocabulary: Optional[Vocabulary] = None, **kwargs) -> None:
        super().__init__(manifest, **kwargs)
        folder = self.manifest.path.parent
        self.vocabulary = vocabulary or Vocabulary.from_file(dictionary_path(folder, label))
        names = read_labels(self.manifest.label_path(label), expected=len(self.manifest))
        self.targets = self.vocabulary.encode([name.strip() for name in names])

    def __getitem__(self, index: int) -> dict:
        waveform, _ = self._cropped(index)
        return {"index": index, "waveform": waveform, "target": self.targets[index]}


class PhonemeDataset(ManifestAudioDataset):
    """Waveforms with their phoneme sequence (``.phn``) as indices into ``dict.phn.txt``.

    No cropping: a phoneme sequence cannot be cut to match a piece of audio.
    """

    def __init__(self, manifest: Union[Manifest, PathLike],
                 vocabulary: Optional[Vocabulary] = None, **kwargs) -> None:
        if kwargs.get("max_samples") is not None:
            raise DataError("PhonemeDataset cannot crop audio (labels are not time-aligned)")
        super().__init__(manifest, **kwargs)
        self.vocabulary = vocabulary or Vocabulary.from_file(
            dictionary_path(self.manifest.path.parent, PHONEME_LABELS))
        lines = read_labels(self.manifest.label_path(PHONEME_LABELS), expected=len(self.manifest))
        self.sequences = [self.vocabulary.encode(line.split()) for line in lines]

    def __getitem__(self, index: int) -> dict:
        waveform, _ = self._cropped(index)
        return {"index": index, "waveform": waveform,
                "phonemes": torch.tensor(self.sequences[index], dtype=torch.long)}


def _pad(sequences: list[torch.Tensor], value) -> tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([s.numel() for s in sequences], dtype=torch.long)
    padded = torch.full((len(sequences), int(lengths.max())), value, dtype=sequences[0].dtype)
    for row, sequence in enumerate(sequences):
        padded[row, :sequence.numel()] = sequence
    return padded, lengths


def collate(batch: list[dict]) -> dict:
    """Pad a list of items into a batch.

    Returns ``waveforms`` (B, S_max) zero-padded, ``lengths`` (B,), ``padding_mask``
    (B, S_max; True on padding, as fairseq), ``indices`` (B,), and depending on the items
    ``frame_labels`` (B, T_max) with ``frame_label_lengths``, ``targets`` (B,), or
    ``phonemes`` (B, L_max) with ``phoneme_lengths``; label padding is -100.
    """
    if not batch:
        raise DataError("cannot collate an empty batch")
    waveforms, lengths = _pad([item["waveform"] for item in batch], 0.0)
    out = {"waveforms": waveforms, "lengths": lengths,
           "padding_mask": torch.arange(waveforms.shape[1])[None, :] >= lengths[:, None],
           "indices": torch.tensor([item["index"] for item in batch], dtype=torch.long)}
    if "frame_labels" in batch[0]:
        out["frame_labels"], out["frame_label_lengths"] = _pad(
            [item["frame_labels"] for item in batch], PAD_LABEL)
    if "target" in batch[0]:
        out["targets"] = torch.tensor([item["target"] for item in batch], dtype=torch.long)
    if "phonemes" in batch[0]:
        out["phonemes"], out["phoneme_lengths"] = _pad([item["phonemes"] for item in batch],
                                                       PAD_LABEL)
    return out


class LengthBucketBatchSampler(Sampler[list[int]]):
    """Batches of similar-length items, each within a budget of padded samples.

    Items are sorted by length (ties broken randomly when shuffling) and packed greedily
    while ``batch_size * longest <= max_batch_samples`` (and at most ``max_batch_size``
    items); then the batch order is shuffled. An item longer than the budget gets a batch
    of its own. Reproducible from ``seed`` and :meth:`set_epoch`.
    """

    def __init__(self, lengths: Sequence[int], *, max_batch_samples: int,
                 max_batch_size: Optional[int] = None, shuffle: bool = True, seed: int = 0) -> None:
        if max_batch_samples < 1:
            raise DataError(f"max_batch_samples must be positive, got {max_batch_samples}")
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.max_batch_samples = int(max_batch_samples)
        self.max_batch_size = max_batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _batches(self) -> list[list[int]]:
        rng = np.random.default_rng([self.seed, self.epoch])
        tie_break = rng.random(self.lengths.size) if self.shuffle else np.arange(self.lengths.size)
        order = np.lexsort((tie_break, self.lengths))
        batches, current, longest = [], [], 0
        for index in order.tolist():
            length = int(self.lengths[index])
            grown = max(longest, length)
            full = self.max_batch_size is not None and len(current) >= self.max_batch_size
            if current and (full or (len(current) + 1) * grown > self.max_batch_samples):
                batches.append(current)
                current, grown = [], length
            current.append(index)
            longest = grown
        if current:
            batches.append(current)
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        return len(self._batches())
