"""SUPERB-style evaluation of a frozen upstream: every task of the task table.

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

Every ``results.json`` carries the metric's 95 % interval (a percentile bootstrap over the
test items) beside ``value`` and ``chance``.

Modules: :mod:`.task_table` (the task table), :mod:`.settings` (``SuperbSettings``),
:mod:`.heads` (heads and their training), :mod:`.metrics` (scores, chance),
:mod:`.tasks` (ASR, SD, ASV, IC, SF, QbE and the ER proxy, one module each); this one
loads the upstream and the data, runs KS/SID/PR itself, the other tasks through their
modules, and writes the results.
"""
from __future__ import annotations

import io
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import torch
from torch import nn

from ..data.corpora import check_manifest_audio, find_task_folder
from ..data.datasets import ClassificationDataset, PhonemeDataset, Vocabulary
from ..data.synth import synthesize_corpus
from ..errors import DataError
from ..fileio import write_bytes_atomic, write_text_atomic
from ..pretrain import checkpoint as ckpt
from .heads import HeadSettings, extract_features, test_item_parts, train_head
from .metrics import chance_level
from .settings import SuperbSettings, check_superb_settings
from .task_table import SUPERB_TASKS, SuperbTask

RESULTS = "results.json"
# Per test item: the parts of the score, for paired bootstraps between upstreams.
PER_ITEM = "per_item.json"


# ------------------------------------------------------------------------------ upstream
def load_upstream(s: SuperbSettings) -> Tuple[nn.Module, Dict[str, Any]]:
    """The frozen upstream and a description of it for the results."""
    import models

    if s.upstream is not None:
        run = ckpt.resolve_run(s.upstream)
        model = run.model
        metadata = {}
        if (run.run_dir / ckpt.METADATA).is_file():
            metadata = ckpt.read_json(run.run_dir / ckpt.METADATA, "run metadata")
        info = {"kind": "checkpoint", "run": str(run.run_dir.resolve()), "model": run.name,
                "overrides": run.config.get("overrides", {}), "step": run.step,
                "pretrain_data": metadata.get("data"),
                "pretrain_wall_seconds": metadata.get("wall_seconds"),
                "pretrain_final_train_loss": metadata.get("final_train_loss"),
                "pretrain_final_valid": metadata.get("final_valid")}
    else:
        try:
            model = models.build(s.random_init, seed=s.seed, **s.overrides)
        except (ValueError, TypeError) as error:
            raise DataError(str(error)) from None
        info = {"kind": "random-init", "model": s.random_init,
                "overrides": dict(s.overrides), "seed": s.seed}
    info["parameters"] = sum(p.numel() for p in model.parameters())
    info["layers"] = model.config.layers
    info["dim"] = model.config.dim
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model, info


INIT_UTTERANCES = 8


def initialize_random_quantizers(model: nn.Module, folder: Path, device: torch.device, *,
                                 seed: int) -> int:
    """A random-init upstream with quantizers gets BiT's data-based scale initialization,
    as a training run does on its first batch, from the first training utterances of the
    task (cut to the shortest). Without it every scale stays 1 and a binarized upstream is
    degenerate (almost no attention probability survives its binarizer). Returns how many
    utterances were used (0: nothing to initialize)."""
    from models.bit import ElasticBinarizer

    from ..data.audio import read_audio
    from ..data.manifest import read_manifest

    if not any(isinstance(m, ElasticBinarizer) and not m.initialized for m in model.modules()):
        return 0
    manifest = read_manifest(folder / "train.tsv")
    count = min(INIT_UTTERANCES, len(manifest))
    waves = [torch.from_numpy(read_audio(manifest.audio_path(i))) for i in range(count)]
    shortest = min(w.numel() for w in waves)
    batch = torch.stack([w[:shortest] for w in waves]).to(device)
    model.train()
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(seed)
        model(batch)
    model.eval()
    return count


