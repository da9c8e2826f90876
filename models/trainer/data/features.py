"""Kaldi-compatible MFCC in plain torch, Kaldi deltas, and alignment to a 50 Hz encoder.

The MFCC follows Kaldi's ``compute-mfcc-feats`` with its default options: 25 ms frames
every 10 ms with ``snip_edges`` (frames = 1 + (S - 400) // 160 at 16 kHz), dither (off
here by default, for determinism), DC offset removal per frame, the log energy of the
frame taken at that point (``raw_energy``), pre-emphasis 0.97 (``x[i] -= 0.97 x[i-1]``,
``x[0] -= 0.97 x[0]``), the Povey window ``(0.5 - 0.5 cos(2 pi n / (N - 1)))^0.85``,
zero padding to 512 points, the power spectrum, 23 triangular mel filters equally spaced
on ``mel(f) = 1127 ln(1 + f / 700)`` between 20 Hz and Nyquist (built on FFT bins 0..255
like Kaldi's ``MelBanks``), log with a floor of FLT_EPSILON, an orthonormal DCT-II keeping
13 coefficients, the cepstral lifter ``1 + 11 sin(pi i / 22)``, and C0 replaced by the
log energy. Kaldi reads 16-bit samples as integers, so waveforms in [-1, 1] are scaled by
32768 first (``input_scale``); that only shifts the log terms, but keeps the numbers
comparable with Kaldi's.

HuBERT's first-iteration targets are k-means units of these 39-d features (13 MFCC plus
deltas and delta-deltas, Kaldi ``add-deltas`` with window 2). The features come at
100 Hz, the encoder's CNN emits 50 Hz, and HuBERT pairs encoder frame ``i`` with feature
frame ``2 i`` (2:1 subsampling); :func:`align_to_encoder` does that for the exact frame
count of a wav2vec2-style CNN (:func:`models.constants.encoder_frames`, 499 frames for
160 000 samples).
"""
from __future__ import annotations

import functools
import math
from typing import Optional, Sequence

import numpy as np
import torch

from ...constants import SAMPLE_RATE, WAV2VEC2_KERNELS_AND_STRIDES, encoder_frames
from ..errors import DataError

FEATURE_TO_ENCODER_RATIO = 2   # 100 Hz features to 50 Hz encoder frames

_FLT_EPSILON = float(np.finfo(np.float32).eps)  # Kaldi's floor for energies before log
_PCM16_SCALE = 32768.0


def num_frames(num_samples: int, frame_length: int = 400, frame_shift: int = 160) -> int:
    """Kaldi's frame count with ``snip_edges=true``: 1 + (S - length) // shift, or 0."""
    if num_samples < frame_length:
        return 0
    return 1 + (int(num_samples) - frame_length) // frame_shift


def mel_scale(frequency):
    """Kaldi's mel scale: 1127 ln(1 + f / 700)."""
    return 1127.0 * np.log(1.0 + np.asarray(frequency, dtype=np.float64) / 700.0)


def inverse_mel_scale(mel):
    """Inverse of :func:`mel_scale`: 700 (exp(m / 1127) - 1)."""
    return 700.0 * (np.exp(np.asarray(mel, dtype=np.float64) / 1127.0) - 1.0)


def _high_frequency(high_freq: float, sample_rate: int) -> float:
    # Kaldi: a value <= 0 is an offset from Nyquist.
    return high_freq if high_freq > 0 else 0.5 * sample_rate + high_freq


def mel_bin_centers(num_bins: int = 23, sample_rate: int = SAMPLE_RATE, low_freq: float = 20.0,
                    high_freq: float = 0.0) -> np.ndarray:
    """Centre frequencies in Hz of Kaldi's triangular mel filters."""
    mel_low = mel_scale(low_freq)
    mel_high = mel_scale(_high_frequency(high_freq, sample_rate))
    delta = (mel_high - mel_low) / (num_bins + 1)
    return inverse_mel_scale(mel_low + delta * np.arange(1, num_bins + 1))


