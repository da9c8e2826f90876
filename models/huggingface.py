"""Audio encoders of Hugging Face transformers, built from a config alone: never a download.

``hf:hubert``, ``hf:wav2vec2``, ``hf:wavlm``, ``hf:data2vec-audio`` and ``hf:whisper`` build
the model of transformers' default config of that type (HuBERT-Base-sized for the first
four; Whisper's default, its encoder only); ``hf:path/to/config.json`` builds from a local
config file, whose ``model_type`` must be one of these. Overrides (``--set``) are config
fields, e.g. ``num_hidden_layers=1`` (``encoder_layers`` for Whisper). Weights are random
(or absent, on the meta device): enough to count costs. ``HF_HUB_OFFLINE=1`` is set before
transformers is imported here, and nothing here calls ``from_pretrained``.

Inputs, from the config: a raw 16 kHz waveform (batch, samples) for the wav2vec 2.0 family;
log-mel features (batch, ``num_mel_bins``, 2 x ``max_source_positions``) for Whisper, whose
encoder takes exactly 30 s (80 x 3000 by default).
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

PREFIX = "hf:"
WAVEFORM, LOG_MEL = "waveform", "log-mel"


@dataclass(frozen=True)
class HfFamily:
    config_class: str   # the transformers config class
    model_class: str    # the module built from it: a class transformers exports at its top
    inputs: str         # WAVEFORM or LOG_MEL


def _whisper_encoder():
    """Whisper's encoder alone: transformers does not export it at its top level."""
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    return WhisperEncoder


FAMILIES: Dict[str, HfFamily] = {
    "hubert": HfFamily("HubertConfig", "HubertModel", WAVEFORM),
    "wav2vec2": HfFamily("Wav2Vec2Config", "Wav2Vec2Model", WAVEFORM),
    "wavlm": HfFamily("WavLMConfig", "WavLMModel", WAVEFORM),
    "data2vec-audio": HfFamily("Data2VecAudioConfig", "Data2VecAudioModel", WAVEFORM),
    "whisper": HfFamily("WhisperConfig", "WhisperEncoder", LOG_MEL),
}


@dataclass
class HfModel:
    family: str
    module: Any                      # the nn.Module
    config: Any                      # its transformers config
    input_shape: Callable[[int, Optional[int]], Tuple[int, ...]]  # (batch, samples) -> shape


def is_hf_model(spec: str) -> bool:
    return spec.startswith(PREFIX)


def _transformers():
    os.environ["HF_HUB_OFFLINE"] = "1"   # defensive: nothing here may reach the hub
    import transformers

    return transformers


def load_config(spec: str, overrides: Optional[Dict[str, Any]] = None):
    """(family name, transformers config) of ``hf:NAME`` or ``hf:path/config.json``;
    ``ValueError`` (one line) for an unknown name, a missing or non-JSON file, an unknown
    ``model_type`` or an override the config does not have."""
    target = spec[len(PREFIX):] if is_hf_model(spec) else spec
    if target in FAMILIES:
        name, fields = target, {}
    elif target.endswith(".json") or "/" in target or Path(target).is_file():
        name, fields = _read_config_file(Path(target))
    else:
        raise ValueError(f"hf model {target!r}: expected one of {', '.join(FAMILIES)} or a "
                         "path to a config.json")
    config_class = getattr(_transformers(), FAMILIES[name].config_class)
    config = config_class(**{k: v for k, v in fields.items() if k != "model_type"})
    for key, value in (overrides or {}).items():
        if not hasattr(config, key):
            raise ValueError(f"{name} config has no field {key!r}")
        setattr(config, key, value)
    return name, config


def _read_config_file(path: Path) -> Tuple[str, Dict[str, Any]]:
    if not path.is_file():
        raise ValueError(f"hf config {path} does not exist")
    try:
        fields = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError(f"hf config {path} is not JSON: {error}") from None
    if not isinstance(fields, dict):
        raise ValueError(f"hf config {path} is not a JSON object")
    model_type = fields.get("model_type")
    if model_type not in FAMILIES:
        raise ValueError(f"hf config {path}: model_type {model_type!r} is not one of "
                         f"{', '.join(FAMILIES)}")
    return model_type, fields


def build(spec: str, overrides: Optional[Dict[str, Any]] = None, *,
          device: str = "cpu") -> HfModel:
    """The model of ``spec`` (see :func:`load_config`), in eval mode, its parameters on
    ``device`` (``meta``: none allocated), with the shape of its input."""
    import torch

    name, config = load_config(spec, overrides)
    family = FAMILIES[name]
    model_class = (_whisper_encoder() if family.model_class == "WhisperEncoder"
                   else getattr(_transformers(), family.model_class))
    try:
        with torch.device(device):
            model = model_class(config)
    except Exception as error:      # transformers' own: a negative size, heads that do not divide
        raise ValueError(f"hf config {spec}: transformers cannot build {family.model_class} "
                         f"from it ({type(error).__name__}: {error})") from error
    if family.inputs == LOG_MEL:
        frames = 2 * config.max_source_positions   # the encoder's two convs halve them

        def shape(batch: int, samples: Optional[int]) -> Tuple[int, ...]:
            return (batch, config.num_mel_bins, frames)
    else:
        def shape(batch: int, samples: Optional[int]) -> Tuple[int, ...]:
            return (batch, samples)
    return HfModel(name, model.eval(), config, shape)
