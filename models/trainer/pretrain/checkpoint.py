"""Training-run folders: layout, atomic checkpoints, and clear errors for broken ones.

A run folder (``profile-encoder train --out RUN``) holds::

    RUN/
      config.json          zoo name, overrides, and the full HubertConfig the model was built from
      metadata.json        settings, data and target folders, world size, versions, progress
      log.jsonl            one JSON object per logged training step (and per validation)
      targets/             the iteration's k-means units: km.npz, dict.km.txt, train.km, valid.km
      data/                the synthesized corpus, when no --data folder was given
      checkpoints/
        latest             name of the newest complete checkpoint, e.g. "step-00000200"
        step-00000200/
          model.pt         {"step", "model": state_dict}: all an upstream needs
          state.pt         {"step", "optimizer", "scheduler", "rng", ...}: what resuming needs
      deepspeed/           DeepSpeed's own checkpoints, for runs with --deepspeed

A checkpoint folder is written under a temporary name and renamed into place when both of
its files are complete; ``latest`` is then replaced atomically. So a run killed at any
moment leaves either the previous checkpoint or the new one, never half of one.
Files are read with ``torch.load(weights_only=True)``: no pickled code runs on loading.
Anything missing, truncated or inconsistent raises :class:`CheckpointError` (a
:class:`DataError`) naming the file.
"""
from __future__ import annotations

import dataclasses
import functools
import io
import os
import shutil
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

from ...quantization import FULL_PRECISION_BITS, Quantization
from ..errors import DataError
from ..fileio import PathLike, read_json, read_log, write_log, write_text_atomic

RUN_FORMAT = "profile-encoder-run/1"
CONFIG = "config.json"
METADATA = "metadata.json"
LOG = "log.jsonl"
CHECKPOINTS = "checkpoints"
LATEST = "latest"
MODEL_FILE = "model.pt"
STATE_FILE = "state.pt"


class CheckpointError(DataError):
    """A run folder or checkpoint is missing, corrupt, truncated or does not fit the model."""


def checkpoint_name(step: int) -> str:
    return f"step-{int(step):08d}"


# ----------------------------------------------------------------------------- writing
def torch_bytes(obj: Any) -> bytes:
    """``torch.save``'s bytes of ``obj``, for a write that is atomic."""
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def save_checkpoint(run_dir: PathLike, step: int, model_state: Dict[str, Any],
                    training_state: Dict[str, Any], *, keep: int = 1) -> Path:
    """Write ``checkpoints/step-<step>/{model.pt,state.pt}`` atomically; point ``latest`` at it.

    Keeps the newest ``keep`` checkpoints and removes older ones (after ``latest`` moved).
    """
    run_dir = Path(run_dir)
    folder = run_dir / CHECKPOINTS
    folder.mkdir(parents=True, exist_ok=True)
    name = checkpoint_name(step)
    final = folder / name
    staging = folder / f".{name}.partial-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        for filename, payload in ((MODEL_FILE, {"format": RUN_FORMAT, "step": int(step),
                                                "model": model_state}),
                                  (STATE_FILE, {"format": RUN_FORMAT, "step": int(step),
                                                **training_state})):
            (staging / filename).write_bytes(torch_bytes(payload))
            _fsync_file(staging / filename)
        if final.exists():  # re-saving the same step (e.g. the final save after a resume)
            shutil.rmtree(final)
        staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    write_text_atomic(folder / LATEST, name + "\n")
    _prune(folder, keep, protect=name)
    return final


def _prune(folder: Path, keep: int, protect: str) -> None:
    steps = sorted(p for p in folder.iterdir() if p.is_dir() and p.name.startswith("step-"))
    for old in steps[:-max(1, keep)]:
        if old.name != protect:
            shutil.rmtree(old, ignore_errors=True)
    for stale in folder.glob(".step-*.partial-*"):  # left by a killed run
        shutil.rmtree(stale, ignore_errors=True)


# ---------------------------------------------------------------------------- log.jsonl
def truncate_log(path: PathLike, step: int) -> None:
    """Drop the entries after ``step`` (those of steps a resumed run will redo)."""
    write_log(path, [e for e in read_log(path) if int(e.get("step", 0)) <= step])


# ----------------------------------------------------------------------------- reading
def is_finished(metadata: Dict[str, Any]) -> bool:
    """Whether a run's metadata says its training finished: the trainer writes ``finished:
    false`` when a run starts or resumes and ``true`` after its last step, so a record
    without the key is not taken for a finished run."""
    return metadata.get("finished") is True


def is_run_dir(path: PathLike) -> bool:
    return (Path(path) / CONFIG).is_file()


def require_run_dir(path: PathLike) -> Path:
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: no such run folder")
    if not path.is_dir():
        raise CheckpointError(f"{path}: not a folder (expected a training run folder)")
    if not (path / CONFIG).is_file():
        raise CheckpointError(f"{path}: not a training run folder (no {CONFIG}; "
                              f"make one with 'profile-encoder train --out {path}')")
    return path


def latest_checkpoint(run_dir: PathLike) -> Optional[Path]:
    """The newest complete checkpoint folder of a run, or None if it has none yet."""
    folder = Path(run_dir) / CHECKPOINTS
    pointer = folder / LATEST
    if not pointer.exists():
        return None
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{pointer}: unreadable ({error})") from None
    if not name.startswith("step-") or "/" in name or not (folder / name).is_dir():
        raise CheckpointError(f"{pointer}: points at {name!r}, which is not a checkpoint "
                              f"folder of this run (corrupt run folder?)")
    return folder / name


