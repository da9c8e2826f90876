"""What the SUPERB tasks share: the ``Task`` object, held-out voices, synthesis, the run.

Every task, KS, SID and PR included, is a :class:`Task` (one module each) and runs through
:func:`evaluate_task`: its manifests are checked and read, the frozen upstream's hidden
states of each are extracted, and the task's ``load_labels`` and ``evaluate`` give its
score, interval, chance level and head.

Held-out voices. The speaker pool of :mod:`models.trainer.data.synth_plan` is espeak-ng accents
times voice variants. Its :func:`voice_splits` (which KS uses too) splits the *accents* and
the *variants*
separately (train 5 accents and 26 variants, valid 1 and 6, test 2 and 11) and pairs
them within a split, so a test voice shares neither its accent nor its variant with any
training voice.

Synthesis. :func:`synthesize_tasks` plans every task with its own generator (seeded by
:data:`SYNTHESIS_NUMBERS`) and builds its folder with
:func:`models.trainer.data.synth.build_task_folder` (same determinism: every file is a pure
function of its plan): rendered into ``OUT/<task>.partial``, renamed to ``OUT/<task>``
when its manifests and labels are written; ``corpus.json`` gains the task's entry last.
KS, SID and PR (:class:`CorpusPartTask`) are planned and written by
:mod:`models.trainer.data.synth`, since the corpus ``train`` synthesizes holds them too.

Training. Every head trains with :func:`models.trainer.superb.heads.fit`, s3prl's recipe:
Adam, gradient clipping at 1, evaluation on valid every ``eval_every`` steps,
and the best head on valid scored on test.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np
import torch
from torch import nn

from ...confidence import LEVEL_TEXT
from ...data.manifest import manifest_path, read_manifest
from ...data.synth_plan import (
    NOISE_COLORS,
    PEAKS,
    PITCH_RANGES,
    PITCHES,
    PLANNERS,
    PRESETS,
    RATES,
    SNRS_DB,
    SPLITS,
    UtterancePlan,
)
from ...errors import DataError, check_seed
from ...fileio import PathLike
from ..heads import HeadSettings, WeightedSum, extract_features
from ..task_table import SUPERB_TASKS, SuperbTask
from .metrics import BOOTSTRAP_RESAMPLES, bootstrap_interval, rounded_interval

# The numbers that seed each task's synthesis; never change one (its corpus would change).
# KS, SID and PR keep their places in models.trainer.data.synth_plan.TASKS (whose planners
# they use); the others count from 100.
SYNTHESIS_NUMBERS = {"ks": 1, "sid": 2, "pr": 3, "asr": 100, "sd": 101, "asv": 102, "ic": 103,
                     "sf": 104, "qbe": 105, "er": 106}


def pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


def item_seed(seed: int, task: str, group: str, index: int) -> int:
    """The seed of one rendered file (espeak-ng and noise): depends on nothing else."""
    group_id = sum(ord(c) * 31 ** k for k, c in enumerate(group)) % 100_003
    return int(np.random.SeedSequence([seed, SYNTHESIS_NUMBERS[task], group_id, index])
               .generate_state(1)[0] & 0x7FFFFFFF)


def speech_plan(rng: np.random.Generator, *, task: str, group: str, index: int, seed: int,
                text: str, voice: tuple[str, str], label: str = "", rate=None, pitch=None,
                pitch_range=None, peak=None, snr_db=None, kind: str = "sentence",
                subfolder: str = "") -> UtterancePlan:
    """One utterance to render; unset prosody is drawn from the corpus-wide ranges."""
    rate = int(rng.integers(*RATES)) if rate is None else int(rate)
    pitch = int(rng.integers(*PITCHES)) if pitch is None else int(pitch)
    pitch_range = int(rng.integers(*PITCH_RANGES)) if pitch_range is None else int(pitch_range)
    peak = float(rng.uniform(*PEAKS)) if peak is None else float(peak)
    snr_db = float(rng.uniform(*SNRS_DB)) if snr_db is None else float(snr_db)
    folder = f"wav/{group}/{subfolder + '/' if subfolder else ''}"
    return UtterancePlan(
        task=task, split=group, relpath=f"{folder}{task}-{group}-{index:05d}.wav", label=label,
        text=text, voice=voice[0], variant=voice[1], rate=int(np.clip(rate, 80, 450)),
        pitch=int(np.clip(pitch, 0, 100)), pitch_range=int(np.clip(pitch_range, 0, 100)),
        seed=item_seed(seed, task, group, index), kind=kind, peak=round(peak, 4),
        snr_db=round(snr_db, 2), noise_color=pick(rng, NOISE_COLORS), offset=0.0)


# ------------------------------------------------------------------------------- tasks
@dataclass
class Features:
    """Frozen-upstream hidden states of the utterances of one manifest, and the manifest."""

    manifest: Any
    states: list[torch.Tensor]           # (L+1, D) means if the task pools, else (L+1, T, D)


@dataclass
class Outcome:
    """What a task's evaluation returns to :func:`evaluate_task`."""

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
    # Each test item's part of the score, in test-manifest order, where the metric is
    # sum(numerators) / sum(denominators): what a paired bootstrap between two upstreams
    # resamples (``per_item.json``). None where the metric is not such a ratio (EER, MTWV).
    per_item: tuple[Sequence[float], Sequence[float]] | None = None
    data: dict[str, Any] = field(default_factory=dict)      # more of results.json's "data"
    saved_with_head: dict[str, Any] = field(default_factory=dict)   # more of head.pt


