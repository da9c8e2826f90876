"""BiT's multi-distillation (Liu et al. 2022), for HuBERT upstreams.

A lower-precision *student* starts from a trained *teacher*'s float weights and learns to
reproduce the teacher's outputs on the same masked inputs:

* hidden states: the mean squared error of every hidden state (encoder input and each
  layer's output), summed over layers, as BiT's ``rep_loss``;
* the masked-prediction distribution: soft cross-entropy between the teacher's and the
  student's distributions over units at temperature ``T`` (BiT's ``soft_cross_entropy`` on
  the logits), over the frames the HuBERT loss scores, averaged over the units as BiT's
  ``(-targets_prob * student_likelihood).mean()`` averages over classes (helper.py of
  facebookresearch/bit): the per-frame cross-entropy enters the loss divided by the number
  of units C, on the same footing as the hidden-state MSE, itself a mean over features.
  (Runs before this change summed over units: C times the weight, e.g. 50x with 50 units;
  ``--distill-prediction C`` reproduces them.)
* optionally HuBERT's own masked-prediction loss on the k-means units.

Multi-distillation is a chain of precisions, e.g. W32A32 -> W1A4 -> W1A2 -> W1A1: each
stage's student is the next stage's teacher.

Optimizer (BiT's ``KDLearner.build``): weights decay; biases and normalization weights do
not; the learned quantizer scales get their own learning rate (BiT: ``clip_lr`` 1e-4) and no
decay.

Deviation from BiT: attention maps are not distilled. BiT's released GLUE recipe turns
that term off (``distill_attn = False``); here the teacher's fused attention kernels do not
expose the maps either.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from profiler.option_values import split_list

from ...quantization import Quantization
from ..errors import DataError
from ..fileio import read_json
from .settings import STUDENT_SCALES, STUDENT_SCALES_DATA, STUDENT_SCALES_TEACHER


def parse_chain(text: str) -> List[Quantization]:
    """``"W32A32,W1A4,W1A2,W1A1"`` -> the stages' bit pairs, teacher first.

    Every stage must lower (or keep) both bit-widths and lower at least one: a student is
    never wider than its teacher."""
    try:
        stages = [Quantization.parse(part) for part in split_list(text)]
    except ValueError as error:
        raise DataError(str(error)) from None
    if len(stages) < 2:
        raise DataError(f"distillation chain {text!r}: needs a teacher and at least one "
                        f"student, e.g. W32A32,W1A1")
    for teacher, student in zip(stages, stages[1:]):
        if (student.weight_bits > teacher.weight_bits
                or student.activation_bits > teacher.activation_bits
                or student == teacher):
            raise DataError(f"distillation chain {text!r}: {student.label} does not lower "
                            f"the precision of its teacher {teacher.label}")
    return stages


class DistillationWeights(NamedTuple):
    hidden: float = 1.0          # per-layer hidden-state MSE (BiT's rep loss)
    prediction: float = 1.0      # soft cross-entropy against the teacher's unit distribution
    hubert: float = 0.0          # HuBERT's masked-prediction loss on the k-means units
    temperature: float = 1.0     # of the soft cross-entropy (BiT: 1)


class DistillationParts(NamedTuple):
    loss: torch.Tensor           # weighted sum of the two terms (differentiable)
    hidden: torch.Tensor         # summed over kept frames: per-frame error summed over layers
    prediction: torch.Tensor     # summed over kept frames: soft cross-entropy in nats, not
                                 # yet averaged over units (detached; what the log reports)
    frames: torch.Tensor         # kept frames


def hidden_state_sum(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor],
                     keep: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Sum over layers and kept frames of the squared error averaged over the feature
    dimension, between matching hidden states (B, T, D); ``keep`` (B, T) bool."""
    if len(student) != len(teacher):
        raise ValueError(f"the student has {len(student)} hidden states, the teacher "
                         f"{len(teacher)}: distillation needs the same depth")
    total = student[0].new_zeros((), dtype=torch.float32)
    for s, t in zip(student, teacher):
        if s.shape != t.shape:
            raise ValueError(f"hidden states differ in shape: {tuple(s.shape)} vs {tuple(t.shape)}")
        error = (s.float() - t.detach().float()).pow(2).mean(dim=-1)     # (B, T)
        total = total + (error[keep].sum() if keep is not None else error.sum())
    return total


