import pytest
import torch

from models.frontends import FASTCONV_LAYERS, WAV2VEC2_LAYERS, feature_extractor


def _params(module):
    return sum(p.numel() for p in module.parameters())


def test_fastconv_parameter_count_closed_form():
    # conv weights c_in * c_out * k (no bias) + GroupNorm(64) affine
    convs = (1 * 64 * 10 + 64 * 128 * 3 + 128 * 128 + 128 * 128 * 3 + 128 * 128
             + 128 * 256 * 3 + 256 * 256 + 256 * 256 * 3 + 256 * 256
             + 256 * 512 * 2 + 512 * 512 + 512 * 512 * 2 + 512 * 512)
    assert _params(feature_extractor("fastconv")) == convs + 2 * 64 == 1_843_968


def test_wav2vec2_parameter_count_closed_form():
    convs = 1 * 512 * 10 + 4 * (512 * 512 * 3) + 2 * (512 * 512 * 2)
    assert _params(feature_extractor("wav2vec2")) == convs + 2 * 512 == 4_200_448


@pytest.mark.parametrize("name", ["fastconv", "wav2vec2"])
def test_stride_and_frame_counts(name):
    extractor = feature_extractor(name)
    assert extractor.downsample_rate == 320
    assert extractor.frames(160_000) == 499
    assert extractor.frames(16_000) == 49
    assert extractor.frames(400) == 1
    assert extractor.frames(399) == 0
    lengths = torch.tensor([160_000, 16_000, 400, 399, 0])
    assert extractor.frame_lengths(lengths).tolist() == [499, 49, 1, 0, 0]


@pytest.mark.parametrize("name", ["fastconv", "wav2vec2"])
def test_output_shape_on_meta(name):
    with torch.device("meta"):
        extractor = feature_extractor(name)
        features = extractor(torch.empty(3, 160_000))
    assert features.shape == (3, 512, 499)


def test_real_forward_matches_frame_count():
    extractor = feature_extractor("fastconv")
    with torch.no_grad():
        features = extractor(torch.randn(1, 8_000))
    assert features.shape == (1, 512, extractor.frames(8_000)) == (1, 512, 24)


def test_layer_specs_are_the_documented_ones():
    assert WAV2VEC2_LAYERS == ((512, 10, 5), (512, 3, 2), (512, 3, 2), (512, 3, 2), (512, 3, 2),
                               (512, 2, 2), (512, 2, 2))
    assert [spec[2] for spec in FASTCONV_LAYERS] == [5, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1, 2, 1]


def test_unknown_front_end():
    with pytest.raises(ValueError, match="fastconv"):
        feature_extractor("mel")


@pytest.mark.parametrize("name", ["fastconv", "wav2vec2"])
def test_a_padded_utterance_keeps_its_own_features(name):
    # The first block's GroupNorm normalizes over time: zero padding would shift every real
    # frame unless the statistics skip it. Reference: the utterance run alone.
    torch.manual_seed(0)
    extractor = feature_extractor(name).eval()
    short, long = torch.randn(9_000), torch.randn(16_000)
    batch = torch.zeros(2, 16_000)
    batch[0, :9_000], batch[1] = short, long
    with torch.no_grad():
        padded = extractor(batch, torch.tensor([9_000, 16_000]))
        alone = extractor(short[None])
    frames = extractor.frames(9_000)
    torch.testing.assert_close(padded[0, :, :frames], alone[0], rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(padded[1], extractor(long[None])[0], rtol=1e-4, atol=1e-5)


def test_full_lengths_give_torchs_group_norm():
    torch.manual_seed(0)
    extractor = feature_extractor("fastconv").eval()
    batch = torch.randn(2, 8_000)
    with torch.no_grad():
        torch.testing.assert_close(extractor(batch, torch.tensor([8_000, 8_000])),
                                   extractor(batch), rtol=1e-4, atol=1e-5)
