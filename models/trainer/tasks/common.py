"""What the registered SUPERB tasks share: held-out voices, synthesis, training, the run.

Held-out voices. The speaker pool of :mod:`models.trainer.synth` is espeak-ng accents
times voice variants. :func:`voice_splits` splits the *accents* and the *variants*
separately (train 5 accents and 26 variants, valid 1 and 6, test 2 and 11) and pairs
them within a split, so a test voice shares neither its accent nor its variant with any
training voice.

Synthesis. A task's plans are rendered by the synth module's renderer (same determinism:
every file is a pure function of its plan) into ``OUT/<task>.partial``, which is renamed
to ``OUT/<task>`` when its manifests and labels are written; ``corpus.json`` gains the
task's entry last.

Training. :func:`fit` is the SUPERB recipe of :mod:`models.trainer.superb` for any head:
Adam, gradient clipping at 1, evaluation on valid every ``eval_every`` steps, and the best
head on valid scored on test.
"""
from __future__ import annotations

import io
import json
import platform
import shutil
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..audio import SAMPLE_RATE
from ..errors import DataError
from ..fileio import PathLike, write_bytes_atomic, write_text_atomic
from ..manifest import read_manifest, write_dictionary, write_manifest
from ..synth import ACCENTS, VARIANTS, UtterancePlan
from . import TASK_NAMES, TASKS
from .metrics import BOOTSTRAP_RESAMPLES, bootstrap_interval, rounded_interval

SPLITS = ("train", "valid", "test")
PRESETS = ("tiny", "small", "default")
# Accents and variants per split (the rest of the variants go to test).
_ACCENT_COUNTS = (5, 1, 2)
_VARIANT_COUNTS = (26, 6)


# ------------------------------------------------------------------------------ voices
def voice_splits(rng: np.random.Generator) -> dict[str, list[tuple[str, str]]]:
    """Voices (accent, variant) per split, disjoint in accent *and* in variant."""
    accents = [ACCENTS[i] for i in rng.permutation(len(ACCENTS))]
    variants = [VARIANTS[i] for i in rng.permutation(len(VARIANTS))]
    a_train, a_valid = _ACCENT_COUNTS[0], _ACCENT_COUNTS[0] + _ACCENT_COUNTS[1]
    v_train, v_valid = _VARIANT_COUNTS[0], _VARIANT_COUNTS[0] + _VARIANT_COUNTS[1]
    accent_sets = (accents[:a_train], accents[a_train:a_valid], accents[a_valid:])
    variant_sets = (variants[:v_train], variants[v_train:v_valid], variants[v_valid:])
    pools = {}
    for split, accent_set, variant_set in zip(SPLITS, accent_sets, variant_sets):
        pool = [(a, v) for a in accent_set for v in variant_set]
        pools[split] = [pool[i] for i in rng.permutation(len(pool))]
    return pools


def pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


def item_seed(seed: int, task: str, group: str, index: int) -> int:
    """The seed of one rendered file (espeak-ng and noise): depends on nothing else."""
    group_id = sum(ord(c) * 31 ** k for k, c in enumerate(group)) % 100_003
    return int(np.random.SeedSequence([seed, 100 + TASKS.index(task), group_id, index])
               .generate_state(1)[0] & 0x7FFFFFFF)


def speech_plan(rng: np.random.Generator, *, task: str, group: str, index: int, seed: int,
                text: str, voice: tuple[str, str], label: str = "", rate=None, pitch=None,
                pitch_range=None, peak=None, snr_db=None, kind: str = "sentence",
                subfolder: str = "") -> UtterancePlan:
    """One utterance to render; unset prosody is drawn from the corpus-wide ranges."""
    rate = int(rng.integers(130, 211)) if rate is None else int(rate)
    pitch = int(rng.integers(25, 76)) if pitch is None else int(pitch)
    pitch_range = int(rng.integers(30, 81)) if pitch_range is None else int(pitch_range)
    peak = float(rng.uniform(0.3, 0.9)) if peak is None else float(peak)
    snr_db = float(rng.uniform(20.0, 40.0)) if snr_db is None else float(snr_db)
    folder = f"wav/{group}/{subfolder + '/' if subfolder else ''}"
    return UtterancePlan(
        task=task, split=group, relpath=f"{folder}{task}-{group}-{index:05d}.wav", label=label,
        text=text, voice=voice[0], variant=voice[1], rate=int(np.clip(rate, 80, 450)),
        pitch=int(np.clip(pitch, 0, 100)), pitch_range=int(np.clip(pitch_range, 0, 100)),
        seed=item_seed(seed, task, group, index), kind=kind, peak=round(peak, 4),
        snr_db=round(snr_db, 2), noise_color=pick(rng, ("white", "pink", "brown")), offset=0.0)


