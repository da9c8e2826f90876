"""ER proxy: prosody-class recognition. NOT emotion recognition.

espeak-ng has no emotions, so SUPERB's emotion-recognition slot is filled with a *proxy*:
four prosody classes that differ in espeak-ng's pitch, pitch range and speaking rate and
in the level of the speech, with overlapping ranges so that no single cue decides::

    mid               pitch 40-60  range 35-65  rate 150-200  peak 0.35-0.65
    high-wide-fast    pitch 60-85  range 70-100 rate 195-250  peak 0.55-0.95
    low-narrow-slow   pitch 15-40  range 0-30   rate 100-150  peak 0.15-0.45
    high-narrow-slow  pitch 60-85  range 0-30   rate 100-150  peak 0.45-0.85

Like SUPERB's ER it is an utterance-level classification with accuracy and s3prl's
mean-pooling head. It measures whether a representation keeps prosody, nothing more; the
results call it "prosody-class recognition, a proxy ...", never emotion recognition.

Held out by voice (accent and variant); test sentences from the held-out vocabulary.
Sizes: the ``default`` test split has 1 200 utterances (300 per class): the 95 % interval
of an accuracy near 80 % is about +-2.3 points. Chance: 1/4.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

from ...data.datasets import Vocabulary
from ...data.held_out_text import make_sentence
from ...data.manifest import (
    WORD_LABELS,
    dictionary_path,
    labels_path,
    read_labels,
    write_dictionary,
    write_labels,
)
from ...data.synth_plan import voice_splits
from .classification import classify_utterances
from .common import SPLITS, Task, speech_plan

PROSODY_CLASSES = {   # (pitch, pitch range, rate, peak level) ranges
    "mid": ((40, 60), (35, 65), (150, 200), (0.35, 0.65)),
    "high-wide-fast": ((60, 85), (70, 100), (195, 250), (0.55, 0.95)),
    "low-narrow-slow": ((15, 40), (0, 30), (100, 150), (0.15, 0.45)),
    "high-narrow-slow": ((60, 85), (0, 30), (100, 150), (0.45, 0.85)),
}


class ProsodyClasses(Task):
    name = "er"
    sizes: ClassVar[dict] = {"tiny": {"train": 2, "valid": 1, "test": 1},          # per class
             "small": {"train": 60, "valid": 10, "test": 25},
             "default": {"train": 600, "valid": 60, "test": 300}}

    def plan(self, sizes, rng, seed):
        voices = voice_splits(rng)
        plans = []
        for split in SPLITS:
            index = 0
            for label, (pitch, span, rate, peak) in PROSODY_CLASSES.items():
                for _ in range(sizes[split]):
                    plans.append(speech_plan(
                        rng, task=self.name, group=split, index=index, seed=seed,
                        text=make_sentence(rng, held_out=split != "train"), label=label,
                        voice=voices[split][int(rng.integers(len(voices[split])))],
                        pitch=rng.integers(*pitch), pitch_range=rng.integers(*span),
                        rate=rng.integers(*rate), peak=rng.uniform(*peak), subfolder=label))
                    index += 1
        return plans

    def write_labels(self, folder: Path, name: str, plans: list, sizes: dict, seed: int) -> None:
        write_labels(labels_path(folder, name, self.name), [p.label for p in plans])
        write_labels(labels_path(folder, name, WORD_LABELS), [p.text for p in plans])

    def write_dictionaries(self, folder: Path, plans: list) -> None:
        write_dictionary(dictionary_path(folder, self.name), list(PROSODY_CLASSES))

    def load_labels(self, folder: Path, manifests):
        vocabulary = Vocabulary.from_file(dictionary_path(folder, self.name))
        return {"vocabulary": vocabulary,
                "targets": {m: vocabulary.encode(read_labels(labels_path(folder, m, self.name),
                                                             len(manifests[m])))
                            for m in manifests}}

    def evaluate(self, features, labels, run):
        symbols = list(labels["vocabulary"].symbols)
        if symbols == list(PROSODY_CLASSES):
            kind, proxy = "prosody classes", (
                "prosody classes (pitch, range, rate, level) made with espeak-ng parameters; "
                "a proxy for SUPERB's emotion recognition, which espeak-ng cannot produce")
        else:   # a real corpus, e.g. IEMOCAP from 'data iemocap': the task itself
            kind, proxy = "classes", f"none: the data's own classes {symbols}"
        outcome = classify_utterances(features, labels["vocabulary"], labels["targets"], run,
                                      task=self, classes_are=kind)
        return dataclasses.replace(outcome, extra={**outcome.extra, "proxy": proxy})


TASK = ProsodyClasses()
