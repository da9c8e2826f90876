"""Datasets over the synthetic corpus, padding collate, cropping and length bucketing."""
import pytest
import torch
from torch.utils.data import DataLoader

from models.trainer import DataError
from models.trainer.data import synth, synth_plan
from models.trainer.data.datasets import (
    ClassificationDataset,
    LengthBucketBatchSampler,
    PhonemeDataset,
    PretrainDataset,
    Vocabulary,
    collate,
)
from models.trainer.data.features import encoder_frames
from models.trainer.data.manifest import read_manifest, write_labels
from models.trainer.data.sentences import KS_CLASSES
from models.trainer.pretrain.targets import build_targets

SIZES = synth_plan.CorpusSizes(pretrain_train=4, pretrain_valid=1, ks_per_class_train=1,
                               ks_per_class_valid=1, ks_per_class_test=1, sid_speakers=2,
                               sid_train_per_speaker=2, sid_valid_per_speaker=1,
                               sid_test_per_speaker=1, pr_train=3, pr_valid=1, pr_test=1)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("datasets") / "corpus"
    synth.synthesize_corpus(out, seed=4, sizes=SIZES, progress=False)
    build_targets([out / "pretrain" / "train.tsv"], n_clusters=4, max_iter=5, progress=False)
    return out


def test_pretrain_items_and_aligned_crops(corpus):
    full = PretrainDataset(corpus / "pretrain" / "train.tsv")
    item = full[0]
    assert item["waveform"].dtype == torch.float32
    assert item["frame_labels"].shape == (encoder_frames(item["waveform"].numel()),)
    cropped = PretrainDataset(corpus / "pretrain" / "train.tsv", max_samples=8000, seed=1)
    for index in range(len(full)):
        whole, part = full[index], cropped[index]
        assert part["waveform"].numel() == min(8000, whole["waveform"].numel())
        assert part["frame_labels"].numel() == encoder_frames(part["waveform"].numel())
        # The crop starts on an encoder frame: find it and check labels match that span.
        start = next(s for s in range(0, whole["waveform"].numel(), 320)
                     if torch.equal(whole["waveform"][s:s + 8000], part["waveform"]))
        first = start // 320
        assert torch.equal(part["frame_labels"],
                           whole["frame_labels"][first:first + part["frame_labels"].numel()])
    assert cropped.lengths == [min(n, 8000) for n in full.manifest.num_samples]
    again = PretrainDataset(corpus / "pretrain" / "train.tsv", max_samples=8000, seed=1)
    assert torch.equal(again[0]["waveform"], cropped[0]["waveform"])   # reproducible
    audio_only = PretrainDataset(corpus / "pretrain" / "valid.tsv", labels=False)
    assert "frame_labels" not in audio_only[0]


def test_classification_and_phoneme_items(corpus):
    ks = ClassificationDataset(corpus / "ks" / "train.tsv", "ks")
    assert ks.vocabulary.symbols == KS_CLASSES
    assert sorted(ks[i]["target"] for i in range(len(ks))) == list(range(12))
    sid = ClassificationDataset(corpus / "sid" / "test.tsv", "sid", max_samples=4000)
    assert {sid[i]["target"] for i in range(len(sid))} == {0, 1}
    assert all(sid[i]["waveform"].numel() <= 4000 for i in range(len(sid)))
    pr = PhonemeDataset(corpus / "pr" / "train.tsv")
    sequence = pr[0]["phonemes"]
    assert sequence.dtype == torch.long and sequence.numel() > 5
    line = (corpus / "pr" / "train.phn").read_text().splitlines()[0]
    assert pr.vocabulary.decode(sequence.tolist()) == line.split()
    with pytest.raises(DataError, match="cannot crop"):
        PhonemeDataset(corpus / "pr" / "train.tsv", max_samples=16000)


def test_collate_pads_and_masks(corpus):
    pr = PhonemeDataset(corpus / "pr" / "train.tsv")
    batch = collate([pr[0], pr[1], pr[2]])
    lengths = batch["lengths"]
    assert batch["waveforms"].shape == (3, int(lengths.max()))
    for row in range(3):
        assert not batch["padding_mask"][row, :lengths[row]].any()
        assert batch["padding_mask"][row, lengths[row]:].all()
        assert (batch["waveforms"][row, lengths[row]:] == 0).all()
        count = batch["phoneme_lengths"][row]
        assert (batch["phonemes"][row, count:] == -100).all()
    loader = DataLoader(PretrainDataset(corpus / "pretrain" / "train.tsv"), batch_size=2,
                        collate_fn=collate)
    first = next(iter(loader))
    assert first["frame_labels"].shape[0] == 2 and first["frame_label_lengths"].tolist() == [
        encoder_frames(int(n)) for n in first["lengths"]]
    ks = collate([ClassificationDataset(corpus / "ks" / "valid.tsv", "ks")[i] for i in range(4)])
    assert ks["targets"].tolist() == [0, 1, 2, 3] and ks["waveforms"].shape == (4, 16000)


def test_length_buckets():
    lengths = [100, 5000, 300, 4000, 200, 16000, 700, 650, 90, 3000]
    sampler = LengthBucketBatchSampler(lengths, max_batch_samples=8000, seed=3)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        assert len(batch) == 1 or len(batch) * max(lengths[i] for i in batch) <= 8000
    assert list(sampler) == batches and len(sampler) == len(batches)
    sampler.set_epoch(1)
    assert sorted(map(sorted, sampler)) == sorted(map(sorted, batches))  # same packing
    capped = LengthBucketBatchSampler(lengths, max_batch_samples=10**9, max_batch_size=3,
                                      shuffle=False)
    assert [len(b) for b in capped] == [3, 3, 3, 1]


def test_label_mismatches_are_data_errors(corpus, tmp_path):
    manifest = read_manifest(corpus / "pretrain" / "train.tsv")
    bad = tmp_path / "bad.km"
    write_labels(bad, ["1 2 3"] * len(manifest))
    with pytest.raises(DataError, match="one per 50 Hz encoder frame"):
        PretrainDataset(manifest, labels=bad)[0]
    write_labels(bad, ["1"])
    with pytest.raises(DataError, match="label lines for a manifest"):
        PretrainDataset(manifest, labels=bad)
    with pytest.raises(DataError, match="not in the vocabulary"):
        ClassificationDataset(corpus / "ks" / "train.tsv", "ks", vocabulary=Vocabulary(["yes"]))