# ------------------------------------------------------------------------------- tasks
@dataclass
class Features:
    """Frozen-upstream hidden states of the utterances of one manifest, and the manifest."""

    manifest: Any
    states: list[torch.Tensor]           # (L+1, D) means if the task pools, else (L+1, T, D)


@dataclass
class Outcome:
    """What a task's evaluation returns to :func:`run_registered_task`."""

    value: float
    interval: tuple[float, float]
    items: int                            # test items the interval resamples
    chance: float
    chance_definition: str
    valid_value: float | None = None
    best_step: int | None = None
    layer_weights: list[float] | None = None
    head: nn.Module | None = None
    head_description: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Task:
    """A registered SUPERB task; the task modules fill in the class attributes and methods."""

    name: str = ""
    metric: str = ""
    higher_is_better: bool = True
    unit: str = "fraction (0-1)"
    pooled: bool = True                   # heads see per-layer means, not frames
    trains: bool = True
    defaults: ClassVar[dict[str, Any]] = {"steps": 1500, "batch_size": 32, "lr": 1e-3}
    sizes: ClassVar[dict[str, dict[str, int]]] = {}
    manifests: tuple[str, ...] = SPLITS   # manifest names in the task folder

    # synthesis
    def plan(self, sizes: dict[str, int], rng: np.random.Generator, seed: int) -> list:
        raise NotImplementedError

    def write_labels(self, folder: Path, name: str, plans: list, sizes: dict, seed: int) -> None:
        raise NotImplementedError

    def write_dictionaries(self, folder: Path, plans: list) -> None:
        """Dictionaries over the whole task (none by default)."""

    # evaluation
    def load_labels(self, folder: Path, manifests: dict[str, Any]) -> Any:
        raise NotImplementedError

    def evaluate(self, features: dict[str, Features], labels: Any, run: RunSettings) -> Outcome:
        raise NotImplementedError


@dataclass
class RunSettings:
    steps: int
    batch_size: int
    lr: float
    eval_every: int
    projector_dim: int
    seed: int
    progress: bool


# ---------------------------------------------------------------------------- training
def fit(head: nn.Module, loss_on: Callable[[list[int]], torch.Tensor],
        score: Callable[[], float], *, items: int, run: RunSettings, higher_is_better: bool,
        desc: str) -> tuple[float, int, list[float]]:
    """Train ``head`` on random batches of ``items`` training items; keep the best on valid.

    ``loss_on(indices)`` is the loss of a batch, ``score()`` the valid metric. The head is
    left holding its best-on-valid weights. Returns (best valid value, its step, losses).
    """
    from tqdm import tqdm

    generator = torch.Generator().manual_seed(run.seed)
    optimizer = torch.optim.Adam(head.parameters(), lr=run.lr)
    best_value, best_step, best_state, losses = None, 0, None, []
    with tqdm(total=run.steps, desc=desc, unit="step", file=sys.stderr, dynamic_ncols=True,
              disable=not run.progress) as bar:
        for step in range(1, run.steps + 1):
            head.train()
            index = torch.randint(items, (min(run.batch_size, items),), generator=generator)
            loss = loss_on(index.tolist())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(head.parameters(), 1.0)
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


def layer_weights(head: nn.Module) -> list[float]:
    return [round(w, 5) for w in F.softmax(head.featurizer.weights.detach(), dim=0).tolist()]


def interval_of(statistic, items: int, seed: int) -> tuple[float, float]:
    return bootstrap_interval(statistic, items, seed=seed)


# ---------------------------------------------------------------------- CTC sequences
class SequenceHead(nn.Module):
    """Weighted sum -> BiLSTM -> Linear(symbols + blank): s3prl's ASR head (2 BLSTM layers
    of 1024) scaled down to ``layers`` layers of ``hidden`` units; index 0 is the blank."""

    def __init__(self, num_layers: int, dim: int, symbols: int, hidden: int = 128,
                 layers: int = 2):
        super().__init__()
        from ..superb import WeightedSum

        self.featurizer = WeightedSum(num_layers)
        self.rnn = nn.LSTM(dim, hidden, num_layers=layers, batch_first=True,
                           bidirectional=True)
        self.output = nn.Linear(2 * hidden, symbols + 1)

    def forward(self, stacked: torch.Tensor) -> torch.Tensor:    # (B, L+1, T, D)
        hidden, _ = self.rnn(self.featurizer(stacked, layer_dim=1))
        return self.output(hidden)


