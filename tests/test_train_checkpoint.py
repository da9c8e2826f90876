"""Checkpoints: atomic saves, and one clear error for anything missing or corrupt."""
import json

import pytest
import torch
from train_fixtures import tiny_corpus, train_settings

from models.trainer.errors import DataError
from models.trainer.pretrain import checkpoint as ckpt
from models.trainer.pretrain.checkpoint import CheckpointError
from models.trainer.pretrain.loop import pretrain


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    corpus = tiny_corpus(tmp_path_factory.mktemp("corpus"))
    out = tmp_path_factory.mktemp("runs") / "run"
    pretrain(train_settings(out, corpus, steps=2, save_every=2))
    return out


def _copy(run, tmp_path):
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(run, target)
    return target


def test_layout_and_round_trip(run):
    assert (run / "config.json").is_file() and (run / "metadata.json").is_file()
    assert (run / "log.jsonl").is_file() and (run / "targets" / "train.km").is_file()
    checkpoint = ckpt.latest_checkpoint(run)
    assert checkpoint.name == "step-00000002"
    assert {p.name for p in checkpoint.iterdir()} == {"model.pt", "state.pt"}
    state = ckpt.load_state_file(checkpoint)
    assert {"optimizer", "scheduler", "rng", "step"} <= set(state)
    model, config, step = ckpt.load_run_model(run)
    assert step == 2 and not model.training and config["overrides"]["num_classes"] == 8
    metadata = json.loads((run / "metadata.json").read_text())
    assert metadata["data"] and metadata["settings"]["model"] == config["name"]


@pytest.mark.parametrize("damage, message", [
    ("truncate", "corrupt or truncated"),
    ("garbage", "corrupt or truncated"),
    ("missing", "missing model file"),
    ("config", "corrupt run config"),
    ("latest", "not a checkpoint folder"),
    ("shape", "do not fit"),
])
def test_damaged_checkpoint_gives_one_clear_error(run, tmp_path, damage, message):
    copy = _copy(run, tmp_path)
    model_file = ckpt.latest_checkpoint(copy) / "model.pt"
    if damage == "truncate":
        model_file.write_bytes(model_file.read_bytes()[: model_file.stat().st_size // 2])
    elif damage == "garbage":
        model_file.write_bytes(b"not a checkpoint at all")
    elif damage == "missing":
        model_file.unlink()
    elif damage == "config":
        (copy / "config.json").write_text("{ broken")
    elif damage == "latest":
        (copy / "checkpoints" / "latest").write_text("step-99999999\n")
    elif damage == "shape":
        config = json.loads((copy / "config.json").read_text())
        config["overrides"]["dim"] = 128
        (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=message) as info:
        ckpt.load_run_model(copy)
    assert isinstance(info.value, DataError) and "\n" not in str(info.value)


def test_not_a_run_folder(tmp_path):
    with pytest.raises(CheckpointError, match="no such run folder"):
        ckpt.load_run_model(tmp_path / "nowhere")
    with pytest.raises(CheckpointError, match="not a training run folder"):
        ckpt.load_run_model(tmp_path)


def test_a_run_is_resolved_once_from_its_folder_or_a_checkpoint_folder(run, monkeypatch):
    newest = ckpt.resolve_run(run)
    assert (newest.run_dir, newest.checkpoint) == (run, None)
    named = ckpt.resolve_run(run / "checkpoints" / "step-00000002")
    assert (named.run_dir, named.checkpoint) == (run, run / "checkpoints" / "step-00000002")
    assert newest.name == named.name == "sparseformer-dn-s"
    assert newest.precision.label == "W32A32"
    # The model is read on first use only, then shared.
    loads = []
    real = ckpt.load_model_file
    monkeypatch.setattr(ckpt, "load_model_file",
                        lambda folder: loads.append(folder) or real(folder))
    model = named.model
    assert named.model is model and named.step == 2 and not model.training
    assert loads == [run / "checkpoints" / "step-00000002"]
    with pytest.raises(CheckpointError, match="no such run folder"):
        ckpt.resolve_run(run / "nowhere")


def test_a_failed_save_leaves_the_previous_checkpoint(run, tmp_path, monkeypatch):
    copy = _copy(run, tmp_path)
    before = ckpt.latest_checkpoint(copy)
    calls = {"n": 0}
    real = ckpt.torch_bytes

    def failing(obj):
        calls["n"] += 1
        if calls["n"] == 2:       # die while writing the second file
            raise OSError("disk full")
        return real(obj)

    monkeypatch.setattr(ckpt, "torch_bytes", failing)
    with pytest.raises(OSError):
        ckpt.save_checkpoint(copy, 4, {"w": torch.zeros(1)}, {"optimizer": {}})
    assert ckpt.latest_checkpoint(copy) == before
    assert [p.name for p in (copy / "checkpoints").iterdir() if p.is_dir()] == [before.name]
    ckpt.load_model_file(before)


def test_resume_from_a_corrupt_checkpoint_is_refused_before_anything_changes(run, tmp_path):
    from models.trainer.pretrain.settings import settings_for_resume

    copy = _copy(run, tmp_path)
    state_file = ckpt.latest_checkpoint(copy) / "state.pt"
    state_file.write_bytes(b"\0" * 64)
    log_before = (copy / "log.jsonl").read_bytes()
    with pytest.raises(CheckpointError, match="state.pt: corrupt or truncated"):
        pretrain(settings_for_resume(copy, {"progress": False, "steps": None}))
    assert (copy / "log.jsonl").read_bytes() == log_before


def test_iteration_two_clusters_a_hidden_layer_of_the_first_run(run, tmp_path):
    from models.trainer.data.manifest import read_labels

    corpus = json.loads((run / "metadata.json").read_text())["data"]
    out = tmp_path / "it2"
    pretrain(train_settings(out, corpus, steps=1, save_every=1, iteration=2,
                            targets_from=str(run), clusters=4))
    info = json.loads((out / "targets" / "targets.json").read_text())
    assert info["iteration"] == 2 and info["features"] == "hidden layer 1"   # max(1, layers // 2)
    assert info["run"] == str(run.resolve()) and info["step"] == 2
    units = {int(u) for line in read_labels(out / "targets" / "train.km") for u in line.split()}
    assert units <= set(range(4)) and len(units) > 1
    assert json.loads((out / "config.json").read_text())["overrides"]["num_classes"] == 4
    with pytest.raises(DataError, match="iteration 2 needs"):
        pretrain(train_settings(tmp_path / "x", corpus, iteration=2))
