"""HuBERT's masked-prediction loss on a hand-computed case, label alignment, lr schedule."""
import math

import pytest
import torch

from models.trainer.pretrain.batches import crop_to_shortest
from models.trainer.pretrain.loss import align_labels, masked_prediction_loss
from models.trainer.pretrain.run_setup import lr_factor


def _case():
    # One utterance, 4 frames, 2 units. Frame 3 is padding (and masked, and labelled -100).
    logits = torch.tensor([[[2.0, 0.0], [0.0, 1.0], [1.0, 3.0], [5.0, 0.0]]], requires_grad=True)
    labels = torch.tensor([[0, 0, 0, -100]])
    mask = torch.tensor([[True, False, True, True]])
    padding = torch.tensor([[False, False, False, True]])
    return logits, labels, mask, padding


def test_masked_loss_by_hand():
    logits, labels, mask, padding = _case()
    parts = masked_prediction_loss(logits, labels, mask, padding)
    # -log softmax: frame 0: log(1 + e^-2); frame 2: log(1 + e^2). Frame 1 is unmasked.
    expected = math.log(1 + math.exp(-2)) + math.log(1 + math.exp(2))
    assert parts.loss.item() == pytest.approx(expected, rel=1e-6)
    assert int(parts.sample_size) == 2 and int(parts.masked) == 2
    assert int(parts.masked_correct) == 1            # frame 0 right, frame 2 wrong
    assert parts.unmasked_loss.item() == pytest.approx(math.log(1 + math.e), rel=1e-6)
    assert int(parts.unmasked) == 1 and int(parts.unmasked_correct) == 0
    parts.loss.backward()
    # d/dlogits of CE = softmax - onehot on the counted frames only.
    p0 = torch.softmax(torch.tensor([2.0, 0.0]), 0) - torch.tensor([1.0, 0.0])
    p2 = torch.softmax(torch.tensor([1.0, 3.0]), 0) - torch.tensor([1.0, 0.0])
    assert torch.allclose(logits.grad[0, 0], p0) and torch.allclose(logits.grad[0, 2], p2)
    assert torch.equal(logits.grad[0, 1], torch.zeros(2))
    assert torch.equal(logits.grad[0, 3], torch.zeros(2))


def test_unmasked_weight_adds_the_unmasked_frames():
    logits, labels, mask, padding = _case()
    parts = masked_prediction_loss(logits, labels, mask, padding, unmasked_weight=0.5)
    expected = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(2))
                + 0.5 * math.log(1 + math.e))
    assert parts.loss.item() == pytest.approx(expected, rel=1e-6)
    assert int(parts.sample_size) == 3


def test_labels_are_cut_or_padded_to_the_model_frames():
    labels = torch.tensor([[1, 2, 3]])
    assert align_labels(labels, 2).tolist() == [[1, 2]]
    assert align_labels(labels, 5).tolist() == [[1, 2, 3, -100, -100]]


def test_batches_are_cut_to_the_shortest_utterance():
    batch = {"waveforms": torch.ones(2, 1200), "lengths": torch.tensor([1200, 1000]),
             "frame_labels": torch.tensor([[1, 2, 3], [4, 5, -100]])}
    cut = crop_to_shortest(batch)
    assert cut["waveforms"].shape == (2, 1000) and cut["lengths"].tolist() == [1000, 1000]
    assert cut["frame_labels"].tolist() == [[1, 2], [4, 5]]    # 1000 samples -> 2 frames


def test_learning_rate_warms_up_then_decays_to_zero():
    assert lr_factor(0, 10, 100) == pytest.approx(0.1)
    assert lr_factor(9, 10, 100) == pytest.approx(1.0)
    assert lr_factor(10, 10, 100) == pytest.approx(1.0)
    assert lr_factor(55, 10, 100) == pytest.approx(0.5)
    assert lr_factor(100, 10, 100) == 0.0
    assert lr_factor(0, 0, 4) == 1.0
