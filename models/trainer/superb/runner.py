"""SUPERB-style evaluation of a frozen upstream: every task of the task table.

The protocol of SUPERB (Yang et al. 2021) as s3prl runs it, at small scale:

* the upstream is frozen (eval mode, no gradients); every hidden state it returns (the
  encoder input and each layer's output) is kept;
* a learnable weighted sum combines them, with softmax-normalized weights that start
  equal (s3prl's ``Featurizer``);
* a small head, the task's own, is trained on top (e.g. KS and SID: a projection to 256
  dimensions, mean pooling over the utterance's frames and a linear classifier, s3prl's
  ``UtteranceLevel`` with ``MeanPooling``; PR: a linear layer onto the phonemes plus a CTC
  blank, trained with CTC, decoded greedily).

Since the upstream is frozen its hidden states are computed once. For the utterance-level
heads everything between the hidden states and the pooled vector is linear (weighted
sum, projection, mean), so pooling each layer first and then applying the weighted sum
and projection is exactly the same function, and that is what is stored (per-layer means
for the tasks whose heads pool). Utterances are encoded in zero-padded batches of
neighbours by length with their sample counts, which the upstream masks, so each gets the
states it gets alone (:func:`.heads.extract_features`).

The head is trained with Adam; the checkpoint with the best validation score (checked
every ``eval_every`` steps) is scored on the test split. s3prl trains its heads for up to
200k steps at lr 1e-4; the small-scale defaults here use fewer steps and a larger lr.

Every ``results.json`` carries the metric's 95 % interval (a percentile bootstrap over the
test items) beside ``value`` and ``chance``.

Modules: :mod:`.task_table` (the task table), :mod:`.settings` (``SuperbSettings``),
:mod:`.heads` (heads and their training), :mod:`.tasks` (all ten tasks, one module each,
and :mod:`.tasks.metrics`, every task's scores and the bootstrap); this one loads the
upstream and the data, runs any task through :func:`.tasks.common.evaluate_task`, and
writes the results.
"""
from __future__ import annotations

import platform
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Tuple

import torch
from torch import nn

from ...constants import samples_in
from ..data import OWN_DATA
from ..data.corpora import find_task_folder
from ..data.manifest import manifest_path
from ..errors import DataError
from ..fileio import (
    check_output_folder,
    write_bytes_atomic,
    write_json,
)
from ..pretrain import checkpoint as ckpt
from .heads import GRADIENT_CLIPPING, HEAD_OPTIMIZER, HeadSettings
from .settings import (
    PER_ITEM,
    RANDOM_INIT,
    RESULTS,
    WITHOUT_STATE0,
    SuperbSettings,
    check_superb_settings,
)
from .task_table import SUPERB_TASKS, SuperbTask, head_budget


# ------------------------------------------------------------------------------ upstream
def load_upstream(s: SuperbSettings) -> Tuple[nn.Module, Dict[str, Any]]:
    """The frozen upstream and a description of it for the results."""
    import models

    if s.upstream is not None:
        run = ckpt.resolve_run(s.upstream)
        model = run.model
        metadata = {}
        if (run.run_dir / ckpt.METADATA).is_file():
            metadata = ckpt.read_metadata(run.run_dir)
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
        info = {"kind": RANDOM_INIT, "model": s.random_init,
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
                                 seed: int, manifest: str = "train") -> int:
    """A random-init upstream with quantizers gets BiT's data-based scale initialization,
    as a training run does on its first batch, from the first utterances of the task's
    ``manifest`` (its training split; QbE, which trains nothing, has none), cut to the
    shortest. Without it every scale stays 1 and a binarized upstream is degenerate
    (almost no attention probability survives its binarizer). Returns how many utterances
    were used (0: nothing to initialize)."""
    from models.bit import uninitialized_binarizers

    from ..data.audio import read_audio
    from ..data.manifest import read_manifest

    if not uninitialized_binarizers(model):
        return 0
    utterances = read_manifest(manifest_path(folder, manifest))
    count = min(INIT_UTTERANCES, len(utterances))
    waves = [torch.from_numpy(read_audio(utterances.audio_path(i))) for i in range(count)]
    shortest = min(w.numel() for w in waves)
    batch = torch.stack([w[:shortest] for w in waves]).to(device)
    model.train()
    with torch.random.fork_rng(devices=[]), torch.enable_grad():
        torch.manual_seed(seed)
        model(batch)
    model.eval()
    return count


def check_deployable(model: nn.Module, device: torch.device) -> None:
    """Refuse ``--deployed`` before any work for an upstream it cannot run."""
    from models.deployment import deployable_layers

    if device.type != "cpu":
        raise DataError(f"--deployed runs on the CPU only (the packed kernels have no "
                        f"{device.type} path); add --device cpu")
    try:
        deployable_layers(model)
    except ValueError as error:
        raise DataError(f"--deployed: {error}; give a bq- upstream") from None


def deployed_upstream(model: nn.Module) -> nn.Module:
    """``model`` with its W1A1 products on packed operands (:func:`models.deploy`). The
    simulation sums +-scale products in float, so an integer sum of 0 lands on either side
    of the next binarizer's threshold by rounding; the packed kernels sum exactly, as
    deployed hardware would."""
    import models
    from models.deployment import DeployError

    try:
        return models.deploy(model)
    except (ValueError, DeployError) as error:
        raise DataError(f"--deployed: {error}") from None