def _load(path: Path, what: str) -> Dict[str, Any]:
    import torch

    if not path.is_file():
        raise CheckpointError(f"{path}: missing {what} file (incomplete checkpoint)")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # zip, pickle, EOF and runtime errors all mean "corrupt"
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        if message.startswith("Weights only load failed"):
            message = "not a readable weights-only torch file"
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({message})") from None
    if not isinstance(data, dict) or data.get("format") != RUN_FORMAT or "step" not in data:
        raise CheckpointError(f"{path}: not a checkpoint written by profile-encoder train")
    return data


def load_model_file(checkpoint: PathLike) -> Dict[str, Any]:
    """``model.pt`` of a checkpoint folder: {"step", "model": state_dict}."""
    data = _load(Path(checkpoint) / MODEL_FILE, "model")
    if not isinstance(data.get("model"), dict):
        raise CheckpointError(f"{Path(checkpoint) / MODEL_FILE}: holds no model weights")
    return data


def load_state_file(checkpoint: PathLike) -> Dict[str, Any]:
    """``state.pt`` of a checkpoint folder (optimizer, scheduler, RNG states, step)."""
    return _load(Path(checkpoint) / STATE_FILE, "training state")


def read_metadata(run_dir: PathLike, what: str = "run metadata") -> Dict[str, Any]:
    """A run folder's ``metadata.json`` (its settings, progress and final scores)."""
    return read_json(Path(run_dir) / METADATA, what)


def read_config(run_dir: PathLike) -> Dict[str, Any]:
    run_dir = require_run_dir(run_dir)
    config = read_json(run_dir / CONFIG, "run config", error=CheckpointError)
    if config.get("format") != RUN_FORMAT or not isinstance(config.get("name"), str):
        raise CheckpointError(f"{run_dir / CONFIG}: not a run config written by "
                              f"profile-encoder train")
    if not isinstance(config.get("overrides", {}), dict):
        raise CheckpointError(f"{run_dir / CONFIG}: 'overrides' must be an object")
    return config


def config_record(name: str, overrides: Dict[str, Any], model) -> Dict[str, Any]:
    """What ``config.json`` holds: enough to rebuild the model with ``models.build``."""
    return {"format": RUN_FORMAT, "name": name, "overrides": dict(overrides),
            "config": dataclasses.asdict(model.config)}


def build_from_config(config: Dict[str, Any], *, seed: Optional[int] = None):
    """Build the (randomly initialized) model a run config describes."""
    import models

    try:
        return models.build(config["name"], **config.get("overrides", {}),
                            **({} if seed is None else {"seed": seed}))
    except (ValueError, TypeError) as error:
        raise CheckpointError(f"run config does not describe a buildable model: {error}") from None


def load_weights(model, state: Dict[str, Any], source: PathLike) -> None:
    """``model.load_state_dict(state)`` with a one-line error when they do not fit."""
    try:
        model.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, ValueError) as error:
        first = str(error).strip().splitlines()[0]
        raise CheckpointError(f"{source}: weights do not fit the model of the run config "
                              f"({first})") from None


def load_run_model(run_dir: PathLike, checkpoint: Optional[PathLike] = None
                   ) -> Tuple[Any, Dict[str, Any], int]:
    """The trained model of a run folder (newest checkpoint unless one is given).

    Returns (model on the CPU in eval mode, run config, step).
    """
    config = read_config(run_dir)
    model, step = _load_trained(Path(run_dir), config, checkpoint)
    return model, config, step


def _load_trained(run_dir: Path, config: Dict[str, Any],
                  checkpoint: Optional[PathLike]) -> Tuple[Any, int]:
    folder = Path(checkpoint) if checkpoint is not None else latest_checkpoint(run_dir)
    if folder is None:
        raise CheckpointError(f"{run_dir}: the run has no checkpoint yet (was it stopped "
                              f"before its first save?)")
    data = load_model_file(folder)
    model = build_from_config(config)
    load_weights(model, data["model"], folder / MODEL_FILE)
    model.eval()
    return model, int(data["step"])


@dataclasses.dataclass(frozen=True)
class TrainedRun:
    """A trained run named once (a teacher, the run whose hidden states become the next
    iteration's units, a SUPERB upstream): its folder and the checkpoint chosen, with its
    config and model read on first use and kept, so every part of a job shares one."""

    run_dir: Path
    checkpoint: Optional[Path]   # the checkpoint folder named; None: the newest

    @functools.cached_property
    def config(self) -> Dict[str, Any]:
        return read_config(self.run_dir)

    @property
    def name(self) -> str:
        """The zoo name the run trained."""
        return self.config["name"]

    @property
    def precision(self) -> Quantization:
        """The bit pair of the run's model (its weight scale, not part of a distillation
        chain's stages, left at the default)."""
        fields = self.config["config"]
        return Quantization(int(fields.get("weight_bits") or FULL_PRECISION_BITS),
                            int(fields.get("activation_bits") or FULL_PRECISION_BITS))

    @functools.cached_property
    def _trained(self) -> Tuple[Any, int]:
        return _load_trained(self.run_dir, self.config, self.checkpoint)

    @property
    def model(self):
        """The trained model, on the CPU in eval mode (loaded once)."""
        return self._trained[0]

    @property
    def step(self) -> int:
        """The training step of the loaded checkpoint."""
        return self._trained[1]


def resolve_run(path: Union[str, PathLike]) -> TrainedRun:
    """A run folder or one of its checkpoint folders, as a :class:`TrainedRun`."""
    path = Path(path)
    if path.is_dir() and (path / MODEL_FILE).exists() and path.parent.name == CHECKPOINTS:
        return TrainedRun(require_run_dir(path.parent.parent), path)
    return TrainedRun(require_run_dir(path), None)
