"""SD: two-speaker diarization; frame activity per speaker, PIT training, DER via pyannote.

Each mixture is four alternating turns (A, B, A, B) of two voices, each turn one sentence.
Every mixture draws an overlap level r in [0, 0.3]; at each turn change the next speaker
either pauses (0.1-0.8 s, half of the changes) or starts early, overlapping a fraction
U(0, 2r) (at most 0.6) of the shorter turn. Light noise is added to the mix. The
reference comes from each *source*: a 20 ms frame of a speaker is active when that
speaker's own signal is within 40 dB of its loudest frame, with pauses under 0.25 s
filled; these segments are written as RTTM (``{split}.rttm``, one line per segment, the
file id being the wav file's stem), the format LibriMix/s3prl recipes use.

Voices are held out (accent and variant). Head: a single-layer LSTM (s3prl's diarization
head, scaled to 128 units) and a linear layer to two speaker activities; trained with the
permutation-invariant BCE loss (the better of the two speaker orders per mixture);
decoded at 0.5 with an 11-frame median filter. Metric: DER by ``pyannote.metrics`` with
no collar and overlap scored (it finds the best speaker mapping itself).

Sizes: the ``default`` test split has 300 mixtures (about 45 minutes); the bootstrap
resamples mixtures. Chance: the DER of saying one speaker talks for the whole file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ....constants import ENCODER_STRIDE, SAMPLE_RATE, frame_centre
from ...data.audio import write_wav
from ...data.held_out_text import make_sentence
from ...data.manifest import read_labels, write_labels
from ...data.synth import colored_noise, loud_frames, mix_at_snr, render_utterance
from ...data.synth_plan import NOISE_COLORS, UtterancePlan, voice_splits
from ...errors import DataError
from ..heads import WeightedSum, fit, layer_weights, pad_frames
from .common import SPLITS, Outcome, Task, interval_of, speech_plan
from .metrics import (
    diarization_components,
    diarization_error_rate,
    frames_to_annotation,
    ratio_statistic,
)

FRAME = ENCODER_STRIDE           # samples per label frame: the encoder's 20 ms
FRAME_SECONDS = FRAME / SAMPLE_RATE
FILL_GAP_FRAMES = 12             # pauses shorter than 0.25 s count as speech
MEDIAN_FRAMES = 11
ACTIVITY_THRESHOLD = 0.5        # on a speaker's activity probability
TURNS = 4


@dataclass(frozen=True)
class MixturePlan:
    """A two-speaker mixture: its turns, how each turn joins the previous one, noise."""

    split: str
    relpath: str
    turns: tuple[UtterancePlan, ...]
    joins: tuple[float, ...]     # > 0: pause in seconds; <= 0: minus the overlap fraction
    snr_db: float
    noise_color: str
    seed: int
    phones = False  # no phone labels (the synthesis folder asks every plan; not a field)

    def render_to(self, folder: Path) -> int:
        """Write the mixture wav and its RTTM sidecar (``.rttm``); return its length."""
        sources = [render_utterance(turn) for turn in self.turns]
        starts, end = [0], len(sources[0])
        for source, previous, join in zip(sources[1:], sources[:-1], self.joins):
            if join > 0:
                start = end + int(join * SAMPLE_RATE)
            else:
                start = end - int(-join * min(len(source), len(previous)))
            starts.append(start)
            end = max(end, start + len(source))
        length = end
        tracks = np.zeros((2, length), dtype=np.float64)
        for k, (source, start) in enumerate(zip(sources, starts)):
            tracks[k % 2, start:start + len(source)] += source
        noise = colored_noise(np.random.default_rng(self.seed), length, self.noise_color)
        mix = np.clip(mix_at_snr(tracks.sum(axis=0), noise, self.snr_db), -1.0, 1.0)
        write_wav(folder / self.relpath, mix.astype(np.float32))
        uri = Path(self.relpath).stem
        lines = [f"SPEAKER {uri} 1 {start * FRAME_SECONDS:.2f} "
                 f"{(stop - start) * FRAME_SECONDS:.2f} <NA> <NA> {'AB'[k]} <NA> <NA>"
                 for k in range(2) for start, stop in active_spans(tracks[k])]
        (folder / self.relpath).with_suffix(".rttm").write_text("\n".join(lines) + "\n")
        return length


def active_spans(track: np.ndarray) -> list[tuple[int, int]]:
    """Active (start, stop) frame spans of one source signal."""
    active = loud_frames(track, FRAME)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(np.int8), [0]])))
    spans = [[int(a), int(b)] for a, b in zip(edges[::2], edges[1::2])]
    merged: list[list[int]] = []
    for span in spans:
        if merged and span[0] - merged[-1][1] < FILL_GAP_FRAMES:
            merged[-1][1] = span[1]
        else:
            merged.append(span)
    return [(a, b) for a, b in merged]


def read_rttm(path: Path) -> dict[str, list[tuple[str, float, float]]]:
    """file id -> [(speaker, start s, end s)] of an RTTM file's SPEAKER lines."""
    segments: dict[str, list] = {}
    for number, line in enumerate(read_labels(path), start=1):
        fields = line.split()
        if not fields:
            continue
        try:
            if fields[0] != "SPEAKER" or len(fields) < 8:
                raise ValueError
            start, duration = float(fields[3]), float(fields[4])
        except ValueError:
            raise DataError(f"{path}:{number}: expected an RTTM SPEAKER line, "
                            f"got {line!r}") from None
        segments.setdefault(fields[1], []).append((fields[7], start, start + duration))
    return segments


