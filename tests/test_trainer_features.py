"""Kaldi-compatible MFCC: closed-form checks and a plain numpy re-derivation of Kaldi's
formulas (torchaudio, the usual cross-check, has no CPU build here)."""
import math

import numpy as np
import pytest
import torch

from models.trainer import DataError
from models.trainer.data.features import (
    align_to_encoder,
    compute_deltas,
    encoder_frames,
    log_mel_energies,
    mel_bin_centers,
    mel_scale,
    mfcc,
    mfcc_features,
    mfcc_with_deltas,
    num_frames,
)

RATE = 16000


def kaldi_mfcc_reference(wave, rate=RATE):
    """Kaldi's compute-mfcc-feats defaults, written out loop by loop (float64)."""
    x = np.asarray(wave, dtype=np.float64) * 32768.0
    length, shift, padded, bins, ceps, lifter = 400, 160, 512, 23, 13, 22.0
    count = 1 + (len(x) - length) // shift
    window = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / (length - 1))) ** 0.85
    mel = lambda f: 1127.0 * math.log(1.0 + f / 700.0)
    mel_low, mel_high = mel(20.0), mel(rate / 2)
    delta = (mel_high - mel_low) / (bins + 1)
    banks = np.zeros((bins, padded // 2 + 1))
    for b in range(bins):
        left, center, right = (mel_low + b * delta, mel_low + (b + 1) * delta,
                               mel_low + (b + 2) * delta)
        for i in range(padded // 2):
            m = mel(rate / padded * i)
            if left < m < right:
                banks[b, i] = ((m - left) / (center - left) if m <= center
                               else (right - m) / (right - center))
    dct = np.zeros((ceps, bins))
    for k in range(ceps):
        norm = math.sqrt(1.0 / bins) if k == 0 else math.sqrt(2.0 / bins)
        for n in range(bins):
            dct[k, n] = norm * math.cos(math.pi / bins * (n + 0.5) * k)
    eps = np.finfo(np.float32).eps
    out = np.zeros((count, ceps))
    for f in range(count):
        frame = x[f * shift:f * shift + length].copy()
        frame -= frame.mean()
        energy = math.log(max(float(frame @ frame), eps))
        for i in range(length - 1, 0, -1):
            frame[i] -= 0.97 * frame[i - 1]
        frame[0] -= 0.97 * frame[0]
        frame *= window
        spectrum = np.fft.rfft(frame, n=padded)
        power = spectrum.real ** 2 + spectrum.imag ** 2
        features = dct @ np.log(np.maximum(banks @ power, eps))
        features *= 1.0 + 0.5 * lifter * np.sin(np.pi * np.arange(ceps) / lifter)
        features[0] = energy
        out[f] = features
    return out


def test_matches_the_numpy_rederivation_of_kaldi():
    rng = np.random.default_rng(0)
    t = np.arange(RATE // 2) / RATE
    wave = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t)) \
        + 0.05 * rng.standard_normal(t.size)
    ours = mfcc(torch.tensor(wave, dtype=torch.float32)).double().numpy()
    reference = kaldi_mfcc_reference(wave.astype(np.float32))
    assert ours.shape == reference.shape == (num_frames(t.size), 13)
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-3)


@pytest.mark.parametrize("frequency", [300.0, 1000.0, 2500.0, 6000.0])
def test_pure_tone_peaks_in_the_right_mel_bin(frequency):
    t = np.arange(RATE) / RATE
    energies = log_mel_energies(0.5 * np.sin(2 * np.pi * frequency * t).astype(np.float32))
    loudest = int(energies.mean(dim=0).argmax())
    # The filter whose centre is nearest in mel holds the tone's peak.
    expected = int(np.argmin(np.abs(mel_scale(mel_bin_centers()) - mel_scale(frequency))))
    assert loudest == expected
    assert abs(mel_bin_centers()[loudest] - frequency) < 0.15 * frequency


def test_energy_of_known_signals():
    # A constant loses everything to DC removal: log energy hits Kaldi's floor.
    flat = mfcc(np.full(800, 0.25, np.float32))
    np.testing.assert_allclose(flat[:, 0], math.log(np.finfo(np.float32).eps), rtol=1e-6)
    # Without DC removal its energy is 400 samples of (0.25 * 32768)^2.
    kept = mfcc(np.full(800, 0.25, np.float32), remove_dc_offset=False)
    np.testing.assert_allclose(kept[:, 0], math.log(400 * (0.25 * 32768) ** 2), rtol=1e-6)
    # A sine with whole periods per frame (400 Hz: 10 periods in 25 ms) has energy N A^2 / 2.
    t = np.arange(RATE) / RATE
    sine = mfcc((0.5 * np.sin(2 * np.pi * 400 * t)).astype(np.float32))
    np.testing.assert_allclose(sine[:, 0], math.log(400 * (0.5 * 32768) ** 2 / 2), rtol=1e-4)


def test_deltas_of_a_ramp_equal_its_slope():
    frames = torch.arange(20, dtype=torch.float64)[:, None] * torch.tensor([[0.5, -2.0]])
    out = compute_deltas(frames)
    assert out.shape == (20, 6)
    np.testing.assert_allclose(out[:, :2], frames)
    np.testing.assert_allclose(out[4:-4, 2:4], [[0.5, -2.0]] * 12)   # slope
    np.testing.assert_allclose(out[4:-4, 4:6], 0.0, atol=1e-12)       # no curvature
    # Kaldi replicates edge frames: at t=0 the delta is (1*1 + 2*2) / 10 * slope.
    np.testing.assert_allclose(out[0, 2:4], [0.25, -1.0])
    # Of a parabola t^2 the delta-delta is its second derivative, 2.
    parabola = compute_deltas(torch.arange(20, dtype=torch.float64)[:, None] ** 2)
    np.testing.assert_allclose(parabola[4:-4, 1], 2 * np.arange(4, 16))
    np.testing.assert_allclose(parabola[4:-4, 2], 2.0)


def test_frame_counts_and_alignment_to_the_encoder():
    assert encoder_frames(160000) == 499
    for samples in (400, 401, 719, 720, 16000, 16001, 33333, 160000):
        assert encoder_frames(samples) == (samples - 400) // 320 + 1
    assert encoder_frames(399) == 0 and num_frames(399) == 0
    assert num_frames(160000) == 998
    wave = np.random.default_rng(1).uniform(-0.5, 0.5, 16000 + 123).astype(np.float32)
    full = mfcc_with_deltas(wave)
    aligned = mfcc_features(wave)
    assert full.shape == (num_frames(wave.size), 39)
    assert aligned.shape == (encoder_frames(wave.size), 39) and aligned.dtype == torch.float32
    torch.testing.assert_close(aligned, full[::2][:aligned.shape[0]])
    assert align_to_encoder(full, 300).shape == (0, 39)


def test_short_and_bad_waveforms():
    assert mfcc(np.zeros(100, np.float32)).shape == (0, 13)
    assert mfcc_with_deltas(np.zeros(100, np.float32)).shape == (0, 39)
    with pytest.raises(DataError, match="NaN"):
        mfcc(np.array([0.0, np.nan] * 400, np.float32))
    with pytest.raises(DataError, match="mono"):
        mfcc(np.zeros((2, 800), np.float32))
    assert torch.equal(mfcc(np.ones(1600, np.float32) * 0.1, dither=1.0,
                            generator=torch.Generator().manual_seed(0)),
                       mfcc(np.ones(1600, np.float32) * 0.1, dither=1.0,
                            generator=torch.Generator().manual_seed(0)))