def ctc_loss_on(head: nn.Module, states: list[torch.Tensor], targets: list[list[int]]):
    """The CTC loss of a batch of frame sequences against symbol-index targets."""
    from ..superb import _pad_frames

    def loss_on(index: list[int]) -> torch.Tensor:
        padded, lengths = _pad_frames([states[i] for i in index])
        log_probs = head(padded).log_softmax(-1)
        chosen = [torch.tensor(targets[i], dtype=torch.long) + 1 for i in index]
        return F.ctc_loss(log_probs.transpose(0, 1), torch.cat(chosen), lengths,
                          torch.tensor([len(t) for t in chosen]), blank=0, zero_infinity=True)

    return loss_on


def ctc_decode(head: nn.Module, states: list[torch.Tensor], batch: int) -> list[list[int]]:
    """Greedy CTC decoding of every sequence, as symbol indices (blank removed)."""
    from ..superb import _pad_frames, greedy_ctc_decode

    hypotheses: list[list[int]] = []
    with torch.no_grad():
        for start in range(0, len(states), batch):
            padded, lengths = _pad_frames(states[start:start + batch])
            hypotheses += greedy_ctc_decode(head(padded).log_softmax(-1), lengths)
    return [[h - 1 for h in hypothesis] for hypothesis in hypotheses]


# --------------------------------------------------------------------------- synthesis
def synthesize_tasks(out_dir: PathLike, tasks, *, seed: int = 0, size: str = "default",
                     overwrite: bool = False, workers: int = 1, progress: bool = True) -> dict:
    """Synthesize registered tasks' corpora into ``out_dir/<task>``; update ``corpus.json``."""
    from .. import espeak
    from ..synth import CORPUS_FORMAT, _prepare_output, _render_all

    if size not in PRESETS:
        raise DataError(f"unknown corpus size {size!r}; choose one of {', '.join(PRESETS)}")
    if not isinstance(seed, int) or seed < 0:
        raise DataError(f"seed must be a non-negative integer, got {seed!r}")
    from . import get_task

    out = Path(out_dir)
    entries = _prepare_output(out, tuple(tasks), overwrite)   # the other tasks' entries
    for name in tasks:
        task = get_task(name)
        sizes = task.sizes[size]
        plans = task.plan(sizes, np.random.default_rng([seed, 100 + TASKS.index(name)]), seed)
        staging = out / f"{name}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        lengths = _render_all(plans, staging, workers, progress, desc=f"synth {name}")
        final = out / name
        groups = {}
        for manifest in task.manifests:
            chosen = [(p, n) for p, n in zip(plans, lengths) if p.split == manifest]
            write_manifest(staging / f"{manifest}.tsv", final, [(p.relpath, n) for p, n in chosen])
            task.write_labels(staging, manifest, [p for p, _ in chosen], sizes, seed)
            groups[manifest] = {"utterances": len(chosen),
                                "hours": round(sum(n for _, n in chosen) / SAMPLE_RATE / 3600, 4)}
        task.write_dictionaries(staging, plans)
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)
        entries[name] = {"seed": seed, "preset": size, "sizes": dict(sizes),
                         "utterances": len(plans), "splits": groups}
    metadata = {"format": CORPUS_FORMAT, "sample_rate": SAMPLE_RATE,
                "espeak_ng": espeak.espeak_version(), "tasks": entries}
    write_text_atomic(out / "corpus.json", json.dumps(metadata, indent=2, sort_keys=True) + "\n")
    return metadata


def write_counted_dictionary(path: Path, lines: list[str]) -> None:
    """A fairseq dictionary of the space-separated symbols of ``lines``, most frequent first."""
    counts = Counter(symbol for line in lines for symbol in line.split())
    ordered = sorted(counts, key=lambda s: (-counts[s], s))
    write_dictionary(path, ordered, [counts[s] for s in ordered])


# --------------------------------------------------------------------------------- run
def find_task_folder(data: PathLike, task: Task) -> Path:
    data = Path(data)
    if not data.is_dir():
        raise DataError(f"{data}: no such data folder")
    folder = data / task.name
    missing = [m for m in task.manifests if not (folder / f"{m}.tsv").is_file()]
    if missing:
        raise DataError(f"{data}: no {TASK_NAMES[task.name]} corpus (missing {task.name}/"
                        f"{missing[0]}.tsv); make one with 'profile-encoder data synth "
                        f"--out DIR --tasks {task.name}'")
    return folder