class Task:
    """A SUPERB task; the task modules set ``name`` (its key in
    :data:`~models.trainer.superb.task_table.SUPERB_TASKS`, which holds its title, metric and
    head defaults), ``sizes`` per synthesis preset, and the methods."""

    name: str = ""
    sizes: ClassVar[dict[str, dict[str, int]]] = {}
    manifests: tuple[str, ...] = SPLITS   # manifest names in the task folder

    @property
    def row(self) -> SuperbTask:
        return SUPERB_TASKS[self.name]

    @property
    def metric(self) -> str:
        return self.row.metric

    @property
    def higher_is_better(self) -> bool:
        return self.row.higher_is_better

    @property
    def pooled(self) -> bool:
        """Heads see per-layer means, not frames."""
        return not self.row.frame_level

    @property
    def trains(self) -> bool:
        return self.row.trains

    # synthesis
    def rng(self, seed: int) -> np.random.Generator:
        """The generator that plans the task's corpus."""
        return np.random.default_rng([seed, SYNTHESIS_NUMBERS[self.name]])

    def plan(self, sizes: dict[str, int], rng: np.random.Generator, seed: int) -> list:
        raise NotImplementedError

    def write_labels(self, folder: Path, name: str, plans: list, sizes: dict, seed: int) -> None:
        raise NotImplementedError

    def write_dictionaries(self, folder: Path, plans: list) -> None:
        """Dictionaries over the whole task (none by default)."""

    # evaluation
    def load_labels(self, folder: Path, manifests: dict[str, Any]) -> Any:
        raise NotImplementedError

    def evaluate(self, features: dict[str, Features], labels: Any,
                 run: HeadSettings) -> Outcome:
        raise NotImplementedError


class CorpusPartTask(Task):
    """KS, SID and PR: planned, labelled and sized as parts of
    :mod:`models.trainer.data.synth`'s corpus (:class:`~models.trainer.data.synth_plan.
    CorpusSizes` presets), which ``train`` synthesizes too."""

    sizes: ClassVar[dict] = PRESETS

    def plan(self, sizes, rng, seed):
        return PLANNERS[self.name](sizes, rng, seed)

    def write_labels(self, folder, name, plans, sizes, seed):
        from ...data.synth import write_task_labels

        write_task_labels(self.name, folder, name, plans)

    def write_dictionaries(self, folder, plans):
        from ...data.synth import write_task_dictionary

        write_task_dictionary(self.name, folder, plans)


def interval_of(statistic, items: int, seed: int) -> tuple[float, float]:
    return bootstrap_interval(statistic, items, seed=seed)


# ---------------------------------------------------------------------- CTC sequences
class SequenceHead(nn.Module):
    """Weighted sum -> BiLSTM -> Linear(symbols + blank): s3prl's ASR head (2 BLSTM layers
    of 1024) scaled down to ``layers`` layers of ``hidden`` units; index 0 is the blank."""

    def __init__(self, num_layers: int, dim: int, symbols: int, hidden: int = 128,
                 layers: int = 2):
        super().__init__()
        self.featurizer = WeightedSum(num_layers)
        self.rnn = nn.LSTM(dim, hidden, num_layers=layers, batch_first=True,
                           bidirectional=True)
        self.output = nn.Linear(2 * hidden, symbols + 1)

    def forward(self, stacked: torch.Tensor,
                lengths: torch.Tensor | None = None) -> torch.Tensor:   # (B, L+1, T, D)
        """``lengths``: each sequence's real frames in a zero-padded batch. They are packed,
        as s3prl packs its RNN inputs: unpacked, the backward direction starts in the
        padding, and a frame's output depends on the batch it was decoded in."""
        x = self.featurizer(stacked, layer_dim=1)
        if lengths is None:
            hidden, _ = self.rnn(x)
        else:
            packed = nn.utils.rnn.pack_padded_sequence(x, lengths.cpu(), batch_first=True,
                                                       enforce_sorted=False)
            hidden, _ = nn.utils.rnn.pad_packed_sequence(self.rnn(packed)[0], batch_first=True,
                                                         total_length=x.shape[1])
        return self.output(hidden)

    def description(self, symbols: str) -> str:
        """The head as ``results.json`` records it, read from its own layers; ``symbols``
        names its output classes (letters, symbols...)."""
        return (f"weighted sum + BiLSTM({self.rnn.num_layers} x {self.rnn.hidden_size}) + "
                f"Linear({symbols} + blank), CTC")


