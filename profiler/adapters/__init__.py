"""Adapters between the command line and training/evaluation engines.

``get_backend()`` returns the default :class:`TrainingBackend`, the bundled minimal HuBERT
trainer (:mod:`models.trainer`); another engine plugs in by implementing the two methods of
:class:`TrainingBackend` and calling :func:`register_backend`. The s3prl-compatible
upstream wrapper lives in :mod:`profiler.adapters.s3prl_upstream` (s3prl itself is optional).
"""
from .base import EvalRequest, EvalResult, TrainingBackend, TrainRequest, TrainResult, given_options
from .registry import DEFAULT_BACKEND, available_backends, get_backend, register_backend


def job_backend(name: str = DEFAULT_BACKEND):
    """The study's :class:`models.trainer.study.runner.JobBackend` on backend ``name``
    (default: the bundled trainer): a job's options become its request."""
    from models.trainer.study.runner import JobBackend

    backend = get_backend(name)
    return JobBackend(train=lambda options: backend.pretrain(TrainRequest(**options)),
                      evaluate=lambda options: backend.evaluate(EvalRequest(**options)))


__all__ = ["EvalRequest", "EvalResult", "TrainRequest", "TrainResult", "TrainingBackend",
           "available_backends", "get_backend", "given_options", "job_backend",
           "register_backend"]
