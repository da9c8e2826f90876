"""Span masking as HuBERT pre-training uses it: statistics, padding, reproducibility."""
import math

import pytest
import torch
from train_fixtures import TINY_OVERRIDES

import models
from models.hubert import span_mask
from models.trainer.pretrain.batches import derived_seed


def expected_masked_fraction(frames: int, mask_prob: float = 0.8, span: int = 10) -> float:
    """Exact expectation for span_mask: k = max(2, floor(p n / L + u)) distinct span starts
    drawn uniformly from the M = n - L possible ones; frame f is masked when a start lies in
    [f - L + 1, f]. P(f unmasked) = C(M - w_f, k) / C(M, k), w_f = starts covering f."""
    starts = max(frames - span, 1)
    base = mask_prob * frames / span
    total = 0.0
    for k_raw, weight in ((math.floor(base), 1 - (base - math.floor(base))),
                          (math.floor(base) + 1, base - math.floor(base))):
        k = min(max(2, k_raw), starts)
        covered = 0.0
        for frame in range(frames):
            w = len(range(max(0, frame - span + 1), min(frame, starts - 1) + 1))
            covered += 1 - math.comb(starts - w, k) / math.comb(starts, k)
        total += weight * covered / frames
    return total


@pytest.mark.parametrize("frames", [99, 249])
def test_masked_fraction_matches_mask_prob_and_length(frames):
    generator = torch.Generator().manual_seed(0)
    draws = 1500
    mask = span_mask([frames] * draws, frames, 0.8, 10, generator=generator)
    observed = mask.float().mean().item()
    expected = expected_masked_fraction(frames)
    # HuBERT's known ~50 % masked at p=0.8, L=10 (spans overlap), within sampling noise.
    assert 0.45 < expected < 0.62
    assert observed == pytest.approx(expected, abs=0.01)
    # Spans are runs of 10: every masked run is at least 10 frames unless cut at the end.
    row = mask[0].int()
    zero = torch.zeros(1, dtype=torch.int)
    edges = torch.diff(torch.cat([zero, row, zero]))
    starts, ends = torch.nonzero(edges == 1).flatten(), torch.nonzero(edges == -1).flatten()
    assert all(int(e - s) >= 10 or int(e) == frames for s, e in zip(starts, ends))


def test_no_masks_in_padding_and_at_least_two_spans():
    generator = torch.Generator().manual_seed(1)
    lengths = [100, 60, 13, 0]
    mask = span_mask(lengths, 100, 0.8, 10, generator=generator)
    for row, n in enumerate(lengths):
        assert not mask[row, n:].any()
    assert mask[1, :60].sum() >= 10          # >= 2 spans, overlapping at worst
    assert mask[2, :13].any() and not mask[3].any()


def test_model_masks_only_real_frames():
    model = models.build("sparseformer-dn-s", seed=0, **TINY_OVERRIDES)
    waveforms = torch.randn(2, 16000) * 0.1
    lengths = torch.tensor([16000, 8000])
    out = model.pretrain_forward(waveforms, lengths, generator=torch.Generator().manual_seed(0))
    assert out.padding_mask[1].sum() == model.frames(16000) - model.frames(8000)
    assert not (out.mask_indices & out.padding_mask).any()
    assert out.mask_indices[1].sum() > 0


def test_trainer_mask_seeds_depend_on_seed_step_and_micro_batch_only():
    def draw(*parts):
        return span_mask([99], 99, 0.8, 10,
                         generator=torch.Generator().manual_seed(derived_seed(*parts)))
    assert torch.equal(draw(0, 5, 1, 0), draw(0, 5, 1, 0))
    assert not torch.equal(draw(0, 5, 1, 0), draw(0, 5, 0, 0))
    assert not torch.equal(draw(0, 5, 1, 0), draw(0, 6, 1, 0))