def hidden_state_loss(student: Sequence[torch.Tensor], teacher: Sequence[torch.Tensor],
                      padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """BiT's rep loss: the sum over layers of the mean squared error between matching hidden
    states, averaged over the non-padded frames and the feature dimension."""
    keep = None if padding_mask is None else ~padding_mask
    frames = student[0].shape[0] * student[0].shape[1] if keep is None else keep.sum()
    return hidden_state_sum(student, teacher, keep) / max(float(frames), 1.0)


def soft_cross_entropy(student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                       select: torch.Tensor,
                       temperature: float = 1.0) -> Tuple[torch.Tensor, torch.Tensor]:
    """Sum over the selected frames of -sum_c p_teacher(c) log p_student(c), both at
    ``temperature``; returns (sum, number of selected frames)."""
    picked_student = student_logits[select].float() / temperature
    picked_teacher = teacher_logits[select].detach().float() / temperature
    targets = F.softmax(picked_teacher, dim=-1)
    loss = -(targets * F.log_softmax(picked_student, dim=-1)).sum()
    return loss, select.sum()


def distillation_loss(student_hidden: Sequence[torch.Tensor],
                      teacher_hidden: Sequence[torch.Tensor],
                      student_logits: torch.Tensor, teacher_logits: torch.Tensor,
                      keep: torch.Tensor, weights: DistillationWeights) -> DistillationParts:
    """The distillation terms of one micro-batch, summed over the ``keep`` frames (B, T)
    bool, the real (non-padded) ones: the training step divides by the global frame count,
    as it does for HuBERT's loss. The soft cross-entropy enters the loss averaged over the
    units (BiT's scaling, see the module docstring)."""
    hidden = hidden_state_sum(student_hidden, teacher_hidden, keep)
    prediction, frames = soft_cross_entropy(student_logits, teacher_logits, keep,
                                            weights.temperature)
    units = student_logits.shape[-1]
    loss = weights.hidden * hidden + weights.prediction * prediction / units
    return DistillationParts(loss, hidden.detach(), prediction.detach(), frames)


class DistilledPrediction(nn.Module):
    """The student, its frozen teacher and the loss, as one module for DDP and DeepSpeed
    (the counterpart of :class:`.loss.MaskedPrediction`). The teacher sees the inputs with
    the student's mask, in eval mode, without gradients."""

    def __init__(self, model: nn.Module, teacher: nn.Module, weights: DistillationWeights,
                 masked_weight: float = 1.0, unmasked_weight: float = 0.0):
        super().__init__()
        self.model = model
        self.teacher = teacher.eval().requires_grad_(False)
        self.weights = weights
        self.masked_weight = masked_weight
        self.unmasked_weight = unmasked_weight

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self, waveforms, lengths, labels, generator: Optional[torch.Generator] = None):
        from .loss import masked_prediction_loss

        out = self.model.pretrain_forward(waveforms, lengths, generator=generator)
        with torch.no_grad():
            taught = self.teacher.pretrain_forward(waveforms, lengths,
                                                   mask_indices=out.mask_indices)
        hubert = masked_prediction_loss(out.logits, labels, out.mask_indices, out.padding_mask,
                                        masked_weight=self.masked_weight,
                                        unmasked_weight=self.unmasked_weight)
        parts = distillation_loss(out.hidden_states, taught.hidden_states, out.logits,
                                  taught.logits, ~out.padding_mask, self.weights)
        return hubert._replace(loss=parts.loss + self.weights.hubert * hubert.loss,
                               sample_size=parts.frames, distill_hidden=float(parts.hidden),
                               distill_prediction=float(parts.prediction))


# ------------------------------------------------------------------------- initialization
@dataclass
class WeightTransfer:
    copied: List[str]            # parameters and buffers taken from the teacher
    student_only: List[str]      # the student's own (quantizer scales, input offsets)
    rescaled: List[str] = field(default_factory=list)   # quantizers whose scales start from data


def student_from_teacher(student: nn.Module, teacher: nn.Module, *,
                         scales: str = STUDENT_SCALES_TEACHER) -> WeightTransfer:
    """Copy the teacher's weights into the student wherever the names match.

    The quantized layers subclass the float ones (``BinaryLinear`` is an ``nn.Linear``), so
    every float teacher weight has a student twin; what the student has beside them
    (quantizer scales, BiT's input offsets) keeps its initialization. A quantized teacher
    (a chain's earlier stage) also has quantizer scales: each is copied where the student's
    quantizer has the same levels. Where the levels differ, ``scales`` decides:
    ``"teacher"`` copies it anyway, as BiT's code does (its step size is initialized only
    while it still holds its starting value); ``"data"`` leaves the student's quantizer to
    the first-batch rule. A step size learned for 4-bit levels is 2.2x to 3.9x smaller
    than the rule's at 1 or 2 bits, and 100 steps a stage at BiT's
    scale learning rate barely move it (reports/training/chain_scales.md). A teacher
    weight with no twin or another shape means the two are different models:
    :class:`DataError`."""
    from models.bit import ElasticBinarizer

    if scales not in STUDENT_SCALES:
        raise DataError(f"student scales {scales!r}: choose one of {', '.join(STUDENT_SCALES)}")
    teacher_state = teacher.state_dict()
    own = student.state_dict()
    missing = sorted(set(teacher_state) - set(own))
    if missing:
        raise DataError(f"the teacher has weights the student lacks ({', '.join(missing[:3])}"
                        f"{', ...' if len(missing) > 3 else ''}): not the same model")
    mismatched = [name for name, value in teacher_state.items()
                  if torch.is_tensor(value) and tuple(value.shape) != tuple(own[name].shape)]
    if mismatched:
        name = mismatched[0]
        raise DataError(f"teacher and student differ in shape at {name}: "
                        f"{tuple(teacher_state[name].shape)} vs {tuple(own[name].shape)}")
    rescaled = []
    if scales == STUDENT_SCALES_DATA:
        theirs = dict(teacher.named_modules())
        for name, module in student.named_modules():
            other = theirs.get(name)
            if (isinstance(module, ElasticBinarizer) and isinstance(other, ElasticBinarizer)
                    and other.levels != module.levels):
                rescaled.append(name)
        for name in rescaled:
            for key in ("alpha", "_extra_state"):
                teacher_state.pop(f"{name}.{key}", None)
    merged = dict(own)
    merged.update(teacher_state)
    student.load_state_dict(merged)
    return WeightTransfer(copied=sorted(teacher_state),
                          student_only=sorted(set(own) - set(teacher_state)), rescaled=rescaled)


