"""Audio constants shared by the zoo's front ends, the trainer and the CLI (named once)."""

SAMPLE_RATE = 16_000           # Hz: every zoo model takes 16 kHz waveforms
ENCODER_STRIDE = 320           # samples per encoder frame: the front ends' total stride, 20 ms
ENCODER_RECEPTIVE_FIELD = 400  # samples seen by one encoder frame: 25 ms


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
