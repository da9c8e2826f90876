"""Profiles of the zoo: identical on meta and CPU, and with or without the meta shortcuts."""
import pytest
import torch

import models
import profiler
import profiler.op_counter as op_counter

SMALL = dict(layers=2)


@pytest.mark.parametrize("name", models.names())
def test_meta_and_cpu_profiles_are_identical(name):
    model = models.build(name, seed=0, **SMALL).eval()
    wave = torch.randn(2, 16_000)
    lengths = torch.tensor([16_000, 12_000])
    meta = profiler.profile(model, (wave, lengths)).to_dict()
    cpu = profiler.profile(model, (wave, lengths), device="cpu").to_dict()
    assert meta["totals"] == cpu["totals"]
    assert meta["modules"] == cpu["modules"]
    assert not meta["unsupported"]


def test_meta_shortcuts_change_nothing(monkeypatch):
    fast = {}
    for name in models.names():
        model = models.build(name, device="meta").eval()
        fast[name] = profiler.profile(model, torch.empty(1, 32_000, device="meta")).to_dict()
    monkeypatch.setattr(op_counter, "fast_output", lambda func, args, kwargs: None)
    for name in models.names():
        model = models.build(name, device="meta").eval()
        slow = profiler.profile(model, torch.empty(1, 32_000, device="meta")).to_dict()
        assert slow["totals"] == fast[name]["totals"], name
        assert slow["modules"] == fast[name]["modules"], name
        assert slow["by_operator"] == fast[name]["by_operator"], name


def test_binarized_models_put_encoder_products_in_bop_bq():
    model = models.build("bq-sparseformer-dn-s", device="meta").eval()
    p = profiler.profile(model, torch.empty(1, 160_000, device="meta"))
    encoder = p.subtree("encoder")
    # every MAC inside the encoder is W1A1 or A1A1; the float ones are the front end,
    # projections and the positional convolution
    assert encoder["macs_bq"] == encoder["macs"] > 0
    assert set(p.by_bits) == {"W1A1", "A1A1", "W32A32"}
    assert p.totals["macs_nonq"] == p.totals["macs"] - encoder["macs"]