def run_registered_task(s) -> dict:
    """Evaluate one upstream on a registered task; write ``OUT/results.json`` (and head.pt).

    ``s`` is a :class:`models.trainer.superb.SuperbSettings`.
    """
    from ..datasets import ManifestAudioDataset
    from ..distributed import pick_device
    from ..pretrain import check_audio_headers
    from ..superb import RESULTS, extract_features, load_upstream
    from . import get_task

    started = time.perf_counter()
    task = get_task(s.task)
    out = Path(s.out)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder")
    run = RunSettings(steps=s.steps or task.defaults["steps"],
                      batch_size=s.batch_size or task.defaults["batch_size"],
                      lr=s.lr or task.defaults["lr"], eval_every=s.eval_every,
                      projector_dim=s.projector_dim, seed=s.seed,
                      progress=s.progress and sys.stderr.isatty())
    device = pick_device(0, s.device)
    model, upstream = load_upstream(s)
    model.to(device)
    data, synthesized = s.data, False
    if data is None:
        data = upstream.get("pretrain_data")
        if data is None or not (Path(data) / task.name).is_dir():
            data = str(out / "data")
            if not all((Path(data) / task.name / f"{m}.tsv").is_file() for m in task.manifests):
                synthesize_tasks(data, [task.name], seed=0, size="small", overwrite=True,
                                 progress=run.progress)
                synthesized = True
    folder = find_task_folder(data, task)
    counts = {m: check_audio_headers(folder / f"{m}.tsv") for m in task.manifests}
    manifests = {m: read_manifest(folder / f"{m}.tsv") for m in task.manifests}
    labels = task.load_labels(folder, manifests)

    t0 = time.perf_counter()
    torch.manual_seed(s.seed)
    features = {}
    for name, manifest in manifests.items():
        dataset = ManifestAudioDataset(manifest, random_crop=False)
        states = extract_features(model, dataset, pool=task.pooled, batch_size=s.extract_batch,
                                  device=device, progress=run.progress,
                                  desc=f"superb {task.name} {name}")
        features[name] = Features(manifest, [f.cpu() for f in states])
    t_features = time.perf_counter() - t0
    t1 = time.perf_counter()
    torch.manual_seed(s.seed)   # the head's initialization
    outcome = task.evaluate(features, labels, run)
    t_head = time.perf_counter() - t1
    results = {
        "task": task.name, "task_name": TASK_NAMES[task.name], "metric": task.metric,
        "value": round(outcome.value, 6), "unit": task.unit,
        "higher_is_better": task.higher_is_better, "split": "test",
        "interval": rounded_interval(outcome.interval),
        "interval_method": f"95 % percentile bootstrap over the {outcome.items} test items, "
                           f"{BOOTSTRAP_RESAMPLES} resamples, seed {s.seed}",
        "chance": round(outcome.chance, 6), "chance_definition": outcome.chance_definition,
        "valid_value": None if outcome.valid_value is None else round(outcome.valid_value, 6),
        "best_step": outcome.best_step, "layer_weights": outcome.layer_weights,
        **outcome.extra,
        "upstream": upstream,
        "data": {"folder": str(Path(data).resolve()), "synthesized_now": synthesized,
                 "utterances": counts},
        "settings": {"steps": run.steps if task.trains else 0,
                     "batch_size": run.batch_size, "lr": run.lr, "optimizer": "Adam",
                     "eval_every": run.eval_every, "projector_dim": run.projector_dim,
                     "seed": s.seed, "gradient_clipping": 1.0, "head": outcome.head_description,
                     "upstream_frozen": True, "device": str(device)},
        "wall_seconds": {"features": round(t_features, 2), "head": round(t_head, 2),
                         "total": round(time.perf_counter() - started, 2)},
        "torch": torch.__version__, "python": platform.python_version(),
    }
    out.mkdir(parents=True, exist_ok=True)
    if outcome.head is not None:
        buffer = io.BytesIO()
        torch.save({"task": task.name, "head": outcome.head.state_dict()}, buffer)
        write_bytes_atomic(out / "head.pt", buffer.getvalue())
    write_text_atomic(out / RESULTS, json.dumps(results, indent=2, sort_keys=True) + "\n")
    return results
