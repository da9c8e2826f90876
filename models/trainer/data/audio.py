"""Audio files and waveforms: 16-bit PCM WAV through the stdlib, FLAC headers, resampling.

Every waveform in the trainer is a 1-D float32 array in [-1, 1] at 16 kHz. Reading
validates that (rate, channel count, finite samples, a readable and complete file) and
raises :class:`DataError` naming the file, so bad data fails at the first touch instead
of as a shape error deep inside a training step.
"""
from __future__ import annotations

import functools
import math
import struct
import wave
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ...constants import SAMPLE_RATE
from ..errors import DataError
from ..fileio import PathLike, atomic_write

# 16-bit PCM full scale: int16 k is read as k / 32768, so every int16 round-trips exactly.
_PCM16_SCALE = 32768.0


class AudioInfo(NamedTuple):
    """What a file's header says: sample rate in Hz, channel count and samples per channel."""

    sample_rate: int
    channels: int
    num_samples: int


def validate_waveform(waveform, sample_rate: int = SAMPLE_RATE, *,
                      expected_rate: int = SAMPLE_RATE, name: str = "waveform") -> np.ndarray:
    """Check a waveform is mono, non-empty, finite and at ``expected_rate``; return float32.

    Accepts a numpy array or a torch tensor of shape (S,) or (1, S). Raises
    :class:`DataError` (mentioning ``name``) for anything else, including (C, S) with
    C > 1: stereo is refused rather than silently mixed down.
    """
    if sample_rate != expected_rate:
        raise DataError(f"{name}: sample rate {sample_rate} Hz, expected {expected_rate} Hz "
                        f"(resample it first)")
    if hasattr(waveform, "detach"):  # a torch tensor, without importing torch here
        waveform = waveform.detach().cpu().numpy()
    array = np.asarray(waveform)
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 1:
        raise DataError(f"{name}: expected mono audio of shape (samples,), got shape "
                        f"{tuple(array.shape)} (stereo or multi-channel audio is not supported)")
    if array.size == 0:
        raise DataError(f"{name}: no audio samples")
    if not np.issubdtype(array.dtype, np.floating):
        raise DataError(f"{name}: expected float samples in [-1, 1], got dtype {array.dtype}")
    array = array.astype(np.float32, copy=False)
    if not np.all(np.isfinite(array)):
        raise DataError(f"{name}: contains NaN or infinite samples")
    return array


