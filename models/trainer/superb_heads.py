"""SUPERB heads on a frozen upstream's hidden states, and how they are trained.

s3prl's recipe at small scale: a learnable softmax-weighted sum of every hidden state
(weights start equal), then a small head. Utterance level (KS, SID): Linear(D, 256), mean
pooling, Linear(256, classes); frame level (PR): Linear(D, phonemes + blank) with CTC.
Adam, gradient norm clipped at 1; the head that scores best on the validation split
(checked every ``eval_every`` steps) is the one scored on test.
"""
from __future__ import annotations

import sys
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .superb_metrics import error_rate, greedy_ctc_decode
from .superb_tasks import SUPERB_TASKS


class WeightedSum(nn.Module):
    """s3prl's featurizer: softmax-normalized learnable weights over the hidden states."""

    def __init__(self, num_layers: int):
        super().__init__()
        self.weights = nn.Parameter(torch.zeros(num_layers))

    def forward(self, stacked: torch.Tensor, layer_dim: int = 1) -> torch.Tensor:
        weights = F.softmax(self.weights, dim=0)
        shape = [1] * stacked.dim()
        shape[layer_dim] = -1
        return (stacked * weights.view(shape)).sum(dim=layer_dim)


class UtteranceHead(nn.Module):
    """Weighted sum -> Linear(D, 256) -> mean over frames -> Linear(256, classes).

    Takes per-layer means (B, L+1, D); all steps before the classifier are linear, so this
    equals projecting every frame and then pooling."""

    def __init__(self, num_layers: int, dim: int, classes: int, projector_dim: int = 256):
        super().__init__()
        self.featurizer = WeightedSum(num_layers)
        self.projector = nn.Linear(dim, projector_dim)
        self.classifier = nn.Linear(projector_dim, classes)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.projector(self.featurizer(pooled, layer_dim=1)))


class FrameHead(nn.Module):
    """Weighted sum -> Linear(D, phonemes + 1); index 0 is the CTC blank."""

    def __init__(self, num_layers: int, dim: int, classes: int):
        super().__init__()
        self.featurizer = WeightedSum(num_layers)
        self.output = nn.Linear(dim, classes + 1)

    def forward(self, stacked: torch.Tensor) -> torch.Tensor:    # (B, L+1, T, D)
        return self.output(self.featurizer(stacked, layer_dim=1))


def _utterance_batches(features: List[torch.Tensor], targets: Sequence[int]):
    return torch.stack(features), torch.tensor(list(targets), dtype=torch.long)


def _accuracy(head: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    head.eval()
    with torch.no_grad():
        predicted = head(x).argmax(dim=-1)
    head.train()
    return float((predicted == y).float().mean())


def _pad_frames(features: List[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
    lengths = torch.tensor([f.shape[1] for f in features], dtype=torch.long)
    layers, _, dim = features[0].shape
    padded = features[0].new_zeros((len(features), layers, int(lengths.max()), dim))
    for row, f in enumerate(features):
        padded[row, :, :f.shape[1]] = f
    return padded, lengths


def _ctc_scores(head: FrameHead, features: List[torch.Tensor], batch: int) -> List[List[int]]:
    head.eval()
    hypotheses: List[List[int]] = []
    with torch.no_grad():
        for start in range(0, len(features), batch):
            padded, lengths = _pad_frames(features[start:start + batch])
            hypotheses += greedy_ctc_decode(head(padded).log_softmax(-1), lengths)
    head.train()
    return [[h - 1 for h in hyp] for hyp in hypotheses]   # back to phoneme indices


def train_head(task: str, train: Tuple, valid: Tuple, test: Tuple, classes: int, *,
               steps: int, batch_size: int, lr: float, eval_every: int, seed: int,
               projector_dim: int, progress: bool) -> Dict[str, Any]:
    """Train the task head on frozen features; score the best-on-valid head on test.

    ``train``/``valid``/``test`` are (features, labels): class indices for KS/SID, phoneme
    index sequences for PR. Returns the scores, the step chosen and the layer weights.
    """
    from tqdm import tqdm

    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the head's initialization
    features = train[0]
    num_layers, dim = features[0].shape[0], features[0].shape[-1]
    frame_level = SUPERB_TASKS[task].frame_level
    if frame_level:
        head: nn.Module = FrameHead(num_layers, dim, classes)
    else:
        head = UtteranceHead(num_layers, dim, classes, projector_dim)
        x_train, y_train = _utterance_batches(*train)
        x_valid, y_valid = _utterance_batches(*valid)
        x_test, y_test = _utterance_batches(*test)
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)

    def score(split) -> float:
        if frame_level:
            return error_rate(split[1], _ctc_scores(head, split[0], batch_size))
        x, y = (x_valid, y_valid) if split is valid else (x_test, y_test)
        return _accuracy(head, x, y)

    better = (lambda new, old: new < old) if frame_level else (lambda new, old: new > old)
    best_value, best_step, best_state = None, 0, None
    count = len(features)
    losses = []
    with tqdm(total=steps, desc=f"superb {task} head", unit="step", file=sys.stderr,
              dynamic_ncols=True, disable=not progress) as bar:
        for step in range(1, steps + 1):
            index = torch.randint(count, (min(batch_size, count),), generator=generator)
            if frame_level:
                padded, lengths = _pad_frames([features[i] for i in index.tolist()])
                log_probs = head(padded).log_softmax(-1)
                targets = [torch.tensor(train[1][i], dtype=torch.long) + 1 for i in index.tolist()]
                loss = F.ctc_loss(log_probs.transpose(0, 1), torch.cat(targets), lengths,
                                  torch.tensor([len(t) for t in targets]), blank=0,
                                  zero_infinity=True)
            else:
                loss = F.cross_entropy(head(x_train[index]), y_train[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)   # s3prl: gradient_clipping 1
            optimizer.step()
            losses.append(loss.item())
            bar.update(1)
            if step % eval_every == 0 or step == steps:
                value = score(valid)
                if best_value is None or better(value, best_value):
                    best_value, best_step = value, step
                    best_state = {k: v.clone() for k, v in head.state_dict().items()}
                bar.set_postfix(loss=f"{loss.item():.3f}", valid=f"{value:.3f}")
    head.load_state_dict(best_state)
    weights = F.softmax(head.featurizer.weights.detach(), dim=0).tolist()
    return {"test": score(test), "valid": best_value, "best_step": best_step,
            "layer_weights": [round(w, 5) for w in weights],
            "train_loss_first": losses[0], "train_loss_last": float(np.mean(losses[-20:])),
            "head": head}


