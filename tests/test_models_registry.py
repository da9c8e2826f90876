"""The registry: names, overrides, validation."""
import dataclasses

import pytest
import torch

import models

TEN = ["vanilla", "conformer-s", "squeezeformer-xs", "sparseformer-dn-s", "sparseformer-sw-s",
       "bq-vanilla", "bq-conformer-s", "bq-squeezeformer-xs", "bq-sparseformer-dn-s",
       "bq-sparseformer-sw-s"]


def test_names_in_order():
    assert models.names() == TEN


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError) as error:
        models.build("nope")
    for name in TEN:
        assert name in str(error.value)
    with pytest.raises(ValueError):
        models.config("nope")


@pytest.mark.parametrize("overrides,words", [
    (dict(heads=5), ["heads", "dim"]),
    (dict(layers=-1), ["layers"]),
    (dict(layers=0), ["layers"]),
    (dict(dim=0), ["dim"]),
    (dict(ffn_ratio=-2), ["ffn_ratio"]),
    (dict(ffn_ratio=2, ffn_dim=100), ["ffn_ratio", "ffn_dim"]),
    (dict(frontend="mel"), ["frontend"]),
    (dict(attention="blocked"), ["attention"]),
    (dict(no_such_option=1), ["no_such_option"]),
    (dict(encoder="conformer"), ["encoder"]),
    (dict(conv_kernel_size=8), ["conv_kernel_size"]),
])
def test_invalid_overrides_fail_at_build_time(overrides, words):
    name = "conformer-s"
    with pytest.raises(ValueError) as error:
        models.build(name, device="meta", **overrides)
    for word in words:
        assert word in str(error.value)


def test_invalid_sparse_and_squeezeformer_overrides():
    with pytest.raises(ValueError, match="attention"):
        models.build("sparseformer-dn-s", attention="dense", device="meta")
    with pytest.raises(ValueError, match="sparse_summary"):
        models.build("sparseformer-dn-s", sparse_block=8, sparse_summary=9, device="meta")
    with pytest.raises(ValueError, match="recover_index"):
        models.build("squeezeformer-xs", reduce_index=10, recover_index=5, device="meta")
    for index in ("x", True, 2.0):      # "x" was a TypeError; True was taken as block 1
        with pytest.raises(ValueError, match=r"reduce_index < recover_index .* got "):
            models.build("squeezeformer-xs", reduce_index=index, device="meta")
    with pytest.raises(ValueError, match="dtype"):
        models.build("vanilla", dtype=torch.int8, device="meta")


def test_a_name_and_its_bits_cannot_disagree():
    """bq- names BiT's W1A1 builds: `binarized` is the name's, not an override (a W32A32
    `bq-vanilla` would be read as binarized by every report); a transformer quantizing its
    convolutions alone would quantize nothing."""
    for name, override in (("bq-vanilla", False), ("vanilla", True)):
        with pytest.raises(ValueError, match="'binarized' cannot be overridden"):
            models.config(name, binarized=override)
    with pytest.raises(ValueError, match="a transformer has none of: this W1A1 build would "
                                         "quantize nothing"):
        models.config("bq-vanilla", quantize_modules="convolution")
    assert models.config("bq-conformer-s", quantize_modules="convolution").quantize_modules \
        == ("convolution",)


def test_overrides():
    config = models.config("sparseformer-dn-s", attention="blocked", block_size=16, summary=4,
                           layers=3, num_classes=100)
    assert (config.attention, config.sparse_block, config.sparse_summary) == ("blocked", 16, 4)
    assert (config.layers, config.num_classes) == (3, 100)
    assert models.config("sparseformer-dn-s", stride=64, expressivity=16).sparse_block == 64
    assert models.config("vanilla", dim=128, heads=4).ffn_dim == 4 * 128   # keeps the ratio
    assert models.config("vanilla", ffn_ratio=2).ffn_dim == 2 * 768
    assert models.config("vanilla", ffn_dim=1000).ffn_dim == 1000
    assert models.config("conformer-s", frontend="wav2vec2").frontend == "wav2vec2"
    squeeze = models.config("squeezeformer-xs")
    assert (squeeze.reduce_index, squeeze.recover_index) == (7, 15)
    small = models.config("squeezeformer-xs", layers=4)
    assert (small.reduce_index, small.recover_index) == (1, 3)


def test_config_is_a_dataclass_with_the_contract_fields():
    config = models.build("bq-squeezeformer-xs", device="meta").config
    assert dataclasses.is_dataclass(config)
    fields = dataclasses.asdict(config)
    for key in ("name", "encoder", "layers", "dim", "heads", "ffn_dim", "frontend", "binarized"):
        assert key in fields
    assert (fields["binarized"], fields["ffn_activation"]) == (True, "relu")
    assert models.config("conformer-s").ffn_activation == "swish"
    # The paper's display settings belong to the paper layer (profiler.conventions).
    assert "precision" not in fields and "paper_float_bits" not in fields


def test_binarized_builds_use_binary_layers_only_in_the_encoder():
    model = models.build("bq-conformer-s", layers=1, device="meta")
    binary = {name for name, m in model.named_modules()
              if isinstance(m, (models.BinaryLinear, models.BinaryConv1d))}
    assert binary and all(name.startswith("encoder.") for name in binary)
    assert not isinstance(model.feature_projection, models.BinaryLinear)
    with_projections = models.build("bq-conformer-s", layers=1, binarize_projections=True,
                                    device="meta")
    assert isinstance(with_projections.feature_projection, models.BinaryLinear)
    assert isinstance(with_projections.final_projection, models.BinaryLinear)


def test_a_meta_build_skips_parameter_initialization(monkeypatch):
    import torch.nn as nn

    calls = []
    original = nn.init.normal_

    def counting(tensor, *args, **kwargs):
        calls.append(tensor.device.type)
        return original(tensor, *args, **kwargs)

    monkeypatch.setattr(nn.init, "normal_", counting)
    models.build("vanilla", device="meta", layers=1)
    assert calls == []
    models.build("vanilla", layers=1)
    assert calls and set(calls) == {"cpu"}
    assert nn.init.normal_ is counting  # put back after the build


@pytest.mark.parametrize("field", ("mask_prob", "dropout", "attention_dropout",
                                   "activation_dropout", "input_dropout", "logit_temperature"))
@pytest.mark.parametrize("value", ("0.5", None, True, float("nan")))
def test_a_rate_that_is_not_a_number_is_a_value_error_naming_it(field, value):
    with pytest.raises(ValueError, match=field):
        models.build("vanilla", device="meta", **{field: value})


def test_the_model_name_is_not_an_override():
    with pytest.raises(ValueError, match="'name' cannot be overridden"):
        models.build("vanilla", name="other", device="meta")
    with pytest.raises(ValueError, match="'name' cannot be overridden"):
        models.config("vanilla", name="other")
