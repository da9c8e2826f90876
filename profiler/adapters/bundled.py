"""The default backend: the minimal HuBERT trainer and SUPERB evaluation in ``models.trainer``."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

from ..errors import UsageError
from .base import EvalRequest, EvalResult, TrainRequest, TrainResult

_TRAIN_FIELDS = ("steps", "batch_size", "accumulate", "crop_seconds", "lr", "warmup_steps",
                 "unmasked_weight",
                 "seed", "label_layer", "clusters", "save_every", "log_every", "valid_every",
                 "workers")


class BundledBackend:
    """Runs in this process; under torchrun every process calls :meth:`pretrain`."""

    name = "bundled"

    def pretrain(self, request: TrainRequest) -> TrainResult:
        from models.trainer.errors import DataError
        from models.trainer.pretrain import pretrain, resolve_settings, settings_for_resume

        given: Dict[str, Any] = {key: getattr(request, key) for key in _TRAIN_FIELDS}
        given.update(progress=request.progress, device=request.device,
                     data=_str(request.data), deepspeed=_str(request.deepspeed),
                     targets_from=_str(request.targets_from))
        try:
            if request.resume:
                if request.model is not None:
                    given["model"] = request.model
                if request.overrides:
                    given["overrides"] = dict(request.overrides)
                if request.tiny:
                    given["tiny"] = True
                if request.iteration != 1:
                    given["iteration"] = request.iteration
                settings = settings_for_resume(request.out, given)
            else:
                if not request.model:
                    raise UsageError("--model is required (unless --resume continues a run)")
                settings = resolve_settings(request.model, request.out, tiny=request.tiny,
                                            iteration=request.iteration,
                                            overrides=dict(request.overrides), **given)
            result = pretrain(settings, resume=request.resume)
        except DataError as error:
            raise UsageError(str(error)) from None
        return TrainResult(Path(result.out), result.step, result.loss, result.valid,
                           result.wall_seconds, result.checkpoint, list(result.rank_checksums))

    def evaluate(self, request: EvalRequest) -> EvalResult:
        from models.trainer.errors import DataError
        from models.trainer.superb import RESULTS, SuperbSettings, run_superb

        settings = SuperbSettings(
            task=request.task, out=str(request.out), upstream=_str(request.upstream),
            random_init=request.random_init, random_init_overrides=dict(request.overrides),
            data=_str(request.data), steps=request.steps, batch_size=request.batch_size,
            lr=request.lr, seed=request.seed, device=request.device, progress=request.progress)
        try:
            results = run_superb(settings)
        except DataError as error:
            raise UsageError(str(error)) from None
        return EvalResult(results["task"], results["metric"], results["value"], results["chance"],
                          Path(request.out) / RESULTS, results)


def _str(value) -> Any:
    return None if value is None else str(value)
