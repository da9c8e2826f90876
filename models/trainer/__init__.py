"""Offline training data for HuBERT-style encoders.

Synthetic speech corpora made with espeak-ng (:mod:`.synth`), manifests for real
LibriSpeech and Speech Commands (:mod:`.corpora`), Kaldi-compatible MFCC
(:mod:`.features`), k-means targets (:mod:`.targets`) and torch datasets
(:mod:`.datasets`). Bad input raises :class:`DataError` (a ``ValueError``).

Names below are imported lazily, so ``import models.trainer`` stays cheap (synthesis
worker processes never import torch).
"""
from __future__ import annotations

import importlib

from .errors import DataError

_EXPORTS = {
    "synthesize": "espeak", "phonemize": "espeak", "list_voices": "espeak",
    "list_variants": "espeak",
    "read_audio": "audio", "read_wav": "audio", "write_wav": "audio", "resample": "audio",
    "read_manifest": "manifest", "write_manifest": "manifest", "read_labels": "manifest",
    "read_dictionary": "manifest",
    "synthesize_corpus": "synth", "CorpusSizes": "synth_plan", "PRESETS": "synth_plan",
    "prepare_librispeech": "corpora", "prepare_speech_commands": "corpora",
    "mfcc": "features", "compute_deltas": "features", "mfcc_features": "features",
    "encoder_frames": "features", "align_to_encoder": "features",
    "fit_kmeans": "targets", "label_corpus": "targets", "hidden_layer_features": "targets",
    "save_kmeans": "targets", "load_kmeans": "targets", "build_targets": "targets",
    "KMeansCenters": "targets",
    "PretrainDataset": "datasets", "ClassificationDataset": "datasets",
    "PhonemeDataset": "datasets", "Vocabulary": "datasets", "collate": "datasets",
    "LengthBucketBatchSampler": "datasets",
}

__all__ = ["DataError", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
