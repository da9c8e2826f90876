"""HuBERT's masked-prediction loss, and the counts a training step or a validation adds up.

fairseq's HuBERT Base: cross-entropy of the cosine logits (temperature 0.1) against each
frame's k-means unit, summed over the masked frames (``pred_masked_weight=1``) and, with
weight ``pred_nomask_weight`` (0 in HuBERT Base), the unmasked ones; the sum is divided by
the number of frames of the weighted terms in the whole (global) batch.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Dict, List, NamedTuple, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..data.datasets import PAD_LABEL


class LossParts(NamedTuple):
    loss: torch.Tensor               # weighted sum over the frames that count (differentiable)
    sample_size: torch.Tensor        # how many frames the loss sums over (the normalizer)
    masked_loss: torch.Tensor        # summed cross-entropy over masked frames (detached)
    masked: torch.Tensor             # number of masked frames
    masked_correct: torch.Tensor
    unmasked_loss: torch.Tensor
    unmasked: torch.Tensor
    unmasked_correct: torch.Tensor
    # Distillation only (see :mod:`.distillation`): summed over the frames of ``sample_size``.
    distill_hidden: float = 0.0
    distill_prediction: float = 0.0


def align_labels(labels: torch.Tensor, frames: int) -> torch.Tensor:
    """Cut or pad (with -100) (B, T_labels) frame labels to the model's T frames."""
    if labels.shape[1] >= frames:
        return labels[:, :frames]
    pad = labels.new_full((labels.shape[0], frames - labels.shape[1]), PAD_LABEL)
    return torch.cat([labels, pad], dim=1)


def labelled_frames(labels: torch.Tensor, frames: int,
                    padding_mask: Optional[torch.Tensor] = None
                    ) -> Tuple[torch.Tensor, torch.Tensor]:
    """``labels`` cut or padded to ``frames`` (:func:`align_labels`), and the frames that
    count: those with a label, not under padding. The loss and the validation's per-utterance
    accuracy score the same frames through this."""
    labels = align_labels(labels, frames)
    valid = labels != PAD_LABEL
    if padding_mask is not None:
        valid = valid & ~padding_mask.to(valid.device)
    return labels, valid


def masked_prediction_loss(logits: torch.Tensor, labels: torch.Tensor, mask_indices: torch.Tensor,
                           padding_mask: Optional[torch.Tensor] = None, *,
                           masked_weight: float = 1.0, unmasked_weight: float = 0.0) -> LossParts:
    """HuBERT's loss: cross-entropy of the logits against the frame's unit, summed over the
    masked frames (times ``masked_weight``) and the unmasked ones (``unmasked_weight``).

    ``logits`` (B, T, C); ``labels`` (B, T') with -100 for no label (cut or padded to T);
    ``mask_indices`` and ``padding_mask`` (B, T) bool. Frames under padding or without a
    label never count. ``sample_size`` is the number of frames of the weighted terms, the
    normalizer fairseq divides by.
    """
    labels, valid = labelled_frames(labels.to(logits.device), logits.shape[1], padding_mask)
    masked = mask_indices.to(valid.device) & valid
    unmasked = ~mask_indices.to(valid.device) & valid
    zero = logits.sum() * 0.0

    def term(select: torch.Tensor, weight: float):
        if not bool(select.any()):
            return zero, zero.detach(), 0
        picked, targets = logits[select], labels[select]
        if weight > 0:
            loss = F.cross_entropy(picked.float(), targets, reduction="sum")
        else:
            with torch.no_grad():
                loss = F.cross_entropy(picked.float(), targets, reduction="sum")
        correct = (picked.detach().argmax(dim=-1) == targets).sum()
        return loss, loss.detach(), correct

    masked_loss, masked_value, masked_correct = term(masked, masked_weight)
    unmasked_loss, unmasked_value, unmasked_correct = term(unmasked, unmasked_weight)
    loss = zero
    sample_size = torch.zeros((), dtype=torch.long, device=logits.device)
    if masked_weight > 0:
        loss = loss + masked_weight * masked_loss
        sample_size = sample_size + masked.sum()
    if unmasked_weight > 0:
        loss = loss + unmasked_weight * unmasked_loss
        sample_size = sample_size + unmasked.sum()
    as_tensor = lambda v: torch.as_tensor(v, device=logits.device)  # noqa: E731
    return LossParts(loss, sample_size, masked_value, masked.sum(), as_tensor(masked_correct),
                     unmasked_value, unmasked.sum(), as_tensor(unmasked_correct))


class MaskedPrediction(nn.Module):
    """The model plus its loss as one module, so that DDP and DeepSpeed wrap a ``forward``."""

    def __init__(self, model: nn.Module, masked_weight: float = 1.0, unmasked_weight: float = 0.0):
        super().__init__()
        self.model = model
        self.masked_weight = masked_weight
        self.unmasked_weight = unmasked_weight

    def forward(self, waveforms, lengths, labels, generator: Optional[torch.Generator] = None):
        out = self.model.pretrain_forward(waveforms, lengths, generator=generator)
        return masked_prediction_loss(out.logits, labels, out.mask_indices, out.padding_mask,
                                      masked_weight=self.masked_weight,
                                      unmasked_weight=self.unmasked_weight)


@dataclass
class LossTotals:
    """Sums of :class:`LossParts` over micro-batches (and, after :meth:`from_list`, ranks).

    Kept as float64 Python numbers, so frame counts stay exact through an all-reduce."""

    sample_size: float = 0.0
    masked_loss: float = 0.0
    masked: float = 0.0
    masked_correct: float = 0.0
    unmasked_loss: float = 0.0
    unmasked: float = 0.0
    unmasked_correct: float = 0.0
    utterances: float = 0.0
    distill_hidden: float = 0.0
    distill_prediction: float = 0.0

    def add(self, parts: LossParts, utterances: int) -> None:
        for name in ("sample_size", "masked_loss", "masked", "masked_correct", "unmasked_loss",
                     "unmasked", "unmasked_correct", "distill_hidden", "distill_prediction"):
            setattr(self, name, getattr(self, name) + float(getattr(parts, name)))
        self.utterances += float(utterances)

    def to_list(self) -> List[float]:
        return list(dataclasses.astuple(self))

    @classmethod
    def from_list(cls, values: List[float]) -> "LossTotals":
        return cls(*values)

    def rates(self) -> Dict[str, float]:
        """Mean loss per frame and unit accuracy, on masked and on unmasked frames."""
        return {"loss": self.loss, "acc_masked": self.acc_masked,
                "loss_unmasked": self.loss_unmasked, "acc_unmasked": self.acc_unmasked}

    def distillation_rates(self) -> Dict[str, float]:
        """Per frame: the hidden-state error summed over layers, and the soft cross-entropy
        against the teacher's unit distribution."""
        frames = max(self.sample_size, 1.0)
        return {"distill_hidden": self.distill_hidden / frames,
                "distill_prediction": self.distill_prediction / frames}

    @property
    def loss(self) -> float:
        """Mean cross-entropy per masked frame."""
        return self.masked_loss / max(self.masked, 1.0)

    @property
    def acc_masked(self) -> float:
        return self.masked_correct / max(self.masked, 1.0)

    @property
    def loss_unmasked(self) -> float:
        return self.unmasked_loss / max(self.unmasked, 1.0)

    @property
    def acc_unmasked(self) -> float:
        return self.unmasked_correct / max(self.unmasked, 1.0)
