"""SF: slot filling as SUPERB does it: CTC on characters with slot tags, slot-type F1 and
slot-value CER.

Spoken commands such as "call sarah at half past six" are transcribed with their slots
tagged; the target is the letter sequence with an opening tag before each slot value and
a closing tag after it::

    c a l l | s a r a h ...      ->   c a l l | <person> s a r a h </> | a t | <time> ...

``{split}.slt`` holds that symbol sequence (space separated), ``{split}.wrd`` the plain
words, ``dict.slt.txt`` the symbols. Slot types: device, room, time, person, level. Each
of the 8 command templates is a paraphrase family; the last two templates and every fourth
value of each slot type are held out of training (valid and test use only them), and the
voices are held out (accent and variant).

Metrics as in SUPERB: slot-type F1 (the reported value: per utterance, F1 of the sets of
slot types found and expected, averaged) and slot-value CER (character edits of each
expected value against the closest found value of its type, over all expected
characters). The ``default`` test split has 1 000 commands: the 95 % interval of an F1 near
0.8 is about +-2 points.
"""
from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import ClassVar

import numpy as np

from ...data.datasets import Vocabulary
from ...data.manifest import (
    SLOT_LABELS,
    WORD_BOUNDARY,
    WORD_LABELS,
    dictionary_path,
    labels_path,
    letters_to_words,
    read_labels,
    write_counted_dictionary,
    write_labels,
)
from ...data.synth_plan import voice_splits
from ..heads import ctc_decode, ctc_loss_on, fit, layer_weights
from .common import (
    SPLITS,
    Outcome,
    SequenceHead,
    Task,
    interval_of,
    pick,
    speech_plan,
)
from .metrics import (
    mean_statistic,
    ratio_statistic,
    rounded_interval,
    slot_type_f1_per_item,
    slot_value_errors,
)

CLOSE_TAG = "</>"
VALUES = {
    "device": ("lights", "heater", "radio", "fan", "television", "oven", "kettle", "speaker",
               "dishwasher", "printer", "lamp", "fridge"),
    "room": ("kitchen", "bedroom", "garage", "hallway", "office", "bathroom", "attic", "cellar",
             "living room", "dining room", "garden shed", "nursery"),
    "time": ("seven am", "half past six", "noon", "nine thirty pm", "midnight",
             "eight fifteen", "quarter to five", "ten pm", "eleven am", "two pm", "four forty",
             "six sharp"),
    "person": ("sarah", "peter", "maria", "james", "lucy", "david", "emma", "robert",
               "linda", "michael", "grace", "oliver"),
    "level": ("ten percent", "fifty percent", "maximum", "minimum", "twenty degrees", "low",
              "high", "medium", "half", "full", "nineteen degrees", "quiet"),
}
TEMPLATES = (   # the last two are held out of training
    "turn on the {device} in the {room}",
    "wake me up at {time}",
    "call {person} at {time}",
    "set the {device} to {level}",
    "switch off the {device} in the {room}",
    "remind {person} to check the {device} at {time}",
    "please set the {room} {device} to {level}",
    "tell {person} that the {room} is ready",
)
HELD_OUT_TEMPLATES = 2


def tagged_symbols(template: str, values: dict[str, str]) -> list[str]:
    """The target symbols of a filled template (letters, word boundaries, slot tags)."""
    symbols: list[str] = []
    for word in template.split():
        if symbols:
            symbols.append(WORD_BOUNDARY)
        if word.startswith("{"):
            slot = word.strip("{}")
            symbols.append(f"<{slot}>")
            symbols.extend(" ".join(values[slot].split()).replace(" ", WORD_BOUNDARY))
            symbols.append(CLOSE_TAG)
        else:
            symbols.extend(word)
    return symbols


def parse_slots(symbols: list[str]) -> dict[str, list[str]]:
    """Slot type -> values of a (reference or decoded) symbol sequence. A tag opened while
    another is open closes it; an unclosed slot ends with the sequence."""
    slots: dict[str, list[str]] = {}
    current, value = None, []

    def close():
        if current is not None:
            slots.setdefault(current, []).append(letters_to_words(value))

    for symbol in symbols:
        if symbol == CLOSE_TAG:
            close()
            current, value = None, []
        elif symbol.startswith("<") and symbol.endswith(">") and len(symbol) > 2:
            close()
            current, value = symbol[1:-1], []
        elif current is not None:
            value.append(symbol)
    close()
    return slots