# -------------------------------------------------------------------------------- data
def _corpus_folder(s: SuperbSettings, task: SuperbTask, upstream: Dict[str, Any], out: Path,
                   progress: bool) -> Tuple[Path, bool]:
    """The task's corpus folder: ``--data``, else the upstream's pre-training corpus if it
    holds the task, else the task's ``QUICK_CORPUS_SIZE`` preset synthesized into ``OUT/data``
    (the same files as ``train --tiny``'s corpus). Also whether it was synthesized now."""
    if s.data is not None:
        return find_task_folder(s.data, task.key, task.title, task_manifests(task)), False
    data = upstream.get("pretrain_data")
    if data is not None and (Path(data) / task.key).is_dir():
        return find_task_folder(data, task.key, task.title, task_manifests(task)), False
    data = out / OWN_DATA
    folder = data / task.key
    if all(manifest_path(folder, name).is_file() for name in task_manifests(task)):
        return folder, False
    from ..data.synth_plan import QUICK_CORPUS_SIZE
    from .tasks.common import synthesize_tasks

    synthesize_tasks(data, [task.key], seed=0, size=QUICK_CORPUS_SIZE, overwrite=True,
                     progress=progress)
    return folder, True


def task_manifests(task: SuperbTask) -> Tuple[str, ...]:
    """The manifest names a task's folder holds (``train``, ``valid``, ``test`` but QbE's)."""
    from .tasks import get_task

    return get_task(task.key).manifests


def run_superb(s: SuperbSettings) -> Dict[str, Any]:
    """Evaluate one upstream on one task; write ``OUT/results.json`` (and ``OUT/head.pt``),
    and with ``also_without_state0`` a second evaluation, heads on states 1..L, into that
    folder. Returns the first evaluation's results."""
    from ..pretrain.distributed import pick_device

    started = time.perf_counter()
    check_superb_settings(s)
    task = SUPERB_TASKS[s.task]
    out = Path(s.out)
    for where in filter(None, (s.out, s.also_without_state0)):
        check_output_folder(where)
    run = HeadSettings(**head_budget(s.task, s.steps, s.batch_size, s.lr),
                       eval_every=s.eval_every, projector_dim=s.projector_dim, seed=s.seed,
                       progress=s.progress and sys.stderr.isatty())
    device = pick_device(0, s.device)

    model, upstream = load_upstream(s)
    if s.deployed:
        check_deployable(model, device)
    model.to(device)
    folder, synthesized = _corpus_folder(s, task, upstream, out, run.progress)
    if upstream["kind"] == RANDOM_INIT:
        split = task_manifests(task)[0]
        initialized = initialize_random_quantizers(model, folder, device, seed=s.seed,
                                                   manifest=split)
        if initialized:
            upstream["quantizer_scales"] = (
                f"BiT's data-based initialization on the first {initialized} utterances of "
                f"the task's {split} split (otherwise every scale would stay 1)")
    if s.deployed:
        model = deployed_upstream(model)
        upstream["deployed"] = "packed W1A1 kernels (models.deploy)"
    from .tasks.common import evaluate_task

    first_state = 1 if s.hidden_states == WITHOUT_STATE0 else 0
    evaluations = [(out, first_state)]
    if s.also_without_state0 is not None:
        evaluations.append((Path(s.also_without_state0), 1))
    parts = evaluate_task(task, model, folder, run, extract_batch=s.extract_batch,
                          extract_samples=samples_in(s.extract_seconds), device=device,
                          first_states=[first for _, first in evaluations],
                          autocast=s.autocast)
    results = []
    for (where, first), part in zip(evaluations, parts):
        record = {
            "task": s.task, "task_name": task.title, "metric": task.metric,
            "unit": task.unit, "higher_is_better": task.higher_is_better, "split": "test",
            **part["results"],
            "upstream": upstream,
            "data": {"folder": str(folder.parent.resolve()), "synthesized_now": synthesized,
                     **part["data"]},
            "settings": {"steps": run.steps if task.trains else 0,
                         "batch_size": run.batch_size, "lr": run.lr,
                         "optimizer": HEAD_OPTIMIZER.__name__,
                         "eval_every": run.eval_every, "projector_dim": run.projector_dim,
                         "seed": s.seed, "gradient_clipping": GRADIENT_CLIPPING,
                         "head": part["head_description"], "upstream_frozen": True,
                         "device": str(device),
                         "hidden_states": (f"1..{model.config.layers} (state 0 left out)"
                                           if first else f"0..{model.config.layers}"),
                         # only when set, so records from before the option stay as they were
                         **({"extraction_autocast": s.autocast} if s.autocast else {})},
            "wall_seconds": {**part["seconds"],
                             "total": round(time.perf_counter() - started, 2)},
            "torch": torch.__version__, "python": platform.python_version(),
        }
        if where != out:
            # the extraction's time is the first evaluation's
            record["features_extracted_by"] = str(out.resolve())
        write_evaluation(where, s.task, task.metric, record, part)
        results.append(record)
    return results[0]


def write_evaluation(out: Path, task: str, metric: str, results: Dict[str, Any],
                     part: Dict[str, Any]) -> None:
    """``OUT/head.pt``, ``OUT/per_item.json``, then ``OUT/results.json`` (which marks the
    evaluation finished)."""
    out.mkdir(parents=True, exist_ok=True)
    if part["head"] is not None:
        write_bytes_atomic(out / "head.pt", ckpt.torch_bytes(part["head"]))
    if part.get("per_item") is not None:
        write_per_item(out, task, metric, **part["per_item"])
    write_json(out / RESULTS, results)


def write_per_item(out: Path, task: str, metric: str, items: List[str],
                   numerators: List[float], denominators: List[float]) -> None:
    """``OUT/per_item.json``: each test item's share of the score, which is
    sum(numerators) / sum(denominators); written before ``results.json``, which marks the
    evaluation finished."""
    record = {"task": task, "metric": metric,
              "statistic": "sum(numerators) / sum(denominators)", "items": items,
              "numerators": numerators, "denominators": denominators}
    write_json(out / PER_ITEM, record, sort_keys=False, indent=None)
