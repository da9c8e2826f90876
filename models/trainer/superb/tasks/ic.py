"""IC: intent classification; an intent is an (action, object, location) triple.

The intent set follows Fluent Speech Commands (38 intents: lights, heat, music, volume,
lamp, fetching things, changing language; locations kitchen, bedroom, washroom or none).
Each action has five paraphrase templates and objects and locations have synonyms
("heating", "bathroom"); the last template of every action is held out of training, so
the test holds paraphrases never heard in training as well as seen ones. Voices are held
out (accent and variant).

Files: ``{split}.ic`` (``action object location`` per line), ``{split}.wrd`` and
``dict.{action,object,location}.txt``. As in SUPERB, an utterance counts as correct when
all three slots are (s3prl's head: mean pooling and one linear classifier per slot, here
after a 256-dimensional projection).

Sizes: the ``default`` test split has 1 200 utterances: the 95 % interval of an accuracy
near 80 % is about +-2.3 points. Chance: 1/38, uniform guessing over the intents.
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...data.datasets import Vocabulary
from ...data.manifest import (
    WORD_LABELS,
    dictionary_path,
    labels_path,
    read_labels,
    write_dictionary,
    write_labels,
)
from ...data.synth_plan import voice_splits
from ..heads import WeightedSum, fit, layer_weights
from .common import SPLITS, Outcome, Task, interval_of, pick, speech_plan
from .metrics import mean_statistic

SLOTS = ("action", "object", "location")
_ROOMS = ("kitchen", "bedroom", "washroom")
_HEAT = [("heat", room) for room in ("none",) + _ROOMS]
_SWITCHED = [("lights", room) for room in ("none",) + _ROOMS] + [("music", "none"),
                                                                   ("lamp", "none")] + _HEAT
INTENTS = tuple(
    [("activate", o, loc) for o, loc in _SWITCHED]
    + [("deactivate", o, loc) for o, loc in _SWITCHED]
    + [("increase", o, loc) for o, loc in [("volume", "none")] + _HEAT]
    + [("decrease", o, loc) for o, loc in [("volume", "none")] + _HEAT]
    + [("bring", o, "none") for o in ("newspaper", "shoes", "socks", "juice")]
    + [("change_language", o, "none") for o in ("english", "german", "chinese", "korean")])
TEMPLATES = {   # the last of each is held out of training
    "activate": ("turn on the {o}{l}", "switch on the {o}{l}", "{o} on{l}",
                 "could you turn the {o} on{l}", "i would like the {o} on{l}"),
    "deactivate": ("turn off the {o}{l}", "switch off the {o}{l}", "{o} off{l}",
                   "please shut the {o} off{l}", "stop the {o}{l}"),
    "increase": ("turn up the {o}{l}", "increase the {o}{l}", "{o} up{l}", "raise the {o}{l}",
                 "i need more {o}{l}"),
    "decrease": ("turn down the {o}{l}", "decrease the {o}{l}", "{o} down{l}",
                 "lower the {o}{l}", "i need less {o}{l}"),
    "bring": ("bring me the {o}", "fetch the {o}", "get me my {o}", "go and get the {o}",
              "i want my {o}"),
    "change_language": ("change the language to {o}", "switch the language to {o}",
                        "language {o}", "set my language to {o}", "i want to use {o}"),
}
SYNONYMS = {"lights": ("lights", "light"), "heat": ("heat", "heating"),
            "volume": ("volume", "sound"), "washroom": ("washroom", "bathroom")}


def phrase(rng: np.random.Generator, intent: tuple[str, str, str], held_out: bool) -> str:
    action, obj, location = intent
    templates = TEMPLATES[action] if held_out else TEMPLATES[action][:-1]
    room = pick(rng, SYNONYMS.get(location, (location,)))
    where = "" if location == "none" else f" in the {room}"
    return pick(rng, templates).format(o=pick(rng, SYNONYMS.get(obj, (obj,))), l=where)


class IntentHead(nn.Module):
    """Weighted sum -> Linear(D, 256) -> mean pooling -> one Linear(256, C) per slot."""

    def __init__(self, num_layers: int, dim: int, classes: tuple[int, ...],
                 projector_dim: int = 256):
        super().__init__()
        self.featurizer = WeightedSum(num_layers)
        self.projector = nn.Linear(dim, projector_dim)
        self.classifiers = nn.ModuleList(nn.Linear(projector_dim, c) for c in classes)

    def forward(self, pooled: torch.Tensor) -> list[torch.Tensor]:
        hidden = self.projector(self.featurizer(pooled, layer_dim=1))
        return [classifier(hidden) for classifier in self.classifiers]


def all_slots_correct(head: IntentHead, x: torch.Tensor, y: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        predicted = torch.stack([logits.argmax(dim=-1) for logits in head(x)], dim=1)
    return (predicted == y).all(dim=1).float().numpy()


class IntentClassification(Task):
    name = "ic"
    sizes: ClassVar[dict] = {"tiny": {"train": 8, "valid": 3, "test": 3},
             "small": {"train": 300, "valid": 40, "test": 100},
             "default": {"train": 3000, "valid": 300, "test": 1200}}

    def plan(self, sizes, rng, seed):
        voices = voice_splits(rng)
        plans = []
        for split in SPLITS:
            for index in range(sizes[split]):
                intent = INTENTS[int(rng.integers(len(INTENTS)))]
                plans.append(speech_plan(
                    rng, task=self.name, group=split, index=index, seed=seed,
                    text=phrase(rng, intent, held_out=split != "train"), label=" ".join(intent),
                    voice=voices[split][int(rng.integers(len(voices[split])))]))
        return plans

    def write_labels(self, folder: Path, name: str, plans: list, sizes: dict, seed: int) -> None:
        write_labels(folder / f"{name}.ic", [p.label for p in plans])
        write_labels(labels_path(folder, name, WORD_LABELS), [p.text for p in plans])

    def write_dictionaries(self, folder: Path, plans: list) -> None:
        for position, slot in enumerate(SLOTS):
            write_dictionary(dictionary_path(folder, slot),
                             list(dict.fromkeys(intent[position] for intent in INTENTS)))

    def load_labels(self, folder: Path, manifests):
        vocabularies = [Vocabulary.from_file(dictionary_path(folder, slot)) for slot in SLOTS]
        targets = {}
        for m in manifests:
            rows = []
            for number, line in enumerate(read_labels(folder / f"{m}.ic", len(manifests[m])), 1):
                fields = line.split()
                if len(fields) != len(SLOTS):
                    from ...errors import DataError

                    raise DataError(f"{folder / f'{m}.ic'}:{number}: expected 'action object "
                                    f"location', got {line!r}")
                rows.append([v.index(f) for v, f in zip(vocabularies, fields)])
            targets[m] = torch.tensor(rows, dtype=torch.long)
        intents = {tuple(row) for rows in targets.values() for row in rows.tolist()}
        return {"vocabularies": vocabularies, "targets": targets, "intents": len(intents)}

    def evaluate(self, features, labels, run):
        x = {m: torch.stack(f.states) for m, f in features.items()}
        y = labels["targets"]
        head = IntentHead(x["train"].shape[1], x["train"].shape[2],
                          tuple(len(v) for v in labels["vocabularies"]), run.projector_dim)

        def loss_on(index):
            return sum(F.cross_entropy(logits, y["train"][index, k])
                       for k, logits in enumerate(head(x["train"][index])))

        valid, step, _ = fit(head, loss_on,
                             lambda: float(all_slots_correct(head, x["valid"], y["valid"]).mean()),
                             items=len(y["train"]), run=run, higher_is_better=self.higher_is_better,
                             desc="superb ic head")
        correct = all_slots_correct(head, x["test"], y["test"])
        intents = labels["intents"]
        return Outcome(
            value=float(correct.mean()),
            interval=interval_of(mean_statistic(correct), len(correct), run.seed),
            items=len(correct), chance=1.0 / intents,
            chance_definition=f"1 / {intents} intents (action, object, location) in the data: "
                              f"uniform random guessing",
            valid_value=valid, best_step=step, layer_weights=layer_weights(head), head=head,
            head_description=f"weighted sum + Linear(D, {head.projector.out_features}) + mean "
                             f"pooling + one Linear per slot ({', '.join(SLOTS)}); correct = "
                             f"all three",
            per_item=(correct, np.ones(len(correct))))


TASK = IntentClassification()
