"""Zoo models as s3prl upstreams.

s3prl's downstream code calls an upstream on a *list* of 1-D 16 kHz waveforms of any
lengths and reads ``{"hidden_states": [tensor (B, T, D), ...]}``, and asks
``get_downsample_rates(key)`` for the frame stride in samples (320 here). This wrapper
gives any zoo model (trained or not) that interface. It imports without s3prl; where s3prl
is installed, register it as a custom upstream (see the training README), e.g. in
``s3prl/upstream/encoder_zoo/expert.py``::

    from profiler.adapters.s3prl_upstream import UpstreamExpert   # noqa: F401

and ``hubconf.py``::

    from .expert import UpstreamExpert as _UpstreamExpert
    def encoder_zoo(ckpt, *args, **kwargs):   # ckpt: a run folder or a zoo name
        return _UpstreamExpert(ckpt, *args, **kwargs)

then ``python run_downstream.py -m train -u encoder_zoo -k RUN_DIR -d speech_commands ...``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import torch
from torch import nn


class ZooUpstream(nn.Module):
    """An s3prl-style upstream around a zoo model (``models.HuBERT``).

    ``forward(wavs)`` takes a list of 1-D float waveforms (16 kHz, mono) and returns a dict
    with ``hidden_states`` (the encoder input and every layer's output, each (B, T, D) at
    50 Hz), ``last_hidden_state``, ``padding_mask`` (B, T; True on padding) and
    ``frame_lengths`` (B,) -- the valid frames of each waveform.
    """

    def __init__(self, model: nn.Module, *, name: Optional[str] = None):
        super().__init__()
        self.model = model
        self.name = name or getattr(getattr(model, "config", None), "name", type(model).__name__)

    # s3prl's interface -------------------------------------------------------------------
    def get_downsample_rates(self, key: str = "hidden_states") -> int:
        return int(self.model.downsample_rate)

    @property
    def downsample_rates(self) -> List[int]:
        return [self.get_downsample_rates()] * self.num_layers

    @property
    def num_layers(self) -> int:
        return int(self.model.config.layers) + 1

    @property
    def hidden_sizes(self) -> List[int]:
        return [int(self.model.config.dim)] * self.num_layers

    def forward(self, wavs: Sequence[torch.Tensor]) -> Dict[str, Any]:
        waveforms, lengths = pad_waveforms(wavs, device=_device_of(self.model))
        out = self.model(waveforms, lengths)
        frame_lengths = (~out.padding_mask).sum(dim=1) if out.padding_mask is not None else \
            torch.full((waveforms.shape[0],), out.last_hidden_state.shape[1])
        return {"hidden_states": list(out.hidden_states),
                "last_hidden_state": out.last_hidden_state,
                "padding_mask": out.padding_mask, "frame_lengths": frame_lengths}


def _device_of(module: nn.Module) -> torch.device:
    parameter = next(module.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def pad_waveforms(wavs: Sequence[torch.Tensor], device=None):
    """Check and zero-pad a list of mono waveforms: (B, S_max) float32 and (B,) lengths.

    Raises ``ValueError`` naming the offending item for an empty list, a waveform that is
    not 1-D (stereo is refused, not mixed down), empty, or not finite.
    """
    if isinstance(wavs, torch.Tensor):
        wavs = list(wavs) if wavs.dim() == 2 else [wavs]
    if len(wavs) == 0:
        raise ValueError("expected a non-empty list of waveforms")
    checked = []
    for index, wav in enumerate(wavs):
        wav = torch.as_tensor(wav)
        if wav.dim() == 2 and wav.shape[0] == 1:
            wav = wav[0]
        if wav.dim() != 1:
            raise ValueError(f"waveform {index}: expected mono audio of shape (samples,), got "
                             f"shape {tuple(wav.shape)} (stereo is not supported)")
        if wav.numel() == 0:
            raise ValueError(f"waveform {index}: no samples")
        if not wav.is_floating_point():
            raise ValueError(f"waveform {index}: expected float samples, got {wav.dtype}")
        if not bool(torch.isfinite(wav).all()):
            raise ValueError(f"waveform {index}: contains NaN or infinite samples")
        checked.append(wav.float())
    lengths = torch.tensor([w.numel() for w in checked], dtype=torch.long)
    padded = torch.zeros(len(checked), int(lengths.max()))
    for row, wav in enumerate(checked):
        padded[row, :wav.numel()] = wav.cpu()
    if device is not None:
        padded, lengths = padded.to(device), lengths.to(device)
    return padded, lengths


def zoo_upstream(name: str, **overrides: Any) -> ZooUpstream:
    """A randomly initialized zoo model as an upstream (``overrides`` as ``models.build``)."""
    import models

    return ZooUpstream(models.build(name, **overrides).eval(), name=name)


def upstream_from_checkpoint(path: Union[str, Path]) -> ZooUpstream:
    """The trained model of a ``profile-encoder train`` run folder (or checkpoint folder)."""
    from models.trainer.pretrain import checkpoint as ckpt

    run = ckpt.resolve_run(path)
    return ZooUpstream(run.model, name=run.name)


class UpstreamExpert(ZooUpstream):
    """s3prl's ``UpstreamExpert(ckpt, model_config=None, **kwargs)`` convention: ``ckpt`` is
    a run folder (trained weights) or a zoo name (random weights)."""

    def __init__(self, ckpt: str, model_config: Optional[str] = None, **kwargs: Any):
        path = Path(str(ckpt))
        if path.exists():
            inner = upstream_from_checkpoint(path)
            super().__init__(inner.model, name=inner.name)
        else:
            super().__init__(zoo_upstream(str(ckpt)).model, name=str(ckpt))
