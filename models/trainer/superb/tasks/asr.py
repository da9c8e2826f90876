"""ASR: character CTC on a frozen upstream, word error rate with ``jiwer``.

Data (``asr/``, fairseq's layout, as LibriSpeech manifests are): ``{split}.tsv``,
``{split}.wrd`` (words), ``{split}.ltr`` (letters, ``|`` after each word) and
``dict.ltr.txt``. Synthetic sentences come from :mod:`models.trainer.data.held_out_text`: valid and
test use only the held-out templates and the held-out vocabulary, spoken by held-out
voices (accent and variant both unseen in training), so the test measures recognition of
new words by new voices, not memorization.

Sizes: the ``default`` preset's test split has 400 sentences (about 3 300 words; the 95 %
bootstrap interval of a WER near 30 % is about +-2.5 points); ``tiny`` is for tests.
Head: s3prl's 2-layer BiLSTM, scaled down to 2 x 128 units, greedy CTC decoding.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import ClassVar

from ...data.datasets import Vocabulary
from ...data.held_out_text import make_sentence
from ...data.manifest import (
    LETTER_LABELS,
    WORD_LABELS,
    dictionary_path,
    labels_path,
    letters_line,
    letters_to_words,
    read_labels,
    write_counted_dictionary,
    write_labels,
)
from ...data.synth_plan import voice_splits
from ..heads import ctc_decode, ctc_loss_on, fit, layer_weights
from .classification import training_losses
from .common import (
    SPLITS,
    Outcome,
    SequenceHead,
    Task,
    interval_of,
    speech_plan,
)
from .metrics import ratio_statistic, word_errors


class SpeechRecognition(Task):
    name = "asr"
    sizes: ClassVar[dict] = {"tiny": {"train": 8, "valid": 2, "test": 3},
             "small": {"train": 240, "valid": 30, "test": 60},
             "default": {"train": 2400, "valid": 100, "test": 400}}

    def plan(self, sizes, rng, seed):
        voices = voice_splits(rng)
        plans = []
        for split in SPLITS:
            for index in range(sizes[split]):
                text = make_sentence(rng, held_out=split != "train")
                plans.append(speech_plan(rng, task=self.name, group=split, index=index,
                                         seed=seed, text=text, label=text,
                                         voice=voices[split][index % len(voices[split])]))
        return plans

    def write_labels(self, folder: Path, name: str, plans: list, sizes: dict, seed: int) -> None:
        write_labels(labels_path(folder, name, WORD_LABELS), [p.text for p in plans])
        write_labels(labels_path(folder, name, LETTER_LABELS),
                     [letters_line(p.text) for p in plans])

    def write_dictionaries(self, folder: Path, plans: list) -> None:
        write_counted_dictionary(dictionary_path(folder, LETTER_LABELS),
                                 [letters_line(p.text).split() for p in plans])

    def load_labels(self, folder: Path, manifests):
        letters = {m: [line.split() for line in read_labels(labels_path(folder, m, LETTER_LABELS),
                                                            len(manifests[m]))]
                   for m in manifests}
        if (dictionary_path(folder, LETTER_LABELS)).is_file():
            vocabulary = Vocabulary.from_file(dictionary_path(folder, LETTER_LABELS))
        else:   # LibriSpeech manifests come without one
            vocabulary = Vocabulary(sorted({s for lines in letters.values() for line in lines
                                            for s in line}))
        return {"vocabulary": vocabulary,
                "targets": {m: [vocabulary.encode(line) for line in lines]
                            for m, lines in letters.items()},
                "words": {m: [letters_to_words(line) for line in lines]
                          for m, lines in letters.items()}}

    def evaluate(self, features, labels, run):
        vocabulary = labels["vocabulary"]
        train = features["train"].states
        head = SequenceHead(train[0].shape[0], train[0].shape[-1], len(vocabulary))

        def transcripts(split: str) -> list[str]:
            return [letters_to_words(vocabulary.decode(h))
                    for h in ctc_decode(head, features[split].states, run.batch_size)]

        def wer(split: str):
            return word_errors(labels["words"][split], transcripts(split))

        def valid_wer() -> float:
            errors, lengths = wer("valid")
            return float(errors.sum() / lengths.sum())

        valid, step, losses = fit(head, ctc_loss_on(head, train, labels["targets"]["train"]),
                                  valid_wer, items=len(train), run=run,
                                  higher_is_better=self.higher_is_better,
                                  desc="superb asr head")
        errors, lengths = wer("test")
        references = labels["words"]["test"]
        frequent = Counter(w for line in labels["words"]["train"] for w in line.split())
        top = frequent.most_common(1)[0][0]
        chance_errors, chance_lengths = word_errors(references, [top] * len(references))
        return Outcome(
            value=float(errors.sum() / lengths.sum()),
            interval=interval_of(ratio_statistic(errors, lengths), len(errors), run.seed),
            items=len(errors), chance=float(chance_errors.sum() / chance_lengths.sum()),
            chance_definition=f"WER of answering every test utterance with the most frequent "
                              f"training word ({top!r}); an empty answer scores 1.0",
            valid_value=valid, best_step=step, layer_weights=layer_weights(head), head=head,
            head_description=f"{head.description('letters')}, greedy decoding",
            extra={**training_losses(losses), "test_words": int(lengths.sum())},
            per_item=(errors, lengths))


TASK = SpeechRecognition()
