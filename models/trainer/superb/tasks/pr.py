"""PR: phoneme recognition, scored by the phoneme error rate (PER).

Sentences planned by :mod:`models.trainer.data.synth_plan` (no word of a test sentence in
training or valid; voices held out by variant); files ``{split}.phn`` (espeak-ng's IPA
phonemes, space separated), ``{split}.wrd`` and ``dict.phn.txt`` (most frequent first).
The head is s3prl's frame-level linear one: a weighted sum and Linear(D, phonemes +
blank), trained with CTC and decoded greedily. Chance: the PER of answering every test
utterance with the most frequent training phoneme.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...data.datasets import Vocabulary
from ...data.manifest import PHONEME_LABELS, dictionary_path, read_labels
from ...data.synth_plan import SPLITS
from ..heads import FrameHead, ctc_decode, ctc_loss_on, fit, layer_weights
from .classification import training_losses
from .common import CorpusPartTask, Outcome, interval_of
from .metrics import edit_distance, error_rate, ratio_statistic


def constant_answer_chance(vocabulary: Vocabulary, train_sequences,
                           test_sequences) -> tuple[float, str, dict]:
    """The PER of answering every test utterance with the most frequent training phoneme,
    how it is defined, and the PER of an empty answer."""
    counts = np.bincount(np.concatenate([np.asarray(t) for t in train_sequences]),
                         minlength=len(vocabulary))
    frequent = int(counts.argmax())
    constant = error_rate(test_sequences, [[frequent]] * len(test_sequences))
    return (constant,
            f"PER of answering every test utterance with the single most frequent training "
            f"phoneme ({vocabulary.symbols[frequent]!r}); an empty answer scores 1.0",
            {"empty_output_per": 1.0})


class PhonemeRecognition(CorpusPartTask):
    name = "pr"

    def load_labels(self, folder: Path, manifests):
        vocabulary = Vocabulary.from_file(dictionary_path(folder, PHONEME_LABELS))
        sequences = {m: [vocabulary.encode(line.split()) for line in read_labels(
                         manifest.label_path(PHONEME_LABELS), expected=len(manifest))]
                     for m, manifest in manifests.items()}
        return {"vocabulary": vocabulary, "sequences": sequences}

    def evaluate(self, features, labels, run):
        vocabulary, sequences = labels["vocabulary"], labels["sequences"]
        states = {m: features[m].states for m in SPLITS}
        first = states["train"][0]
        head = FrameHead(first.shape[0], first.shape[-1], len(vocabulary))

        def per(split: str) -> float:
            return error_rate(sequences[split], ctc_decode(head, states[split], run.batch_size))

        valid, step, losses = fit(head, ctc_loss_on(head, states["train"], sequences["train"]),
                                  lambda: per("valid"), items=len(states["train"]), run=run,
                                  higher_is_better=self.higher_is_better,
                                  desc=f"superb {self.name} head")
        with torch.no_grad():
            value = per("test")
        hypotheses = ctc_decode(head, states["test"], run.batch_size)
        edits = [float(edit_distance(r, h)) for r, h in zip(sequences["test"], hypotheses)]
        lengths = [float(len(r)) for r in sequences["test"]]
        chance, definition, reference = constant_answer_chance(
            vocabulary, sequences["train"], sequences["test"])
        return Outcome(
            value=value, interval=interval_of(ratio_statistic(edits, lengths), len(edits),
                                              run.seed),
            items=len(edits), chance=chance, chance_definition=definition,
            valid_value=valid, best_step=step, layer_weights=layer_weights(head), head=head,
            head_description="weighted sum + Linear(D, phonemes + blank), CTC, greedy decoding",
            extra={**reference, **training_losses(losses)}, per_item=(edits, lengths),
            data={"classes": len(vocabulary)},
            saved_with_head={"classes": list(vocabulary.symbols)})


TASK = PhonemeRecognition()
