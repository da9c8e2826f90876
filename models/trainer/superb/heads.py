"""SUPERB heads on a frozen upstream's hidden states, and how they are trained.

s3prl's recipe at small scale: a learnable softmax-weighted sum of every hidden state
(weights start equal), then a small head. Utterance level (KS, SID): Linear(D, 256), mean
pooling, Linear(256, classes); frame level (PR): Linear(D, phonemes + blank) with CTC.
Adam, gradient norm clipped at 1; the head that scores best on the validation split
(checked every ``eval_every`` steps) is the one scored on test.

:func:`fit` is that recipe for any head given its batch loss and valid score; the heads of
every task in :mod:`models.trainer.superb.tasks` train with it, and the CTC pieces
(:func:`pad_frames`, :func:`ctc_loss_on`, :func:`ctc_decode` with
:func:`greedy_ctc_decode`) serve PR, ASR and slot filling alike.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

from ..autocast import autocast as autocast_context
from ..errors import DataError
from .state_store import StateStore, memory_limit_bytes

# s3prl's downstream optimizer and clipping (gradient_clipping 1), as results.json records.
HEAD_OPTIMIZER = torch.optim.Adam
GRADIENT_CLIPPING = 1.0


def length_batches(lengths: Sequence[int], batch_size: int,
                   max_samples: Optional[int] = None) -> List[List[int]]:
    """Indices of ``lengths`` in batches of neighbours by length (shortest first): at most
    ``batch_size`` each and, padded to their longest, at most ``max_samples`` samples in
    all (an utterance longer than that goes alone). The training sampler's packing
    (:class:`~models.trainer.data.datasets.LengthBucketBatchSampler`), unshuffled."""
    from ..data.datasets import LengthBucketBatchSampler

    budget = sum(lengths) * batch_size + 1 if max_samples is None else max_samples
    return list(LengthBucketBatchSampler(lengths, max_batch_samples=max(1, budget),
                                         max_batch_size=batch_size, shuffle=False))


@torch.no_grad()
def extract_features(model: nn.Module, dataset, *, pool: bool, batch_size: int,
                     device: torch.device, progress: bool, desc: str,
                     first_state: int = 0, max_samples: Optional[int] = None,
                     autocast: Optional[str] = None,
                     limit_bytes: Optional[int] = None) -> List[torch.Tensor]:
    """Hidden states ``first_state`` .. L of every utterance: (S, D) means if ``pool``, else
    (S, T, D), S = L + 1 - first_state (``first_state`` 1 leaves out the encoder input).

    Utterances go to the upstream in :func:`length_batches` (at most ``batch_size``, at
    most ``max_samples`` padded samples), zero-padded, with their sample counts: the
    upstreams mask padding (front-end statistics, attention keys, convolution inputs), so
    an utterance's states are its own alone up to float rounding, and each is cut to its
    own frames before pooling. (Batching only equal lengths made nearly every call a batch
    of one on SD and PR.) The sample cap matters because a masked attention leaves the
    fast kernels: on 2 cores, 16 SD mixtures of ~10 s per call ran 1.8x slower than one.
    A binarized upstream turns rounding into the odd sign flip that later layers carry:
    any change of batch moves its states on about 1 utterance in 50. ``autocast`` (e.g.
    ``"bf16"``) runs the upstream under :func:`models.trainer.autocast.autocast`; the
    states are returned in float32 either way. Frame-level states expected to pass
    ``limit_bytes`` (default: half the memory available now) are kept in a temporary
    file mapped into memory (:mod:`.state_store`): the same values, less memory."""
    from tqdm import tqdm

    groups = length_batches(dataset.lengths, batch_size, max_samples)
    store = StateStore(len(dataset), memory_limit_bytes() if limit_bytes is None
                       else limit_bytes)
    if pool:
        store.decide(0)                      # (S, D) an utterance: memory, always
    total_samples = sum(dataset.lengths)
    with tqdm(total=len(dataset), desc=desc, unit="utt", file=sys.stderr, dynamic_ncols=True,
              disable=not progress) as bar:
        try:
            _extract_into(store, model, dataset, groups, bar, desc, pool=pool, device=device,
                          first_state=first_state, autocast=autocast,
                          total_samples=total_samples)
        except BaseException:
            store.discard()
            raise
    return store.tensors()


def _extract_into(store: StateStore, model: nn.Module, dataset, groups, bar, desc: str, *,
                  pool: bool, device: torch.device, first_state: int,
                  autocast: Optional[str], total_samples: int) -> None:
    for group in groups:
        waveforms = [dataset[i]["waveform"] for i in group]
        samples = torch.tensor([len(w) for w in waveforms])
        padded = waveforms[0].new_zeros((len(group), int(samples.max())))
        for row, waveform in enumerate(waveforms):
            padded[row, :len(waveform)] = waveform
        with autocast_context(autocast, device):
            out = model(padded.to(device), samples.to(device))
        stacked = torch.stack(out.hidden_states[first_state:], dim=1).float()  # (B, S, T, D)
        frames = ([stacked.shape[2]] * len(group) if out.padding_mask is None
                  else (~out.padding_mask).sum(dim=1).tolist())
        for row, index in enumerate(group):
            if frames[row] == 0:
                raise DataError(f"{dataset.manifest.audio_path(index)}: too short for one "
                                f"encoder frame")
            own = stacked[row, :, :frames[row]]
            if store.on_disk is None:        # the first frame-level states: scale them up
                bytes_per_sample = own.numel() * own.element_size() / int(samples[row])
                if store.decide(int(bytes_per_sample * total_samples)):
                    bar.set_description_str(f"{desc} (states in a temporary file)")
            store.put(index, own.mean(dim=1) if pool else own)
        bar.update(len(group))


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

    @property
    def description(self) -> str:
        """The head as ``results.json`` records it, read from its own layers."""
        size = self.projector.out_features
        return f"weighted sum + Linear(D, {size}) + mean pooling + Linear({size}, C)"


class FrameHead(nn.Module):
    """Weighted sum -> Linear(D, phonemes + 1); index 0 is the CTC blank."""

    def __init__(self, num_layers: int, dim: int, classes: int):
        super().__init__()
        self.featurizer = WeightedSum(num_layers)
        self.output = nn.Linear(dim, classes + 1)

    def forward(self, stacked: torch.Tensor,
                lengths: Optional[torch.Tensor] = None) -> torch.Tensor:   # (B, L+1, T, D)
        # frame by frame: padding cannot reach a real frame, so ``lengths`` is not needed
        return self.output(self.featurizer(stacked, layer_dim=1))


def pad_frames(features: List[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
    """(L+1, T_i, D) frame sequences zero-padded to (B, L+1, T, D), and their lengths."""
    lengths = torch.tensor([f.shape[1] for f in features], dtype=torch.long)
    layers, _, dim = features[0].shape
    padded = features[0].new_zeros((len(features), layers, int(lengths.max()), dim))
    for row, f in enumerate(features):
        padded[row, :, :f.shape[1]] = f
    return padded, lengths


def ctc_loss_on(head: nn.Module, states: List[torch.Tensor],
                targets: Sequence[Sequence[int]]) -> Callable[[List[int]], torch.Tensor]:
    """The CTC loss of a batch (given by indices) of frame sequences against symbol-index
    targets; the head's output index 0 is the blank, symbol k is k + 1."""
    def loss_on(index: List[int]) -> torch.Tensor:
        padded, lengths = pad_frames([states[i] for i in index])
        log_probs = head(padded, lengths).log_softmax(-1)
        chosen = [torch.tensor(targets[i], dtype=torch.long) + 1 for i in index]
        return F.ctc_loss(log_probs.transpose(0, 1), torch.cat(chosen), lengths,
                          torch.tensor([len(t) for t in chosen]), blank=0, zero_infinity=True)

    return loss_on


