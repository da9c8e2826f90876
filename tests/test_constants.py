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