# --------------------------------------------------------------------------- synthesis
def synthesize_tasks(out_dir: PathLike, tasks, *, seed: int = 0, size: str = "default",
                     overwrite: bool = False, workers: int = 1, progress: bool = True) -> dict:
    """Synthesize tasks' corpora into ``out_dir/<task>``; update ``corpus.json``."""
    from ...data.synth import build_task_folder, prepare_output, write_corpus_metadata

    if size not in PRESETS:
        raise DataError(f"unknown corpus size {size!r}; choose one of {', '.join(PRESETS)}")
    check_seed(seed)
    from . import get_task

    out = Path(out_dir)
    entries = prepare_output(out, tuple(tasks), overwrite)   # the other tasks' entries
    for name in tasks:
        task = get_task(name)
        sizes = task.sizes[size]
        plans = task.plan(sizes, task.rng(seed), seed)
        entries[name] = {
            "seed": seed, "preset": size,
            "sizes": asdict(sizes) if is_dataclass(sizes) else dict(sizes),
            **build_task_folder(
                out, name, plans, task.manifests,
                lambda folder, manifest, chosen: task.write_labels(folder, manifest, chosen,
                                                                   sizes, seed),
                task.write_dictionaries, workers=workers, progress=progress)}
    return write_corpus_metadata(out, entries)


# --------------------------------------------------------------------------------- run
def evaluate_task(row: SuperbTask, model: nn.Module, folder: Path, run: HeadSettings, *,
                  extract_batch: int, extract_samples: int, device: torch.device,
                  first_states: Sequence[int] = (0,),
                  autocast: str | None = None) -> list[dict[str, Any]]:
    """A task on the corpus in ``folder``, one head for each of ``first_states`` (a head
    reads hidden states ``first_state`` .. L): for each, the parts of ``results.json``
    that are the task's own (see :func:`models.trainer.superb.runner.run_superb`), the head
    to save and the time spent. The states are extracted once for all the heads (from the
    lowest first state); each head starts from the same seed, so it is the head a run of
    its own would train."""
    from ...data.corpora import check_manifest_audio
    from ...data.datasets import ManifestAudioDataset
    from . import get_task

    task = get_task(row.key)
    counts = {m: check_manifest_audio(manifest_path(folder, m)) for m in task.manifests}
    manifests = {m: read_manifest(manifest_path(folder, m)) for m in task.manifests}
    labels = task.load_labels(folder, manifests)

    lowest = min(first_states)
    t0 = time.perf_counter()
    torch.manual_seed(run.seed)
    extracted = {}
    for name, manifest in manifests.items():
        dataset = ManifestAudioDataset(manifest, random_crop=False)
        states = extract_features(model, dataset, pool=task.pooled, batch_size=extract_batch,
                                  max_samples=extract_samples, device=device,
                                  progress=run.progress, desc=f"superb {task.name} {name}",
                                  first_state=lowest, autocast=autocast)
        extracted[name] = (manifest, [f.cpu() for f in states])
    t_features = time.perf_counter() - t0
    parts = []
    for first_state in first_states:
        skip = first_state - lowest        # views, not copies: the states can be GBs
        features = {name: Features(manifest, [f[skip:] for f in states])
                    for name, (manifest, states) in extracted.items()}
        t1 = time.perf_counter()
        torch.manual_seed(run.seed)   # the head's initialization
        outcome = task.evaluate(features, labels, run)
        parts.append(_task_part(task, outcome, run, counts, manifests,
                                {"features": round(t_features, 2) if not parts else 0.0,
                                 "head": round(time.perf_counter() - t1, 2)}))
    return parts


def _task_part(task: Task, outcome: Outcome, run: HeadSettings, counts: dict,
               manifests: dict, seconds: dict[str, float]) -> dict[str, Any]:
    return {
        "results": {
            "value": round(outcome.value, 6), "interval": rounded_interval(outcome.interval),
            "interval_method": f"{LEVEL_TEXT} percentile bootstrap over the {outcome.items} test "
                               f"items, {BOOTSTRAP_RESAMPLES} resamples, seed {run.seed}",
            "chance": round(outcome.chance, 6), "chance_definition": outcome.chance_definition,
            "valid_value": (None if outcome.valid_value is None
                            else round(outcome.valid_value, 6)),
            "best_step": outcome.best_step, "layer_weights": outcome.layer_weights,
            **outcome.extra},
        "data": {"utterances": counts, **outcome.data},
        "head_description": outcome.head_description,
        "head": (None if outcome.head is None
                 else {"task": task.name, "head": outcome.head.state_dict(),
                       **outcome.saved_with_head}),
        "seconds": seconds,
        "per_item": None if outcome.per_item is None else {
            "items": list(manifests["test"].files),
            "numerators": [float(v) for v in outcome.per_item[0]],
            "denominators": [float(v) for v in outcome.per_item[1]]},
    }