class SlotFilling(Task):
    name = "sf"
    sizes: ClassVar[dict] = {"tiny": {"train": 8, "valid": 2, "test": 3},
             "small": {"train": 300, "valid": 40, "test": 100},
             "default": {"train": 3000, "valid": 200, "test": 1000}}

    def plan(self, sizes, rng, seed):
        voices = voice_splits(rng)
        cut = len(TEMPLATES) - HELD_OUT_TEMPLATES
        plans = []
        for split in SPLITS:
            held_out = split != "train"
            templates = TEMPLATES[cut:] if held_out else TEMPLATES[:cut]
            for index in range(sizes[split]):
                template = pick(rng, templates)
                values = {slot: pick(rng, tuple(v for i, v in enumerate(choices)
                                                if (i % 4 == 3) == held_out))
                          for slot, choices in VALUES.items()}
                plans.append(speech_plan(
                    rng, task=self.name, group=split, index=index, seed=seed,
                    text=template.format(**values),
                    label=" ".join(tagged_symbols(template, values)),
                    voice=voices[split][int(rng.integers(len(voices[split])))]))
        return plans

    def write_labels(self, folder: Path, name: str, plans: list, sizes: dict, seed: int) -> None:
        write_labels(labels_path(folder, name, SLOT_LABELS), [p.label for p in plans])
        write_labels(labels_path(folder, name, WORD_LABELS), [p.text for p in plans])

    def write_dictionaries(self, folder: Path, plans: list) -> None:
        write_counted_dictionary(dictionary_path(folder, SLOT_LABELS),
                                 [p.label.split() for p in plans])

    def load_labels(self, folder: Path, manifests):
        vocabulary = Vocabulary.from_file(dictionary_path(folder, SLOT_LABELS))
        symbols = {m: [line.split() for line in read_labels(labels_path(folder, m, SLOT_LABELS),
                                                            len(manifests[m]))]
                   for m in manifests}
        return {"vocabulary": vocabulary,
                "targets": {m: [vocabulary.encode(line) for line in lines]
                            for m, lines in symbols.items()},
                "slots": {m: [parse_slots(line) for line in lines] for m, lines in symbols.items()}}

    def evaluate(self, features, labels, run):
        vocabulary = labels["vocabulary"]
        train = features["train"].states
        head = SequenceHead(train[0].shape[0], train[0].shape[-1], len(vocabulary))

        def found(split: str) -> list[dict]:
            return [parse_slots(vocabulary.decode(h))
                    for h in ctc_decode(head, features[split].states, run.batch_size)]

        valid, step, _ = fit(
            head, ctc_loss_on(head, train, labels["targets"]["train"]),
            lambda: float(slot_type_f1_per_item(labels["slots"]["valid"], found("valid")).mean()),
            items=len(train), run=run,
            higher_is_better=self.higher_is_better, desc="superb sf head")
        expected, hypotheses = labels["slots"]["test"], found("test")
        f1 = slot_type_f1_per_item(expected, hypotheses)
        edits, lengths = slot_value_errors(expected, hypotheses)
        cer = ratio_statistic(edits, lengths)
        common = Counter(tuple(sorted(s)) for s in labels["slots"]["train"]).most_common(1)[0][0]
        constant = {slot: [""] for slot in common}
        return Outcome(
            value=float(f1.mean()),
            interval=interval_of(mean_statistic(f1), len(f1), run.seed),
            items=len(f1),
            chance=float(slot_type_f1_per_item(expected, [constant] * len(expected)).mean()),
            chance_definition=f"slot-type F1 of answering every test command with the most "
                              f"frequent training slot types {list(common)}",
            valid_value=valid, best_step=step, layer_weights=layer_weights(head), head=head,
            head_description=f"{head.description('symbols')} on letters and slot tags, greedy "
                             f"decoding",
            extra={"slot_value_cer": round(cer(np.arange(len(f1))), 6),
                   "slot_value_cer_interval": rounded_interval(
                       interval_of(cer, len(f1), run.seed)),
                   "slot_value_cer_chance": 1.0},
            per_item=(f1, np.ones(len(f1))))


TASK = SlotFilling()
