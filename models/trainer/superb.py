"""SUPERB-style evaluation of a frozen upstream: keyword spotting, speaker ID, phoneme recognition.

The protocol of SUPERB (Yang et al. 2021) as s3prl runs it, at small scale:

* the upstream is frozen (eval mode, no gradients); every hidden state it returns (the
  encoder input and each layer's output) is kept;
* a learnable weighted sum combines them, with softmax-normalized weights that start
  equal (s3prl's ``Featurizer``);
* a small head is trained on top. Utterance level (KS, SID; accuracy): a projection to
  256 dimensions, mean pooling over the utterance's frames and a linear classifier (s3prl's
  ``UtteranceLevel`` with ``MeanPooling``). Frame level (PR; phoneme error rate): a linear
  layer onto the phonemes plus a CTC blank, trained with CTC, decoded greedily.

Since the upstream is frozen its hidden states are computed once. For the utterance-level
heads everything between the hidden states and the pooled vector is linear (weighted
sum, projection, mean), so pooling each layer first and then applying the weighted sum
and projection is exactly the same function, and that is what is stored. Utterances are
encoded one length at a time (equal-length batches), so no padding reaches the upstream.

The head is trained with Adam; the checkpoint with the best validation score (checked
every ``eval_every`` steps) is scored on the test split. s3prl trains its heads for up to
200k steps at lr 1e-4; the small-scale defaults here use fewer steps and a larger lr.
"""
from __future__ import annotations

import json
import math
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import checkpoint as ckpt
from .datasets import ClassificationDataset, PhonemeDataset, Vocabulary
from .errors import DataError
from .fileio import PathLike, write_bytes_atomic, write_text_atomic
from .tasks import TASK_NAMES as REGISTERED_TASK_NAMES

TASK_NAMES = {"ks": "keyword spotting", "sid": "speaker identification",
              "pr": "phoneme recognition", **REGISTERED_TASK_NAMES}
TASKS = tuple(TASK_NAMES)
METRICS = {"ks": "accuracy", "sid": "accuracy", "pr": "per"}
DEFAULTS = {  # steps, batch size, lr
    "ks": dict(steps=1500, batch_size=32, lr=1e-3),
    "sid": dict(steps=1500, batch_size=32, lr=1e-3),
    "pr": dict(steps=1500, batch_size=16, lr=1e-2),
}
RESULTS = "results.json"


@dataclass
class SuperbSettings:
    task: str
    out: str
    upstream: Optional[str] = None          # a training run folder (or one of its checkpoints)
    random_init: Optional[str] = None       # or: a zoo name, randomly initialized
    random_init_overrides: Dict[str, Any] = field(default_factory=dict)
    data: Optional[str] = None
    steps: Optional[int] = None
    batch_size: Optional[int] = None
    lr: Optional[float] = None
    eval_every: int = 50
    projector_dim: int = 256
    extract_batch: int = 16
    seed: int = 0
    device: Optional[str] = None
    progress: bool = True


