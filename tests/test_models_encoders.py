"""The encoder family registry: the zoo's names come from it, and a family registered
elsewhere (here, in the test) builds, trains a step, validates and profiles like the others."""
import pytest
import torch
from torch import nn

import models
import profiler
from models import encoders
from models.bit import linear

FAMILIES = ["transformer", "conformer", "squeezeformer", "sparseformer"]
BASE = ["vanilla", "conformer-s", "squeezeformer-xs", "sparseformer-dn-s", "sparseformer-sw-s"]


def test_the_families_list_the_zoo_models():
    assert [family.name for family in encoders.families()] == FAMILIES
    presets = [name for family in encoders.families() for name in family.presets]
    assert presets == BASE
    assert models.names() == presets + [f"bq-{name}" for name in presets]
    for name in models.names():
        config = models.config(name)
        assert name.removeprefix("bq-") in encoders.family(config.encoder).presets
        assert config.family is encoders.family(config.encoder)


def test_which_families_hold_convolutions():
    convolution = {family.name for family in encoders.families() if family.has_convolution}
    assert convolution == {"conformer", "squeezeformer"}


def test_an_unknown_family_is_named_with_the_known_ones():
    with pytest.raises(ValueError, match="unknown encoder 'nope'.*sparseformer"):
        encoders.family("nope")


def test_a_family_or_model_name_is_registered_once(monkeypatch):
    monkeypatch.setattr(encoders, "FAMILIES", dict(encoders.FAMILIES))
    with pytest.raises(ValueError, match="already registered"):
        encoders.register(encoders.EncoderFamily("conformer", build=lambda *a: None))
    with pytest.raises(ValueError, match="vanilla"):
        encoders.register(encoders.EncoderFamily("other", build=lambda *a: None,
                                                 presets={"vanilla": {}}))


# ------------------------------------------------------------------ a family of the test's own
class ToyEncoder(nn.Module):
    """Blocks of one D x D linear layer each (at the feed-forward bit pair)."""

    def __init__(self, layers: int, dim: int, quantization):
        super().__init__()
        self.layers = nn.ModuleList(linear(dim, dim, quantization=quantization.feed_forward)
                                    for _ in range(layers))

    def forward(self, x, padding_mask=None):
        states = []
        for layer in self.layers:
            x = layer(x)
            states.append(x)
        return states


def _toy_check(config):
    return None if config.dim % 16 == 0 else f"toy dim must be a multiple of 16, got {config.dim}"


TOY = encoders.EncoderFamily(
    "toyformer",
    build=lambda config, shape, common: ToyEncoder(config.layers, config.dim,
                                                   common["quantization"]),
    presets={"toyformer-xs": dict(layers=3, dim=64, heads=4, ffn_ratio=2,
                                  ffn_activation="gelu")},
    check=_toy_check,
)


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setattr(encoders, "FAMILIES", dict(encoders.FAMILIES))
    return encoders.register(TOY)


def test_a_registered_family_joins_the_zoo(toy):
    assert models.names() == BASE + ["toyformer-xs"] + [f"bq-{n}" for n in BASE] + [
        "bq-toyformer-xs"]
    config = models.config("toyformer-xs")
    assert (config.encoder, config.layers, config.dim, config.ffn_dim) == ("toyformer", 3, 64, 128)
    assert config.family is TOY
    with pytest.raises(ValueError, match="toy dim must be a multiple of 16"):
        models.config("toyformer-xs", dim=72, heads=4, pos_conv_groups=8)
    with pytest.raises(ValueError, match="only for sparseformers"):
        models.config("toyformer-xs", attention="masked")


def test_a_registered_family_builds_and_runs(toy):
    model = models.build("toyformer-xs", seed=0).eval()
    assert isinstance(model.encoder, ToyEncoder)
    waveforms = torch.randn(2, 16_000)
    out = model(waveforms, torch.tensor([16_000, 12_000]))
    assert len(out.hidden_states) == 3 + 1
    assert out.last_hidden_state.shape == (2, 49, 64)   # (16000 - 400) // 320 + 1 frames


def test_a_registered_family_profiles(toy):
    frames, dim, layers = 49, 64, 3
    float_profile = profiler.profile(models.build("toyformer-xs").eval(), torch.randn(1, 16_000))
    encoder = [float_profile.modules[f"encoder.layers.{i}"] for i in range(layers)]
    assert [row["macs"] for row in encoder] == [frames * dim * dim] * layers
    assert [float_profile.module_bits(f"encoder.layers.{i}") for i in range(layers)] == [
        {"W32A32": frames * dim * dim}] * layers

    binarized = profiler.profile(models.build("bq-toyformer-xs").eval(), torch.randn(1, 16_000))
    assert [binarized.module_bits(f"encoder.layers.{i}") for i in range(layers)] == [
        {"W1A1": frames * dim * dim}] * layers
