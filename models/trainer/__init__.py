"""Offline training data for HuBERT-style encoders.

Synthetic speech corpora made with espeak-ng (:mod:`.data.synth`), manifests for real
LibriSpeech and Speech Commands (:mod:`.data.corpora`), Kaldi-compatible MFCC
(:mod:`.data.features`), k-means targets (:mod:`.pretrain.targets`) and torch datasets
(:mod:`.data.datasets`). Bad input raises :class:`DataError` (a ``ValueError``).

Names below are imported lazily, so ``import models.trainer`` stays cheap (synthesis
worker processes never import torch).
"""
from __future__ import annotations

import importlib

from .errors import DataError

# The module (under this package) each name is exported from; a plain table, so the layer
# test reads it as import arrows.
_EXPORTS = {
    "synthesize": "data.espeak", "phonemize": "data.espeak", "list_voices": "data.espeak",
    "list_variants": "data.espeak",
    "read_audio": "data.audio", "read_wav": "data.audio", "write_wav": "data.audio",
    "resample": "data.audio",
    "read_manifest": "data.manifest", "write_manifest": "data.manifest",
    "read_labels": "data.manifest", "read_dictionary": "data.manifest",
    "synthesize_corpus": "data.synth", "CorpusSizes": "data.synth_plan",
    "PRESETS": "data.synth_plan",
    "prepare_librispeech": "data.corpora", "prepare_speech_commands": "data.corpora",
    "mfcc": "data.features", "compute_deltas": "data.features",
    "mfcc_features": "data.features", "encoder_frames": "data.features",
    "align_to_encoder": "data.features",
    "fit_kmeans": "pretrain.kmeans", "label_corpus": "pretrain.targets",
    "hidden_layer_features": "pretrain.targets", "save_kmeans": "pretrain.kmeans",
    "load_kmeans": "pretrain.kmeans", "build_targets": "pretrain.targets",
    "KMeansCenters": "pretrain.kmeans",
    "PretrainDataset": "data.datasets", "ClassificationDataset": "data.datasets",
    "PhonemeDataset": "data.datasets", "Vocabulary": "data.datasets", "collate": "data.datasets",
    "LengthBucketBatchSampler": "data.datasets",
}

__all__ = ["DataError", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
