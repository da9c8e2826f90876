"""Audio constants shared by the zoo's front ends, the trainer and the CLI (named once)."""

SAMPLE_RATE = 16_000           # Hz: every zoo model takes 16 kHz waveforms
# (kernel, stride) of each convolution of the wav2vec2 / HuBERT feature encoder: the frame
# grid every zoo front end keeps (FastConv too) and the trainer's labels follow.
WAV2VEC2_KERNELS_AND_STRIDES: tuple[tuple[int, int], ...] = (
    ((10, 5),) + ((3, 2),) * 4 + ((2, 2),) * 2)


def stride_and_field(layers) -> tuple[int, int]:
    """Samples per output frame, and samples one frame sees, of a stack of unpadded 1-D
    convolutions given as (kernel, stride) pairs."""
    stride, field = 1, 1
    for kernel, layer_stride in layers:
        field += (kernel - 1) * stride
        stride *= layer_stride
    return stride, field


# Samples per encoder frame (20 ms), and samples one frame sees (25 ms): 320 and 400.
ENCODER_STRIDE, ENCODER_RECEPTIVE_FIELD = stride_and_field(WAV2VEC2_KERNELS_AND_STRIDES)


def encoder_frames(num_samples: int,
                   layers: tuple[tuple[int, int], ...] = WAV2VEC2_KERNELS_AND_STRIDES) -> int:
    """Frames a stack of unpadded 1-D convolutions, (kernel, stride) pairs, produces from
    ``num_samples`` samples. Each layer maps L to floor((L - kernel) / stride) + 1 (0 once
    the input is shorter than the kernel); for the wav2vec2 stack that is
    floor((S - 400) / 320) + 1 for S >= 400, e.g. 499 frames for 10 s at 16 kHz. Torch-free,
    so that synthesis, which labels frames with phones, can count them without it."""
    length = int(num_samples)
    for kernel, stride in layers:
        if length < kernel:
            return 0
        length = conv_output_length(length, kernel, stride)
    return length


def conv_output_length(length, kernel: int, stride: int):
    """floor((L - kernel) / stride) + 1: an unpadded convolution's output length, for an int
    or a tensor of lengths (``//`` floors on both); below 1 when L < kernel, which callers
    clamp (the front end's per-utterance frame counts) or stop at (:func:`encoder_frames`)."""
    return (length - kernel) // stride + 1


def frame_centre(frame: int) -> int:
    """The sample at the centre of what encoder frame ``frame`` sees: 320 k + 200 (the
    sample where a frame-level label is read)."""
    return frame * ENCODER_STRIDE + ENCODER_RECEPTIVE_FIELD // 2


# A zoo model's BiT-binarized (W1A1) build is named with this prefix: bq-conformer-s.
BINARIZED_PREFIX = "bq-"


def is_binarized(name: str) -> bool:
    """Whether zoo name ``name`` is a binarized build (``bq-...``)."""
    return name.startswith(BINARIZED_PREFIX)


def float_name(name: str) -> str:
    """The full-precision zoo model a name builds from: ``bq-x`` is ``x`` binarized."""
    return name.removeprefix(BINARIZED_PREFIX)


def samples_in(seconds: float) -> int:
    """Samples in ``seconds`` of audio at SAMPLE_RATE, to the nearest (1.001 s is 16 016):
    every input length given in seconds goes through here, so that two tools asked for the
    same seconds build the same input."""
    return int(round(seconds * SAMPLE_RATE))