def _check(s: SuperbSettings) -> None:
    if s.task not in TASKS:
        raise DataError(f"unknown task {s.task!r}; choose one of {', '.join(TASKS)}")
    if (s.upstream is None) == (s.random_init is None):
        raise DataError("give exactly one upstream: a training run folder (--upstream RUN) or "
                        "a zoo model to initialize randomly (--random-init MODEL)")
    for name in ("steps", "batch_size", "eval_every", "projector_dim", "extract_batch"):
        value = getattr(s, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise DataError(f"{name} must be a positive integer, got {value!r}")
    if s.lr is not None and not (math.isfinite(s.lr) and s.lr > 0):
        raise DataError(f"lr must be a positive number, got {s.lr!r}")


# ------------------------------------------------------------------------------ upstream
def load_upstream(s: SuperbSettings) -> Tuple[nn.Module, Dict[str, Any]]:
    """The frozen upstream and a description of it for the results."""
    import models

    if s.upstream is not None:
        run_dir, checkpoint = ckpt.resolve_upstream(s.upstream)
        model, config, step = ckpt.load_run_model(run_dir, checkpoint)
        metadata = {}
        if (run_dir / ckpt.METADATA).is_file():
            metadata = ckpt.read_json(run_dir / ckpt.METADATA, "run metadata")
        info = {"kind": "checkpoint", "run": str(run_dir.resolve()), "model": config["name"],
                "overrides": config.get("overrides", {}), "step": step,
                "pretrain_data": metadata.get("data"),
                "pretrain_wall_seconds": metadata.get("wall_seconds"),
                "pretrain_final_train_loss": metadata.get("final_train_loss"),
                "pretrain_final_valid": metadata.get("final_valid")}
    else:
        try:
            model = models.build(s.random_init, seed=s.seed, **s.random_init_overrides)
        except (ValueError, TypeError) as error:
            raise DataError(str(error)) from None
        info = {"kind": "random-init", "model": s.random_init,
                "overrides": dict(s.random_init_overrides), "seed": s.seed}
    info["parameters"] = sum(p.numel() for p in model.parameters())
    info["layers"] = model.config.layers
    info["dim"] = model.config.dim
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model, info


# -------------------------------------------------------------------------------- data
def find_task_folder(data: PathLike, task: str) -> Path:
    data = Path(data)
    if not data.exists():
        raise DataError(f"{data}: no such data folder")
    if not data.is_dir():
        raise DataError(f"{data}: not a folder (expected a corpus folder)")
    folder = data / task
    missing = [split for split in ("train", "valid", "test") if not (folder / f"{split}.tsv").is_file()]
    if missing:
        if not any(data.iterdir()):
            raise DataError(f"{data}: empty data folder; make a corpus with "
                            f"'profile-encoder data synth --out {data}'")
        raise DataError(f"{data}: no {TASK_NAMES[task]} corpus (missing {task}/"
                        f"{missing[0]}.tsv); make one with 'profile-encoder data synth "
                        f"--out DIR --tasks {task}'")
    return folder


def load_task(folder: Path, task: str):
    """(train, valid, test) datasets and the label vocabulary of a task folder."""
    if task == "pr":
        vocabulary = Vocabulary.from_file(folder / "dict.phn.txt")
        splits = [PhonemeDataset(folder / f"{split}.tsv", vocabulary=vocabulary, random_crop=False)
                  for split in ("train", "valid", "test")]
    else:
        vocabulary = Vocabulary.from_file(folder / f"dict.{task}.txt")
        splits = [ClassificationDataset(folder / f"{split}.tsv", task, vocabulary=vocabulary,
                                        random_crop=False)
                  for split in ("train", "valid", "test")]
    return splits, vocabulary


@torch.no_grad()
def extract_features(model: nn.Module, dataset, *, pool: bool, batch_size: int,
                     device: torch.device, progress: bool, desc: str) -> List[torch.Tensor]:
    """Hidden states of every utterance: (L+1, D) means if ``pool``, else (L+1, T, D)."""
    from tqdm import tqdm

    lengths = dataset.lengths
    order = sorted(range(len(dataset)), key=lambda i: (lengths[i], i))
    groups: List[List[int]] = []
    for index in order:
        if groups and lengths[groups[-1][0]] == lengths[index] and len(groups[-1]) < batch_size:
            groups[-1].append(index)
        else:
            groups.append([index])
    features: List[Optional[torch.Tensor]] = [None] * len(dataset)
    with tqdm(total=len(dataset), desc=desc, unit="utt", file=sys.stderr, dynamic_ncols=True,
              disable=not progress) as bar:
        for group in groups:
            waveforms = torch.stack([dataset[i]["waveform"] for i in group]).to(device)
            states = model(waveforms).hidden_states
            stacked = torch.stack(states, dim=1).float()          # (B, L+1, T, D)
            if stacked.shape[2] == 0:
                raise DataError(f"{dataset.manifest.audio_path(group[0])}: too short for one "
                                f"encoder frame")
            stacked = stacked.mean(dim=2) if pool else stacked
            for row, index in enumerate(group):
                features[index] = stacked[row].cpu()
            bar.update(len(group))
    return features  # type: ignore[return-value]


# ------------------------------------------------------------------------------- heads
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


def edit_distance(reference: Sequence[int], hypothesis: Sequence[int]) -> int:
    """Levenshtein distance (substitutions, insertions, deletions all cost 1)."""
    previous = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, start=1):
        current = [i] + [0] * len(hypothesis)
        for j, hyp in enumerate(hypothesis, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref != hyp))
        previous = current
    return previous[-1]


def error_rate(references: Sequence[Sequence[int]], hypotheses: Sequence[Sequence[int]]) -> float:
    """Total edit distance over total reference length (PER for phoneme sequences)."""
    errors = sum(edit_distance(r, h) for r, h in zip(references, hypotheses))
    return errors / max(1, sum(len(r) for r in references))


def greedy_ctc_decode(log_probs: torch.Tensor, lengths: torch.Tensor, blank: int = 0) -> List[List[int]]:
    """Best path: argmax per frame, merge repeats, drop blanks. (B, T, C) -> label lists."""
    best = log_probs.argmax(dim=-1).cpu()
    out = []
    for row, length in zip(best, lengths.tolist()):
        path = row[:length].tolist()
        out.append([p for k, p in enumerate(path) if p != blank and (k == 0 or p != path[k - 1])])
    return out


# ---------------------------------------------------------------------------- training
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
    frame_level = task == "pr"
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


def chance_level(task: str, vocabulary: Vocabulary, train_labels, test_labels) -> Tuple[float, str, Dict]:
    """The task's chance level, how it is defined, and related reference rates."""
    if task in ("ks", "sid"):
        classes = len(vocabulary)
        counts = np.bincount(np.asarray(test_labels), minlength=classes)
        majority = float(counts.max() / max(1, counts.sum()))
        what = "classes" if task == "ks" else "speakers"
        return (1.0 / classes,
                f"1 / {classes} {what}: accuracy of uniform random guessing",
                {"majority_class_rate_test": round(majority, 5)})
    counts = np.bincount(np.concatenate([np.asarray(t) for t in train_labels]),
                         minlength=len(vocabulary))
    frequent = int(counts.argmax())
    constant = error_rate(test_labels, [[frequent]] * len(test_labels))
    return (constant,
            f"PER of answering every test utterance with the single most frequent training "
            f"phoneme ({vocabulary.symbols[frequent]!r}); an empty answer scores 1.0",
            {"empty_output_per": 1.0})