@functools.lru_cache(maxsize=16)
def _mel_banks(num_bins: int, padded_length: int, sample_rate: int, low_freq: float,
               high_freq: float) -> torch.Tensor:
    high = _high_frequency(high_freq, sample_rate)
    if not 0.0 <= low_freq < high <= 0.5 * sample_rate:
        raise DataError(f"mel filters need 0 <= low_freq < high_freq <= Nyquist, "
                        f"got {low_freq} and {high}")
    mel_low, mel_high = mel_scale(low_freq), mel_scale(high)
    delta = (mel_high - mel_low) / (num_bins + 1)
    left = mel_low + delta * np.arange(num_bins)[:, None]
    center, right = left + delta, left + 2 * delta
    # Kaldi builds the filters on FFT bins 0 .. padded/2 - 1; the Nyquist bin gets 0.
    bin_mel = mel_scale(np.arange(padded_length // 2) * sample_rate / padded_length)[None, :]
    rising = (bin_mel - left) / (center - left)
    falling = (right - bin_mel) / (right - center)
    weights = np.where(bin_mel <= center, rising, falling)
    weights = np.where((bin_mel > left) & (bin_mel < right), weights, 0.0)
    weights = np.concatenate([weights, np.zeros((num_bins, 1))], axis=1)
    return torch.from_numpy(weights)  # (num_bins, padded/2 + 1), float64


def povey_window(length: int) -> torch.Tensor:
    """Kaldi's default window: a Hann window raised to the power 0.85 (float64)."""
    n = torch.arange(length, dtype=torch.float64)
    return (0.5 - 0.5 * torch.cos(2 * math.pi * n / (length - 1))).pow(0.85)


@functools.lru_cache(maxsize=16)
def _dct_matrix(num_ceps: int, num_bins: int) -> torch.Tensor:
    # Orthonormal DCT-II rows k = 0..num_ceps-1, as Kaldi's ComputeDctMatrix.
    k = torch.arange(num_ceps, dtype=torch.float64)[:, None]
    n = torch.arange(num_bins, dtype=torch.float64)[None, :]
    matrix = torch.cos(math.pi / num_bins * (n + 0.5) * k) * math.sqrt(2.0 / num_bins)
    matrix[0] = math.sqrt(1.0 / num_bins)
    return matrix


def _as_waveform(waveform) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(waveform) if not torch.is_tensor(waveform) else waveform)
    if tensor.dim() == 2 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.dim() != 1:
        raise DataError(f"expected a mono waveform of shape (samples,), got {tuple(tensor.shape)}")
    if not torch.is_floating_point(tensor):
        raise DataError(f"expected float samples in [-1, 1], got dtype {tensor.dtype}")
    if not torch.isfinite(tensor).all():
        raise DataError("waveform contains NaN or infinite samples")
    return tensor.detach().to(torch.float64)


def _frames(waveform, sample_rate: int, frame_length_ms: float, frame_shift_ms: float,
            input_scale: float, dither: float, remove_dc_offset: bool,
            generator: Optional[torch.Generator]) -> tuple[torch.Tensor, int]:
    samples = _as_waveform(waveform) * input_scale
    length = int(round(sample_rate * frame_length_ms / 1000.0))
    shift = int(round(sample_rate * frame_shift_ms / 1000.0))
    count = num_frames(samples.numel(), length, shift)
    if count == 0:
        return samples.new_zeros((0, length)), length
    frames = samples.unfold(0, length, shift)[:count].clone()
    if dither != 0.0:
        frames += dither * torch.randn(frames.shape, generator=generator, dtype=frames.dtype)
    if remove_dc_offset:
        frames -= frames.mean(dim=1, keepdim=True)
    return frames, length


def _preemphasize(frames: torch.Tensor, coefficient: float) -> torch.Tensor:
    if coefficient == 0.0:
        return frames
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)  # x[0] uses itself
    return frames - coefficient * previous


def _log_floor(values: torch.Tensor) -> torch.Tensor:
    return values.clamp_min(_FLT_EPSILON).log()


