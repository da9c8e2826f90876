"""Frame-level phone labels from the synthesizer's phoneme events, and their files.

espeak-ng says which phoneme it speaks from which sample
(:func:`models.trainer.data.espeak.synthesize_with_phones`). :func:`frame_phones` turns
such a list of phoneme starts into one label per encoder frame (50 Hz, the wav2vec2
front end's frames: frame ``i`` sees samples ``[320 i, 320 i + 400)`` and takes the
phoneme sounding at its centre, sample ``320 i + 200``). Frames before the first phoneme,
in pauses (espeak's unnamed phonemes) and after the end are :data:`SILENCE`.

Files, beside a corpus split's manifest (``pretrain/train.tsv``): ``<split>.phones``, one
line per utterance with one space-separated label per encoder frame
(``encoder_frames(num_samples)`` of them), and ``dict.phones.txt``, the labels with their
frame counts, most frequent first. A corpus has them only when it was synthesized with
phone labels (``data synth --phones``).
"""
from __future__ import annotations

import bisect
from pathlib import Path
from typing import Sequence

from ...constants import encoder_frames, frame_centre
from ..errors import DataError
from ..fileio import PathLike
from . import PRETRAIN_SPLITS
from .manifest import (
    PHONE_LABELS,
    dictionary_path,
    labels_path,
    read_labels,
    write_counted_dictionary,
    write_labels,
)

SILENCE = "sil"


def frame_phones(events: Sequence[tuple[int, str]], num_samples: int,
                 offset: int = 0) -> list[str]:
    """One phone label per encoder frame of a ``num_samples``-sample waveform.

    ``events`` are ``(start, phoneme)`` in the samples of the waveform as synthesized, in
    order; the waveform kept starts ``offset`` samples into it (after trimming leading
    silence). A phoneme lasts until the next event; ``""`` (a pause) is silence.
    """
    starts = [int(start) for start, _ in events]
    if any(later < earlier for earlier, later in zip(starts, starts[1:])):
        raise DataError("phoneme events must be in order of their start")
    labels = []
    for frame in range(encoder_frames(num_samples)):
        centre = offset + frame_centre(frame)
        index = bisect.bisect_right(starts, centre) - 1
        name = events[index][1] if index >= 0 else ""
        labels.append(name or SILENCE)
    return labels


def write_phone_files(folder: Path, split: str, lines: Sequence[Sequence[str]]) -> Path:
    """``folder/<split>.phones``: one line of frame labels per utterance."""
    return write_labels(labels_path(folder, split, PHONE_LABELS),
                        [" ".join(line) for line in lines])


def write_phone_dictionary(folder: Path, lines: Sequence[Sequence[str]]) -> Path:
    """``folder/dict.phones.txt``: every label with its frame count, most frequent first."""
    return write_counted_dictionary(dictionary_path(folder, PHONE_LABELS), lines)


def has_phone_labels(folder: PathLike) -> bool:
    """Whether a corpus folder (``pretrain/``) holds frame phone labels for train and valid."""
    return dictionary_path(folder, PHONE_LABELS).is_file() and all(
        labels_path(folder, split, PHONE_LABELS).is_file() for split in PRETRAIN_SPLITS)


def read_phone_lines(path: PathLike, expected: int) -> list[list[str]]:
    """The frame labels of each utterance of a ``.phones`` file of ``expected`` lines."""
    return [line.split() for line in read_labels(Path(path), expected=expected)]
