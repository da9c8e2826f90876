"""The default backend: the minimal HuBERT trainer and SUPERB evaluation in ``models.trainer``."""
from __future__ import annotations

import contextlib
from pathlib import Path

from models.trainer.errors import DataError

from ..errors import UsageError
from .base import EvalRequest, EvalResult, TrainRequest, TrainResult, given_options


@contextlib.contextmanager
def _usage_errors():
    """The adapter's callers get the trainer's bad-input errors (:class:`DataError`, and
    its subclass ``CheckpointError``) as :class:`UsageError`, the profiler's own (the CLI
    gives either one line and exit status 2)."""
    try:
        yield
    except DataError as error:
        raise UsageError(str(error)) from None


class BundledBackend:
    """Runs in this process; under torchrun every process calls :meth:`pretrain`."""

    name = "bundled"

    def pretrain(self, request: TrainRequest) -> TrainResult:
        from models.trainer.distill.chain import chain_settings_for_resume, run_chain
        from models.trainer.pretrain.loop import pretrain
        from models.trainer.pretrain.settings import resolve_settings, settings_for_resume

        given = given_options(request)
        with _usage_errors():
            if given.get("resume"):
                settings = (chain_settings_for_resume(request.out, given)
                            or settings_for_resume(request.out, given))
            else:
                if not request.model:
                    raise UsageError("--model is required (unless --resume continues a run)")
                settings = resolve_settings(**given)
            result = run_chain(settings) if settings.chain else pretrain(settings)
        return TrainResult(Path(result.out), result.step, result.loss, result.valid,
                           result.wall_seconds, result.checkpoint, list(result.rank_checksums))

    def evaluate(self, request: EvalRequest) -> EvalResult:
        from models.trainer.superb.runner import RESULTS, run_superb
        from models.trainer.superb.settings import SuperbSettings

        with _usage_errors():
            results = run_superb(SuperbSettings(**given_options(request)))
        return EvalResult(results["task"], results["metric"], results["value"],
                          tuple(results["interval"]), results["chance"],
                          Path(request.out) / RESULTS, results)
