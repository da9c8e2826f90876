"""ASV: speaker verification on held-out speakers, equal error rate.

A speaker is an espeak-ng voice (accent, variant) with its own habitual pitch and rate.
Training speakers come from the training voices; valid and test speakers from held-out
voices (accent and variant both unseen in training), so every trial compares speakers the
head never saw, as in SUPERB's VoxCeleb1 protocol.

Files: ``{split}.tsv`` and ``{split}.spk`` (speaker per utterance); ``dict.spk.txt`` (the
training speakers); ``valid.trials`` and ``test.trials``: ``label path1 path2`` per line
as VoxCeleb's trial lists (1 = same speaker; paths relative to the manifest root).

Head: s3prl's x-vector and AM-softmax recipe scaled down: weighted sum, Linear(D, 256),
mean pooling, Linear(256, 128) embedding, AM-softmax (margin 0.2, scale 30) over the
training speakers; trials are scored by the cosine of the two embeddings. The best head
on the valid trials' EER is scored on the test trials.

Sizes: the ``default`` test has 22 speakers x 12 utterances and 2 000 trials (half
target); the 95 % bootstrap interval (over trials) of an EER near 10 % is about
+-1.5 points. Chance: EER 0.5.
"""
from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...data.datasets import Vocabulary
from ...data.held_out_text import make_sentence
from ...data.manifest import (
    SPEAKER_LABELS,
    dictionary_path,
    labels_path,
    read_labels,
    write_dictionary,
    write_labels,
)
from ...data.synth_plan import (
    PITCH_JITTER,
    RATE_JITTER,
    SPEAKER_PITCHES,
    SPEAKER_RATES,
    speaker_name,
    voice_splits,
)
from ...errors import DataError
from ..heads import WeightedSum, fit, layer_weights
from .common import SPLITS, Outcome, Task, interval_of, speech_plan
from .metrics import equal_error_rate

AM_MARGIN, AM_SCALE = 0.2, 30.0


class SpeakerEmbeddingHead(nn.Module):
    """Weighted sum -> Linear(D, 256) -> mean pooling -> Linear(256, 128), AM-softmax."""

    def __init__(self, num_layers: int, dim: int, speakers: int, projector_dim: int = 256,
                 embedding_dim: int = 128):
        super().__init__()
        self.featurizer = WeightedSum(num_layers)
        self.projector = nn.Linear(dim, projector_dim)
        self.embedding = nn.Linear(projector_dim, embedding_dim)
        self.speakers = nn.Parameter(torch.randn(speakers, embedding_dim) * 0.01)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.embedding(self.projector(self.featurizer(pooled, layer_dim=1)))

    @property
    def description(self) -> str:
        """The head as ``results.json`` records it, read from its own layers."""
        size, embedding = self.projector.out_features, self.embedding.out_features
        return (f"weighted sum + Linear(D, {size}) + mean pooling + Linear({size}, "
                f"{embedding}) embedding, AM-softmax (m {AM_MARGIN:g}, s {AM_SCALE:g}); "
                f"cosine scoring")

    def loss(self, pooled: torch.Tensor, speakers: torch.Tensor) -> torch.Tensor:
        cosine = F.normalize(self(pooled), dim=-1) @ F.normalize(self.speakers, dim=-1).T
        margin = F.one_hot(speakers, cosine.shape[1]) * AM_MARGIN
        return F.cross_entropy(AM_SCALE * (cosine - margin), speakers)


def trial_scores(head: SpeakerEmbeddingHead, pooled: torch.Tensor,
                 trials: np.ndarray) -> np.ndarray:
    """Cosine similarity of the two utterances of every trial (rows: label, i, j)."""
    with torch.no_grad():
        embeddings = F.normalize(head(pooled), dim=-1)
    first, second = torch.as_tensor(trials[:, 1]), torch.as_tensor(trials[:, 2])
    return (embeddings[first] * embeddings[second]).sum(dim=-1).numpy()