def wav_info(path: PathLike) -> AudioInfo:
    """Read a WAV header only; raise :class:`DataError` if the file is not 16-bit PCM WAV."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as reader:
            if reader.getsampwidth() != 2:
                raise DataError(f"{path}: {8 * reader.getsampwidth()}-bit samples, "
                                f"only 16-bit PCM WAV is supported")
            return AudioInfo(reader.getframerate(), reader.getnchannels(), reader.getnframes())
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (wave.Error, EOFError, struct.error) as error:
        raise DataError(f"{path}: not a readable PCM WAV file ({error})") from None


def read_wav(path: PathLike, expected_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read a 16-bit PCM mono WAV file at ``expected_rate`` into float32 in [-1, 1)."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as reader:
            rate, channels = reader.getframerate(), reader.getnchannels()
            width = reader.getsampwidth()
            frames = reader.getnframes()
            _check_header(path, rate, channels, expected_rate)
            if width != 2:
                raise DataError(f"{path}: {8 * width}-bit samples, only 16-bit PCM WAV is "
                                f"supported")
            data = reader.readframes(frames)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (wave.Error, EOFError, struct.error) as error:
        raise DataError(f"{path}: not a readable PCM WAV file ({error})") from None
    if len(data) != 2 * frames:
        raise DataError(f"{path}: truncated, header says {frames} samples, "
                        f"file holds {len(data) // 2}")
    if frames == 0:
        raise DataError(f"{path}: no audio samples")
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / np.float32(_PCM16_SCALE)


def write_wav(path: PathLike, waveform, sample_rate: int = SAMPLE_RATE) -> None:
    """Write a mono float waveform in [-1, 1] as 16-bit PCM WAV, atomically.

    Samples outside [-1, 1) are clipped. The file is written to a temporary name and
    renamed, so an interrupted write never leaves a half file under ``path``.
    """
    samples = validate_waveform(waveform, sample_rate, expected_rate=sample_rate, name=str(path))
    pcm = np.clip(np.round(samples.astype(np.float64) * _PCM16_SCALE), -32768, 32767)
    with atomic_write(path, "wb") as handle:
        with wave.open(handle, "wb") as writer:
            writer.setnchannels(1)
            writer.setsampwidth(2)
            writer.setframerate(int(sample_rate))
            writer.writeframes(pcm.astype("<i2").tobytes())


def flac_info(path: PathLike) -> AudioInfo:
    """Read a FLAC file's STREAMINFO block (no decoder needed).

    STREAMINFO is the mandatory first metadata block: after the 4-byte "fLaC" marker and
    a 4-byte block header come min/max block size (2 x 16 bits), min/max frame size
    (2 x 24 bits), then 20 bits sample rate, 3 bits channels - 1, 5 bits bits-per-sample
    - 1 and 36 bits total samples, all big-endian.
    """
    path = Path(path)
    try:
        with open(path, "rb") as handle:
            head = handle.read(8 + 34)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    if len(head) < 42 or head[:4] != b"fLaC" or (head[4] & 0x7F) != 0:
        raise DataError(f"{path}: not a FLAC file (no fLaC marker and STREAMINFO block)")
    packed = int.from_bytes(head[18:26], "big")
    sample_rate = packed >> 44
    channels = ((packed >> 41) & 0x7) + 1
    num_samples = packed & ((1 << 36) - 1)
    return AudioInfo(sample_rate, channels, num_samples)


def audio_info(path: PathLike) -> AudioInfo:
    """Header information of a .wav or .flac file."""
    suffix = Path(path).suffix.lower()
    if suffix == ".wav":
        return wav_info(path)
    if suffix == ".flac":
        return flac_info(path)
    raise DataError(f"{path}: unsupported audio format {suffix!r} (use .wav or .flac)")


def read_audio(path: PathLike, expected_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read a mono .wav or .flac file at ``expected_rate`` as float32 in [-1, 1].

    WAV needs nothing beyond the standard library; FLAC needs the optional ``soundfile``
    package, and its absence is reported as a :class:`DataError` that says how to
    install it.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".wav":
        return read_wav(path, expected_rate)
    if suffix != ".flac":
        raise DataError(f"{path}: unsupported audio format {suffix!r} (use .wav or .flac)")
    info = flac_info(path)
    _check_header(path, info.sample_rate, info.channels, expected_rate)
    try:
        import soundfile  # optional: only real LibriSpeech (FLAC) needs it
    except ImportError:
        raise DataError(f"{path}: reading FLAC needs the 'soundfile' package; install it with "
                        f"'pip install soundfile' (or convert the corpus to 16-bit WAV)") from None
    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=False)
    except Exception as error:  # soundfile raises its own LibsndfileError / RuntimeError
        raise DataError(f"{path}: cannot decode FLAC ({error})") from None
    return validate_waveform(samples, rate, expected_rate=expected_rate, name=str(path))


def _check_header(path: Path, rate: int, channels: int, expected_rate: int) -> None:
    if channels != 1:
        raise DataError(f"{path}: {channels} channels, expected mono audio")
    if rate != expected_rate:
        raise DataError(f"{path}: sample rate {rate} Hz, expected {expected_rate} Hz "
                        f"(resample the corpus first)")


# ---------------------------------------------------------------------------- resampling
# Band-limited interpolation with a Kaiser-windowed sinc, evaluated in polyphase form: for
# rates reduced by their gcd to orig:new, output sample j*new + i sits at time j + i/new
# (time unit = orig input samples) and is a dot product of 2*width + orig input samples
# with the i-th of `new` precomputed kernels. The low-pass cutoff is `rolloff` times the
# lower Nyquist frequency, so content above the new Nyquist is removed before it can alias.
_LOWPASS_WIDTH = 64       # zero crossings of the sinc on each side (sets the transition width)
_ROLLOFF = 0.945
_KAISER_BETA = 14.769656459379492  # about 120 dB of side-lobe rejection


@functools.lru_cache(maxsize=8)
def _polyphase_kernels(orig: int, new: int) -> tuple[np.ndarray, int]:
    cutoff = min(orig, new) * _ROLLOFF          # cycles per time unit, times 2
    width = math.ceil(_LOWPASS_WIDTH * orig / cutoff)
    offsets = np.arange(-width, width + orig, dtype=np.float64) / orig
    phases = np.arange(new, dtype=np.float64)[:, None] / new
    t = np.clip((offsets[None, :] - phases) * cutoff, -_LOWPASS_WIDTH, _LOWPASS_WIDTH)
    window = np.i0(_KAISER_BETA * np.sqrt(1.0 - (t / _LOWPASS_WIDTH) ** 2)) / np.i0(_KAISER_BETA)
    # Scale cutoff/orig makes each kernel sum to about 1 (unit gain at DC).
    kernels = np.sinc(t) * window * (cutoff / orig)
    return kernels.T.copy(), width               # (taps, new)


def resample(waveform, orig_rate: int, new_rate: int) -> np.ndarray:
    """Resample a 1-D waveform from ``orig_rate`` to ``new_rate`` Hz (anti-aliased).

    Returns float32 with ``ceil(len * new_rate / orig_rate)`` samples, aligned so that
    sample 0 of input and output coincide.
    """
    samples = np.asarray(waveform, dtype=np.float64)
    if samples.ndim != 1:
        raise DataError(f"resample expects a 1-D waveform, got shape {samples.shape}")
    if orig_rate <= 0 or new_rate <= 0:
        raise DataError(f"sample rates must be positive, got {orig_rate} and {new_rate}")
    if orig_rate == new_rate or samples.size == 0:
        return samples.astype(np.float32)
    divisor = math.gcd(int(orig_rate), int(new_rate))
    orig, new = int(orig_rate) // divisor, int(new_rate) // divisor
    kernels, width = _polyphase_kernels(orig, new)
    padded = np.pad(samples, (width, width + orig))
    blocks = np.lib.stride_tricks.sliding_window_view(padded, kernels.shape[0])[::orig]
    output = (blocks @ kernels).reshape(-1)
    target = math.ceil(new * samples.size / orig)
    return output[:target].astype(np.float32)
