"""The training adapter (interface + bundled backend) and the s3prl-compatible upstream."""
import json

import pytest
import torch
from train_fixtures import TINY_MODEL, TINY_OVERRIDES, tiny_corpus

import models
from profiler.adapters import (
    EvalRequest,
    TrainingBackend,
    TrainRequest,
    available_backends,
    get_backend,
)
from profiler.adapters.s3prl_upstream import (
    UpstreamExpert,
    ZooUpstream,
    pad_waveforms,
    upstream_from_checkpoint,
)
from profiler.errors import UsageError


def test_backend_registry():
    backend = get_backend()
    assert backend.name == "bundled" and isinstance(backend, TrainingBackend)
    assert "bundled" in available_backends()
    with pytest.raises(UsageError, match="unknown training backend"):
        get_backend("fairseq")


def test_bundled_backend_trains_and_evaluates(tmp_path):
    data = tiny_corpus(tmp_path / "corpus", tasks=("pretrain", "ks"))
    backend = get_backend()
    result = backend.pretrain(TrainRequest(
        out=tmp_path / "run", model=TINY_MODEL, data=data, overrides=TINY_OVERRIDES, steps=2,
        batch_size=2, crop_seconds=0.5, clusters=8, warmup_steps=1, progress=False))
    assert result.steps == 2 and result.checkpoint.name == "step-00000002"
    assert result.final_loss is not None and result.final_loss > 0
    evaluation = backend.evaluate(EvalRequest(task="ks", out=tmp_path / "eval",
                                              upstream=tmp_path / "run", steps=10,
                                              progress=False))
    assert evaluation.metric == "accuracy" and evaluation.chance == pytest.approx(1 / 12, abs=1e-6)
    saved = json.loads(evaluation.results_path.read_text())
    assert saved["data"]["folder"] == str(data.resolve())       # the upstream's own corpus
    assert saved["upstream"]["step"] == 2
    with pytest.raises(UsageError, match="data folder does not exist"):
        backend.evaluate(EvalRequest(task="ks", out=tmp_path / "e2", upstream=tmp_path / "run",
                                     data=tmp_path / "nowhere", progress=False))

    upstream = upstream_from_checkpoint(tmp_path / "run")
    assert upstream.name == TINY_MODEL and not upstream.model.training
    assert isinstance(UpstreamExpert(str(tmp_path / "run")).model, models.HuBERT)


@pytest.fixture(scope="module")
def upstream():
    return ZooUpstream(models.build(TINY_MODEL, seed=0, **TINY_OVERRIDES).eval())


def test_s3prl_interface_on_unequal_lengths(upstream):
    lengths = [16000, 8000, 12345]
    wavs = [torch.randn(n) * 0.1 for n in lengths]
    with torch.no_grad():
        out = upstream(wavs)
    model = upstream.model
    assert upstream.get_downsample_rates("hidden_states") == 320
    assert len(out["hidden_states"]) == TINY_OVERRIDES["layers"] + 1 == upstream.num_layers
    frames = [model.frames(n) for n in lengths]
    for state in out["hidden_states"]:
        assert state.shape == (3, max(frames), TINY_OVERRIDES["dim"])
    assert out["frame_lengths"].tolist() == frames
    assert out["padding_mask"].sum(dim=1).tolist() == [max(frames) - f for f in frames]
    with torch.no_grad():   # the longest one has no padding: same as running it alone
        alone = upstream([wavs[0]])["last_hidden_state"][0]
    assert torch.allclose(alone, out["last_hidden_state"][0], atol=1e-5)
    assert upstream.hidden_sizes == [TINY_OVERRIDES["dim"]] * upstream.num_layers


@pytest.mark.parametrize("bad, message", [
    ([], "non-empty"),
    ([torch.randn(2, 1600)], "stereo"),
    ([torch.tensor([0.0, float("nan")] * 400)], "NaN"),
    ([torch.zeros(0)], "no samples"),
    ([torch.zeros(800, dtype=torch.int16)], "float"),
])
def test_s3prl_wrapper_rejects_bad_waveforms(upstream, bad, message):
    with pytest.raises(ValueError, match=message):
        pad_waveforms(bad)


def test_upstream_expert_from_a_zoo_name():
    expert = UpstreamExpert("bq-conformer-s")
    assert expert.name == "bq-conformer-s" and expert.get_downsample_rates("x") == 320
    assert expert.num_layers == 17