def frame_labels(segments, speakers: list[str], frames: int) -> torch.Tensor:
    """(frames, 2) activity: encoder frame k (centre (320k + 200) / 16 kHz) inside a segment."""
    centres = frame_centre(np.arange(frames)) / SAMPLE_RATE
    labels = np.zeros((frames, 2), dtype=np.float32)
    for speaker, start, end in segments:
        labels[(centres >= start) & (centres < end), speakers.index(speaker)] = 1.0
    return torch.from_numpy(labels)


class DiarizationHead(nn.Module):
    """Weighted sum -> LSTM(128) -> Linear(128, 2): activity logits of two speakers."""

    def __init__(self, num_layers: int, dim: int, hidden: int = 128):
        super().__init__()
        self.featurizer = WeightedSum(num_layers)
        self.rnn = nn.LSTM(dim, hidden, batch_first=True)
        self.output = nn.Linear(hidden, 2)

    def forward(self, stacked: torch.Tensor) -> torch.Tensor:     # (B, L+1, T, D)
        hidden, _ = self.rnn(self.featurizer(stacked, layer_dim=1))
        return self.output(hidden)


def pit_loss(logits: torch.Tensor, labels: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Permutation-invariant BCE: per mixture, the better of the two speaker orders."""
    mask = (torch.arange(logits.shape[1])[None, :] < lengths[:, None]).float()[..., None]
    losses = []
    for order in ((0, 1), (1, 0)):
        bce = F.binary_cross_entropy_with_logits(logits, labels[..., order], reduction="none")
        losses.append((bce * mask).sum(dim=(1, 2)) / (2 * lengths))
    return torch.minimum(losses[0], losses[1]).mean()


def median_filter(activity: np.ndarray, width: int = MEDIAN_FRAMES) -> np.ndarray:
    """Per-column median of 0/1 frames over ``width`` (odd) frames: a sliding majority."""
    pad = width // 2
    padded = np.pad(activity.astype(np.float64), ((pad, pad), (0, 0)), mode="edge")
    window = np.cumsum(np.vstack([np.zeros((1, activity.shape[1])), padded]), axis=0)
    return ((window[width:] - window[:-width]) > width / 2).astype(np.int8)


class Diarization(Task):
    name = "sd"
    sizes: ClassVar[dict] = {"tiny": {"train": 4, "valid": 2, "test": 2},
             "small": {"train": 120, "valid": 20, "test": 40},
             "default": {"train": 1200, "valid": 100, "test": 300}}

    def plan(self, sizes, rng, seed):
        voices = voice_splits(rng)
        plans = []
        for split in SPLITS:
            pool = voices[split]
            for index in range(sizes[split]):
                first, second = rng.choice(len(pool), size=2, replace=False)
                pair = (pool[first], pool[second])
                turns = tuple(speech_plan(
                    rng, task=self.name, group=f"{split}-turns", index=index * TURNS + k,
                    seed=seed, text=make_sentence(rng, held_out=split != "train"),
                    voice=pair[k % 2], snr_db=90.0) for k in range(TURNS))
                level = rng.uniform(0.0, 0.3)
                joins = tuple(float(rng.uniform(0.1, 0.8)) if rng.random() < 0.5
                              else -min(0.6, float(rng.uniform(0.0, 2 * level)))
                              for _ in range(TURNS - 1))
                plans.append(MixturePlan(
                    split=split, relpath=f"wav/{split}/sd-{split}-{index:05d}.wav",
                    turns=turns, joins=joins, snr_db=round(float(rng.uniform(20, 35)), 2),
                    noise_color=str(rng.choice(list(NOISE_COLORS))),
                    seed=turns[0].seed))
        return plans

    def write_labels(self, folder: Path, name: str, plans: list, sizes: dict, seed: int) -> None:
        lines = []
        for plan in plans:
            sidecar = (folder / plan.relpath).with_suffix(".rttm")
            lines += [line for line in sidecar.read_text().splitlines() if line]
            sidecar.unlink()
        write_labels(folder / f"{name}.rttm", lines)

    def load_labels(self, folder: Path, manifests):
        labels = {}
        for m, manifest in manifests.items():
            segments = read_rttm(folder / f"{m}.rttm")
            rows = []
            for index, relative in enumerate(manifest.files):
                uri = Path(relative).stem
                found = segments.get(uri, [])
                speakers = sorted({s for s, _, _ in found})
                if len(speakers) > 2:
                    raise DataError(f"{folder / f'{m}.rttm'}: {uri} has {len(speakers)} "
                                    f"speakers; this head diarizes two")
                rows.append((found, speakers + ["?"] * (2 - len(speakers)),
                             manifest.num_samples[index] / SAMPLE_RATE))
            labels[m] = rows
        return labels

    def evaluate(self, features, labels, run):
        from pyannote.core import Annotation, Segment

        train = features["train"].states
        head = DiarizationHead(train[0].shape[0], train[0].shape[-1])
        targets = [frame_labels(seg, spk, s.shape[1])
                   for (seg, spk, _), s in zip(labels["train"], train)]

        def loss_on(index):
            padded, lengths = pad_frames([train[i] for i in index])
            stacked = torch.zeros(len(index), padded.shape[2], 2)
            for row, i in enumerate(index):
                stacked[row, :targets[i].shape[0]] = targets[i]
            return pit_loss(head(padded), stacked, lengths)

        def references(split: str) -> list:
            out = []
            for segments, _, _ in labels[split]:
                annotation = Annotation()
                for speaker, start, end in segments:
                    # a track per speaker: two with the same segment stay two
                    annotation[Segment(start, end), speaker] = speaker
                out.append(annotation)
            return out

        def components(split: str):
            hypotheses = []
            with torch.no_grad():
                for states in features[split].states:
                    active = (torch.sigmoid(head(states[None]))[0] > ACTIVITY_THRESHOLD).numpy()
                    hypotheses.append(frames_to_annotation(median_filter(active), FRAME_SECONDS))
            return diarization_components(references(split), hypotheses,
                                          [d for _, _, d in labels[split]])

        valid, step, _ = fit(head, loss_on, lambda: diarization_error_rate(components("valid")),
                             items=len(train), run=run, higher_is_better=self.higher_is_better,
                             desc="superb sd head")
        parts = components("test")
        errors = parts["missed"] + parts["false_alarm"] + parts["confusion"]
        durations = [d for _, _, d in labels["test"]]
        single = []
        for duration in durations:
            annotation = Annotation()
            annotation[Segment(0.0, duration)] = "one"
            single.append(annotation)
        chance = diarization_error_rate(diarization_components(references("test"), single,
                                                               durations))
        return Outcome(
            value=diarization_error_rate(parts),
            interval=interval_of(ratio_statistic(errors, parts["total"]), len(errors), run.seed),
            items=len(errors), chance=chance,
            chance_definition="DER of answering 'one speaker talks for the whole file'",
            valid_value=valid, best_step=step, layer_weights=layer_weights(head), head=head,
            head_description=f"weighted sum + LSTM({head.rnn.hidden_size}) + Linear("
                             f"{head.rnn.hidden_size}, 2), permutation-invariant BCE, threshold "
                             f"{ACTIVITY_THRESHOLD:g}, {MEDIAN_FRAMES}-frame median filter",
            extra={part: round(float(parts[part].sum() / parts["total"].sum()), 6)
                   for part in ("missed", "false_alarm", "confusion")},
            per_item=(errors, parts["total"]))


TASK = Diarization()