def log_mel_energies(waveform, sample_rate: int = SAMPLE_RATE, *, num_mel_bins: int = 23,
                     frame_length_ms: float = 25.0, frame_shift_ms: float = 10.0,
                     preemphasis: float = 0.97, dither: float = 0.0,
                     remove_dc_offset: bool = True, low_freq: float = 20.0,
                     high_freq: float = 0.0, input_scale: float = _PCM16_SCALE,
                     generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Kaldi's log mel filterbank energies (``compute-fbank-feats`` without energy): (T, bins)."""
    return _mfcc_parts(waveform, sample_rate, num_mel_bins, frame_length_ms, frame_shift_ms,
                       preemphasis, dither, remove_dc_offset, low_freq, high_freq, input_scale,
                       True, generator)[0].float()


def _mfcc_parts(waveform, sample_rate, num_mel_bins, frame_length_ms, frame_shift_ms,
                preemphasis, dither, remove_dc_offset, low_freq, high_freq, input_scale,
                raw_energy, generator) -> tuple[torch.Tensor, torch.Tensor]:
    frames, length = _frames(waveform, sample_rate, frame_length_ms, frame_shift_ms,
                             input_scale, dither, remove_dc_offset, generator)
    if frames.shape[0] == 0:  # shorter than one frame
        return frames.new_zeros((0, num_mel_bins)), frames.new_zeros(0)
    padded = 1 << (length - 1).bit_length()  # round_to_power_of_two
    if raw_energy:
        log_energy = _log_floor(frames.pow(2).sum(dim=1))
    frames = _preemphasize(frames, preemphasis) * povey_window(length)
    if not raw_energy:
        log_energy = _log_floor(frames.pow(2).sum(dim=1))
    power = torch.fft.rfft(frames, n=padded).abs().pow(2)
    banks = _mel_banks(num_mel_bins, padded, sample_rate, float(low_freq), float(high_freq))
    return _log_floor(power @ banks.T), log_energy


def mfcc(waveform, sample_rate: int = SAMPLE_RATE, *, num_ceps: int = 13,
         num_mel_bins: int = 23, frame_length_ms: float = 25.0, frame_shift_ms: float = 10.0,
         preemphasis: float = 0.97, dither: float = 0.0, remove_dc_offset: bool = True,
         cepstral_lifter: float = 22.0, low_freq: float = 20.0, high_freq: float = 0.0,
         use_energy: bool = True, raw_energy: bool = True, input_scale: float = _PCM16_SCALE,
         generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """Kaldi-compatible MFCC of a mono waveform in [-1, 1]: float32 tensor (frames, num_ceps).

    Defaults are Kaldi's, except ``dither`` (Kaldi: 1.0), which is 0 so that features are
    deterministic; pass ``dither=1.0`` and a seeded ``generator`` to match Kaldi's noise
    level. With ``use_energy`` C0 is replaced by the frame's log energy.
    """
    if num_ceps > num_mel_bins:
        raise DataError(f"num_ceps ({num_ceps}) cannot exceed num_mel_bins ({num_mel_bins})")
    log_mel, log_energy = _mfcc_parts(waveform, sample_rate, num_mel_bins, frame_length_ms,
                                      frame_shift_ms, preemphasis, dither, remove_dc_offset,
                                      low_freq, high_freq, input_scale, raw_energy, generator)
    ceps = log_mel @ _dct_matrix(num_ceps, num_mel_bins).T
    if cepstral_lifter != 0.0:
        i = torch.arange(num_ceps, dtype=torch.float64)
        ceps = ceps * (1.0 + 0.5 * cepstral_lifter * torch.sin(math.pi * i / cepstral_lifter))
    if use_energy:
        ceps[:, 0] = log_energy
    return ceps.float()


def _delta_scales(order: int, window: int) -> list[torch.Tensor]:
    # Kaldi's DeltaFeatures: scales[0] = [1]; scales[i] = scales[i-1] convolved with
    # [-window .. window] / sum(j^2).
    scales = [torch.ones(1, dtype=torch.float64)]
    taps = torch.arange(-window, window + 1, dtype=torch.float64)
    normalizer = float((taps ** 2).sum())
    for _ in range(order):
        previous = scales[-1]
        current = torch.zeros(previous.numel() + 2 * window, dtype=torch.float64)
        for j, tap in enumerate(taps):
            current[j:j + previous.numel()] += tap * previous
        scales.append(current / normalizer)
    return scales


def compute_deltas(features: torch.Tensor, order: int = 2, window: int = 2) -> torch.Tensor:
    """Kaldi ``add-deltas``: features followed by their 1st..``order``-th deltas.

    Each delta order applies its kernel to the original features; frames beyond either
    end are replaced by the first/last frame. (T, D) -> (T, D * (order + 1)).
    """
    features = torch.as_tensor(features)
    if features.dim() != 2:
        raise DataError(f"expected features of shape (frames, dims), got {tuple(features.shape)}")
    count = features.shape[0]
    if count == 0:
        return features.new_zeros((0, features.shape[1] * (order + 1)))
    source = features.to(torch.float64)
    outputs = [source]
    for scales in _delta_scales(order, window)[1:]:
        half = (scales.numel() - 1) // 2
        index = (torch.arange(count)[:, None] + torch.arange(-half, half + 1)[None, :])
        gathered = source[index.clamp(0, count - 1)]   # (T, taps, D)
        outputs.append(torch.einsum("ktd,t->kd", gathered, scales))
    return torch.cat(outputs, dim=1).to(features.dtype if features.is_floating_point()
                                        else torch.float32)


def mfcc_with_deltas(waveform, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Kaldi-default MFCC with deltas and delta-deltas: float32 (frames at 100 Hz, 39)."""
    return compute_deltas(mfcc(waveform, sample_rate))


def align_to_encoder(features: torch.Tensor, num_samples: int,
                     conv_layers: Sequence[tuple[int, int]] = WAV2VEC2_KERNELS_AND_STRIDES,
                     ratio: int = FEATURE_TO_ENCODER_RATIO) -> torch.Tensor:
    """Pick the 100 Hz feature frame for each 50 Hz encoder frame (HuBERT's 2:1 rule).

    Encoder frame ``i`` starts at sample 320 i, as does feature frame 2 i; the rare last
    frame whose partner is past the end reuses the last feature frame.
    """
    target = encoder_frames(num_samples, conv_layers)
    if features.shape[0] == 0 or target == 0:
        return features[:0]
    index = (torch.arange(target) * ratio).clamp(max=features.shape[0] - 1)
    return features[index]


def mfcc_features(waveform, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """First-iteration HuBERT features: 39-d MFCC aligned to the 50 Hz encoder frames."""
    samples = _as_waveform(waveform)
    return align_to_encoder(mfcc_with_deltas(samples, sample_rate), samples.numel())