class SpeakerVerification(Task):
    name = "asv"
    sizes: ClassVar[dict] = {"tiny": {"train_speakers": 3, "train_each": 2, "valid_speakers": 2,
                      "valid_each": 2, "test_speakers": 2, "test_each": 2, "trials": 6},
             "small": {"train_speakers": 20, "train_each": 8, "valid_speakers": 6,
                       "valid_each": 4, "test_speakers": 12, "test_each": 6, "trials": 600},
             "default": {"train_speakers": 80, "train_each": 15, "valid_speakers": 6,
                         "valid_each": 6, "test_speakers": 22, "test_each": 12, "trials": 2000}}

    def plan(self, sizes, rng, seed):
        voices = voice_splits(rng)
        plans = []
        for split in SPLITS:
            pool = voices[split][:sizes[f"{split}_speakers"]]
            index = 0
            for voice in pool:
                pitch = int(rng.integers(*SPEAKER_PITCHES))
                rate = int(rng.integers(*SPEAKER_RATES))
                speaker = speaker_name(*voice)
                for _ in range(sizes[f"{split}_each"]):
                    plans.append(speech_plan(
                        rng, task=self.name, group=split, index=index, seed=seed,
                        text=make_sentence(rng, held_out=split != "train"), label=speaker,
                        # pitch's jitter drawn before rate's (the SID corpus draws rate's
                        # first): the order is part of each corpus's plan
                        voice=voice, pitch=pitch + rng.integers(*PITCH_JITTER),
                        rate=rate + rng.integers(*RATE_JITTER), subfolder=speaker))
                    index += 1
        return plans

    def write_labels(self, folder: Path, name: str, plans: list, sizes: dict, seed: int) -> None:
        write_labels(labels_path(folder, name, SPEAKER_LABELS), [p.label for p in plans])
        if name != "train":
            rng = np.random.default_rng([seed, SPLITS.index(name)])
            pairs = make_trials([p.label for p in plans], sizes["trials"], rng)
            write_labels(folder / f"{name}.trials",
                         [f"{label} {plans[i].relpath} {plans[j].relpath}"
                          for label, i, j in pairs])

    def write_dictionaries(self, folder: Path, plans: list) -> None:
        write_dictionary(dictionary_path(folder, SPEAKER_LABELS),
                         list(dict.fromkeys(p.label for p in plans if p.split == "train")))

    def load_labels(self, folder: Path, manifests):
        vocabulary = Vocabulary.from_file(dictionary_path(folder, SPEAKER_LABELS))
        train = read_labels(labels_path(folder, "train", SPEAKER_LABELS), len(manifests["train"]))
        labels = {"speakers": len(vocabulary),
                  "train": torch.tensor(vocabulary.encode(train), dtype=torch.long)}
        for split in ("valid", "test"):
            index = {path: i for i, path in enumerate(manifests[split].files)}
            rows = []
            path = folder / f"{split}.trials"
            for number, line in enumerate(read_labels(path), start=1):
                fields = line.split()
                if len(fields) != 3 or fields[0] not in ("0", "1") or \
                        fields[1] not in index or fields[2] not in index:
                    raise DataError(f"{path}:{number}: expected 'label path1 path2' with "
                                    f"label 0/1 and paths of {split}.tsv, got {line!r}")
                rows.append((int(fields[0]), index[fields[1]], index[fields[2]]))
            labels[split] = np.asarray(rows, dtype=np.int64)
        return labels

    def evaluate(self, features, labels, run):
        x = {m: torch.stack(f.states) for m, f in features.items()}
        head = SpeakerEmbeddingHead(x["train"].shape[1], x["train"].shape[2],
                                    labels["speakers"], run.projector_dim)

        def eer(split: str) -> float:
            trials = labels[split]
            return equal_error_rate(trials[:, 0], trial_scores(head, x[split], trials))

        valid, step, _ = fit(head, lambda i: head.loss(x["train"][i], labels["train"][i]),
                             lambda: eer("valid"), items=len(labels["train"]), run=run,
                             higher_is_better=self.higher_is_better, desc="superb asv head")
        trials = labels["test"]
        scores = trial_scores(head, x["test"], trials)
        return Outcome(
            value=equal_error_rate(trials[:, 0], scores),
            interval=interval_of(lambda i: _resampled_eer(trials[i, 0], scores[i]),
                                 len(trials), run.seed),
            items=len(trials), chance=0.5,
            chance_definition="EER of scores that carry no information about the speaker",
            valid_value=valid, best_step=step, layer_weights=layer_weights(head), head=head,
            head_description=head.description,
            extra={"test_trials": len(trials), "test_target_trials": int(trials[:, 0].sum())})


def _resampled_eer(labels: np.ndarray, scores: np.ndarray) -> float:
    if labels.min() == labels.max():   # a resample of only one kind of trial
        return 0.5
    return equal_error_rate(labels, scores)


def make_trials(speakers: list[str], wanted: int, rng: np.random.Generator) -> list[tuple]:
    """Up to ``wanted`` trials, half target (same speaker) and half non-target, drawn
    without repeats from all pairs of distinct utterances."""
    pairs = list(combinations(range(len(speakers)), 2))
    target = [p for p in pairs if speakers[p[0]] == speakers[p[1]]]
    other = [p for p in pairs if speakers[p[0]] != speakers[p[1]]]
    half = wanted // 2
    chosen_target = [target[i] for i in sorted(rng.permutation(len(target))[:half])]
    rest = wanted - len(chosen_target)
    chosen_other = [other[i] for i in sorted(rng.permutation(len(other))[:rest])]
    return sorted([(1, i, j) for i, j in chosen_target] + [(0, i, j) for i, j in chosen_other],
                  key=lambda t: (t[1], t[2]))


TASK = SpeakerVerification()
