"""QbE: query-by-example spoken term detection; per-layer subsequence DTW, no training, MTWV.

Each query is one spoken word (a noun of :mod:`models.trainer.data.held_out_text`); documents are
sentences spoken by *other* voices, some of which contain the word. As in SUPERB's QbE
(QUESST 2014), nothing is trained: every hidden layer is tried on its own, a query is
scored against a document by subsequence DTW over the cosine distances of their frames,
and the layer with the best MTWV on the valid queries is scored on the test queries.

Subsequence DTW here: the query's first frame may start anywhere in the document; each
query frame advances the document by 0, 1 or 2 frames (so speaking rates may differ by
a factor of two), and the score is minus the path's mean cost per query frame. The steps
only look back one query frame, which lets every document frame update at once.

Files: ``queries_{valid,test}.tsv`` with ``.term`` (the word), ``docs_{valid,test}.tsv``
with ``.wrd``, and ``queries_{valid,test}.hits``: for each query, the document line
numbers (0-based, space separated) that contain its term. Valid and test use disjoint
terms and voices held out from each other; queries and documents of a split use disjoint
voices. MTWV uses NIST's beta = 999.9 (see :mod:`models.trainer.superb.tasks.metrics`); the
bootstrap resamples test queries. Chance: 0 (detecting nothing scores 0, and random
scores cannot do better on average).

Sizes: ``default`` has 60 test queries (30 terms, two voices each) against 300 documents.
"""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F

from ...data.held_out_text import WORDS, make_sentence
from ...data.manifest import WORD_LABELS, labels_path, read_labels, write_labels
from ...data.synth_plan import voice_splits
from ...errors import DataError
from .common import Outcome, Task, interval_of, pick, speech_plan
from .metrics import TWV_BETA, maximum_term_weighted_value, mtwv_statistic

GROUPS = ("valid", "test")
MIN_TERM_LETTERS = 5


def subsequence_dtw_scores(query: torch.Tensor, documents: list[torch.Tensor]) -> np.ndarray:
    """Score of a query (n, D) in each document (m_k, D): minus the best path's mean cost."""
    lengths = torch.tensor([d.shape[0] for d in documents])
    padded = torch.zeros(len(documents), int(lengths.max()), query.shape[1])
    for k, document in enumerate(documents):
        padded[k, :document.shape[0]] = document
    cost = 1.0 - torch.einsum("nd,kmd->knm", F.normalize(query, dim=-1),
                              F.normalize(padded, dim=-1))
    cost[torch.arange(padded.shape[1])[None, None, :] >= lengths[:, None, None]
         .expand(-1, cost.shape[1], -1)] = float("inf")
    accumulated = cost[:, 0]
    inf = torch.full_like(accumulated[:, :1], float("inf"))
    for i in range(1, cost.shape[1]):
        stay = accumulated
        one = torch.cat([inf, accumulated[:, :-1]], dim=1)
        two = torch.cat([inf, inf, accumulated[:, :-2]], dim=1)
        accumulated = cost[:, i] + torch.minimum(torch.minimum(stay, one), two)
    return (-accumulated.min(dim=1).values / cost.shape[1]).numpy()


