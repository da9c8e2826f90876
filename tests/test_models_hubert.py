"""HuBERT around the zoo's encoders: shapes, padding, masking, training, determinism."""
import pytest
import torch
import torch.nn.functional as F

import models

FULL_SHAPES = {  # name: (encoder, layers, dim, heads)
    "vanilla": ("transformer", 12, 768, 12),
    "conformer-s": ("conformer", 16, 144, 4),
    "squeezeformer-xs": ("squeezeformer", 16, 144, 4),
    "sparseformer-dn-s": ("sparseformer", 16, 256, 4),
    "sparseformer-sw-s": ("sparseformer", 8, 512, 4),
}

SMALL = dict(layers=2, dim=32, heads=4, num_classes=8, max_relative_positions=128,
             conv_kernel_size=7, sparse_block=8, sparse_summary=2)


def _small(name, **overrides):
    options = dict(SMALL)
    if "sparseformer" not in name:
        options.pop("sparse_block"), options.pop("sparse_summary")
    if "conformer" not in name and "squeezeformer" not in name:
        options.pop("max_relative_positions"), options.pop("conv_kernel_size")
    options.update(overrides)
    return models.build(name, **options)


@pytest.mark.parametrize("name", models.names())
def test_full_size_build_on_meta(name):
    encoder, layers, dim, heads = FULL_SHAPES[name.removeprefix("bq-")]
    model = models.build(name, device="meta")
    config = model.config
    assert (config.name, config.encoder, config.layers, config.dim, config.heads) == \
        (name, encoder, layers, dim, heads)
    assert config.ffn_dim == 4 * dim and config.frontend == "fastconv"
    assert config.binarized == name.startswith("bq-")
    assert model.downsample_rate == 320 and model.frames(160_000) == 499

    waveforms = torch.empty(2, 160_000, device="meta")
    lengths = torch.tensor([160_000, 96_000], device="meta")
    out = model(waveforms, lengths)
    assert out.last_hidden_state.shape == (2, 499, dim)
    assert len(out.hidden_states) == layers + 1
    assert all(h.shape == (2, 499, dim) for h in out.hidden_states)
    assert out.padding_mask.shape == (2, 499) and out.padding_mask.dtype == torch.bool
    assert out.last_hidden_state is out.hidden_states[-1]