def run_superb(s: SuperbSettings) -> Dict[str, Any]:
    """Evaluate one upstream on one task; write ``OUT/results.json`` (and ``OUT/head.pt``)."""
    from .distributed import pick_device
    from .pretrain import TRAIN_TINY_CORPUS, check_audio_headers

    started = time.perf_counter()
    _check(s)
    if s.task in REGISTERED_TASK_NAMES:
        from .tasks import run_task

        return run_task(s)
    out = Path(s.out)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder")
    defaults = DEFAULTS[s.task]
    steps = s.steps or defaults["steps"]
    batch_size = s.batch_size or defaults["batch_size"]
    lr = s.lr or defaults["lr"]
    device = pick_device(0, s.device)
    show = s.progress and sys.stderr.isatty()

    model, upstream = load_upstream(s)
    model.to(device)
    data = s.data
    synthesized = False
    if data is None:
        data = upstream.get("pretrain_data")
        if data is None or not (Path(data) / s.task).is_dir():
            # Same seed and sizes as `train --tiny`'s corpus: byte-identical files.
            data = str(out / "data")
            if not (Path(data) / s.task / "test.tsv").is_file():
                from .synth import synthesize_corpus

                synthesize_corpus(data, seed=0, sizes=TRAIN_TINY_CORPUS, tasks=[s.task],
                                  overwrite=(Path(data) / s.task).exists(), progress=show)
                synthesized = True
    folder = find_task_folder(data, s.task)
    counts = {split: check_audio_headers(folder / f"{split}.tsv") for split in ("train", "valid", "test")}
    (train_set, valid_set, test_set), vocabulary = load_task(folder, s.task)

    t0 = time.perf_counter()
    pool = s.task != "pr"
    features = [extract_features(model, dataset, pool=pool, batch_size=s.extract_batch,
                                 device=device, progress=show, desc=f"superb {s.task} {name}")
                for name, dataset in (("train", train_set), ("valid", valid_set), ("test", test_set))]
    features = [[f.cpu() for f in split] for split in features]
    t_features = time.perf_counter() - t0
    if s.task == "pr":
        labels = [dataset.sequences for dataset in (train_set, valid_set, test_set)]
    else:
        labels = [dataset.targets for dataset in (train_set, valid_set, test_set)]

    t1 = time.perf_counter()
    trained = train_head(s.task, (features[0], labels[0]), (features[1], labels[1]),
                         (features[2], labels[2]), len(vocabulary), steps=steps,
                         batch_size=batch_size, lr=lr, eval_every=s.eval_every, seed=s.seed,
                         projector_dim=s.projector_dim, progress=show)
    t_head = time.perf_counter() - t1
    chance, chance_definition, reference_rates = chance_level(s.task, vocabulary, labels[0], labels[2])
    from .tasks.builtin import builtin_interval

    interval = builtin_interval(s.task, trained["head"], features[2], labels[2],
                                batch_size=batch_size, seed=s.seed)

    results = {
        "task": s.task, "task_name": TASK_NAMES[s.task], "metric": METRICS[s.task],
        "value": round(trained["test"], 6), "unit": "fraction (0-1)",
        "higher_is_better": s.task != "pr", "split": "test",
        "chance": round(chance, 6), "chance_definition": chance_definition, **reference_rates,
        **interval,
        "valid_value": round(trained["valid"], 6), "best_step": trained["best_step"],
        "layer_weights": trained["layer_weights"],
        "train_loss_first": round(trained["train_loss_first"], 5),
        "train_loss_last": round(trained["train_loss_last"], 5),
        "upstream": upstream,
        "data": {"folder": str(Path(data).resolve()), "synthesized_now": synthesized,
                 "utterances": counts, "classes": len(vocabulary)},
        "settings": {"steps": steps, "batch_size": batch_size, "lr": lr, "optimizer": "Adam",
                     "eval_every": s.eval_every, "projector_dim": s.projector_dim,
                     "seed": s.seed, "gradient_clipping": 1.0,
                     "head": "weighted sum + " + ("Linear(D, 256) + mean pooling + Linear(256, C)"
                                                  if pool else "Linear(D, phonemes + blank), CTC, "
                                                               "greedy decoding"),
                     "upstream_frozen": True, "device": str(device)},
        "wall_seconds": {"features": round(t_features, 2), "head": round(t_head, 2),
                         "total": round(time.perf_counter() - started, 2)},
        "torch": torch.__version__, "python": platform.python_version(),
    }
    out.mkdir(parents=True, exist_ok=True)
    import io

    buffer = io.BytesIO()
    torch.save({"task": s.task, "head": trained["head"].state_dict(),
                "classes": list(vocabulary.symbols)}, buffer)
    write_bytes_atomic(out / "head.pt", buffer.getvalue())
    write_text_atomic(out / RESULTS, json.dumps(results, indent=2, sort_keys=True) + "\n")
    return results