class QueryByExample(Task):
    name = "qbe"
    manifests = ("queries_valid", "docs_valid", "queries_test", "docs_test")
    sizes: ClassVar[dict] = {
             "tiny": {"valid_terms": 2, "valid_docs": 4, "test_terms": 2, "test_docs": 4,
                      "queries_per_term": 1, "docs_per_term": 1},
             "small": {"valid_terms": 6, "valid_docs": 30, "test_terms": 12, "test_docs": 60,
                       "queries_per_term": 1, "docs_per_term": 2},
             "default": {"valid_terms": 12, "valid_docs": 120, "test_terms": 30,
                         "test_docs": 300, "queries_per_term": 2, "docs_per_term": 3}}

    def plan(self, sizes, rng, seed):
        voices = voice_splits(rng)
        nouns = [w for w in WORDS["noun"] if len(w) >= MIN_TERM_LETTERS]
        nouns = [nouns[i] for i in rng.permutation(len(nouns))]
        terms = {"valid": nouns[:sizes["valid_terms"]],
                 "test": nouns[sizes["valid_terms"]:sizes["valid_terms"] + sizes["test_terms"]]}
        if len(terms["test"]) < sizes["test_terms"]:
            raise DataError(f"qbe: at most {len(nouns)} terms are available")
        plans = []
        for group in GROUPS:
            pool = voices[group]
            query_voices, doc_voices = pool[::2], pool[1::2]
            index = 0
            for term in terms[group]:
                for _ in range(sizes["queries_per_term"]):
                    plans.append(speech_plan(rng, task=self.name, group=f"queries_{group}",
                                             index=index, seed=seed, text=term, label=term,
                                             voice=pick(rng, query_voices)))
                    index += 1
            texts = [make_sentence(rng, held_out=True, noun=term) for term in terms[group]
                     for _ in range(sizes["docs_per_term"])]
            texts += [make_sentence(rng, held_out=False)
                      for _ in range(max(0, sizes[f"{group}_docs"] - len(texts)))]
            for index, position in enumerate(rng.permutation(len(texts))):
                plans.append(speech_plan(rng, task=self.name, group=f"docs_{group}",
                                         index=index, seed=seed, text=texts[position],
                                         label=texts[position], voice=pick(rng, doc_voices)))
        return plans

    def write_labels(self, folder: Path, name: str, plans: list, sizes: dict, seed: int) -> None:
        labels = "term" if name.startswith("queries") else WORD_LABELS
        write_labels(labels_path(folder, name, labels), [p.text for p in plans])

    def write_dictionaries(self, folder: Path, plans: list) -> None:
        for group in GROUPS:
            docs = [p.text.split() for p in plans if p.split == f"docs_{group}"]
            write_labels(folder / f"queries_{group}.hits",
                         [" ".join(str(k) for k, words in enumerate(docs) if p.text in words)
                          for p in plans if p.split == f"queries_{group}"])

    def load_labels(self, folder: Path, manifests):
        truth = {}
        for group in GROUPS:
            documents = len(manifests[f"docs_{group}"])
            path = folder / f"queries_{group}.hits"
            lines = read_labels(path, len(manifests[f"queries_{group}"]))
            table = np.zeros((len(lines), documents), dtype=bool)
            for row, line in enumerate(lines):
                try:
                    hits = [int(k) for k in line.split()]
                except ValueError:
                    raise DataError(f"{path}:{row + 1}: expected document numbers, "
                                    f"got {line!r}") from None
                if any(not 0 <= k < documents for k in hits):
                    raise DataError(f"{path}:{row + 1}: a document number is outside "
                                    f"0..{documents - 1}")
                table[row, hits] = True
            truth[group] = table
        return truth

    def evaluate(self, features, labels, run):
        layers = features["queries_test"].states[0].shape[0]

        def layer_scores(group: str, layer: int) -> np.ndarray:
            documents = [d[layer] for d in features[f"docs_{group}"].states]
            return np.stack([subsequence_dtw_scores(q[layer], documents)
                             for q in features[f"queries_{group}"].states])

        valid = [maximum_term_weighted_value(layer_scores("valid", k), labels["valid"])[0]
                 for k in range(layers)]
        best = int(np.argmax(valid))
        scores = layer_scores("test", best)
        value, threshold = maximum_term_weighted_value(scores, labels["test"])
        statistic, terms = mtwv_statistic(scores, labels["test"])
        return Outcome(
            value=value, interval=interval_of(statistic, terms, run.seed), items=terms,
            chance=0.0,
            chance_definition="MTWV of detecting nothing (random scores do no better on "
                              f"average at beta = {TWV_BETA:g})",
            valid_value=valid[best], head_description="none: subsequence DTW on one hidden "
                                                      "layer, chosen by valid MTWV",
            extra={"best_layer": best, "valid_mtwv_per_layer": [round(v, 6) for v in valid],
                   "threshold": threshold, "beta": round(TWV_BETA, 6),
                   "test_queries": int(labels["test"].shape[0]),
                   "test_documents": int(labels["test"].shape[1])})


TASK = QueryByExample()