def test_vanilla_parameter_count_closed_form():
    D, F_, L, C = 768, 3072, 12, 500
    frontend = 1_843_968
    layer = 4 * (D * D + D) + (2 * D * F_ + F_ + D) + 4 * D
    positional_conv = D * (D // 16) * 128 + 128 + D  # weight-norm direction and gains, bias
    around = 2 * 512 + (512 * D + D) + D + positional_conv + 2 * D + (D * 256 + 256) + C * 256
    model = models.build("vanilla", device="meta")
    assert sum(p.numel() for p in model.parameters()) == frontend + L * layer + around


@pytest.mark.parametrize("name", models.names())
def test_small_forward_on_cpu_with_padding(name):
    model = _small(name, seed=0).eval()
    waveforms = torch.randn(2, 16_000)
    lengths = torch.tensor([16_000, 6_400])
    with torch.no_grad():
        out = model(waveforms, lengths)
    # 16 000 samples -> 49 frames; 6 400 -> 19
    assert out.last_hidden_state.shape == (2, 49, 32)
    assert out.padding_mask[0].sum() == 0
    assert out.padding_mask[1].tolist() == [False] * 19 + [True] * 30
    assert len(out.hidden_states) == 3
    assert all(torch.isfinite(h).all() for h in out.hidden_states)


def test_no_lengths_no_padding_mask():
    model = _small("vanilla").eval()
    with torch.no_grad():
        out = model(torch.randn(1, 4_000))
    assert out.padding_mask is None and out.last_hidden_state.shape == (1, 12, 32)


@pytest.mark.parametrize("name", ["vanilla", "conformer-s", "squeezeformer-xs",
                                  "sparseformer-dn-s", "bq-conformer-s"])
def test_encoder_ignores_padding(name):
    model = _small(name, layers=4, seed=0).eval()
    x = torch.randn(1, 21, 32)
    padded = torch.cat([x, torch.randn(1, 6, 32)], dim=1)
    mask = torch.tensor([[False] * 21 + [True] * 6])
    with torch.no_grad():
        short = model._encode(x, None)
        long = model._encode(padded, mask)
    for a, b in zip(short, long):
        assert torch.allclose(a, b[:, :21], atol=1e-4)


def test_forward_never_masks_even_in_training_mode():
    model = _small("vanilla", dropout=0.0, attention_dropout=0.0, input_dropout=0.0, seed=0)
    waveforms = torch.randn(1, 8_000)
    model.train()
    with torch.no_grad():
        train_out = model(waveforms).last_hidden_state
    model.eval()
    with torch.no_grad():
        eval_out = model(waveforms).last_hidden_state
    assert torch.allclose(train_out, eval_out, atol=1e-6)


def test_pretrain_forward_masks_spans_inside_real_frames():
    model = _small("conformer-s", seed=0)
    lengths = torch.tensor([32_000, 12_800])  # 99 and 39 frames
    out = model.pretrain_forward(torch.randn(2, 32_000), lengths,
                                 generator=torch.Generator().manual_seed(0))
    assert out.logits.shape == (2, 99, 8)
    assert out.mask_indices.shape == (2, 99) and out.mask_indices.dtype == torch.bool
    assert not (out.mask_indices & out.padding_mask).any()
    # at least 2 spans of 10 frames, at most int(0.8 * n / 10 + 1) spans
    for row, frames in enumerate([99, 39]):
        masked = int(out.mask_indices[row].sum())
        assert 10 <= masked <= 10 * int(0.8 * frames / 10 + 1)
    # cosine similarity / 0.1 lies in [-10, 10]
    assert out.logits.abs().max() <= 10 + 1e-4
    again = model.pretrain_forward(torch.randn(2, 32_000), lengths,
                                   generator=torch.Generator().manual_seed(0))
    assert torch.equal(out.mask_indices, again.mask_indices)


def test_pretrain_padding_mask_is_a_tensor_without_lengths():
    out = _small("vanilla", seed=0).pretrain_forward(torch.randn(2, 4_000))
    assert out.padding_mask.shape == (2, 12) and not out.padding_mask.any()
    assert out.mask_indices.sum(dim=1).min() >= 10


def test_span_mask_statistics():
    from models.hubert import span_mask
    mask = span_mask([500] * 64, 500, 0.8, 10, generator=torch.Generator().manual_seed(0))
    # 40 (or 41) spans of 10 over 500 frames, overlapping:
    # expected coverage 1 - (1 - 10/490)^40 ~ 0.56
    coverage = mask.float().mean().item()
    assert 0.5 < coverage < 0.62


def test_logits_are_scaled_cosine_similarities():
    model = _small("vanilla", seed=0)
    hidden = torch.randn(1, 3, 32)
    logits = model.logits(hidden)
    projected = model.final_projection(hidden)
    expected = F.cosine_similarity(projected[:, :, None, :], model.label_embeddings[None, None],
                                   dim=-1) / 0.1
    assert torch.allclose(logits, expected, atol=1e-4)


@pytest.mark.parametrize("name", ["bq-sparseformer-dn-s", "bq-conformer-s"])
def test_binarized_model_loss_goes_down(name):
    torch.manual_seed(0)
    model = _small(name, dropout=0.0, attention_dropout=0.0, input_dropout=0.0, seed=0,
                   attention="blocked") if "sparse" in name else \
        _small(name, dropout=0.0, attention_dropout=0.0, input_dropout=0.0, seed=0)
    model.train()
    waveforms = torch.randn(2, 8_000)
    lengths = torch.tensor([8_000, 6_400])
    targets = torch.randint(0, 8, (2, 24))  # toy k-means labels, one per frame
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for step in range(12):
        out = model.pretrain_forward(waveforms, lengths,
                                     generator=torch.Generator().manual_seed(step))
        selected = out.mask_indices & ~out.padding_mask
        loss = F.cross_entropy(out.logits[selected], targets[selected])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0], losses


def test_seeded_builds_are_deterministic():
    state = torch.random.get_rng_state()
    first = _small("bq-squeezeformer-xs", seed=123).state_dict()
    second = _small("bq-squeezeformer-xs", seed=123).state_dict()
    other = _small("bq-squeezeformer-xs", seed=124).state_dict()
    assert torch.equal(state, torch.random.get_rng_state())  # the global stream is untouched
    assert first.keys() == second.keys()
    for key, value in first.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, second[key]), key
    assert any(isinstance(v, torch.Tensor) and v.is_floating_point()
               and not torch.equal(v, other[k]) for k, v in first.items())


def test_half_precision_meta_build():
    model = models.build("vanilla", device="meta", dtype=torch.float16)
    assert {p.dtype for p in model.parameters()} == {torch.float16}
    assert all(p.is_meta for p in model.parameters())


def test_wav2vec2_front_end_override():
    model = models.build("conformer-s", frontend="wav2vec2", device="meta")
    assert sum(p.numel() for p in model.feature_extractor.parameters()) == 4_200_448
    assert model.frames(160_000) == 499


@pytest.mark.parametrize("name", models.names())
def test_an_utterance_encodes_the_same_alone_and_padded_in_a_batch(name):
    # Whole model, waveform in: front-end statistics, attention keys, convolutions (the
    # Squeezeformer's time reduction included) all skip the padding. Reference: alone.
    model = _small(name, layers=4, seed=0).eval()
    torch.manual_seed(1)
    short, long = torch.randn(6_000), torch.randn(9_000)
    batch = torch.stack([torch.cat([short, torch.zeros(3_000)]), long])
    with torch.no_grad():
        padded = model(batch, torch.tensor([6_000, 9_000])).hidden_states
        alone = model(short[None]).hidden_states
    frames = model.frames(6_000)
    assert len(padded) == len(alone) == 5
    for together, own in zip(padded, alone):
        torch.testing.assert_close(together[0, :frames], own[0], rtol=1e-4, atol=1e-4)
