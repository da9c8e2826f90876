"""k-means targets: fitting, saving without pickle, labelling a corpus, second iteration."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from models.constants import WAV2VEC2_KERNELS_AND_STRIDES
from models.trainer import DataError
from models.trainer.data import synth, synth_plan
from models.trainer.data.features import encoder_frames, mfcc_features
from models.trainer.data.manifest import read_dictionary, read_labels, read_manifest, write_manifest
from models.trainer.pretrain.kmeans import KMeansCenters, fit_kmeans, load_kmeans, save_kmeans
from models.trainer.pretrain.targets import (
    build_targets,
    hidden_layer_features,
    label_corpus,
    manifest_features,
)

SIZES = synth_plan.CorpusSizes(pretrain_train=4, pretrain_valid=2, ks_per_class_train=1,
                               ks_per_class_valid=1, ks_per_class_test=1, sid_speakers=1,
                               sid_train_per_speaker=1, sid_valid_per_speaker=1,
                               sid_test_per_speaker=1, pr_train=1, pr_valid=1, pr_test=1)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("targets") / "corpus"
    synth.synthesize_corpus(out, seed=0, sizes=SIZES, tasks=["pretrain"], progress=False)
    return out / "pretrain"


def _blobs(seed=0, per_cluster=200):
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=10.0, size=(5, 3))
    return np.concatenate([m + rng.normal(size=(per_cluster, 3)) for m in means]).astype(np.float32)


def test_fit_is_deterministic_and_prediction_matches_sklearn():
    data = _blobs()
    first = fit_kmeans([data[:500], data[500:]], n_clusters=5, seed=1, max_iter=20)
    again = fit_kmeans([data[:500], data[500:]], n_clusters=5, seed=1, max_iter=20)
    np.testing.assert_array_equal(first.cluster_centers_, again.cluster_centers_)
    centers = KMeansCenters(first.cluster_centers_)
    np.testing.assert_array_equal(centers.predict(data), first.predict(data))
    assert len(set(centers.predict(data).tolist())) == 5


def test_save_and_load_without_pickle(tmp_path):
    model = fit_kmeans([_blobs()], n_clusters=5, seed=0, max_iter=5)
    path = save_kmeans(model, tmp_path / "km.npz")
    loaded = load_kmeans(path)
    np.testing.assert_array_equal(loaded.cluster_centers_, model.cluster_centers_)
    with np.load(path, allow_pickle=False) as data:
        assert list(data.keys()) == ["centers"]
    (tmp_path / "bad.npz").write_bytes(b"not an npz")
    with pytest.raises(DataError, match="not a k-means centers file"):
        load_kmeans(tmp_path / "bad.npz")


def test_fit_rejects_too_little_or_bad_data():
    with pytest.raises(DataError, match="too few"):
        fit_kmeans([np.zeros((3, 2), np.float32)], n_clusters=5)
    with pytest.raises(DataError, match="no features"):
        fit_kmeans([], n_clusters=5)
    with pytest.raises(DataError, match="NaN"):
        fit_kmeans([np.full((20, 2), np.nan, np.float32)], n_clusters=2)


def test_mfcc_targets_for_a_corpus(corpus):
    written = build_targets([corpus / "train.tsv", corpus / "valid.tsv"], n_clusters=8,
                            seed=0, max_iter=10, progress=False)
    assert read_dictionary(corpus / "dict.km.txt") == [str(i) for i in range(8)]
    for tsv, km in zip(("train.tsv", "valid.tsv"), written["labels"]):
        manifest = read_manifest(corpus / tsv)
        lines = read_labels(km, expected=len(manifest))
        for line, samples in zip(lines, manifest.num_samples):
            units = [int(u) for u in line.split()]
            assert len(units) == encoder_frames(samples)      # one unit per 50 Hz frame
            assert all(0 <= u < 8 for u in units)
    first = (corpus / "train.km").read_bytes()
    build_targets([corpus / "train.tsv"], n_clusters=8, seed=0, max_iter=10, progress=False)
    assert (corpus / "train.km").read_bytes() == first       # deterministic
    # A reloaded model labels the same as the one that wrote the file.
    again = label_corpus(corpus / "train.tsv", mfcc_features, load_kmeans(corpus / "km.npz"),
                         corpus / "again.km", progress=False)
    assert again.read_bytes() == first


class TinyEncoder(nn.Module):
    """The wav2vec2 CNN shape, returning HubertOutput-like hidden states."""

    def __init__(self, frames_off_by=0):
        super().__init__()
        channels, layers = 1, []
        for kernel, stride in WAV2VEC2_KERNELS_AND_STRIDES:
            layers += [nn.Conv1d(channels, 8, kernel, stride), nn.GELU()]
            channels = 8
        self.cnn = nn.Sequential(*layers)
        self.proj = nn.Linear(8, 8)
        self.frames_off_by = frames_off_by

    def forward(self, waveforms):
        states = self.cnn(waveforms[:, None]).transpose(1, 2)
        if self.frames_off_by:
            states = states[:, :self.frames_off_by]
        return SimpleNamespace(hidden_states=(states, self.proj(states)))


def test_second_iteration_from_a_hidden_layer(corpus, tmp_path):
    torch.manual_seed(0)
    model = TinyEncoder().train()
    features_fn = hidden_layer_features(model, layer=1)
    frames = list(manifest_features(corpus / "train.tsv", features_fn))
    assert model.training                                   # flag restored
    manifest = read_manifest(corpus / "train.tsv")
    assert [f.shape for f in frames] == [(encoder_frames(n), 8) for n in manifest.num_samples]
    kmeans = fit_kmeans(frames, n_clusters=4, seed=0, max_iter=10)
    path = label_corpus(manifest, features_fn, kmeans, tmp_path / "it2.km", progress=False)
    lines = read_labels(path, expected=len(manifest))
    expected = [encoder_frames(n) for n in manifest.num_samples]
    assert [len(line.split()) for line in lines] == expected
    with pytest.raises(ValueError, match="out of range"):
        hidden_layer_features(model, layer=5)(np.zeros(16000, np.float32))
    with pytest.raises(ValueError, match="frames where"):
        hidden_layer_features(TinyEncoder(frames_off_by=10), layer=0)(np.zeros(16000, np.float32))


@pytest.mark.parametrize("preset", ["conformer-s", "sparseformer-dn-s", "squeezeformer-xs"])
def test_a_label_layer_state_equals_the_whole_forwards(preset):
    # The labels' forward stops at the label layer; the state must be the one the whole
    # model returns there.
    from models import registry

    torch.manual_seed(0)
    model = registry.build(preset, layers=4).eval()
    waveform = torch.randn(16000).numpy()
    with torch.inference_mode():
        whole = model(torch.as_tensor(waveform)[None]).hidden_states
    last_layer_calls = []
    model.encoder.layers[-1].register_forward_hook(lambda *_: last_layer_calls.append(1))
    for layer in range(5):
        state = hidden_layer_features(model, layer)(waveform)
        torch.testing.assert_close(state, whole[layer][0, :encoder_frames(16000)],
                                   rtol=0, atol=0)
    # Layers at the input's rate stop early; the Squeezeformer's half-rate middle runs whole.
    assert len(last_layer_calls) == (5 if preset == "squeezeformer-xs" else 1)


def test_stale_manifest_is_a_data_error(corpus, tmp_path):
    manifest = read_manifest(corpus / "train.tsv")
    stale = tmp_path / "stale.tsv"
    write_manifest(stale, manifest.root, [(manifest.files[0], manifest.num_samples[0] + 1)])
    with pytest.raises(DataError, match="stale manifest"):
        label_corpus(stale, mfcc_features, KMeansCenters(np.zeros((2, 39))), progress=False)
    assert not (tmp_path / "stale.km").exists()             # nothing half-written


def test_the_fit_and_the_labels_share_one_pass_over_the_training_features(corpus, tmp_path,
                                                                         monkeypatch):
    from models.trainer.pretrain import targets

    torch.manual_seed(0)
    features_fn = hidden_layer_features(TinyEncoder(), layer=1)
    calls = []

    def counted(waveform):
        calls.append(waveform.size)
        return features_fn(waveform)

    manifests = [corpus / "train.tsv", corpus / "valid.tsv"]
    train, valid = (len(read_manifest(path)) for path in manifests)
    kept = build_targets(manifests, 3, features_fn=counted, max_iter=5,
                         out_folder=tmp_path / "kept", progress=False)
    # One call per utterance: the fit's pass over train serves its labels too.
    assert len(calls) == train + valid
    calls.clear()
    monkeypatch.setattr(targets, "FEATURE_CACHE_BYTES", 1)   # too big to keep: read twice
    again = build_targets(manifests, 3, features_fn=counted, max_iter=5,
                          out_folder=tmp_path / "again", progress=False)
    assert len(calls) == 2 * train + valid
    for first, second in zip(kept["labels"], again["labels"]):
        assert first.read_text() == second.read_text()
