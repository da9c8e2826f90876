"""The DeepSpeed path (ZeRO stage 1, one CPU process): trains, checkpoints, resumes exactly."""
import json

import pytest
import torch

pytest.importorskip("deepspeed")

from train_fixtures import tiny_corpus, train_settings  # noqa: E402

from models.trainer.pretrain import checkpoint as ckpt  # noqa: E402
from models.trainer.pretrain.loop import pretrain  # noqa: E402
from models.trainer.pretrain.settings import settings_for_resume  # noqa: E402


class Killed(Exception):
    pass


def test_deepspeed_run_resumes_to_the_same_weights(tmp_path):
    torch.set_num_threads(1)
    data = tiny_corpus(tmp_path / "corpus")
    config = tmp_path / "ds.json"
    config.write_text(json.dumps({"zero_optimization": {"stage": 1}}))
    common = dict(steps=4, save_every=2, deepspeed=str(config))
    pretrain(train_settings(tmp_path / "straight", data, **common))

    def kill(step):
        if step == 3:
            raise Killed
    with pytest.raises(Killed):
        pretrain(train_settings(tmp_path / "resumed", data, **common), on_step=kill)
    pretrain(settings_for_resume(tmp_path / "resumed", {"progress": False}))

    meta = json.loads((tmp_path / "resumed" / "metadata.json").read_text())
    assert meta["finished"] and meta["deepspeed_config"] == str(config.resolve())
    assert (tmp_path / "resumed" / "deepspeed" / "step-00000004").is_dir()
    a = ckpt.load_model_file(ckpt.latest_checkpoint(tmp_path / "straight"))["model"]
    b = ckpt.load_model_file(ckpt.latest_checkpoint(tmp_path / "resumed"))["model"]
    for name, value in a.items():
        if torch.is_tensor(value):
            assert torch.equal(value, b[name]), name
