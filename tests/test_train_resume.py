"""A run killed mid-way and resumed ends bit-identical to an uninterrupted one (CPU)."""
import json

import pytest
import torch
from train_fixtures import tiny_corpus, train_settings

from models.trainer.fileio import read_log
from models.trainer.pretrain import checkpoint as ckpt
from models.trainer.pretrain.loop import pretrain
from models.trainer.pretrain.settings import settings_for_resume

TIMING = {"elapsed_seconds", "step_seconds"}


class Killed(Exception):
    pass


def _kill_at(step):
    def hook(done):
        if done == step:
            raise Killed
    return hook


def _final(run):
    checkpoint = ckpt.latest_checkpoint(run)
    return ckpt.load_model_file(checkpoint), ckpt.load_state_file(checkpoint)


def _assert_same_tree(a, b, where="state"):
    if torch.is_tensor(a):
        assert torch.is_tensor(b) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert set(a) == set(b), where
        for key in a:
            _assert_same_tree(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_same_tree(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return tiny_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.mark.parametrize("model", ["sparseformer-dn-s", "bq-sparseformer-dn-s"])
def test_killed_and_resumed_run_equals_uninterrupted_run(tmp_path, corpus, model):
    torch.set_num_threads(1)
    straight = tmp_path / "straight"
    pretrain(train_settings(straight, corpus, model))

    resumed = tmp_path / "resumed"
    with pytest.raises(Killed):   # killed after step 5; the last checkpoint is step 4
        pretrain(train_settings(resumed, corpus, model), on_step=_kill_at(5))
    assert ckpt.latest_checkpoint(resumed).name == "step-00000004"
    assert max(e["step"] for e in read_log(resumed / "log.jsonl")) == 5
    settings = settings_for_resume(resumed, {"progress": False})
    result = pretrain(settings)
    assert result.step == 6

    (model_a, state_a), (model_b, state_b) = _final(straight), _final(resumed)
    assert model_a["step"] == model_b["step"] == 6
    _assert_same_tree(model_a["model"], model_b["model"], "model")
    _assert_same_tree(state_a["optimizer"], state_b["optimizer"], "optimizer")
    _assert_same_tree(state_a["scheduler"], state_b["scheduler"], "scheduler")
    strip = lambda log: [{k: v for k, v in e.items() if k not in TIMING} for e in log]  # noqa: E731
    assert strip(read_log(straight / "log.jsonl")) == strip(read_log(resumed / "log.jsonl"))
    metadata = json.loads((resumed / "metadata.json").read_text())
    assert metadata["finished"] and metadata["sessions"] == 2 and metadata["step"] == 6


def test_resume_refuses_changed_settings_and_fresh_runs_refuse_old_folders(tmp_path, corpus):
    from models.trainer.errors import DataError

    run = tmp_path / "run"
    pretrain(train_settings(run, corpus, steps=2, save_every=2))
    with pytest.raises(DataError, match="already holds a training run"):
        pretrain(train_settings(run, corpus, steps=2))
    with pytest.raises(DataError, match="lr was"):
        settings_for_resume(run, {"lr": 0.123})
    # Resuming a finished run is a no-op that keeps the weights.
    before = ckpt.load_model_file(ckpt.latest_checkpoint(run))["model"]
    pretrain(settings_for_resume(run, {"progress": False}))
    _assert_same_tree(before, ckpt.load_model_file(ckpt.latest_checkpoint(run))["model"])
