"""What KS and SID share: one class per utterance, s3prl's utterance-level head, accuracy.

Files: ``{split}.<task>`` (the class of each utterance) and ``dict.<task>.txt`` (the
classes; index = line number), written by :mod:`models.trainer.data.synth`. The head is a
weighted sum, Linear(D, 256), mean pooling and Linear(256, C) (s3prl's ``UtteranceLevel``
with ``MeanPooling``), trained with cross entropy; an item scores 1 when its class is
right. Chance: uniform guessing over the classes (the test split's majority-class rate is
reported beside it).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ...data.datasets import Vocabulary
from ...data.manifest import dictionary_path, read_labels
from ...data.synth_plan import SPLITS
from ..heads import UtteranceHead, fit, layer_weights
from .common import CorpusPartTask, Outcome, interval_of
from .metrics import ratio_statistic


def uniform_chance(vocabulary: Vocabulary, test_targets, what: str) -> tuple[float, str, dict]:
    """The accuracy of uniform random guessing, how it is defined, and the test split's
    majority-class rate."""
    classes = len(vocabulary)
    counts = np.bincount(np.asarray(test_targets), minlength=classes)
    majority = float(counts.max() / max(1, counts.sum()))
    return (1.0 / classes, f"1 / {classes} {what}: accuracy of uniform random guessing",
            {"majority_class_rate_test": round(majority, 5)})


def _accuracy(head: UtteranceHead, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((head(x).argmax(dim=-1) == y).float().mean())


class UtteranceClassification(CorpusPartTask):
    """A task module sets ``name`` (also the label file's suffix) and ``classes_are``."""

    classes_are = "classes"      # what the classes are, in the chance definition

    def load_labels(self, folder: Path, manifests):
        vocabulary = Vocabulary.from_file(dictionary_path(folder, self.name))
        targets = {m: vocabulary.encode([line.strip() for line in read_labels(
                       manifest.label_path(self.name), expected=len(manifest))])
                   for m, manifest in manifests.items()}
        return {"vocabulary": vocabulary, "targets": targets}

    def evaluate(self, features, labels, run):
        return classify_utterances(features, labels["vocabulary"], labels["targets"], run,
                                   task=self, classes_are=self.classes_are)


def classify_utterances(features, vocabulary: Vocabulary, targets, run, *, task,
                        classes_are: str) -> Outcome:
    """s3prl's utterance-level recipe on pooled states for ``task``: the head, the best on
    valid tested; ``targets``: each split's class indices."""
    x = {m: torch.stack(features[m].states) for m in SPLITS}
    y = {m: torch.as_tensor(list(targets[m]), dtype=torch.long) for m in SPLITS}
    head = UtteranceHead(x["train"].shape[1], x["train"].shape[-1], len(vocabulary),
                         run.projector_dim)

    def loss_on(index):
        return F.cross_entropy(head(x["train"][index]), y["train"][index])

    valid, step, losses = fit(head, loss_on, lambda: _accuracy(head, x["valid"], y["valid"]),
                              items=len(y["train"]), run=run,
                              higher_is_better=task.higher_is_better,
                              desc=f"superb {task.name} head")
    with torch.no_grad():
        value = _accuracy(head, x["test"], y["test"])
        predicted = head(x["test"]).argmax(dim=-1).tolist()
    correct = [float(p == t) for p, t in zip(predicted, y["test"].tolist())]
    ones = [1.0] * len(correct)
    chance, definition, reference = uniform_chance(vocabulary, y["test"].tolist(), classes_are)
    return Outcome(
        value=value, interval=interval_of(ratio_statistic(correct, ones), len(correct),
                                          run.seed),
        items=len(correct), chance=chance, chance_definition=definition,
        valid_value=valid, best_step=step, layer_weights=layer_weights(head), head=head,
        head_description=head.description,
        extra={**reference, **training_losses(losses)}, per_item=(correct, ones),
        data={"classes": len(vocabulary)},
        saved_with_head={"classes": list(vocabulary.symbols)})


def training_losses(losses: list[float]) -> dict:
    """The first training loss and the mean of the last 20, as ``results.json`` has them."""
    return {"train_loss_first": round(losses[0], 5),
            "train_loss_last": round(float(np.mean(losses[-20:])), 5)}