# -------------------------------------------------------------------------------- data
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


def evaluate_builtin(task: SuperbTask, model: nn.Module, folder: Path, run: HeadSettings, *,
                     extract_batch: int, device: torch.device) -> Dict[str, Any]:
    """KS, SID or PR on the corpus in ``folder``: the parts of ``results.json`` that are the
    task's own (see :func:`run_superb`), the head to save and the time spent."""
    from .tasks.builtin import builtin_interval

    counts = {split: check_manifest_audio(folder / f"{split}.tsv")
              for split in ("train", "valid", "test")}
    (train_set, valid_set, test_set), vocabulary = load_task(folder, task.key)

    t0 = time.perf_counter()
    pool = not task.frame_level
    features = [extract_features(model, dataset, pool=pool, batch_size=extract_batch,
                                 device=device, progress=run.progress,
                                 desc=f"superb {task.key} {name}")
                for name, dataset in (("train", train_set), ("valid", valid_set),
                                      ("test", test_set))]
    features = [[f.cpu() for f in split] for split in features]
    t_features = time.perf_counter() - t0
    if task.frame_level:
        labels = [dataset.sequences for dataset in (train_set, valid_set, test_set)]
    else:
        labels = [dataset.targets for dataset in (train_set, valid_set, test_set)]

    t1 = time.perf_counter()
    trained = train_head(task.key, (features[0], labels[0]), (features[1], labels[1]),
                         (features[2], labels[2]), len(vocabulary), steps=run.steps,
                         batch_size=run.batch_size, lr=run.lr, eval_every=run.eval_every,
                         seed=run.seed, projector_dim=run.projector_dim, progress=run.progress)
    t_head = time.perf_counter() - t1
    chance, chance_definition, reference_rates = chance_level(task.key, vocabulary, labels[0],
                                                              labels[2])
    numerators, denominators = test_item_parts(task.key, trained["head"], features[2], labels[2],
                                               run.batch_size)
    interval = builtin_interval(numerators, denominators, seed=run.seed)
    return {
        "results": {
            "value": round(trained["test"], 6), **interval,
            "chance": round(chance, 6), "chance_definition": chance_definition,
            **reference_rates,
            "valid_value": round(trained["valid"], 6), "best_step": trained["best_step"],
            "layer_weights": trained["layer_weights"],
            "train_loss_first": round(trained["train_loss_first"], 5),
            "train_loss_last": round(trained["train_loss_last"], 5)},
        "data": {"utterances": counts, "classes": len(vocabulary)},
        "head_description": "weighted sum + " + (
            f"Linear(D, {run.projector_dim}) + mean pooling + Linear({run.projector_dim}, C)"
            if pool else "Linear(D, phonemes + blank), CTC, greedy decoding"),
        "head": {"task": task.key, "head": trained["head"].state_dict(),
                 "classes": list(vocabulary.symbols)},
        "seconds": {"features": round(t_features, 2), "head": round(t_head, 2)},
        "per_item": {"items": list(test_set.manifest.files), "numerators": numerators,
                     "denominators": denominators},
    }


def _corpus_folder(s: SuperbSettings, task: SuperbTask, upstream: Dict[str, Any], out: Path,
                   progress: bool) -> Tuple[Path, bool]:
    """The task's corpus folder: ``--data``, else the upstream's pre-training corpus if it
    holds the task, else the task's ``small`` preset synthesized into ``OUT/data`` (the
    same files as ``train --tiny``'s corpus). Also whether it was synthesized now."""
    if s.data is not None:
        return find_task_folder(s.data, task.key, task.title, task_manifests(task)), False
    data = upstream.get("pretrain_data")
    if data is not None and (Path(data) / task.key).is_dir():
        return find_task_folder(data, task.key, task.title, task_manifests(task)), False
    data = out / "data"
    folder = data / task.key
    if all((folder / f"{name}.tsv").is_file() for name in task_manifests(task)):
        return folder, False
    if task.registered:
        from .tasks.common import synthesize_tasks

        synthesize_tasks(data, [task.key], seed=0, size="small", overwrite=True,
                         progress=progress)
    else:
        synthesize_corpus(data, seed=0, sizes="small", tasks=[task.key],
                          overwrite=folder.exists(), progress=progress)
    return folder, True


