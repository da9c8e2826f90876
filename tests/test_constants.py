"""models/constants.py: one conversion from seconds to samples for every tool."""
import pytest

from models.constants import samples_in


@pytest.mark.parametrize("seconds,samples", [
    (10, 160_000),
    (1.001, 16_016),   # 1.001 * 16 000 is 16 015.999... in binary: truncating gives 16 015
    (0.02, 320),       # one encoder frame's stride
    (0, 0),
])
def test_samples_in_rounds_to_the_nearest_sample(seconds, samples):
    assert samples_in(seconds) == samples



def test_binarized_names():
    from models.constants import float_name, is_binarized

    assert is_binarized("bq-conformer-s") and not is_binarized("conformer-s")
    assert float_name("bq-conformer-s") == "conformer-s"
    assert float_name("conformer-s") == "conformer-s"
    # only the prefix goes: a model whose own name holds "bq-" keeps it
    assert float_name("bq-my-bq-net") == "my-bq-net"


def test_the_frame_grid_follows_from_the_convolutions():
    from models.constants import ENCODER_RECEPTIVE_FIELD, ENCODER_STRIDE

    # strides 5 * 2^6; field 10 + (3 - 1)(5 + 10 + 20 + 40) + (2 - 1)(80 + 160), by hand
    assert ENCODER_STRIDE == 5 * 2 ** 6 == 320
    assert ENCODER_RECEPTIVE_FIELD == 10 + 2 * (5 + 10 + 20 + 40) + (80 + 160) == 400


def test_frames_of_any_convolution_stack():
    from models.constants import encoder_frames, stride_and_field

    # (kernel, stride) = (4, 2) then (3, 3), by hand: 20 -> (20 - 4) // 2 + 1 = 9 ->
    # (9 - 3) // 3 + 1 = 3; 5 samples give 1 frame after the first layer, short of its kernel
    layers = ((4, 2), (3, 3))
    assert encoder_frames(20, layers) == 3
    assert encoder_frames(5, layers) == 0
    assert stride_and_field(layers) == (2 * 3, 4 + (3 - 1) * 2)
    # the wav2vec2 stack: floor((S - 400) / 320) + 1
    assert encoder_frames(160_000) == (160_000 - 400) // 320 + 1 == 499
    assert encoder_frames(399) == 0