def greedy_ctc_decode(log_probs: torch.Tensor, lengths: torch.Tensor,
                      blank: int = 0) -> List[List[int]]:
    """Best path: argmax per frame, merge repeats, drop blanks. (B, T, C) -> label lists."""
    best = log_probs.argmax(dim=-1).cpu()
    out = []
    for row, length in zip(best, lengths.tolist()):
        path = row[:length].tolist()
        out.append([p for k, p in enumerate(path) if p != blank and (k == 0 or p != path[k - 1])])
    return out


def ctc_decode(head: nn.Module, states: List[torch.Tensor], batch: int) -> List[List[int]]:
    """Greedy CTC decoding of every sequence, as symbol indices (blank removed)."""
    hypotheses: List[List[int]] = []
    with torch.no_grad():
        for start in range(0, len(states), batch):
            padded, lengths = pad_frames(states[start:start + batch])
            hypotheses += greedy_ctc_decode(head(padded, lengths).log_softmax(-1), lengths)
    return [[h - 1 for h in hypothesis] for hypothesis in hypotheses]


@dataclass
class HeadSettings:
    """How a head is trained (and, for QbE, which seed its interval uses)."""

    steps: int
    batch_size: int
    lr: float
    eval_every: int
    projector_dim: int
    seed: int
    progress: bool


def fit(head: nn.Module, loss_on: Callable[[List[int]], torch.Tensor],
        score: Callable[[], float], *, items: int, run: HeadSettings, higher_is_better: bool,
        desc: str) -> Tuple[float, int, List[float]]:
    """Train ``head`` on random batches of ``items`` training items; keep the best on valid.

    ``loss_on(indices)`` is the loss of a batch, ``score()`` the valid metric (run in eval
    mode without gradients). The head is left holding its best-on-valid weights, in eval
    mode. Returns (best valid value, its step, the training losses).
    """
    from tqdm import tqdm

    generator = torch.Generator().manual_seed(run.seed)
    optimizer = HEAD_OPTIMIZER(head.parameters(), lr=run.lr)
    best_value, best_step, best_state, losses = None, 0, None, []
    with tqdm(total=run.steps, desc=desc, unit="step", file=sys.stderr, dynamic_ncols=True,
              disable=not run.progress) as bar:
        for step in range(1, run.steps + 1):
            head.train()
            index = torch.randint(items, (min(run.batch_size, items),), generator=generator)
            loss = loss_on(index.tolist())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(head.parameters(), GRADIENT_CLIPPING)
            optimizer.step()
            losses.append(loss.item())
            bar.update(1)
            if step % run.eval_every == 0 or step == run.steps:
                head.eval()
                with torch.no_grad():
                    value = score()
                improved = best_value is None or (value > best_value if higher_is_better
                                                  else value < best_value)
                if improved:
                    best_value, best_step = value, step
                    best_state = {k: v.clone() for k, v in head.state_dict().items()}
                bar.set_postfix(loss=f"{loss.item():.3f}", valid=f"{value:.3f}")
    head.load_state_dict(best_state)
    head.eval()
    return float(best_value), best_step, losses


def layer_weights(head: nn.Module) -> List[float]:
    """The softmax-normalized weights of a head's featurizer, rounded."""
    return [round(w, 5) for w in F.softmax(head.featurizer.weights.detach(), dim=0).tolist()]