def task_manifests(task: SuperbTask) -> Tuple[str, ...]:
    """The manifest names a task's folder holds (``train``, ``valid``, ``test`` but QbE's)."""
    if task.registered:
        from .tasks import get_task

        return get_task(task.key).manifests
    return ("train", "valid", "test")


def run_superb(s: SuperbSettings) -> Dict[str, Any]:
    """Evaluate one upstream on one task; write ``OUT/results.json`` (and ``OUT/head.pt``)."""
    from ..pretrain.distributed import pick_device

    started = time.perf_counter()
    check_superb_settings(s)
    task = SUPERB_TASKS[s.task]
    out = Path(s.out)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder")
    run = HeadSettings(steps=s.steps or task.steps, batch_size=s.batch_size or task.batch_size,
                       lr=s.lr or task.lr, eval_every=s.eval_every,
                       projector_dim=s.projector_dim, seed=s.seed,
                       progress=s.progress and sys.stderr.isatty())
    device = pick_device(0, s.device)

    model, upstream = load_upstream(s)
    model.to(device)
    folder, synthesized = _corpus_folder(s, task, upstream, out, run.progress)
    if upstream["kind"] == "random-init":
        initialized = initialize_random_quantizers(model, folder, device, seed=s.seed)
        if initialized:
            upstream["quantizer_scales"] = (
                f"BiT's data-based initialization on {initialized} training utterances of "
                f"the task (otherwise every scale would stay 1)")
    if task.registered:
        from .tasks.common import evaluate_registered

        evaluate = evaluate_registered
    else:
        evaluate = evaluate_builtin
    part = evaluate(task, model, folder, run, extract_batch=s.extract_batch, device=device)

    results = {
        "task": s.task, "task_name": task.title, "metric": task.metric,
        "unit": task.unit, "higher_is_better": task.higher_is_better, "split": "test",
        **part["results"],
        "upstream": upstream,
        "data": {"folder": str(folder.parent.resolve()), "synthesized_now": synthesized,
                 **part["data"]},
        "settings": {"steps": run.steps if task.trains else 0, "batch_size": run.batch_size,
                     "lr": run.lr, "optimizer": "Adam", "eval_every": run.eval_every,
                     "projector_dim": run.projector_dim, "seed": s.seed,
                     "gradient_clipping": 1.0, "head": part["head_description"],
                     "upstream_frozen": True, "device": str(device)},
        "wall_seconds": {**part["seconds"], "total": round(time.perf_counter() - started, 2)},
        "torch": torch.__version__, "python": platform.python_version(),
    }
    out.mkdir(parents=True, exist_ok=True)
    if part["head"] is not None:
        buffer = io.BytesIO()
        torch.save(part["head"], buffer)
        write_bytes_atomic(out / "head.pt", buffer.getvalue())
    if part.get("per_item") is not None:
        write_per_item(out, s.task, task.metric, **part["per_item"])
    write_text_atomic(out / RESULTS, json.dumps(results, indent=2, sort_keys=True) + "\n")
    return results


def write_per_item(out: Path, task: str, metric: str, items: List[str],
                   numerators: List[float], denominators: List[float]) -> None:
    """``OUT/per_item.json``: each test item's share of the score, which is
    sum(numerators) / sum(denominators); written before ``results.json``, which marks the
    evaluation finished."""
    record = {"task": task, "metric": metric,
              "statistic": "sum(numerators) / sum(denominators)", "items": items,
              "numerators": numerators, "denominators": denominators}
    write_text_atomic(out / PER_ITEM, json.dumps(record) + "\n")
