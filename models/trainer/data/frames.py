"""The encoder's frame grid: how many 50 Hz frames a waveform gives (no torch, so that
synthesis, which labels frames with phones, stays free of it)."""
from __future__ import annotations

from typing import Sequence

from ...constants import WAV2VEC2_KERNELS_AND_STRIDES


def encoder_frames(num_samples: int,
                   conv_layers: Sequence[tuple[int, int]] = WAV2VEC2_KERNELS_AND_STRIDES) -> int:
    """Frames a stack of unpadded 1-D convolutions produces from ``num_samples`` samples.

    Each layer maps L to floor((L - kernel) / stride) + 1 (0 once the input is shorter
    than the kernel). For the wav2vec2 stack that is floor((S - 400) / 320) + 1 for
    S >= 400, e.g. 499 frames for 10 s at 16 kHz.
    """
    length = int(num_samples)
    for kernel, stride in conv_layers:
        if length < kernel:
            return 0
        length = (length - kernel) // stride + 1
    return length
