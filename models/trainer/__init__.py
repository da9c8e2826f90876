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

# The module (under this package) each name is exported from.
_EXPORTS = {name: module for module, names in {
    "data.espeak": ("synthesize", "phonemize", "list_voices", "list_variants"),
    "data.audio": ("read_audio", "read_wav", "write_wav", "resample"),
    "data.manifest": ("read_manifest", "write_manifest", "read_labels", "read_dictionary"),
    "data.synth": ("synthesize_corpus",),
    "data.synth_plan": ("CorpusSizes", "PRESETS"),
    "data.corpora": ("prepare_librispeech", "prepare_speech_commands"),
    "data.features": ("mfcc", "compute_deltas", "mfcc_features", "encoder_frames",
                      "align_to_encoder"),
    "pretrain.targets": ("fit_kmeans", "label_corpus", "hidden_layer_features", "save_kmeans",
                         "load_kmeans", "build_targets", "KMeansCenters"),
    "data.datasets": ("PretrainDataset", "ClassificationDataset", "PhonemeDataset",
                      "Vocabulary", "collate", "LengthBucketBatchSampler"),
}.items() for name in names}

__all__ = ["DataError", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