# ------------------------------------------------------------------------------ optimizer
_NORMS = (nn.LayerNorm, nn.GroupNorm, nn.BatchNorm1d, nn.BatchNorm2d)


def is_quantizer_scale(module: nn.Module, name: str) -> bool:
    """A learned quantizer scale: a parameter a module declares in ``scale_parameters``
    (the elastic binarizer's ``alpha``, a k-bit quantizer's step size)."""
    return name in getattr(module, "scale_parameters", ())


def bit_parameter_groups(model: nn.Module, *, weight_decay: float, scale_lr: float,
                         scale_weight_decay: float = 0.0) -> List[Dict]:
    """BiT's three parameter groups: decayed weights; biases and normalization weights
    without decay; learned quantizer scales at ``scale_lr`` without decay."""
    decay, no_decay, scales = [], [], []
    seen = set()
    for module in model.modules():
        for name, parameter in module.named_parameters(recurse=False):
            if id(parameter) in seen or not parameter.requires_grad:
                continue
            seen.add(id(parameter))
            if is_quantizer_scale(module, name):
                scales.append(parameter)
            elif name == "bias" or name.endswith("_bias") or isinstance(module, _NORMS):
                no_decay.append(parameter)
            else:
                decay.append(parameter)
    groups = [{"params": decay, "weight_decay": weight_decay, "name": "weights"},
              {"params": no_decay, "weight_decay": 0.0, "name": "biases and norms"}]
    if scales:
        groups.append({"params": scales, "weight_decay": scale_weight_decay, "lr": scale_lr,
                       "name": "quantizer scales"})
    return groups


# --------------------------------------------------------------------------- the teacher
# Config fields a student does not take from its teacher: its own precision, and the units
# (``clusters`` sets them, to the teacher's number).
_OWN_FIELDS = ("weight_bits", "activation_bits", "num_classes")


def adopt_teacher(settings, teacher):
    """The settings of a distillation run with what its ``teacher`` (the resolved
    ``settings.teacher``, a :class:`.checkpoint.TrainedRun`) fixes filled in: its number of
    units (the student predicts the same units), its model overrides (under the given ones)
    and, where none is given, its data. Settings without a teacher are returned as they
    are."""
    import dataclasses

    from . import checkpoint as ckpt

    if teacher is None:
        return settings
    config = teacher.config
    metadata = ckpt.read_metadata(teacher.run_dir, "teacher run metadata")
    overrides = {k: v for k, v in config.get("overrides", {}).items() if k not in _OWN_FIELDS}
    overrides.update(settings.overrides)
    return dataclasses.replace(settings, clusters=int(config["config"]["num_classes"]),
                               overrides=overrides, data=settings.data or metadata.get("data"))


def teacher_record(teacher) -> Dict:
    """What a student's metadata records of its teacher (loading the teacher's model)."""
    return {"run": str(teacher.run_dir.resolve()), "step": teacher.step, "model": teacher.name,
            "precision": teacher.precision.label}


def copy_teacher_targets(teacher, folder: Path) -> Dict:
    """The teacher's k-means units, copied into the student's run (its label embeddings
    belong to them); returns the teacher's ``targets.json``."""
    import shutil

    from ..fileio import staged_folder
    from .targets import TARGETS_FILE

    source = teacher.run_dir / folder.name
    if not (source / TARGETS_FILE).is_file():
        raise DataError(f"{teacher.run_dir}: the teacher run has no "
                        f"{folder.name}/{TARGETS_FILE}")
    if not (folder / TARGETS_FILE).is_file():
        with staged_folder(folder) as staging:
            shutil.copytree(source, staging, dirs_exist_ok=True)
    return read_json(folder / TARGETS_FILE, "targets record")
